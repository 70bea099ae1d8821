-- cloudimg catalog, PostgreSQL flavour. Keep in step with migrations/sqlite/0001_init.sql:
-- the same tables, columns and meanings. Integers are 64-bit, booleans 0/1, timestamps
-- RFC 3339 UTC text with microseconds made by the service (they sort as text), ids text.

CREATE TABLE images (
    id               TEXT PRIMARY KEY NOT NULL,
    name             TEXT,
    owner            TEXT NOT NULL,
    status           TEXT NOT NULL,
    visibility       TEXT NOT NULL,
    protected        BIGINT NOT NULL DEFAULT 0,
    os_hidden        BIGINT NOT NULL DEFAULT 0,
    disk_format      TEXT,
    container_format TEXT,
    size             BIGINT,
    virtual_size     BIGINT,
    checksum         TEXT,
    os_hash_algo     TEXT,
    os_hash_value    TEXT,
    min_disk         BIGINT NOT NULL DEFAULT 0,
    min_ram          BIGINT NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    version          BIGINT NOT NULL DEFAULT 0,
    -- an upload in progress: who holds it and until when (a server that died mid-upload
    -- leaves an expired lease, and the image goes back to queued)
    upload_owner     TEXT,
    upload_expires   TEXT
);
CREATE INDEX images_owner ON images (owner);
CREATE INDEX images_visibility ON images (visibility);
CREATE INDEX images_created ON images (created_at, id);

CREATE TABLE image_properties (
    image_id TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    name     TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (image_id, name)
);
CREATE INDEX image_properties_name ON image_properties (name, value);

CREATE TABLE image_tags (
    image_id   TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    value      TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (image_id, value)
);
CREATE INDEX image_tags_value ON image_tags (value);

CREATE TABLE image_members (
    image_id   TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    member     TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (image_id, member)
);
CREATE INDEX image_members_member ON image_members (member, status);

-- Where an image's bytes are: an object in the image store. kind is `object` (the bytes as
-- uploaded) or `package` (a XenServer tarball written by an import).
CREATE TABLE image_locations (
    image_id  TEXT NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    position  BIGINT NOT NULL,
    container TEXT NOT NULL,
    object    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    metadata  TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (image_id, position)
);

-- Glance tasks, run by workers under leases (the worker fleet issue fills the lease columns).
CREATE TABLE tasks (
    id               TEXT PRIMARY KEY NOT NULL,
    type             TEXT NOT NULL,
    status           TEXT NOT NULL,
    owner            TEXT NOT NULL,
    input            TEXT NOT NULL,
    result           TEXT,
    message          TEXT NOT NULL DEFAULT '',
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    expires_at       TEXT,
    attempts         BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL DEFAULT 3,
    lease_owner      TEXT,
    lease_expires_at TEXT,
    phase            TEXT,
    bytes_done       BIGINT NOT NULL DEFAULT 0,
    bytes_total      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tasks_owner ON tasks (owner, created_at);
CREATE INDEX tasks_claim ON tasks (status, lease_expires_at);

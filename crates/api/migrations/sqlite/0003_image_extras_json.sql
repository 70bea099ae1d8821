-- The properties and tags of an image, also kept as JSON on its row (an object of
-- strings and an array of strings), written in the same transaction as the
-- image_properties and image_tags rows. A page of `GET /v2/images` reads them with the
-- row instead of two correlated aggregates per image; the child tables stay for the
-- `tag=` and property filters (indexed) and stay the source these columns are built from.
ALTER TABLE images ADD COLUMN props_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE images ADD COLUMN tags_json TEXT NOT NULL DEFAULT '[]';
UPDATE images SET
    props_json = COALESCE((SELECT json_group_object(p.name, p.value) FROM image_properties p
                           WHERE p.image_id = images.id), '{}'),
    tags_json = COALESCE((SELECT json_group_array(t.value) FROM image_tags t
                          WHERE t.image_id = images.id), '[]');

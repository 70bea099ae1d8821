-- The credential a task runs with against the customer's object storage (`--files
-- swift`): a Keystone trust from the caller to the service user, scoped to the caller's
-- project. Kept beside the task, not in it, so no listing of tasks ever carries it; a
-- row goes when its task ends.
CREATE TABLE task_credentials (
    task_id TEXT PRIMARY KEY,
    trust_id TEXT NOT NULL,
    expires_at TEXT NOT NULL
);

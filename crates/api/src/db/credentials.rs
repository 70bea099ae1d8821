//! The `task_credentials` rows: the Keystone trust a task runs with against the customer's
//! object storage, kept apart from the task so no task listing carries it.

use super::Db;
use sqlx::Row;

/// Records the trust of task `task_id`.
pub async fn insert(
    db: &Db,
    task_id: &str,
    trust_id: &str,
    expires_at: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO task_credentials (task_id, trust_id, expires_at) VALUES ($1, $2, $3)")
        .bind(task_id)
        .bind(trust_id)
        .bind(expires_at)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// The trust of task `task_id`, if it has one.
pub async fn get(db: &Db, task_id: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT trust_id FROM task_credentials WHERE task_id = $1")
        .bind(task_id)
        .fetch_optional(db.pool())
        .await?
        .map(|r| r.try_get("trust_id"))
        .transpose()
}

/// Forgets the trust of task `task_id` (its task ended).
pub async fn delete(db: &Db, task_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM task_credentials WHERE task_id = $1")
        .bind(task_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

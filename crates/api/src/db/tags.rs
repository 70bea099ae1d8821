//! `image_tags`: single-tag adds and removes (whole-list changes go through
//! [`super::images::update`]).

use super::Db;
use sqlx::Row;

/// Adds `tag` to `image_id` if it is missing, while the image has fewer than `quota` tags.
/// Returns `Ok(false)` when the quota is reached (the tag was not there).
pub async fn add(
    db: &Db,
    image_id: &str,
    tag: &str,
    quota: usize,
    now: &str,
) -> Result<bool, sqlx::Error> {
    // One statement, so the quota check and the insert cannot interleave with another add.
    let sql = "INSERT INTO image_tags (image_id, value, created_at) \
               SELECT $1, $2, $3 WHERE NOT EXISTS \
                 (SELECT 1 FROM image_tags WHERE image_id = $4 AND value = $5) \
               AND (SELECT COUNT(*) FROM image_tags WHERE image_id = $6) < $7";
    let n = sqlx::query(sql)
        .bind(image_id)
        .bind(tag)
        .bind(now)
        .bind(image_id)
        .bind(tag)
        .bind(image_id)
        .bind(quota as i64)
        .execute(db.pool())
        .await?
        .rows_affected();
    if n > 0 {
        touch(db, image_id, now).await?;
        return Ok(true);
    }
    // Either it was there already (fine, PUT is idempotent) or the quota is full.
    let present =
        sqlx::query("SELECT COUNT(*) AS n FROM image_tags WHERE image_id = $1 AND value = $2")
            .bind(image_id)
            .bind(tag)
            .fetch_one(db.pool())
            .await?
            .try_get::<i64, _>("n")?;
    Ok(present > 0)
}

/// Removes `tag`; false when it was not there.
pub async fn remove(db: &Db, image_id: &str, tag: &str, now: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND value = $2")
        .bind(image_id)
        .bind(tag)
        .execute(db.pool())
        .await?
        .rows_affected();
    if n > 0 {
        touch(db, image_id, now).await?;
    }
    Ok(n > 0)
}

async fn touch(db: &Db, image_id: &str, now: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE images SET updated_at = $1, version = version + 1 WHERE id = $2")
        .bind(now)
        .bind(image_id)
        .execute(db.pool())
        .await?;
    Ok(())
}

//! `image_tags`: single-tag adds and removes (whole-list changes go through
//! [`super::images::update`]), keeping the image row's `tags_json` copy in step.
//!
//! Each change first bumps the image row's version, which takes the row's write lock
//! (PostgreSQL's row lock, SQLite's database write lock) before anything is read: two
//! changes of one image's tags run one after the other, and each rebuilds `tags_json`
//! from what the other committed. A PATCH that read the image before fails its version
//! fence, as it would after any other change.

use super::Db;
use sqlx::Row;

/// What [`add`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// The tag is new on the image.
    Added,
    /// The tag was there already (PUT is idempotent; nothing changed).
    Present,
    /// The image has `quota` tags already.
    QuotaFull,
    /// There is no such image (deleted meanwhile).
    NoImage,
}

/// Adds `tag` to `image_id` unless it is there, while the image has fewer than `quota`.
pub async fn add(
    db: &Db,
    image_id: &str,
    tag: &str,
    quota: usize,
    now: &str,
) -> Result<Added, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let Some(mut tags) = lock_tags(&mut tx, image_id, now).await? else {
        tx.rollback().await?;
        return Ok(Added::NoImage);
    };
    if tags.iter().any(|t| t == tag) {
        tx.rollback().await?;
        return Ok(Added::Present);
    }
    if tags.len() >= quota {
        tx.rollback().await?;
        return Ok(Added::QuotaFull);
    }
    sqlx::query("INSERT INTO image_tags (image_id, value, created_at) VALUES ($1, $2, $3)")
        .bind(image_id)
        .bind(tag)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tags.push(tag.to_string());
    store_tags(&mut tx, image_id, &tags).await?;
    tx.commit().await?;
    Ok(Added::Added)
}

/// Removes `tag`; false when it (or the image) was not there.
pub async fn remove(db: &Db, image_id: &str, tag: &str, now: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.pool().begin().await?;
    let Some(mut tags) = lock_tags(&mut tx, image_id, now).await? else {
        tx.rollback().await?;
        return Ok(false);
    };
    let before = tags.len();
    tags.retain(|t| t != tag);
    if tags.len() == before {
        tx.rollback().await?;
        return Ok(false);
    }
    sqlx::query("DELETE FROM image_tags WHERE image_id = $1 AND value = $2")
        .bind(image_id)
        .bind(tag)
        .execute(&mut *tx)
        .await?;
    store_tags(&mut tx, image_id, &tags).await?;
    tx.commit().await?;
    Ok(true)
}

/// Bumps the image's version (taking its write lock) and reads its tags from the child
/// table; None when there is no such image.
async fn lock_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    image_id: &str,
    now: &str,
) -> Result<Option<Vec<String>>, sqlx::Error> {
    let n = sqlx::query("UPDATE images SET updated_at = $1, version = version + 1 WHERE id = $2")
        .bind(now)
        .bind(image_id)
        .execute(&mut **tx)
        .await?
        .rows_affected();
    if n == 0 {
        return Ok(None);
    }
    let rows = sqlx::query("SELECT value FROM image_tags WHERE image_id = $1")
        .bind(image_id)
        .fetch_all(&mut **tx)
        .await?;
    rows.iter()
        .map(|r| r.try_get::<String, _>(0))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

async fn store_tags(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    image_id: &str,
    tags: &[String],
) -> Result<(), sqlx::Error> {
    let json = serde_json::to_string(tags).map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    sqlx::query("UPDATE images SET tags_json = $1 WHERE id = $2")
        .bind(json)
        .bind(image_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

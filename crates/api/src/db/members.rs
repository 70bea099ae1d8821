//! `image_members`: which projects an image is shared with, and their answers.

use super::Db;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One membership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The image.
    pub image_id: String,
    /// The consumer project.
    pub member: String,
    /// pending | accepted | rejected.
    pub status: String,
    /// Stored timestamp.
    pub created_at: String,
    /// Stored timestamp.
    pub updated_at: String,
}

fn from_row(r: &AnyRow) -> Result<Member, sqlx::Error> {
    Ok(Member {
        image_id: r.try_get("image_id")?,
        member: r.try_get("member")?,
        status: r.try_get("status")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const COLS: &str = "image_id, member, status, created_at, updated_at";

/// Adds a pending member; a duplicate is a unique violation (409).
pub async fn insert(db: &Db, m: &Member) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO image_members ({COLS}) VALUES ($1, $2, $3, $4, $5)"
    ))
    .bind(&m.image_id)
    .bind(&m.member)
    .bind(&m.status)
    .bind(&m.created_at)
    .bind(&m.updated_at)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// The membership of `member` in `image_id`.
pub async fn get(db: &Db, image_id: &str, member: &str) -> Result<Option<Member>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM image_members WHERE image_id = $1 AND member = $2"
    ))
    .bind(image_id)
    .bind(member)
    .fetch_optional(db.pool())
    .await?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// All members of `image_id`, oldest first.
pub async fn list(db: &Db, image_id: &str) -> Result<Vec<Member>, sqlx::Error> {
    sqlx::query(&format!(
        "SELECT {COLS} FROM image_members WHERE image_id = $1 ORDER BY created_at, member"
    ))
    .bind(image_id)
    .fetch_all(db.pool())
    .await?
    .iter()
    .map(from_row)
    .collect()
}

/// Number of members of `image_id`.
pub async fn count(db: &Db, image_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query("SELECT COUNT(*) AS n FROM image_members WHERE image_id = $1")
        .bind(image_id)
        .fetch_one(db.pool())
        .await?
        .try_get("n")
}

/// Sets the status of a membership; false when there is none.
pub async fn set_status(
    db: &Db,
    image_id: &str,
    member: &str,
    status: &str,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let n = sqlx::query(
        "UPDATE image_members SET status = $1, updated_at = $2 WHERE image_id = $3 AND member = $4",
    )
    .bind(status)
    .bind(now)
    .bind(image_id)
    .bind(member)
    .execute(db.pool())
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Removes a membership; false when there was none.
pub async fn delete(db: &Db, image_id: &str, member: &str) -> Result<bool, sqlx::Error> {
    let n = sqlx::query("DELETE FROM image_members WHERE image_id = $1 AND member = $2")
        .bind(image_id)
        .bind(member)
        .execute(db.pool())
        .await?
        .rows_affected();
    Ok(n > 0)
}

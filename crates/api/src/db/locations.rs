//! `image_locations`: where an image's bytes are in the image store.

use super::Db;
use sqlx::Row;

/// `object`: the bytes as uploaded through the API. `package`: a XenServer tarball an
/// import wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Container in the image store.
    pub container: String,
    /// Object name.
    pub object: String,
    /// `object` or `package`.
    pub kind: String,
}

/// Replaces the locations of `image_id` with `loc`, inside a transaction.
pub async fn replace_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    image_id: &str,
    loc: &Location,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM image_locations WHERE image_id = $1")
        .bind(image_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO image_locations (image_id, position, container, object, kind, metadata) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(image_id)
    .bind(0i64)
    .bind(&loc.container)
    .bind(&loc.object)
    .bind(&loc.kind)
    .bind("{}")
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The first location of `image_id`.
pub async fn get(db: &Db, image_id: &str) -> Result<Option<Location>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT container, object, kind FROM image_locations WHERE image_id = $1 ORDER BY position LIMIT 1",
    )
    .bind(image_id)
    .fetch_optional(db.pool())
    .await?;
    row.map(|r| {
        Ok(Location {
            container: r.try_get("container")?,
            object: r.try_get("object")?,
            kind: r.try_get("kind")?,
        })
    })
    .transpose()
}

//! Registering images from the image store's records in the catalog: at start-up for
//! the images `cloudimg import` wrote ([`adopt_imported`]), and by a worker after an
//! import task ([`adopt_one`]). Both the server and the workers call it, so it sits
//! below both.

use crate::db::{self, locations::Location};
use crate::domain::image::{status, Image};
use crate::state::AppState;

/// Registers, as active images, the records that `cloudimg import` wrote into the image
/// store and the catalog does not know yet. Returns how many.
pub async fn adopt_imported(st: &AppState) -> Result<usize, String> {
    let store = st.store.clone();
    let records = tokio::task::spawn_blocking(move || store.list())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("listing the image store: {e}"))?;
    let mut n = 0;
    for r in records {
        n += adopt_record(st, &r).await? as usize;
    }
    Ok(n)
}

/// Registers image `id` from its record in the image store (after an import task); true
/// when it was new. Create-if-absent: a second run (a taken-over task) registers nothing.
pub async fn adopt_one(st: &AppState, id: &str) -> Result<bool, String> {
    let uuid = uuid::Uuid::parse_str(id).map_err(|e| format!("image id {id}: {e}"))?;
    let store = st.store.clone();
    let rec = tokio::task::spawn_blocking(move || store.require(&uuid))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    adopt_record(st, &rec).await
}

async fn adopt_record(st: &AppState, r: &cloudimg_tasks::ImageRecord) -> Result<bool, String> {
    let uuid = uuid::Uuid::parse_str(&r.id).map_err(|e| format!("record {}: {e}", r.id))?;
    let pkg = st.store.package_path(&uuid);
    let location = Location {
        container: pkg.container,
        object: pkg.name,
        kind: "package".into(),
    };
    // A worker's import recorded the image as saving; a CLI import recorded nothing. A
    // PATCH may race the first case: retry on a version conflict.
    for _ in 0..5 {
        let existing = db::images::get(&st.db, &r.id)
            .await
            .map_err(|e| e.to_string())?;
        let fresh = existing.is_none();
        let mut img = match existing {
            None => {
                let mut img = Image::new(r.id.clone(), &r.owner);
                img.name = Some(r.name.clone());
                img
            }
            Some(i) if i.status == status::SAVING && i.owner == r.owner => i,
            Some(_) => return Ok(false),
        };
        img.status = status::ACTIVE.into();
        img.disk_format = Some(r.disk_format.clone());
        img.container_format = Some(r.container_format.clone());
        img.size = Some(r.size as i64);
        img.virtual_size = Some(r.virtual_size as i64);
        img.checksum = Some(r.checksum.clone());
        img.os_hash_algo = Some(r.os_hash_algo.clone());
        img.os_hash_value = Some(r.os_hash_value.clone());
        img.visibility = serde_json::to_value(r.visibility)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "private".into());
        img.properties
            .extend(r.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        img.updated_at = crate::clock::now();
        let written = if fresh {
            match db::images::insert(&st.db, &img).await {
                Ok(()) => true,
                Err(sqlx::Error::Database(d)) if d.is_unique_violation() => false,
                Err(e) => return Err(e.to_string()),
            }
        } else {
            db::images::update(&st.db, &img)
                .await
                .map_err(|e| e.to_string())?
        };
        if !written {
            continue;
        }
        let mut tx = st.db.pool().begin().await.map_err(|e| e.to_string())?;
        db::locations::replace_in(&mut tx, &r.id, &location)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        return Ok(true);
    }
    Err(format!(
        "image {}: changed by others while it was registered",
        r.id
    ))
}

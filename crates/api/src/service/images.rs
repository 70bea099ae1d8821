//! Images: create, show, list, update (PATCH), delete, deactivate and reactivate.

use super::{owned_image, visible_image};
use crate::auth::{Action, Caller};
use crate::clock;
use crate::db;
use crate::db::docs::Doc;
use crate::domain::image::{status, Image};
use crate::domain::{list, patch, rules};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde_json::Value;
use std::sync::Arc;

/// How often a PATCH that lost a race is re-applied to the newer image before 409.
const PATCH_RETRIES: usize = 5;

/// `POST /v2/images`: a queued image owned by the caller, private unless asked otherwise.
pub async fn create(st: &AppState, caller: &Caller, body: &Value) -> ApiResult<Image> {
    caller.may(Action::Write)?;
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad("The request body must be a JSON object"))?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
        Some(Value::String(s)) => uuid::Uuid::parse_str(s)
            .map_err(|_| ApiError::bad(format!("Invalid id '{s}': an image id is a UUID")))?
            .hyphenated()
            .to_string(),
        Some(_) => return Err(ApiError::bad("Attribute 'id' must be a UUID string")),
    };
    let mut img = Image::new(id, &caller.project_id);
    for (k, v) in obj {
        if k == "id" {
            continue;
        }
        rules::check_attribute(caller, &img, k, Some(v))?;
        img.set(k, v)?;
    }
    db::images::insert(&st.db, &img)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => {
                ApiError::conflict(format!("Image with ID {} already exists", img.id))
            }
            other => other,
        })?;
    Ok(img)
}

/// `GET /v2/images/{id}`.
pub async fn show(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Image> {
    caller.may(Action::Read)?;
    Ok(visible_image(st, caller, id).await?.0)
}

/// A page of images and the `next` link when the page is full.
pub struct Page {
    /// The images' documents.
    pub images: Vec<Arc<Doc>>,
    /// The next page's URL, when there may be one.
    pub next: Option<String>,
}

/// `GET /v2/images`.
pub async fn list(st: &AppState, caller: &Caller, params: &[(String, String)]) -> ApiResult<Page> {
    caller.may(Action::Read)?;
    let q = list::parse(params, st.limits.default_page, st.limits.max_page)?;
    let marker = match &q.marker {
        None => None,
        Some(m) => Some(
            visible_image(st, caller, m)
                .await
                .map_err(|_| ApiError::bad(format!("marker not found: no image with ID {m}")))?
                .0,
        ),
    };
    let images = db::images::list(&st.db, &caller.project_id, &q, marker.as_ref()).await?;
    let next = match images.last() {
        Some(last) if q.limit > 0 && images.len() == q.limit => {
            let mut params = q.carry.clone();
            params.push(("marker".into(), last.id.clone()));
            Some(format!(
                "/v2/images?{}",
                serde_urlencoded::to_string(&params).unwrap_or_default()
            ))
        }
        _ => None,
    };
    Ok(Page { images, next })
}

/// `PATCH /v2/images/{id}`: applies `ops` to the stored image; when another writer changed
/// it in between, the operations are applied again to the newer image (as if they had
/// arrived after it), so no update is lost; after [`PATCH_RETRIES`] lost races, 409.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    id: &str,
    ops: &[patch::Op],
) -> ApiResult<Image> {
    caller.may(Action::Write)?;
    for _ in 0..PATCH_RETRIES {
        let current = owned_image(st, caller, id, "change it").await?;
        let mut next = current.clone();
        patch::apply(&mut next, ops, caller)?;
        if next == current {
            return Ok(current);
        }
        next.updated_at = clock::now();
        if db::images::update(&st.db, &next).await? {
            next.version += 1;
            return Ok(next);
        }
    }
    Err(ApiError::conflict(format!(
        "Image {id} is being changed by other requests; try again"
    )))
}

/// `DELETE /v2/images/{id}`: the record first (the image disappears at once), then its
/// data in the image store.
pub async fn delete(st: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    caller.may(Action::Delete)?;
    let img = owned_image(st, caller, id, "delete it").await?;
    if img.protected {
        return Err(ApiError::forbidden(format!(
            "Image {id} is protected and cannot be deleted; set protected to false first"
        )));
    }
    let loc = db::locations::get(&st.db, id).await?;
    if !db::images::delete(&st.db, id).await? {
        return Err(ApiError::no_image(id));
    }
    if let Some(loc) = loc {
        super::data::remove_object(st, &loc).await;
    }
    Ok(())
}

/// `POST .../actions/deactivate`: active -> deactivated (idempotent).
pub async fn deactivate(st: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    caller.may(Action::Delete)?;
    let img = owned_image(st, caller, id, "deactivate it").await?;
    if img.status == status::DEACTIVATED {
        return Ok(());
    }
    if !db::images::set_status(
        &st.db,
        id,
        &[status::ACTIVE],
        status::DEACTIVATED,
        &clock::now(),
    )
    .await?
    {
        return Err(ApiError::forbidden(format!(
            "Not allowed to deactivate image in status '{}'",
            img.status
        )));
    }
    Ok(())
}

/// `POST .../actions/reactivate`: deactivated -> active (idempotent).
pub async fn reactivate(st: &AppState, caller: &Caller, id: &str) -> ApiResult<()> {
    caller.may(Action::Delete)?;
    let img = owned_image(st, caller, id, "reactivate it").await?;
    if img.status == status::ACTIVE {
        return Ok(());
    }
    if !db::images::set_status(
        &st.db,
        id,
        &[status::DEACTIVATED],
        status::ACTIVE,
        &clock::now(),
    )
    .await?
    {
        return Err(ApiError::forbidden(format!(
            "Not allowed to reactivate image in status '{}'",
            img.status
        )));
    }
    Ok(())
}

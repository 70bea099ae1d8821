//! The service layer: what each API operation does, with the rules of who may do what.
//! Handlers extract and serialize; these functions decide. Each takes the shared state and
//! the authenticated caller and returns domain values or an [`crate::error::ApiError`].

pub mod data;
pub mod images;
pub mod members;
pub mod tags;
pub mod tasks;

use crate::auth::Caller;
use crate::db;
use crate::domain::image::Image;
use crate::domain::rules;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Image `id` if `caller` may see it, with the caller's membership status; 404 otherwise
/// (also for ids that are not UUIDs, which cannot exist).
pub async fn visible_image(
    st: &AppState,
    caller: &Caller,
    id: &str,
) -> ApiResult<(Image, Option<String>)> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(ApiError::no_image(id));
    }
    let (img, membership) = db::images::get_as(&st.db, id, &caller.project_id)
        .await?
        .ok_or_else(|| ApiError::no_image(id))?;
    // Only a member of a shared image sees it through its membership.
    let membership =
        membership.filter(|_| img.owner != caller.project_id && img.visibility == "shared");
    if !rules::can_see(caller, &img, membership.as_deref()) {
        return Err(ApiError::no_image(id));
    }
    Ok((img, membership))
}

/// Image `id` if `caller` owns it: 404 when it cannot see it, 403 when it can but does not
/// own it.
pub async fn owned_image(st: &AppState, caller: &Caller, id: &str, what: &str) -> ApiResult<Image> {
    let (img, _) = visible_image(st, caller, id).await?;
    rules::require_owner(caller, &img, true, what)?;
    Ok(img)
}

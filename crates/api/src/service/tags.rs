//! Tags: `PUT` (idempotent, quota) and `DELETE` of one tag.

use super::owned_image;
use crate::auth::{Action, Caller};
use crate::clock;
use crate::db;
use crate::db::tags::Added;
use crate::domain::image::{check_tag, TAG_QUOTA};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `PUT /v2/images/{id}/tags/{tag}`.
pub async fn add(st: &AppState, caller: &Caller, id: &str, tag: &str) -> ApiResult<()> {
    caller.may(Action::Write)?;
    check_tag(tag)?;
    owned_image(st, caller, id, "tag it").await?;
    match db::tags::add(&st.db, id, tag, TAG_QUOTA, &clock::now()).await? {
        Added::Added | Added::Present => Ok(()),
        Added::QuotaFull => Err(ApiError::TooLarge(format!(
            "Maximum number of tags exceeded: image {id} has {TAG_QUOTA}"
        ))),
        Added::NoImage => Err(ApiError::no_image(id)),
    }
}

/// `DELETE /v2/images/{id}/tags/{tag}`.
pub async fn remove(st: &AppState, caller: &Caller, id: &str, tag: &str) -> ApiResult<()> {
    caller.may(Action::Write)?;
    owned_image(st, caller, id, "untag it").await?;
    if !db::tags::remove(&st.db, id, tag, &clock::now()).await? {
        return Err(ApiError::not_found(format!(
            "Tag {tag} not found on image {id}"
        )));
    }
    Ok(())
}

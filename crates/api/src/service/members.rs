//! Sharing, as Cloud Images tells it: the producer (owner) adds a consumer project as a
//! member; the consumer accepts or rejects (and may change its mind); only accepted
//! images appear in the consumer's list by default; the producer removes a member and the
//! consumer loses access at once.
//!
//! Differences from upstream Glance, on purpose: adding a member to a `private` image makes
//! it `shared` (Cloud Images images are private until shared; upstream answers 403 until
//! the owner sets `visibility: shared` by hand).

use super::{owned_image, visible_image};
use crate::auth::{Action, Caller};
use crate::clock;
use crate::db::{self, members::Member};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde_json::{json, Value};

/// Most members of one image (Glance's `image_member_quota`).
pub const MEMBER_QUOTA: i64 = 128;

/// The member JSON document.
pub fn to_json(m: &Member) -> Value {
    json!({
        "member_id": m.member,
        "image_id": m.image_id,
        "status": m.status,
        "created_at": clock::show(&m.created_at),
        "updated_at": clock::show(&m.updated_at),
        "schema": "/v2/schemas/member",
    })
}

fn body_field<'a>(body: &'a Value, field: &str) -> ApiResult<&'a str> {
    let obj = body
        .as_object()
        .ok_or_else(|| ApiError::bad("The request body must be a JSON object"))?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != field) {
        return Err(ApiError::bad(format!(
            "Unknown attribute '{k}' (only '{field}' is accepted)"
        )));
    }
    obj.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::bad(format!("The body needs \"{field}\" as a string")))
}

/// `POST /v2/images/{id}/members`.
pub async fn add(st: &AppState, caller: &Caller, id: &str, body: &Value) -> ApiResult<Member> {
    caller.may(Action::Share)?;
    let member = body_field(body, "member")?.trim();
    if member.is_empty() || member.len() > 255 {
        return Err(ApiError::bad(
            "\"member\" must be a project (account) id of 1 to 255 characters",
        ));
    }
    let mut img = owned_image(st, caller, id, "share it").await?;
    if member == img.owner {
        return Err(ApiError::bad("An image cannot be shared with its owner"));
    }
    match img.visibility.as_str() {
        "shared" => {}
        "private" => {
            // Cloud Images: sharing a private image shares it.
            img.visibility = "shared".into();
            img.updated_at = clock::now();
            if !db::images::update(&st.db, &img).await? {
                return Err(ApiError::conflict(format!(
                    "Image {id} changed meanwhile; try again"
                )));
            }
        }
        v => {
            return Err(ApiError::forbidden(format!(
                "Only shared images have members; image {id} is {v}"
            )))
        }
    }
    if db::members::count(&st.db, id).await? >= MEMBER_QUOTA {
        return Err(ApiError::TooLarge(format!(
            "Maximum number of members exceeded: image {id} has {MEMBER_QUOTA}"
        )));
    }
    let now = clock::now();
    let m = Member {
        image_id: id.to_string(),
        member: member.to_string(),
        status: "pending".into(),
        created_at: now.clone(),
        updated_at: now,
    };
    db::members::insert(&st.db, &m)
        .await
        .map_err(|e| match ApiError::from(e) {
            ApiError::Conflict(_) => {
                ApiError::conflict(format!("{member} is already a member of image {id}"))
            }
            other => other,
        })?;
    Ok(m)
}

/// `GET /v2/images/{id}/members`: all for the owner, only itself for a consumer.
pub async fn list(st: &AppState, caller: &Caller, id: &str) -> ApiResult<Vec<Member>> {
    caller.may(Action::Read)?;
    let (img, _) = visible_image(st, caller, id).await?;
    let all = db::members::list(&st.db, id).await?;
    if img.owner == caller.project_id {
        Ok(all)
    } else {
        Ok(all
            .into_iter()
            .filter(|m| m.member == caller.project_id)
            .collect())
    }
}

/// `GET /v2/images/{id}/members/{member}`: the owner, or the member itself.
pub async fn get(st: &AppState, caller: &Caller, id: &str, member: &str) -> ApiResult<Member> {
    caller.may(Action::Read)?;
    let (img, _) = visible_image(st, caller, id).await?;
    if img.owner != caller.project_id && member != caller.project_id {
        return Err(no_member(id, member));
    }
    db::members::get(&st.db, id, member)
        .await?
        .ok_or_else(|| no_member(id, member))
}

/// `PUT /v2/images/{id}/members/{member}`: only the member itself answers.
pub async fn update(
    st: &AppState,
    caller: &Caller,
    id: &str,
    member: &str,
    body: &Value,
) -> ApiResult<Member> {
    let status = body_field(body, "status")?;
    if !["pending", "accepted", "rejected"].contains(&status) {
        return Err(ApiError::bad(format!(
            "Invalid status '{status}': use pending, accepted or rejected"
        )));
    }
    caller.may(Action::AnswerShare)?;
    let (img, _) = visible_image(st, caller, id).await?;
    if member != caller.project_id {
        return Err(ApiError::forbidden(if img.owner == caller.project_id {
            format!("Only the member {member} can accept or reject image {id}; the owner cannot set its status")
        } else {
            format!("You can only answer for your own project, not for {member}")
        }));
    }
    if !db::members::set_status(&st.db, id, member, status, &clock::now()).await? {
        return Err(no_member(id, member));
    }
    db::members::get(&st.db, id, member)
        .await?
        .ok_or_else(|| no_member(id, member))
}

/// `DELETE /v2/images/{id}/members/{member}`: the owner only.
pub async fn delete(st: &AppState, caller: &Caller, id: &str, member: &str) -> ApiResult<()> {
    let (img, _) = visible_image(st, caller, id).await?;
    if img.owner != caller.project_id {
        return Err(ApiError::forbidden(format!(
            "Only the owner of image {id} can remove its members"
        )));
    }
    caller.may(Action::Share)?;
    if !db::members::delete(&st.db, id, member).await? {
        return Err(no_member(id, member));
    }
    Ok(())
}

fn no_member(id: &str, member: &str) -> ApiError {
    ApiError::not_found(format!("{member} is not a member of image {id}"))
}

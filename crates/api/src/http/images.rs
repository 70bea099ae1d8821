//! Routes of `/v2/images`, `/v2/images/{id}`, its actions, tags and data.

use super::extract::{media_type, parse_json, read_capped, JsonBody};
use crate::auth::Caller;
use crate::domain::patch;
use crate::error::{ApiError, ApiResult};
use crate::service;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// The images list document.
#[derive(serde::Serialize)]
struct ImagesDoc<'a> {
    images: &'a [std::sync::Arc<crate::db::docs::Doc>],
    first: &'static str,
    schema: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next: Option<&'a str>,
}

/// `GET /v2/images`.
pub async fn list(
    State(st): St,
    caller: Caller,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let page = service::images::list(&st, &caller, &params).await?;
    Ok(Json(ImagesDoc {
        images: &page.images,
        first: "/v2/images",
        schema: "/v2/schemas/images",
        next: page.next.as_deref(),
    })
    .into_response())
}

/// `POST /v2/images`.
pub async fn create(
    State(st): St,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let img = service::images::create(&st, &caller, &body).await?;
    let loc = format!("/v2/images/{}", img.id);
    Ok((StatusCode::CREATED, [(header::LOCATION, loc)], Json(&img)).into_response())
}

/// `GET /v2/images/{id}`.
pub async fn show(State(st): St, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(service::images::show(&st, &caller, &id).await?).into_response())
}

/// `PATCH /v2/images/{id}`.
pub async fn update(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> ApiResult<Response> {
    let ctype = media_type(req.headers()).unwrap_or_default();
    let v20 = match ctype.as_str() {
        patch::MEDIA_TYPE_21 => false,
        patch::MEDIA_TYPE_20 => true,
        other => {
            return Err(ApiError::UnsupportedMediaType {
                message: format!(
                    "Unsupported Content-Type '{other}' for PATCH: use {}",
                    patch::MEDIA_TYPE_21
                ),
                accept_patch: Some(patch::ACCEPT_PATCH),
            })
        }
    };
    let bytes = read_capped(req, st.limits.max_json_body).await?;
    let ops = patch::parse(&parse_json(&bytes)?, v20)?;
    let img = service::images::update(&st, &caller, &id, &ops).await?;
    Ok(Json(&img).into_response())
}

/// `DELETE /v2/images/{id}`.
pub async fn delete(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    service::images::delete(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/deactivate`.
pub async fn deactivate(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    service::images::deactivate(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v2/images/{id}/actions/reactivate`.
pub async fn reactivate(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    service::images::reactivate(&st, &caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/tags/{tag}`.
pub async fn add_tag(
    State(st): St,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    service::tags::add(&st, &caller, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v2/images/{id}/tags/{tag}`.
pub async fn remove_tag(
    State(st): St,
    caller: Caller,
    Path((id, tag)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    service::tags::remove(&st, &caller, &id, &tag).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v2/images/{id}/file`.
pub async fn upload(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<StatusCode> {
    service::data::upload(st, &caller, &id, &headers, body).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v2/images/{id}/file`.
pub async fn download(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    service::data::download(st, &caller, &id, &headers).await
}

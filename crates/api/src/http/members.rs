//! Routes of `/v2/images/{id}/members`.

use super::extract::JsonBody;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::service::{self, members::to_json};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// `POST /v2/images/{id}/members` (200, as Glance answers).
pub async fn add(
    State(st): St,
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(
        &service::members::add(&st, &caller, &id, &body).await?,
    )))
}

/// `GET /v2/images/{id}/members`.
pub async fn list(State(st): St, caller: Caller, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let ms = service::members::list(&st, &caller, &id).await?;
    Ok(Json(json!({
        "members": ms.iter().map(to_json).collect::<Vec<_>>(),
        "schema": "/v2/schemas/members",
    })))
}

/// `GET /v2/images/{id}/members/{member}`.
pub async fn show(
    State(st): St,
    caller: Caller,
    Path((id, m)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(
        &service::members::get(&st, &caller, &id, &m).await?,
    )))
}

/// `PUT /v2/images/{id}/members/{member}`.
pub async fn update(
    State(st): St,
    caller: Caller,
    Path((id, m)): Path<(String, String)>,
    JsonBody(body): JsonBody,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(
        &service::members::update(&st, &caller, &id, &m, &body).await?,
    )))
}

/// `DELETE /v2/images/{id}/members/{member}`.
pub async fn delete(
    State(st): St,
    caller: Caller,
    Path((id, m)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    service::members::delete(&st, &caller, &id, &m).await?;
    Ok(StatusCode::NO_CONTENT)
}

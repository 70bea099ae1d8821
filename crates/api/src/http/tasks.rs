//! Routes of `/v2/tasks`.

use super::extract::JsonBody;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::service::{self, tasks::to_json};
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::sync::Arc;

type St = State<Arc<AppState>>;

/// `POST /v2/tasks`: 201 with the pending task and its Location.
pub async fn create(
    State(st): St,
    caller: Caller,
    JsonBody(body): JsonBody,
) -> ApiResult<Response> {
    let t = service::tasks::create(&st, &caller, &body).await?;
    let loc = format!("/v2/tasks/{}", t.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, loc)],
        Json(to_json(&t, true)),
    )
        .into_response())
}

/// `GET /v2/tasks`.
pub async fn list(
    State(st): St,
    caller: Caller,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Response> {
    let (rows, next) = service::tasks::list(&st, &caller, &params).await?;
    let mut doc = json!({
        "tasks": rows.iter().map(|t| to_json(t, false)).collect::<Vec<_>>(),
        "first": "/v2/tasks",
        "schema": "/v2/schemas/tasks",
    });
    if let Some(n) = next {
        doc["next"] = json!(n);
    }
    Ok(Json(doc).into_response())
}

/// `GET /v2/tasks/{id}`.
pub async fn show(State(st): St, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    Ok(Json(to_json(
        &service::tasks::show(&st, &caller, &id).await?,
        true,
    ))
    .into_response())
}

/// `DELETE /v2/tasks/{id}`: tasks are never deleted by callers (Glance: 405, Allow: GET).
pub async fn delete() -> ApiError {
    ApiError::MethodNotAllowed {
        allow: "GET",
        message: "Tasks cannot be deleted; they expire 48 hours after they end".into(),
    }
}

//! Versions, schemas and health: the documents that are not images.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;

const IMAGE: &str = include_str!("../../schemas/image.json");
const IMAGES: &str = include_str!("../../schemas/images.json");
const MEMBER: &str = include_str!("../../schemas/member.json");
const MEMBERS: &str = include_str!("../../schemas/members.json");
const TASK: &str = include_str!("../../schemas/task.json");
const TASKS: &str = include_str!("../../schemas/tasks.json");

fn versions_doc(headers: &HeaderMap) -> Value {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let href = format!("http://{host}/v2/");
    let v = |id: &str, status: &str| json!({"id": id, "status": status, "links": [{"rel": "self", "href": href}]});
    json!({"versions": [
        v("v2.9", "CURRENT"), v("v2.7", "SUPPORTED"), v("v2.6", "SUPPORTED"), v("v2.5", "SUPPORTED"),
        v("v2.4", "SUPPORTED"), v("v2.3", "SUPPORTED"), v("v2.2", "SUPPORTED"), v("v2.1", "SUPPORTED"),
        v("v2.0", "SUPPORTED"),
    ]})
}

/// `GET /`: 300 Multiple Choices with the versions, as Glance answers.
pub async fn versions_multiple(headers: HeaderMap) -> Response {
    (StatusCode::MULTIPLE_CHOICES, Json(versions_doc(&headers))).into_response()
}

/// `GET /versions`.
pub async fn versions(headers: HeaderMap) -> Json<Value> {
    Json(versions_doc(&headers))
}

/// `GET /healthz`: 200 when the catalog answers, 503 otherwise.
pub async fn healthz(State(st): State<Arc<AppState>>) -> Response {
    match sqlx::query("SELECT 1").execute(st.db.pool()).await {
        Ok(_) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            ApiError::Unavailable(format!("the catalog does not answer: {e}")).into_response()
        }
    }
}

/// `GET /v2/schemas/{name}`.
pub async fn schema(_caller: Caller, Path(name): Path<String>) -> ApiResult<Response> {
    let text = match name.as_str() {
        "image" => IMAGE,
        "images" => IMAGES,
        "member" => MEMBER,
        "members" => MEMBERS,
        "task" => TASK,
        "tasks" => TASKS,
        _ => return Err(ApiError::not_found(format!("No schema named {name}"))),
    };
    let v: Value = serde_json::from_str(text)
        .map_err(|e| ApiError::Internal(format!("schema {name}: {e}")))?;
    Ok(Json(v).into_response())
}

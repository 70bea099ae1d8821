//! The whole route table in one place, and the responses for what it does not route:
//! 404 and 405 (with `Allow`) in the service's JSON error shape.

use super::{images, members, meta, tasks};
use crate::error::{error_body, ApiError};
use crate::state::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use std::sync::Arc;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// The service's router.
pub fn router(st: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/", get(meta::versions_multiple))
        .route("/versions", get(meta::versions))
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(crate::metrics::server_metrics))
        .route("/v2/images", get(images::list).post(images::create))
        .route(
            "/v2/images/{id}",
            get(images::show)
                .patch(images::update)
                .delete(images::delete),
        )
        .route(
            "/v2/images/{id}/file",
            put(images::upload).get(images::download),
        )
        .route(
            "/v2/images/{id}/actions/deactivate",
            post(images::deactivate),
        )
        .route(
            "/v2/images/{id}/actions/reactivate",
            post(images::reactivate),
        )
        .route(
            "/v2/images/{id}/tags/{tag}",
            put(images::add_tag).delete(images::remove_tag),
        )
        .route(
            "/v2/images/{id}/members",
            get(members::list).post(members::add),
        )
        .route(
            "/v2/images/{id}/members/{member}",
            get(members::show)
                .put(members::update)
                .delete(members::delete),
        )
        .route("/v2/tasks", get(tasks::list).post(tasks::create))
        .route("/v2/tasks/{id}", get(tasks::show).delete(tasks::delete))
        .route("/v2/schemas/{name}", get(meta::schema))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(st);
    api.layer(middleware::from_fn(json_errors))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(TraceLayer::new_for_http())
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

async fn not_found(req: Request) -> ApiError {
    ApiError::not_found(format!("No resource at {}", req.uri().path()))
}

async fn method_not_allowed(req: Request) -> Response {
    // axum adds the `Allow` header of the route after this answer.
    let status = StatusCode::METHOD_NOT_ALLOWED;
    let msg = format!("{} is not allowed on {}", req.method(), req.uri().path());
    (status, Json(error_body(status, &msg))).into_response()
}

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::Internal("a request handler panicked".into()).into_response()
}

/// Rejections that axum itself produces (path, query) as JSON, like ours.
async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = resp.status();
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let (_, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 << 10)
        .await
        .unwrap_or_default();
    let msg = String::from_utf8_lossy(&text).trim().to_string();
    let msg = if msg.is_empty() {
        status.canonical_reason().unwrap_or("Error").to_string()
    } else {
        msg
    };
    let mut out = (status, Json(error_body(status, &msg))).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out.headers_mut()
        .entry(header::CONTENT_TYPE)
        .or_insert(HeaderValue::from_static("application/json"));
    out
}

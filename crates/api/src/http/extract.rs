//! Request extractors that answer in the service's JSON error shape: the authenticated
//! [`Caller`] (from `X-Auth-Token`) and [`JsonBody`] (a size-capped JSON document).

use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts};
use serde_json::Value;
use std::sync::Arc;

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        st: &Arc<AppState>,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get("x-auth-token")
            .and_then(|v| v.to_str().ok())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthorized("This server requires an X-Auth-Token".into()))?;
        st.auth.authenticate(token).await
    }
}

/// A JSON request body: at most `max_json_body` bytes, `application/json` (or no type).
pub struct JsonBody(pub Value);

impl FromRequest<Arc<AppState>> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, st: &Arc<AppState>) -> Result<Self, Self::Rejection> {
        if let Some(t) = media_type(req.headers()).as_deref() {
            if t != "application/json" && !t.is_empty() {
                return Err(ApiError::UnsupportedMediaType {
                    message: format!("The body must be application/json, not '{t}'"),
                    accept_patch: None,
                });
            }
        }
        let bytes = read_capped(req, st.limits.max_json_body).await?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// The request's media type, lower case without parameters (`None` without Content-Type).
pub fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| {
            s.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// The body of `req`, refused with 413 beyond `max` bytes (checked on Content-Length and
/// on the bytes actually read).
pub async fn read_capped(req: Request, max: usize) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        ApiError::TooLarge(format!(
            "The request body is larger than the {max} bytes accepted"
        ))
    };
    if declared.is_some_and(|n| n > max as u64) {
        return Err(too_large());
    }
    axum::body::to_bytes(req.into_body(), max)
        .await
        .map_err(|e| {
            let s = e.to_string();
            if s.contains("length limit") {
                too_large()
            } else {
                ApiError::bad(format!("Could not read the request body: {s}"))
            }
        })
}

/// Parses JSON, with the position of the first error in the message.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.is_empty() {
        return Err(ApiError::bad(
            "The request body is empty; a JSON document is expected",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad(format!("Malformed JSON in the request body: {e}")))
}

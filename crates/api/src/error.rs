//! One error type for the whole service, mapped to Glance's status codes in one place
//! ([`ApiError::status`]) and rendered as the JSON body every error carries:
//! `{"code": 404, "title": "Not Found", "message": "..."}`.
//!
//! Handlers and the service layer return `Result<_, ApiError>`; nothing else turns an
//! error into a response, so a status code is decided here or nowhere.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Everything a request can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a value is not allowed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no token, or a token the identity service does not accept.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: no such thing, or one the caller may not see.
    #[error("{0}")]
    NotFound(String),
    /// 405: the resource exists but not this method; carries the allowed methods.
    #[error("{message}")]
    MethodNotAllowed {
        /// The `Allow` header value.
        allow: &'static str,
        /// What to say.
        message: String,
    },
    /// 406: the client accepts nothing we produce.
    #[error("{0}")]
    NotAcceptable(String),
    /// 409: the state of the resource forbids it (status, duplicate, concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// 413: a body or a quota is too large.
    #[error("{0}")]
    TooLarge(String),
    /// 415: wrong Content-Type; `accept_patch` is set for PATCH.
    #[error("{message}")]
    UnsupportedMediaType {
        /// What to say.
        message: String,
        /// The `Accept-Patch` value, for PATCH.
        accept_patch: Option<&'static str>,
    },
    /// 416: a Range outside the data.
    #[error("{message}")]
    RangeNotSatisfiable {
        /// What to say.
        message: String,
        /// Size of the data, for `Content-Range: bytes */N`.
        size: u64,
    },
    /// 503: the database or the image store is unavailable; nothing was changed.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; the message is logged, the client gets a
    /// generic text.
    #[error("{0}")]
    Internal(String),
}

/// Shorthand.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 400 with a message.
    pub fn bad(msg: impl Into<String>) -> Self {
        ApiError::BadRequest(msg.into())
    }
    /// 403 with a message.
    pub fn forbidden(msg: impl Into<String>) -> Self {
        ApiError::Forbidden(msg.into())
    }
    /// 404 with a message.
    pub fn not_found(msg: impl Into<String>) -> Self {
        ApiError::NotFound(msg.into())
    }
    /// 409 with a message.
    pub fn conflict(msg: impl Into<String>) -> Self {
        ApiError::Conflict(msg.into())
    }
    /// 404 for an image id the caller cannot see.
    pub fn no_image(id: &str) -> Self {
        ApiError::NotFound(format!("No image found with ID {id}"))
    }

    /// The HTTP status, the one place where errors meet status codes.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The JSON error body for `status` with `message`.
pub fn error_body(status: StatusCode, message: &str) -> serde_json::Value {
    json!({
        "code": status.as_u16(),
        "title": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            ApiError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                "The server could not complete the request; the error is logged.".to_string()
            }
            ApiError::Unavailable(m) => {
                tracing::warn!(error = %m, "unavailable");
                m.clone()
            }
            other => other.to_string(),
        };
        let mut resp = (status, axum::Json(error_body(status, &message))).into_response();
        let h = resp.headers_mut();
        match &self {
            ApiError::MethodNotAllowed { allow, .. } => {
                h.insert(header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::UnsupportedMediaType {
                accept_patch: Some(p),
                ..
            } => {
                h.insert("accept-patch", HeaderValue::from_static(p));
            }
            ApiError::RangeNotSatisfiable { size, .. } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    h.insert(header::CONTENT_RANGE, v);
                }
            }
            _ => {}
        }
        resp
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                ApiError::Conflict(format!("already exists: {}", db.message()))
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => {
                ApiError::Unavailable(format!("the image catalog is unavailable: {e}"))
            }
            sqlx::Error::Database(db) if is_busy_or_down(db.code().as_deref()) => {
                ApiError::Unavailable(format!("the image catalog is unavailable: {e}"))
            }
            _ => ApiError::Internal(format!("database: {e}")),
        }
    }
}

/// SQLite busy/locked, PostgreSQL connection and shutdown classes (08, 57P).
fn is_busy_or_down(code: Option<&str>) -> bool {
    match code {
        Some(c) => c == "5" || c == "6" || c.starts_with("08") || c.starts_with("57P"),
        None => false,
    }
}

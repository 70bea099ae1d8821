//! The crate's one error type: a stable [`ErrorKind`] plus the context a person needs to act
//! on it (operation, object URL, segment, HTTP status).

use std::fmt;

/// What went wrong, stable across releases; callers branch on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The object, container or upload does not exist (HTTP 404).
    NotFound,
    /// Credentials missing, refused or without permission (HTTP 401/403).
    Auth,
    /// The server refused the request and repeating it will not help (400, 409, 413, ...).
    Permanent,
    /// A transient failure (408/429/5xx, dropped connection, timeout) that may be retried.
    /// The retry module turns it into [`ErrorKind::RetriesExhausted`] when it gives up.
    Transient,
    /// A transient failure that persisted through every retry.
    RetriesExhausted,
    /// The bytes are wrong: an ETag/MD5 or size mismatch, a missing or short segment.
    Integrity,
    /// The caller asked for something impossible (bad URL, bad option, too many segments).
    Usage,
    /// This backend cannot do the operation (e.g. S3 multipart on a local directory).
    Unsupported,
    /// Local I/O: reading the input or writing the output failed.
    Io,
}

impl ErrorKind {
    /// True when the data itself is bad (CLI exit code 1); false for usage/environment (2).
    pub fn is_data_error(self) -> bool {
        matches!(self, ErrorKind::Integrity)
    }

    /// True for failures worth another attempt.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorKind::Transient)
    }

    /// Short stable name, used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::Auth => "auth",
            ErrorKind::Permanent => "permanent",
            ErrorKind::Transient => "transient",
            ErrorKind::RetriesExhausted => "retries_exhausted",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Usage => "usage",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Io => "io",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pipeline error with its context.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    op: String,
    target: String,
    segment: Option<u64>,
    status: Option<u16>,
    attempts: u32,
    detail: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.op)?;
        if !self.target.is_empty() {
            write!(f, " {}", self.target)?;
        }
        if let Some(s) = self.segment {
            write!(f, " (segment {s})")?;
        }
        write!(f, ": {}", self.detail)?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if self.attempts > 1 {
            write!(f, " after {} attempts", self.attempts)?;
        }
        Ok(())
    }
}

impl Error {
    /// A new error of `kind` during `op` on `target` (a URL or path; may be empty).
    pub fn new(
        kind: ErrorKind,
        op: impl Into<String>,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        Error {
            kind,
            op: op.into(),
            target: target.into(),
            segment: None,
            status: None,
            attempts: 1,
            detail: detail.into(),
            source: None,
        }
    }

    /// A usage error with no target.
    pub fn usage(op: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, op, "", detail)
    }

    /// Local I/O failure; `TimedOut`/`ConnectionReset`-style errors count as transient.
    pub fn io(op: impl Into<String>, target: impl Into<String>, err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::NotFound => ErrorKind::NotFound,
            K::PermissionDenied => ErrorKind::Auth,
            _ => ErrorKind::Io,
        };
        let detail = err.to_string();
        Error::new(kind, op, target, detail).with_source(err)
    }

    /// Attaches the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Attaches the segment (or part) index.
    pub fn with_segment(mut self, segment: u64) -> Self {
        self.segment = Some(segment);
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    pub(crate) fn with_kind(mut self, kind: ErrorKind) -> Self {
        self.kind = kind;
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts;
        self
    }

    /// The stable kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The operation that failed ("put", "get", "list", "upload", ...).
    pub fn op(&self) -> &str {
        &self.op
    }

    /// The object or container URL (or local path) involved, if any.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The segment or part index involved, if any.
    pub fn segment(&self) -> Option<u64> {
        self.segment
    }

    /// The HTTP status the server answered, if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// How many attempts were made (1 when not retried).
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Human-readable detail without the context prefix.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

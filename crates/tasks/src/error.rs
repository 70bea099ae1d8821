//! The crate's one error type: a stable [`ErrorKind`], the Cloud Images failure code the
//! task reports, and the context (operation, object, image) a person needs to act on it.

use crate::codes::FailureCode;
use std::fmt;

/// Shorthand for results carrying the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, stable across releases; callers branch on this, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The image failed an import check (the code says which).
    Rejected(FailureCode),
    /// The task input is malformed or asks for something not allowed (code 111).
    InvalidInput,
    /// The caller may not do this to the image: not the owner, public or shared, or its
    /// options forbid export.
    Forbidden,
    /// The image, its record, the source object or the receiving container does not exist.
    NotFound,
    /// A stored image is inconsistent: its package or record is damaged or incomplete.
    Corrupt,
    /// Object storage failed (see the source for the pipeline's own kind).
    Store,
    /// Local I/O (temporary files) failed.
    Io,
    /// Another run of the same import or export holds its lock ([`crate::lock`]).
    InProgress,
}

impl ErrorKind {
    /// True when the data (the image) is bad: CLI exit code 1. False for usage, permission
    /// and environment problems (exit code 2).
    pub fn is_data_error(self) -> bool {
        match self {
            ErrorKind::Rejected(c) => c != FailureCode::Unspecified,
            ErrorKind::Corrupt => true,
            _ => false,
        }
    }

    /// The Cloud Images failure code a task reports for this error.
    pub fn failure_code(self) -> FailureCode {
        match self {
            ErrorKind::Rejected(c) => c,
            _ => FailureCode::Unspecified,
        }
    }

    /// Short stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Rejected(_) => "rejected",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Store => "store",
            ErrorKind::Io => "io",
            ErrorKind::InProgress => "in_progress",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A task error with its context.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    op: &'static str,
    target: String,
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let ErrorKind::Rejected(c) = self.kind {
            write!(f, "{}: ", c.code())?;
        }
        write!(f, "{}", self.op)?;
        if !self.target.is_empty() {
            write!(f, " {}", self.target)?;
        }
        write!(f, ": {}", self.message)?;
        // Task messages are read by customers: a source whose text the message
        // already carries is not said twice.
        if let Some(s) = &self.source {
            let s = s.to_string();
            if !self.message.contains(&s) {
                write!(f, ": {s}")?;
            }
        }
        Ok(())
    }
}

impl Error {
    /// An error of `kind` during `op` on `target` (an object URL, image id; may be empty).
    pub fn new(
        kind: ErrorKind,
        op: &'static str,
        target: impl Into<String>,
        message: impl Into<String>,
    ) -> Error {
        Error {
            kind,
            op,
            target: target.into(),
            message: message.into(),
            source: None,
        }
    }

    /// An import rejection with its code.
    pub fn rejected(
        code: FailureCode,
        target: impl Into<String>,
        detail: impl Into<String>,
    ) -> Error {
        Error::new(
            ErrorKind::Rejected(code),
            "import",
            target,
            format!("{}: {}", code.summary(), detail.into()),
        )
    }

    /// Bad task input.
    pub fn input(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidInput, "task input", "", message)
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// A pipeline error during `op` on `target`; integrity failures count as corrupt data.
    pub fn store(
        op: &'static str,
        target: impl Into<String>,
        e: cloudimg_pipeline::Error,
    ) -> Error {
        let kind = match e.kind() {
            cloudimg_pipeline::ErrorKind::NotFound => ErrorKind::NotFound,
            _ => ErrorKind::Store,
        };
        Error::new(kind, op, target, "object storage failed").with_source(e)
    }

    /// A VHD error while reading a stored image (the image is damaged).
    pub fn vhd(op: &'static str, target: impl Into<String>, e: cloudimg_vhd::Error) -> Error {
        let kind = if e.kind().is_data_error() {
            ErrorKind::Corrupt
        } else {
            ErrorKind::Io
        };
        Error::new(kind, op, target, "VHD").with_source(e)
    }

    /// A package (tar/gzip) error while reading or writing a stored image.
    pub fn package(op: &'static str, target: impl Into<String>, e: cloudimg_ova::Error) -> Error {
        let kind = if e.kind().is_data_error() {
            ErrorKind::Corrupt
        } else {
            ErrorKind::Io
        };
        Error::new(kind, op, target, "package").with_source(e)
    }

    /// Local I/O.
    pub fn io(op: &'static str, target: impl Into<String>, e: std::io::Error) -> Error {
        Error::new(ErrorKind::Io, op, target, "I/O failed").with_source(e)
    }

    /// The kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The failure code the task reports.
    pub fn failure_code(&self) -> FailureCode {
        self.kind.failure_code()
    }

    /// The operation that failed.
    pub fn op(&self) -> &str {
        self.op
    }

    /// The object or image involved, if any.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The message without context.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The pipeline error underneath, if this came from object storage.
    pub fn store_error(&self) -> Option<&cloudimg_pipeline::Error> {
        self.source.as_ref()?.downcast_ref()
    }
}

/// Turns an `io::Error` raised by a writer in the data path back into our error when it
/// wraps one (writers must speak `io::Error`, so our errors travel inside them).
pub(crate) fn from_io(op: &'static str, target: &str, e: std::io::Error) -> Error {
    if e.get_ref().is_some_and(|inner| inner.is::<Error>()) {
        let inner = e.into_inner().expect("checked");
        return *inner.downcast::<Error>().expect("checked");
    }
    if e.get_ref()
        .is_some_and(|inner| inner.is::<cloudimg_pipeline::Error>())
    {
        let inner = e.into_inner().expect("checked");
        return Error::store(
            op,
            target,
            *inner
                .downcast::<cloudimg_pipeline::Error>()
                .expect("checked"),
        );
    }
    Error::io(op, target, e)
}

/// Turns a package (tar/gzip) error into ours; an error of ours that travelled inside it
/// (a store failure under a reader or the upload under the gzip writer, carried as an
/// I/O error) is recovered with its kind.
pub(crate) fn from_package(op: &'static str, url: &str, e: cloudimg_ova::Error) -> Error {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(ours) = s.downcast_ref::<Error>() {
            return Error::new(ours.kind(), op, url, ours.to_string());
        }
        src = s.source();
    }
    Error::package(op, url, e)
}

//! The one public error type of the crate: a stable kind plus context.
//!
//! Callers branch on [`ErrorKind`]; people read the message, which names the
//! file, the field and the byte offset wherever they are known.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for results carrying the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form that does not change between releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Reading or writing failed at the operating-system level.
    Io,
    /// The data is not a VHD at all (no `conectix` cookie anywhere it should be).
    NotVhd,
    /// The file is shorter than its own metadata says it is.
    Truncated,
    /// A structure is a VHD but a field is wrong in a way that makes reading unsafe.
    Corrupt,
    /// Valid, but uses something this crate does not handle.
    Unsupported,
    /// A differencing disk's parent could not be found.
    ParentMissing,
    /// The parent found does not match the child (UUID, size, block size).
    ParentMismatch,
    /// The chain loops back on itself or is absurdly deep.
    ChainLoop,
    /// A parent locator points outside the directory resolution is confined to.
    LocatorRefused,
    /// The caller asked for something impossible (bad option, out-of-range read).
    InvalidArgument,
    /// An interrupted in-place operation left a journal that must be resolved first.
    Journal,
}

impl ErrorKind {
    /// True when the error says the image (the data) is bad, as opposed to the
    /// environment or the request. The CLI maps this to exit code 1.
    pub fn is_data_error(self) -> bool {
        !matches!(self, ErrorKind::Io | ErrorKind::InvalidArgument)
    }

    /// Stable lower-case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::NotVhd => "not_vhd",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::ParentMissing => "parent_missing",
            ErrorKind::ParentMismatch => "parent_mismatch",
            ErrorKind::ChainLoop => "chain_loop",
            ErrorKind::LocatorRefused => "locator_refused",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Journal => "journal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its kind and whatever context is known: file, field, offset.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    path: Option<PathBuf>,
    field: Option<&'static str>,
    offset: Option<u64>,
    source: Option<io::Error>,
}

impl Error {
    /// A new error of `kind` with a human message; add context with the builders.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            path: None,
            field: None,
            offset: None,
            source: None,
        }
    }

    /// An I/O failure during `op` (e.g. "read BAT").
    pub fn io(op: &str, source: io::Error) -> Self {
        let kind = if source.kind() == io::ErrorKind::UnexpectedEof {
            ErrorKind::Truncated
        } else {
            ErrorKind::Io
        };
        let mut e = Error::new(kind, format!("{op}: {source}"));
        e.source = Some(source);
        e
    }

    /// A bad field: `field` at absolute byte `offset`.
    pub fn corrupt(field: &'static str, offset: u64, message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Corrupt, message)
            .field(field)
            .at(offset)
    }

    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    pub fn field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }

    pub fn at(mut self, offset: u64) -> Self {
        self.offset = Some(offset);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn file(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn field_name(&self) -> Option<&'static str> {
        self.field
    }

    pub fn offset(&self) -> Option<u64> {
        self.offset
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        match (self.field, self.offset) {
            (Some(field), Some(off)) => write!(f, "{field} at offset {off:#x}: ")?,
            (Some(field), None) => write!(f, "{field}: ")?,
            (None, Some(off)) => write!(f, "at offset {off:#x}: ")?,
            (None, None) => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_field_and_offset() {
        let e = Error::corrupt("block_size", 0x220, "not a power of two").path("/x/a.vhd");
        assert_eq!(
            e.to_string(),
            "/x/a.vhd: block_size at offset 0x220: not a power of two"
        );
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert!(e.kind().is_data_error());
    }

    #[test]
    fn eof_is_truncation() {
        let e = Error::io("read footer", io::Error::from(io::ErrorKind::UnexpectedEof));
        assert_eq!(e.kind(), ErrorKind::Truncated);
    }
}

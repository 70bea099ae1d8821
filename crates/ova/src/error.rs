//! The one public error type of the crate: a stable kind plus context.
//!
//! Callers branch on [`ErrorKind`]; people read the message, which names the
//! archive member, the byte offset in the (uncompressed) archive, the file on
//! disk and the operation wherever they are known.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Shorthand for results carrying the crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form that does not change between releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// Reading or writing failed at the operating-system level.
    Io,
    /// The archive or the compressed stream ends early.
    Truncated,
    /// A tar header or the gzip stream is malformed (bad checksum, bad field, bad CRC).
    Corrupt,
    /// A member name is absolute, climbs out with `..`, or is otherwise unsafe.
    UnsafePath,
    /// A member is a link, device, fifo or another type we refuse to unpack.
    UnsafeEntry,
    /// The same name appears twice in the archive.
    Duplicate,
    /// A size, count or compression-ratio cap was exceeded (decompression bomb).
    LimitExceeded,
    /// The stream's MD5/SHA256, or a manifest digest, is not the expected one.
    ChecksumMismatch,
    /// The members do not form a valid XenServer chain (gap, parent mismatch, hidden leaf).
    Layout,
    /// A member that should be a VHD is not one.
    NotVhd,
    /// The OVF descriptor or manifest is missing or malformed.
    Ovf,
    /// Valid, but uses something this crate does not handle.
    Unsupported,
    /// The caller asked for something impossible (bad option, existing target).
    InvalidArgument,
}

impl ErrorKind {
    /// True when the error says the archive (the data) is bad, as opposed to the
    /// environment or the request. The CLI maps this to exit code 1.
    pub fn is_data_error(self) -> bool {
        !matches!(self, ErrorKind::Io | ErrorKind::InvalidArgument)
    }

    /// Stable lower-case name used in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Io => "io",
            ErrorKind::Truncated => "truncated",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::UnsafePath => "unsafe_path",
            ErrorKind::UnsafeEntry => "unsafe_entry",
            ErrorKind::Duplicate => "duplicate",
            ErrorKind::LimitExceeded => "limit_exceeded",
            ErrorKind::ChecksumMismatch => "checksum_mismatch",
            ErrorKind::Layout => "layout",
            ErrorKind::NotVhd => "not_vhd",
            ErrorKind::Ovf => "ovf",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::InvalidArgument => "invalid_argument",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with its kind and whatever context is known.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    member: Option<String>,
    offset: Option<u64>,
    path: Option<PathBuf>,
    #[source]
    source: Option<io::Error>,
}

impl Error {
    /// A new error of `kind` with a human message; add context with the builders.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            member: None,
            offset: None,
            path: None,
            source: None,
        }
    }

    /// An I/O failure during `op`. An unexpected end of file is a truncation, and an
    /// `InvalidData`/`InvalidInput` from a decoder is corruption; an error that wraps
    /// one of ours (through a `Read`/`Write` adapter) keeps its kind.
    pub fn io(op: &str, source: io::Error) -> Self {
        if source.get_ref().is_some_and(|e| e.is::<Error>()) {
            let inner = source
                .into_inner()
                .expect("checked")
                .downcast::<Error>()
                .expect("checked");
            return *inner;
        }
        let kind = match source.kind() {
            io::ErrorKind::UnexpectedEof => ErrorKind::Truncated,
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => ErrorKind::Corrupt,
            _ => ErrorKind::Io,
        };
        let mut e = Error::new(kind, format!("{op}: {source}"));
        e.source = Some(source);
        e
    }

    /// Names the archive member involved (first one wins).
    pub fn member(mut self, name: impl Into<String>) -> Self {
        if self.member.is_none() {
            self.member = Some(name.into());
        }
        self
    }

    /// Byte offset in the uncompressed archive (first one wins).
    pub fn at(mut self, offset: u64) -> Self {
        if self.offset.is_none() {
            self.offset = Some(offset);
        }
        self
    }

    /// The file on disk involved (first one wins).
    pub fn path(mut self, path: impl AsRef<Path>) -> Self {
        if self.path.is_none() {
            self.path = Some(path.as_ref().to_path_buf());
        }
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn member_name(&self) -> Option<&str> {
        self.member.as_deref()
    }

    pub fn offset(&self) -> Option<u64> {
        self.offset
    }

    pub fn file(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Wraps the error in an `io::Error` so it can cross a `Read`/`Write` boundary
    /// and come back out of [`Error::io`] with its kind intact.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{}: ", p.display())?;
        }
        if let Some(m) = &self.member {
            write!(f, "member {m:?}: ")?;
        }
        if let Some(off) = self.offset {
            write!(f, "at archive offset {off}: ")?;
        }
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_member_and_offset() {
        let e = Error::new(ErrorKind::UnsafePath, "climbs out with ..")
            .member("../x")
            .at(512);
        assert_eq!(
            e.to_string(),
            "member \"../x\": at archive offset 512: climbs out with .."
        );
        assert!(e.kind().is_data_error());
    }

    #[test]
    fn kind_survives_an_io_round_trip() {
        let e = Error::new(ErrorKind::LimitExceeded, "too big").into_io();
        assert_eq!(Error::io("read", e).kind(), ErrorKind::LimitExceeded);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(Error::io("read", eof).kind(), ErrorKind::Truncated);
    }
}

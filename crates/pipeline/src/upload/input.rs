//! The input side of an upload: the [`Source`] a caller gives, the [`ReadRange`] trait of
//! positional sources, re-readable bodies of their ranges, and the in-order reader with a
//! one-byte lookahead that buffers and whole-object digests are fed from.

use crate::error::{Error, Result};
use crate::store::{Body, FileRange};
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;

/// A positional input whose byte ranges can be produced again, as often as asked (e.g.
/// an exported VHD computed on demand from a chain of layers): the upload sends each
/// segment from a fresh reader of its range, so a failed PUT is retried from the first
/// byte and no segment is ever held in memory.
pub trait ReadRange: Send + Sync {
    /// Bytes of the whole input.
    fn len(&self) -> u64;
    /// True when the input is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A reader of exactly `len` bytes from `offset`.
    fn read_range(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>>;
}

/// The input of an upload.
pub enum Source {
    /// A regular file (size known; positional reads possible).
    File {
        /// The file.
        file: Arc<File>,
        /// Its size at open.
        len: u64,
    },
    /// Any stream (size unknown).
    Stream(Box<dyn Read + Send>),
    /// A positional, re-readable input. With [`Digests::NONE`](crate::hash::Digests::NONE) its segments are produced
    /// once each, while being sent (the store hashes what it sends and checks the ETag);
    /// a whole-object digest needs the input in order, so with one its segments are
    /// produced twice (hashed in order, then sent) unless they fit
    /// [`UploadOptions::max_buffer`].
    Ranges(Arc<dyn ReadRange>),
}

impl Source {
    /// A file input; a non-regular file (pipe, device) is treated as a stream.
    pub fn file(file: File) -> Result<Source> {
        let md = file
            .metadata()
            .map_err(|e| Error::io("upload", "input", e))?;
        if md.is_file() {
            Ok(Source::File {
                file: Arc::new(file),
                len: md.len(),
            })
        } else {
            Ok(Source::Stream(Box::new(file)))
        }
    }

    /// A stream input of unknown length, read once, in order, a segment at a time (at
    /// most `(jobs + 1) x segment_size` bytes buffered). What a service's image-data PUT
    /// hands over: `upload(store, path, Source::stream(body), &opts)` from a blocking
    /// thread returns the size and MD5 (and the SHA-512 with [`Digests::GLANCE`](crate::hash::Digests::GLANCE)).
    pub fn stream(r: impl Read + Send + 'static) -> Source {
        Source::Stream(Box::new(r))
    }

    /// A positional, re-readable input (see [`Source::Ranges`]).
    pub fn ranges(src: Arc<dyn ReadRange>) -> Source {
        Source::Ranges(src)
    }

    pub(super) fn len(&self) -> Option<u64> {
        match self {
            Source::File { len, .. } => Some(*len),
            Source::Stream(_) => None,
            Source::Ranges(r) => Some(r.len()),
        }
    }

    /// The positional side (with its length) or the stream.
    pub(super) fn split(self) -> Split {
        match self {
            Source::File { file, len } => (Some((Positional::File(file), len)), None),
            Source::Ranges(r) => {
                let len = r.len();
                (Some((Positional::Ranges(r), len)), None)
            }
            Source::Stream(r) => (None, Some(r)),
        }
    }
}

/// A source split into its positional side (with its length) or its stream.
pub(super) type Split = (Option<(Positional, u64)>, Option<Box<dyn Read + Send>>);

/// The positional side of a source: a file or a [`ReadRange`].
#[derive(Clone)]
pub(super) enum Positional {
    File(Arc<File>),
    Ranges(Arc<dyn ReadRange>),
}

impl Positional {
    /// A re-readable body of bytes `offset..offset + len`.
    pub(super) fn body(&self, offset: u64, len: u64) -> Box<dyn Body> {
        match self {
            Positional::File(file) => Box::new(FileRange {
                file: file.clone(),
                offset,
                len,
            }),
            Positional::Ranges(src) => Box::new(RangeBody {
                src: src.clone(),
                offset,
                len,
            }),
        }
    }
}

/// A range of a [`ReadRange`] as a request body.
struct RangeBody {
    src: Arc<dyn ReadRange>,
    offset: u64,
    len: u64,
}

impl Body for RangeBody {
    fn len(&self) -> u64 {
        self.len
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        self.src.read_range(self.offset, self.len)
    }
}

/// Reads with a one-byte lookahead so the end of the input is known before a segment is
/// dispatched (deciding single PUT vs large object for streams).
pub(super) struct Input<'a> {
    inner: &'a mut dyn Read,
    peeked: Option<u8>,
}

impl<'a> Input<'a> {
    pub(super) fn new(inner: &'a mut dyn Read) -> Input<'a> {
        Input {
            inner,
            peeked: None,
        }
    }

    pub(super) fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.peeked.take() {
            buf[0] = b;
            return Ok(1);
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Appends up to `want` bytes to `buf`; returns how many.
    pub(super) fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        let start = buf.len();
        buf.resize(start + want, 0);
        let mut n = 0;
        while n < want {
            let r = self.read(&mut buf[start + n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        buf.truncate(start + n);
        Ok(n)
    }

    /// Fills `buf` unless the input ends first; returns how many bytes were read.
    pub(super) fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let r = self.read(&mut buf[n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        Ok(n)
    }

    pub(super) fn at_eof(&mut self) -> io::Result<bool> {
        if self.peeked.is_some() {
            return Ok(false);
        }
        let mut b = [0u8; 1];
        let n = self.read(&mut b)?;
        if n == 1 {
            self.peeked = Some(b[0]);
        }
        Ok(n == 0)
    }
}

/// The input in order from its first byte: the stream, or a reader of the positional
/// source's whole range when `in_order` (it will be read in order); otherwise an empty
/// reader, since a reader of a generated source may start producing at once.
pub(super) fn sequential<'b>(
    whole: Option<&'b dyn Body>,
    stream: Option<Box<dyn Read + Send>>,
    in_order: bool,
) -> Result<Box<dyn Read + Send + 'b>> {
    match (whole, stream) {
        (Some(_), _) if !in_order => Ok(Box::new(io::empty())),
        (Some(b), _) => b.reader().map_err(|e| Error::io("upload", "input", e)),
        (None, Some(r)) => Ok(r),
        (None, None) => Ok(Box::new(io::empty())),
    }
}

//! A streaming ustar writer over any `Write`: each entry is a name, a length
//! known up front, and any `Read` that yields exactly that many bytes, so a
//! VHD writer whose output length is precomputed streams straight through.
//!
//! The `tar` crate's `Builder` writes header, data and padding. On top: the
//! source must yield exactly the declared length (the crate pads whatever it
//! got, which would make a silently wrong archive), sources are read in large
//! pieces (the crate copies through an 8 KiB buffer), and the offsets of every
//! entry are kept for the indexed gzip layout.

use super::header::file_header;
use super::{padded, Header, BLOCK};
use crate::error::{Error, ErrorKind, Result};
use std::io::{self, BufReader, Read, Write};

/// Read size from an entry's source.
const COPY_BUF: usize = 256 * 1024;

/// Where an entry landed in the (uncompressed) archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenEntry {
    pub name: String,
    /// Offset of the header block.
    pub header_offset: u64,
    /// Offset of the first data byte.
    pub data_offset: u64,
    pub size: u64,
}

/// Writes a ustar archive entry by entry; [`TarWriter::finish`] writes the
/// end-of-archive marker. Dropped unfinished (after an error), the crate's
/// builder still writes the marker; callers remove such output.
pub struct TarWriter<W: Write> {
    builder: ::tar::Builder<W>,
    pos: u64,
    mtime: u64,
    entries: Vec<WrittenEntry>,
}

impl<W: Write> TarWriter<W> {
    /// A writer stamping entries with the current time.
    pub fn new(inner: W) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        TarWriter {
            builder: ::tar::Builder::new(inner),
            pos: 0,
            mtime: now,
            entries: Vec::new(),
        }
    }

    /// Sets the modification time of the following entries (reproducible archives).
    pub fn set_mtime(&mut self, mtime: u64) {
        self.mtime = mtime;
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The entries written so far, in order.
    pub fn entries(&self) -> &[WrittenEntry] {
        &self.entries
    }

    pub fn get_ref(&self) -> &W {
        self.builder.get_ref()
    }

    pub fn get_mut(&mut self) -> &mut W {
        self.builder.get_mut()
    }

    /// Appends a regular file `name` of exactly `len` bytes read from `data`.
    /// A source that ends early or has bytes left over is an error: the archive
    /// would otherwise be silently wrong.
    pub fn append(&mut self, name: &str, len: u64, data: impl Read) -> Result<&WrittenEntry> {
        let header = file_header(name, len, self.mtime)?;
        self.append_header(&header, data)
    }

    /// Appends an entry with a caller-built header (any type, any name: tests
    /// build hostile archives with it); `data` must yield the header's size.
    pub fn append_header(&mut self, header: &Header, data: impl Read) -> Result<&WrittenEntry> {
        let name = String::from_utf8_lossy(&header.path_bytes()).into_owned();
        let size = header.entry_size().map_err(|e| {
            Error::new(ErrorKind::InvalidArgument, format!("header size: {e}")).member(&*name)
        })?;
        let header_offset = self.pos;
        let mut src = Exact {
            inner: BufReader::with_capacity(COPY_BUF, data),
            declared: size,
            left: size,
            name: &name,
            at: header_offset + BLOCK as u64,
        };
        self.builder.append(header, &mut src).map_err(|e| {
            Error::io("write archive", e)
                .member(&*name)
                .at(header_offset)
        })?;
        self.pos += BLOCK as u64 + padded(size);
        self.entries.push(WrittenEntry {
            name,
            header_offset,
            data_offset: header_offset + BLOCK as u64,
            size,
        });
        Ok(self.entries.last().expect("just pushed"))
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the sink.
    pub fn finish(self) -> Result<W> {
        let at = self.pos;
        let mut inner = self.builder.into_inner().map_err(|e| {
            Error::io("write archive", e)
                .member("end-of-archive")
                .at(at)
        })?;
        inner
            .flush()
            .map_err(|e| Error::io("flush archive", e).at(at + 2 * BLOCK as u64))?;
        Ok(inner)
    }
}

/// An entry's source held to its declared length: short or long is an error
/// naming the entry, raised inside the builder's copy.
struct Exact<'a, R> {
    inner: R,
    declared: u64,
    left: u64,
    name: &'a str,
    /// Archive offset of the next data byte.
    at: u64,
}

impl<R: Read> Read for Exact<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut probe = [0u8; 1];
        let target = if self.left == 0 {
            &mut probe[..]
        } else {
            let want = buf
                .len()
                .min(usize::try_from(self.left).unwrap_or(usize::MAX));
            &mut buf[..want]
        };
        let n = loop {
            match self.inner.read(target) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(Error::io("read entry source", e)
                        .member(self.name)
                        .at(self.at)
                        .into_io())
                }
            }
        };
        let why = match (n, self.left) {
            (0, 0) => return Ok(0),
            (_, 0) => format!("source is longer than the declared {} bytes", self.declared),
            (0, left) => format!(
                "source ended {left} bytes short of the declared {}",
                self.declared
            ),
            (n, _) => {
                self.left -= n as u64;
                self.at += n as u64;
                return Ok(n);
            }
        };
        Err(Error::new(ErrorKind::InvalidArgument, why)
            .member(self.name)
            .at(self.at)
            .into_io())
    }
}

#[cfg(test)]
mod tests {
    use super::super::reader::TarReader;
    use super::*;

    #[test]
    fn writes_what_the_reader_reads() {
        let mut w = TarWriter::new(Vec::new());
        w.set_mtime(0);
        w.append("0.vhd", 5, &b"hello"[..]).unwrap();
        w.append("1.vhd", 600, &[1u8; 600][..]).unwrap();
        assert_eq!(w.entries()[1].data_offset, 512 + 512 + 512);
        assert_eq!(w.position(), 512 + 512 + 512 + 1024);
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len(), 512 + 512 + 512 + 1024 + 1024);
        let mut r = TarReader::new(&bytes[..]);
        let mut names = Vec::new();
        while let Some(mut e) = r.next_entry().unwrap() {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            names.push((e.name(), v.len()));
        }
        assert_eq!(names, vec![("0.vhd".into(), 5), ("1.vhd".into(), 600)]);
    }

    #[test]
    fn refuses_a_source_of_the_wrong_length() {
        let mut w = TarWriter::new(Vec::new());
        let e = w.append("a", 10, &b"short"[..]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert_eq!(e.member_name(), Some("a"));
        let mut w = TarWriter::new(Vec::new());
        let e = w.append("a", 2, &b"long"[..]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

//! A streaming ustar writer over any `Write`: each entry is a name, a length
//! known up front, and any `Read` that yields exactly that many bytes, so a
//! VHD writer whose output length is precomputed streams straight through.

use super::header::{padded, Header, BLOCK};
use crate::error::{Error, ErrorKind, Result};
use std::io::{self, Read, Write};

/// Copy buffer: large enough that a parallel gzip writer below sees big writes.
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
/// end-of-archive marker.
pub struct TarWriter<W: Write> {
    inner: W,
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
            inner,
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
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Appends a regular file `name` of exactly `len` bytes read from `data`.
    /// A source that ends early or has bytes left over is an error: the archive
    /// would otherwise be silently wrong.
    pub fn append(&mut self, name: &str, len: u64, data: impl Read) -> Result<&WrittenEntry> {
        let header = Header::file(name, len, self.mtime);
        self.append_header(&header, data)
    }

    /// Appends an entry with a caller-built header; `data` must yield `header.size` bytes.
    pub fn append_header(&mut self, header: &Header, mut data: impl Read) -> Result<&WrittenEntry> {
        let name = String::from_utf8_lossy(&header.name).into_owned();
        let block = header.to_bytes().map_err(|e| e.member(name.clone()))?;
        let header_offset = self.pos;
        self.write_all(&block, &name)?;
        let data_offset = self.pos;
        let mut buf = vec![
            0u8;
            COPY_BUF
                .min(usize::try_from(header.size).unwrap_or(COPY_BUF))
                .max(1)
        ];
        let mut left = header.size;
        while left > 0 {
            let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
            let n = match data.read(&mut buf[..want]) {
                Ok(0) => {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!(
                            "source ended {left} bytes short of the declared {}",
                            header.size
                        ),
                    )
                    .member(name)
                    .at(self.pos))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read entry source", e).member(name).at(self.pos)),
            };
            self.write_all(&buf[..n], &name)?;
            left -= n as u64;
        }
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(Error::new(
                        ErrorKind::InvalidArgument,
                        format!("source is longer than the declared {} bytes", header.size),
                    )
                    .member(name))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read entry source", e).member(name)),
            }
        }
        let pad = (padded(header.size) - header.size) as usize;
        self.write_all(&[0u8; BLOCK][..pad], &name)?;
        self.entries.push(WrittenEntry {
            name,
            header_offset,
            data_offset,
            size: header.size,
        });
        Ok(self.entries.last().expect("just pushed"))
    }

    /// Writes the end-of-archive marker (two zero blocks) and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.write_all(&[0u8; 2 * BLOCK], "end-of-archive")?;
        self.inner
            .flush()
            .map_err(|e| Error::io("flush archive", e).at(self.pos))?;
        Ok(self.inner)
    }

    fn write_all(&mut self, bytes: &[u8], what: &str) -> Result<()> {
        self.inner
            .write_all(bytes)
            .map_err(|e| Error::io("write archive", e).member(what).at(self.pos))?;
        self.pos += bytes.len() as u64;
        Ok(())
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
        let mut w = TarWriter::new(Vec::new());
        let e = w.append("a", 2, &b"long"[..]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

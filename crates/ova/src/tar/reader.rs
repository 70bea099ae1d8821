//! A front-to-back tar reader over any `Read`: one entry at a time, data
//! streamed, nothing buffered beyond one entry's headers.
//!
//! The `tar` crate parses each entry's header blocks (checksum, numeric
//! fields, ustar prefix, GNU long names, pax records). What it leaves to its
//! callers is done here: the header bytes of one entry are capped (the crate
//! holds long names and pax records in memory whatever their size); a missing
//! end-of-archive marker and short entry data are truncation (the crate takes
//! both for a clean end); malformed pax records and base-256 sizes beyond 64
//! bits are corrupt (the crate skips or truncates them); links, devices,
//! fifos and directories carry no data whatever their size field says (POSIX;
//! the crate would skip `size` bytes).
//!
//! A fresh `tar::Archive` parses each entry's headers and is dropped before the
//! data: the crate's entries borrow their archive, which a reader held in a
//! struct (a [`crate::XenStream`] member by member) could not own beside them.

use super::{padded, EntryType, BLOCK};
use crate::error::{Error, ErrorKind, Result};
use std::borrow::Cow;
use std::io::{self, Read};

/// Most bytes the headers of one entry may take: its header blocks and any GNU
/// long name, long link or pax records before it, which are held in memory.
const MAX_HEADERS: u64 = 2 << 20;

/// Reads tar entries in order from `R`.
pub struct TarReader<R> {
    inner: R,
    /// Bytes consumed from `inner`.
    pos: u64,
    /// Unread data bytes of the current entry, then its padding.
    remaining: u64,
    padding: u64,
    /// Name of the current entry, for errors raised while reading its data.
    current: Vec<u8>,
    done: bool,
}

/// What an entry's headers say, GNU long names and pax records applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// The path as stored (bytes: tar does not promise UTF-8).
    pub name: Vec<u8>,
    /// The link target; empty when there is none.
    pub link_name: Vec<u8>,
    pub entry_type: EntryType,
    /// The size field (pax `size` when present); no data follows for links,
    /// devices, fifos and directories whatever it says.
    pub size: u64,
}

/// One entry: its header and, through `Read`, its data.
pub struct Entry<'a, R> {
    pub header: EntryHeader,
    /// Offset of the entry's (last) header block in the archive.
    pub header_offset: u64,
    /// Offset of the first data byte in the archive.
    pub data_offset: u64,
    reader: &'a mut TarReader<R>,
}

impl<R: Read> TarReader<R> {
    pub fn new(inner: R) -> Self {
        TarReader {
            inner,
            pos: 0,
            remaining: 0,
            padding: 0,
            current: Vec::new(),
            done: false,
        }
    }

    /// Bytes consumed from the underlying reader so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// True once the end-of-archive marker has been read.
    pub fn is_done(&self) -> bool {
        self.done
    }

    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// The next entry, or `None` after the end-of-archive marker. Skips whatever
    /// the caller left unread of the previous entry, and pax global headers.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>> {
        loop {
            if self.done {
                return Ok(None);
            }
            self.skip_rest()?;
            let start = self.pos;
            let mut src = HeaderBytes {
                inner: &mut self.inner,
                start,
                read: 0,
                eof: false,
                failed: false,
            };
            let parsed = parse_next(&mut src);
            let (read, eof, failed) = (src.read, src.eof, src.failed);
            self.pos += read;
            let parsed = parsed.map_err(|e| classify(e, eof, failed, self.pos))?;
            let Some((header, header_pos)) = parsed else {
                if eof {
                    return Err(Error::new(
                        ErrorKind::Truncated,
                        "archive ends without the end-of-archive marker",
                    )
                    .at(self.pos));
                }
                self.done = true;
                return Ok(None);
            };
            let size = if carries_data(header.entry_type) {
                header.size
            } else {
                0
            };
            self.remaining = size;
            self.padding = padded(size) - size;
            if header.entry_type == EntryType::XGlobalHeader {
                continue;
            }
            self.current.clone_from(&header.name);
            let data_offset = self.pos;
            return Ok(Some(Entry {
                header,
                header_offset: start + header_pos,
                data_offset,
                reader: self,
            }));
        }
    }

    /// Skips the unread data and the padding of the current entry.
    fn skip_rest(&mut self) -> Result<()> {
        let n = self.remaining + self.padding;
        if n == 0 {
            return Ok(());
        }
        let at = self.pos;
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())
            .map_err(|e| Error::io("skip tar data", e).at(at))?;
        self.pos += copied;
        if copied < n {
            return Err(
                Error::new(ErrorKind::Truncated, "archive ends inside entry data").at(self.pos),
            );
        }
        self.remaining = 0;
        self.padding = 0;
        Ok(())
    }

    /// Reads data of the current entry, as [`Entry`] does; 0 at its end. Lets a
    /// wrapper that dropped the `Entry` finish reading it.
    pub fn read_data(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(
                Error::new(ErrorKind::Truncated, "archive ends inside entry data")
                    .member(String::from_utf8_lossy(&self.current))
                    .at(self.pos)
                    .into_io(),
            );
        }
        self.pos += n as u64;
        self.remaining -= n as u64;
        Ok(n)
    }

    /// Data bytes of the current entry not read yet.
    pub fn data_remaining(&self) -> u64 {
        self.remaining
    }
}

impl<R: Read> Entry<'_, R> {
    /// The entry's name as text (lossy: tar names are bytes).
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.header.name).into_owned()
    }

    /// Data bytes not read yet.
    pub fn remaining(&self) -> u64 {
        self.reader.remaining
    }

    /// Offset in the archive of the next data byte.
    pub fn position(&self) -> u64 {
        self.reader.pos
    }
}

impl<R: Read> Read for Entry<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.reader.read_data(buf)
    }
}

/// True for the types whose size field counts data blocks that follow.
fn carries_data(t: EntryType) -> bool {
    !matches!(
        t,
        EntryType::Link
            | EntryType::Symlink
            | EntryType::Char
            | EntryType::Block
            | EntryType::Directory
            | EntryType::Fifo
    )
}

/// The input while the crate parses one entry's headers: counts the bytes,
/// notes the end of input and read errors, and stops at [`MAX_HEADERS`].
struct HeaderBytes<'a, R> {
    inner: &'a mut R,
    start: u64,
    read: u64,
    eof: bool,
    failed: bool,
}

impl<R: Read> Read for HeaderBytes<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let left = MAX_HEADERS - self.read;
        if left == 0 {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "the headers of one entry (long names, pax records) take over {MAX_HEADERS} bytes"
                ),
            )
            .at(self.start)
            .into_io());
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        loop {
            match self.inner.read(&mut buf[..want]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(0);
                }
                Ok(n) => {
                    self.read += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.failed = true;
                    return Err(e);
                }
            }
        }
    }
}

/// Parses the next entry's headers: `None` at a zero block or at the end of
/// input, else the header and its offset from where parsing started.
fn parse_next<R: Read>(src: &mut HeaderBytes<'_, R>) -> io::Result<Option<(EntryHeader, u64)>> {
    let mut archive = ::tar::Archive::new(src);
    let Some(entry) = archive.entries()?.next() else {
        return Ok(None);
    };
    let mut entry = entry?;
    let h = entry.header();
    let entry_type = h.entry_type();
    check_size_field(&h.as_bytes()[124..136])?;
    // A GNU sparse entry stores `entry_size` bytes; the crate's `size` is the expanded one.
    let size = if entry_type.is_gnu_sparse() {
        h.entry_size()?
    } else {
        entry.size()
    };
    let name = entry.path_bytes().into_owned();
    let link_name = entry
        .link_name_bytes()
        .map(Cow::into_owned)
        .unwrap_or_default();
    let header_pos = entry.raw_header_position();
    // For a pax header met as an entry (a global one, or one under a v7 header) the
    // crate would read its data as records; the caller skips that data instead.
    let is_pax = entry_type.is_pax_global_extensions() || entry_type.is_pax_local_extensions();
    let records = if is_pax {
        None
    } else {
        entry.pax_extensions()?
    };
    if let Some(records) = records {
        for record in records {
            let record = record?;
            let number = std::str::from_utf8(record.value_bytes())
                .ok()
                .and_then(|s| s.parse::<u64>().ok());
            if record.key_bytes() == b"size" && number.is_none() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "pax size record is not a number",
                ));
            }
        }
    }
    Ok(Some((
        EntryHeader {
            name,
            link_name,
            entry_type,
            size,
        },
        header_pos,
    )))
}

/// Refuses a base-256 size the crate would truncate to its low 64 bits
/// (negative, or over 64 bits), which GNU tar refuses too.
fn check_size_field(field: &[u8]) -> io::Result<()> {
    if field[0] & 0x80 != 0 && (field[0] != 0x80 || field[1..4].iter().any(|&b| b != 0)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "base-256 size is negative or over 64 bits",
        ));
    }
    Ok(())
}

/// Our error for a failure while the crate parsed headers that ended at `pos`.
fn classify(e: io::Error, eof: bool, failed: bool, pos: u64) -> Error {
    if failed || e.get_ref().is_some_and(|i| i.is::<Error>()) {
        return Error::io("read tar header", e).at(pos);
    }
    let block = pos.saturating_sub(1) / BLOCK as u64 * BLOCK as u64;
    if eof {
        return Error::new(
            ErrorKind::Truncated,
            format!("archive ends inside the headers of an entry ({e})"),
        )
        .at(block);
    }
    // The crate reads headers block by block: the bad one is the last block read.
    Error::new(ErrorKind::Corrupt, format!("tar header: {e}")).at(block)
}

#[cfg(test)]
mod tests {
    use super::super::header::file_header;
    use super::*;

    fn read_all(archive: &[u8]) -> Result<Vec<(String, Vec<u8>)>> {
        let mut r = TarReader::new(archive);
        let mut out = Vec::new();
        while let Some(mut e) = r.next_entry()? {
            let mut data = Vec::new();
            e.read_to_end(&mut data).map_err(|e| Error::io("read", e))?;
            out.push((e.name(), data));
        }
        Ok(out)
    }

    #[test]
    fn reads_gnu_long_names_and_pax_paths() {
        let long = "n".repeat(150);
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_size(3);
        b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
        b.append_pax_extensions([("path", &b"pax.vhd"[..])])
            .unwrap();
        b.append(&file_header("ignored", 0, 0).unwrap(), &b""[..])
            .unwrap();
        let archive = b.into_inner().unwrap();
        let got = read_all(&archive).unwrap();
        assert_eq!(
            got,
            vec![(long, b"abc".to_vec()), ("pax.vhd".into(), Vec::new())]
        );
    }

    #[test]
    fn missing_end_marker_is_truncation() {
        let mut archive = file_header("a", 0, 0).unwrap().as_bytes().to_vec();
        let e = read_all(&archive).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated);
        archive.truncate(300);
        let e = read_all(&archive).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Truncated);
    }

    #[test]
    fn short_data_is_truncation_naming_the_member() {
        let mut archive = file_header("0.vhd", 1000, 0).unwrap().as_bytes().to_vec();
        archive.extend([7u8; 100]);
        let mut r = TarReader::new(&archive[..]);
        let mut e = r.next_entry().unwrap().unwrap();
        let err = io::copy(&mut e, &mut io::sink()).unwrap_err();
        let err = Error::io("copy", err);
        assert_eq!(err.kind(), ErrorKind::Truncated);
        assert_eq!(err.member_name(), Some("0.vhd"));
    }

    #[test]
    fn huge_long_names_stop_at_the_cap() {
        let mut b = ::tar::Builder::new(Vec::new());
        let mut h = ::tar::Header::new_gnu();
        h.set_size(0);
        let name = "d/".repeat(MAX_HEADERS as usize / 2 + 100);
        b.append_data(&mut h, &name, &b""[..]).unwrap();
        let e = read_all(&b.into_inner().unwrap()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::LimitExceeded, "{e}");
        assert_eq!(e.offset(), Some(0));
    }

    #[test]
    fn malformed_pax_records_and_sizes_are_corrupt() {
        for records in [&b"99 path=x\n"[..], b"12 size=1x2\n"] {
            let mut h = ::tar::Header::new_ustar();
            h.set_path("PaxHeaders/x").unwrap();
            h.set_entry_type(EntryType::XHeader);
            h.set_size(records.len() as u64);
            h.set_cksum();
            let mut b = ::tar::Builder::new(Vec::new());
            b.append(&h, records).unwrap();
            b.append(&file_header("x", 0, 0).unwrap(), &b""[..])
                .unwrap();
            let e = read_all(&b.into_inner().unwrap()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Corrupt, "{e}");
        }
        let mut h = file_header("x", 0, 0).unwrap();
        h.as_mut_bytes()[124..136].copy_from_slice(&[0xff; 12]);
        h.set_cksum();
        let mut archive = h.as_bytes().to_vec();
        archive.extend([0u8; 1024]);
        let e = read_all(&archive).unwrap_err();
        assert_eq!((e.kind(), e.offset()), (ErrorKind::Corrupt, Some(0)), "{e}");
    }

    #[test]
    fn directories_carry_no_data_whatever_the_size_field() {
        let mut dir = file_header("d/", 1024, 0).unwrap();
        dir.set_entry_type(EntryType::Directory);
        dir.set_cksum();
        let mut archive = dir.as_bytes().to_vec();
        archive.extend(file_header("f", 2, 0).unwrap().as_bytes());
        archive.extend(b"hi");
        archive.resize(archive.len() + 510 + 1024, 0);
        let got = read_all(&archive).unwrap();
        assert_eq!(
            got,
            vec![("d/".into(), Vec::new()), ("f".into(), b"hi".to_vec())]
        );
    }

    #[test]
    fn global_pax_headers_are_skipped() {
        let mut h = ::tar::Header::new_ustar();
        h.set_path("pax_global_header").unwrap();
        h.set_entry_type(EntryType::XGlobalHeader);
        let rec = b"52 comment=4b825dc642cb6eb9a060e54bf8d69288fbee4904\n";
        h.set_size(rec.len() as u64);
        h.set_cksum();
        let mut b = ::tar::Builder::new(Vec::new());
        b.append(&h, &rec[..]).unwrap();
        b.append(&file_header("f", 1, 0).unwrap(), &b"x"[..])
            .unwrap();
        let got = read_all(&b.into_inner().unwrap()).unwrap();
        assert_eq!(got, vec![("f".into(), b"x".to_vec())]);
    }
}

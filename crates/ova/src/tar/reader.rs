//! A front-to-back tar reader over any `Read`: one entry at a time, data
//! streamed, nothing buffered beyond one block.
//!
//! GNU long names (`L`) and pax `path`/`linkpath`/`size` records are honoured on
//! read so archives from GNU tar, bsdtar and Python open; they are capped in
//! size because they are held in memory.

use super::header::{padded, EntryType, Header, BLOCK};
use crate::error::{Error, ErrorKind, Result};
use std::io::{self, Read};

/// Longest GNU long name or pax header we hold in memory.
const MAX_EXTENDED: u64 = 1 << 20;

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

/// One entry: its header (name and size resolved through long-name and pax
/// records) and, through `Read`, its data.
pub struct Entry<'a, R> {
    /// The header as it applies to this entry.
    pub header: Header,
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
    /// the caller left unread of the previous entry.
    pub fn next_entry(&mut self) -> Result<Option<Entry<'_, R>>> {
        if self.done {
            return Ok(None);
        }
        self.skip_rest()?;
        let mut long_name: Option<Vec<u8>> = None;
        let mut long_link: Option<Vec<u8>> = None;
        let mut pax_size: Option<u64> = None;
        loop {
            let offset = self.pos;
            let mut block = [0u8; BLOCK];
            match self.read_block(&mut block)? {
                false => {
                    return Err(Error::new(
                        ErrorKind::Truncated,
                        "archive ends without the end-of-archive marker",
                    )
                    .at(offset))
                }
                true if Header::is_zero_block(&block) => {
                    self.done = true;
                    return Ok(None);
                }
                true => {}
            }
            let mut header = Header::parse(&block, offset)?;
            match header.entry_type {
                EntryType::GnuLongName | EntryType::GnuLongLink => {
                    let mut data = self.read_extended(&header, offset)?;
                    while data.last() == Some(&0) {
                        data.pop();
                    }
                    if header.entry_type == EntryType::GnuLongName {
                        long_name = Some(data);
                    } else {
                        long_link = Some(data);
                    }
                }
                EntryType::PaxHeader | EntryType::PaxGlobal => {
                    let data = self.read_extended(&header, offset)?;
                    if header.entry_type == EntryType::PaxHeader {
                        for (key, value) in pax_records(&data, offset)? {
                            match key {
                                b"path" => long_name = Some(value.to_vec()),
                                b"linkpath" => long_link = Some(value.to_vec()),
                                b"size" => {
                                    let s = std::str::from_utf8(value)
                                        .ok()
                                        .and_then(|s| s.parse::<u64>().ok())
                                        .ok_or_else(|| {
                                            Error::new(ErrorKind::Corrupt, "bad pax size record")
                                                .at(offset)
                                        })?;
                                    pax_size = Some(s);
                                }
                                _ => {}
                            }
                        }
                    }
                }
                _ => {
                    if let Some(n) = long_name.take() {
                        header.name = n;
                    }
                    if let Some(l) = long_link.take() {
                        header.link_name = l;
                    }
                    if let Some(s) = pax_size.take() {
                        header.size = s;
                    }
                    // Links, devices, fifos and directories carry no data whatever the
                    // size field says (POSIX); GNU tar agrees for these types.
                    let size = match header.entry_type {
                        EntryType::HardLink
                        | EntryType::Symlink
                        | EntryType::CharDevice
                        | EntryType::BlockDevice
                        | EntryType::Directory
                        | EntryType::Fifo => 0,
                        _ => header.size,
                    };
                    self.remaining = size;
                    self.padding = padded(size) - size;
                    self.current.clone_from(&header.name);
                    let data_offset = self.pos;
                    return Ok(Some(Entry {
                        header,
                        header_offset: offset,
                        data_offset,
                        reader: self,
                    }));
                }
            }
        }
    }

    /// Reads one block; false on a clean end of input before its first byte.
    fn read_block(&mut self, block: &mut [u8; BLOCK]) -> Result<bool> {
        let mut got = 0;
        while got < BLOCK {
            match self.inner.read(&mut block[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read tar header", e).at(self.pos)),
            }
        }
        self.pos += got as u64;
        match got {
            0 => Ok(false),
            BLOCK => Ok(true),
            _ => Err(
                Error::new(ErrorKind::Truncated, "archive ends inside a header block")
                    .at(self.pos - got as u64),
            ),
        }
    }

    fn read_extended(&mut self, header: &Header, offset: u64) -> Result<Vec<u8>> {
        if header.size > MAX_EXTENDED {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!(
                    "{} of {} bytes (at most {MAX_EXTENDED})",
                    header.entry_type.name(),
                    header.size
                ),
            )
            .at(offset));
        }
        let mut data = vec![0u8; header.size as usize];
        self.read_exact_tracked(&mut data, "read extended header")?;
        self.remaining = 0;
        self.padding = header.padded_size() - header.size;
        self.skip_rest()?;
        Ok(data)
    }

    fn read_exact_tracked(&mut self, buf: &mut [u8], op: &str) -> Result<()> {
        let at = self.pos;
        self.inner
            .read_exact(buf)
            .map_err(|e| Error::io(op, e).at(at))?;
        self.pos += buf.len() as u64;
        Ok(())
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

impl<R: Read> TarReader<R> {
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

/// Splits pax records: `"<len> <key>=<value>\n"` repeated.
fn pax_records(data: &[u8], offset: u64) -> Result<Vec<(&[u8], &[u8])>> {
    let bad = || Error::new(ErrorKind::Corrupt, "malformed pax extended header").at(offset);
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest.iter().position(|&b| b == b' ').ok_or_else(bad)?;
        let len: usize = std::str::from_utf8(&rest[..space])
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        if len <= space + 1 || len > rest.len() || rest[len - 1] != b'\n' {
            return Err(bad());
        }
        let record = &rest[space + 1..len - 1];
        let eq = record.iter().position(|&b| b == b'=').ok_or_else(bad)?;
        out.push((&record[..eq], &record[eq + 1..]));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(h: &Header) -> Vec<u8> {
        h.to_bytes().unwrap().to_vec()
    }

    #[test]
    fn reads_gnu_long_names_and_pax_paths() {
        let long = "n".repeat(150);
        let mut archive = Vec::new();
        let mut ln = Header::file("././@LongLink", long.len() as u64 + 1, 0);
        ln.entry_type = EntryType::GnuLongName;
        archive.extend(block_of(&ln));
        let mut data = long.as_bytes().to_vec();
        data.push(0);
        data.resize(512, 0);
        archive.extend(&data);
        archive.extend(block_of(&Header::file("short", 3, 0)));
        let mut d = b"abc".to_vec();
        d.resize(512, 0);
        archive.extend(&d);
        // pax path record for the next entry
        let rec = b"16 path=pax.vhd\n";
        let mut px = Header::file("PaxHeader/x", rec.len() as u64, 0);
        px.entry_type = EntryType::PaxHeader;
        archive.extend(block_of(&px));
        let mut d = rec.to_vec();
        d.resize(512, 0);
        archive.extend(&d);
        archive.extend(block_of(&Header::file("ignored", 0, 0)));
        archive.extend([0u8; 1024]);

        let mut r = TarReader::new(&archive[..]);
        let mut e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.name(), long);
        let mut s = String::new();
        e.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abc");
        let e = r.next_entry().unwrap().unwrap();
        assert_eq!(e.name(), "pax.vhd");
        assert!(r.next_entry().unwrap().is_none());
    }

    #[test]
    fn missing_end_marker_is_truncation() {
        let mut archive = block_of(&Header::file("a", 0, 0));
        let mut r = TarReader::new(&archive[..]);
        assert!(r.next_entry().unwrap().is_some());
        let e = r.next_entry().err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Truncated);
        archive.truncate(300);
        let e = TarReader::new(&archive[..]).next_entry().err().unwrap();
        assert_eq!(e.kind(), ErrorKind::Truncated);
    }

    #[test]
    fn short_data_is_truncation_naming_the_member() {
        let mut archive = block_of(&Header::file("0.vhd", 1000, 0));
        archive.extend([7u8; 100]);
        let mut r = TarReader::new(&archive[..]);
        let mut e = r.next_entry().unwrap().unwrap();
        let err = io::copy(&mut e, &mut io::sink()).unwrap_err();
        let err = Error::io("copy", err);
        assert_eq!(err.kind(), ErrorKind::Truncated);
        assert_eq!(err.member_name(), Some("0.vhd"));
    }
}

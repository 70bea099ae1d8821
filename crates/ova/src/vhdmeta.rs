//! The few VHD fields the package layouts need, read from a member while it
//! streams past: the footer (UUID, type, size, hidden flag) and the dynamic
//! header's parent UUID.
//!
//! Kept local rather than borrowed from `cloudimg-vhd` because only five
//! fields are needed and they must come from a stream: the head of the file
//! (footer copy and dynamic header) and its last 512 bytes (the footer).

use uuid::Uuid;

/// Bytes kept from the start of a member: footer copy plus a dynamic header at 512.
pub const HEAD: usize = 4096;
const FOOTER: usize = 512;

/// What a VHD member says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdSummary {
    pub uuid: Uuid,
    /// 2 fixed, 3 dynamic, 4 differencing.
    pub disk_type: u32,
    /// Virtual size in bytes.
    pub current_size: u64,
    /// Footer byte 85, tapdisk's hidden flag.
    pub hidden: bool,
    /// The parent's UUID, for differencing disks.
    pub parent_uuid: Option<Uuid>,
}

impl VhdSummary {
    pub fn is_differencing(&self) -> bool {
        self.disk_type == 4
    }

    /// Reads the summary from the first bytes and the last 512 bytes of a file.
    /// `Err` carries a reason for a "not a VHD" message.
    pub fn from_parts(head: &[u8], tail: &[u8]) -> Result<VhdSummary, String> {
        // The trailing footer is the authoritative one; the copy at the start of a
        // sparse disk stands in when the tail is damaged, as tapdisk allows.
        let footer = if tail.len() == FOOTER && &tail[..8] == b"conectix" {
            tail
        } else if head.len() >= FOOTER && &head[..8] == b"conectix" {
            &head[..FOOTER]
        } else {
            return Err("no VHD footer (cookie \"conectix\") at the end or the start".into());
        };
        let disk_type = be_u32(footer, 60);
        let data_offset = be_u64(footer, 16);
        let uuid = Uuid::from_slice(&footer[68..84]).expect("16 bytes");
        let mut parent_uuid = None;
        if disk_type == 4 {
            let at = usize::try_from(data_offset)
                .ok()
                .filter(|&a| a.checked_add(1024).is_some_and(|end| end <= head.len()))
                .ok_or_else(|| {
                    format!("dynamic header at {data_offset} is beyond the first {HEAD} bytes")
                })?;
            let hdr = &head[at..at + 1024];
            if &hdr[..8] != b"cxsparse" {
                return Err(format!("no dynamic header cookie at {data_offset}"));
            }
            parent_uuid = Some(Uuid::from_slice(&hdr[40..56]).expect("16 bytes"));
        }
        Ok(VhdSummary {
            uuid,
            disk_type,
            current_size: be_u64(footer, 48),
            hidden: footer[85] != 0,
            parent_uuid,
        })
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4"))
}

fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8"))
}

/// Keeps the head and the last 512 bytes of a stream fed to it in pieces.
#[derive(Debug, Default, Clone)]
pub struct Sniffer {
    head: Vec<u8>,
    tail: Vec<u8>,
    len: u64,
}

impl Sniffer {
    pub fn new() -> Self {
        Sniffer::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if self.head.len() < HEAD {
            let take = (HEAD - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..take]);
        }
        if data.len() >= FOOTER {
            self.tail.clear();
            self.tail.extend_from_slice(&data[data.len() - FOOTER..]);
        } else {
            self.tail.extend_from_slice(data);
            let excess = self.tail.len().saturating_sub(FOOTER);
            self.tail.drain(..excess);
        }
    }

    /// Bytes seen.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn summary(&self) -> Result<VhdSummary, String> {
        VhdSummary::from_parts(&self.head, &self.tail)
    }
}

/// Reads the summary of a VHD file on disk (its first 4 KiB and last 512 bytes).
pub fn summarize_file(path: &std::path::Path) -> crate::Result<VhdSummary> {
    use crate::error::{Error, ErrorKind};
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path).map_err(|e| Error::io("open VHD", e).path(path))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("stat VHD", e).path(path))?
        .len();
    let mut head = vec![0u8; HEAD.min(len as usize)];
    f.read_exact(&mut head)
        .map_err(|e| Error::io("read VHD head", e).path(path))?;
    let mut tail = vec![0u8; FOOTER.min(len as usize)];
    f.seek(SeekFrom::Start(len - tail.len() as u64))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| Error::io("read VHD footer", e).path(path))?;
    VhdSummary::from_parts(&head, &tail)
        .map_err(|why| Error::new(ErrorKind::NotVhd, why).path(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_follows_small_and_large_pieces() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut s = Sniffer::new();
        for piece in data.chunks(100) {
            s.update(piece);
        }
        assert_eq!(s.tail, &data[data.len() - 512..]);
        assert_eq!(s.head, &data[..HEAD]);
        let mut s = Sniffer::new();
        s.update(&data[..9000]);
        s.update(&data[9000..]);
        assert_eq!(s.tail, &data[data.len() - 512..]);
    }
}

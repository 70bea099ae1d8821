//! On-disk structures of the VHD format, parsed from and serialised to bytes.
//!
//! Nothing here does I/O. Parsing checks only what is needed to tell whether the
//! bytes are the structure at all (the cookie); every other judgement about the
//! fields belongs to the checker, so that `check` can report them all at once.

pub mod checksum;
pub mod footer;
pub mod geometry;
pub mod header;
pub mod locator;
pub mod time;

pub(crate) fn be_u16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

pub(crate) fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub(crate) fn be_u64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) fn uuid_at(b: &[u8], at: usize) -> uuid::Uuid {
    uuid::Uuid::from_bytes(b[at..at + 16].try_into().expect("16 bytes"))
}

/// Four-byte tags such as the creator application, shown the way vhd-util shows them.
pub fn tag_to_string(tag: &[u8; 4]) -> String {
    tag.iter()
        .map(|&c| {
            if c == 0 {
                "\\0".to_string()
            } else if c.is_ascii_graphic() || c == b' ' {
                (c as char).to_string()
            } else {
                format!("\\x{c:02x}")
            }
        })
        .collect()
}

//! The gzip member header and trailer (RFC 1952), including the extra field
//! our indexed members carry.

/// Gzip magic bytes.
pub const MAGIC: [u8; 2] = [0x1f, 0x8b];
/// FLG bit: an extra field follows the fixed header.
pub const FEXTRA: u8 = 0x04;
/// OS byte for Unix.
const OS_UNIX: u8 = 3;

/// XFL as gzip sets it: 2 for the slowest level, 4 for the fastest.
fn xfl(level: u32) -> u8 {
    match level {
        9 => 2,
        1 => 4,
        _ => 0,
    }
}

/// A member header without optional fields.
pub fn plain(level: u32, mtime: u32) -> [u8; 10] {
    let m = mtime.to_le_bytes();
    [
        MAGIC[0],
        MAGIC[1],
        8,
        0,
        m[0],
        m[1],
        m[2],
        m[3],
        xfl(level),
        OS_UNIX,
    ]
}

/// A member header with one extra subfield `id` holding `data`.
pub fn with_extra(level: u32, mtime: u32, id: [u8; 2], data: &[u8]) -> Vec<u8> {
    let mut h = plain(level, mtime).to_vec();
    h[3] = FEXTRA;
    let xlen = (4 + data.len()) as u16;
    h.extend_from_slice(&xlen.to_le_bytes());
    h.extend_from_slice(&id);
    h.extend_from_slice(&(data.len() as u16).to_le_bytes());
    h.extend_from_slice(data);
    h
}

/// The 8-byte trailer: CRC32 and the input size modulo 2^32, little-endian.
pub fn trailer(crc: u32, isize: u64) -> [u8; 8] {
    let mut t = [0u8; 8];
    t[..4].copy_from_slice(&crc.to_le_bytes());
    t[4..].copy_from_slice(&(isize as u32).to_le_bytes());
    t
}

/// Finds subfield `id` in a header that has FEXTRA at the standard place
/// (right after the 10 fixed bytes); returns its data.
pub fn find_extra(member: &[u8], id: [u8; 2]) -> Option<&[u8]> {
    if member.len() < 12 || member[..2] != MAGIC || member[2] != 8 || member[3] & FEXTRA == 0 {
        return None;
    }
    let xlen = usize::from(u16::from_le_bytes([member[10], member[11]]));
    let extra = member.get(12..12 + xlen)?;
    let mut rest = extra;
    while rest.len() >= 4 {
        let len = usize::from(u16::from_le_bytes([rest[2], rest[3]]));
        let data = rest.get(4..4 + len)?;
        if rest[..2] == id {
            return Some(data);
        }
        rest = &rest[4 + len..];
    }
    None
}

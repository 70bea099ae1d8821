//! One data member of the indexed form: its subfield, the largest chunk it
//! may hold, and the checked inflate of a member.
//!
//! Both readers of the form use it: [`super::indexed`] (by range, through
//! the index) and [`super::members`] (front to back from a stream). It sits
//! below both so neither imports the other; `indexed` re-exports the public
//! names.

use super::header::{self, find_extra};
use super::whole::{inflate_into, InflateError};
use crate::error::{Error, ErrorKind, Result};

/// Subfield of a data member: `[member bytes u32][uncompressed bytes u32]`.
pub const ID_MEMBER: [u8; 2] = *b"CI";
/// Largest chunk a member may hold (sizes are stored as u32).
pub(crate) const MAX_CHUNK: usize = 64 << 20;

/// Inflates one data member, checking its subfield, CRC and length.
pub fn inflate_member(member: &[u8], expect_len: u32) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    inflate_member_into(member, expect_len, &mut out)?;
    Ok(out)
}

/// [`inflate_member`] into `out` (cleared first; its capacity is reused).
pub(crate) fn inflate_member_into(member: &[u8], expect_len: u32, out: &mut Vec<u8>) -> Result<()> {
    let corrupt = |why: &str| Error::new(ErrorKind::Corrupt, format!("gzip member: {why}"));
    let sub = find_extra(member, ID_MEMBER)
        .filter(|s| s.len() == 8)
        .ok_or_else(|| corrupt("no CI subfield"))?;
    let mlen = u32::from_le_bytes(sub[..4].try_into().expect("4")) as usize;
    let ulen = u32::from_le_bytes(sub[4..].try_into().expect("4"));
    if mlen != member.len() || ulen != expect_len {
        return Err(corrupt("sizes disagree with the index"));
    }
    // No FNAME/FCOMMENT/FHCRC in our members: data starts after the extra field.
    if member[3] & !header::FEXTRA != 0 {
        return Err(corrupt("unexpected header flags"));
    }
    let xlen = usize::from(u16::from_le_bytes([member[10], member[11]]));
    let data = member
        .get(12 + xlen..member.len().saturating_sub(8))
        .ok_or_else(|| corrupt("shorter than its header"))?;
    // The output stays within `ulen` (at most the 64 MiB cap when read
    // through the index or a stream): a member that inflates to more than it
    // declared fails instead of growing the buffer, so memory stays bounded.
    let used = inflate_into(data, ulen as usize, out).map_err(|e| match e {
        InflateError::BadData => corrupt("invalid deflate data"),
        InflateError::TooLong => corrupt(&format!(
            "deflate data does not end where the member does \
             (inflates to more than the {ulen} bytes declared)"
        )),
    })?;
    if out.len() != ulen as usize {
        return Err(corrupt(&format!(
            "deflate data does not end where the member does \
             ({} bytes inflated of {ulen} declared)",
            out.len()
        )));
    }
    if used != data.len() {
        return Err(corrupt(&format!(
            "{} bytes between the deflate data and the trailer",
            data.len() - used
        )));
    }
    let t = &member[member.len() - 8..];
    if crc32fast::hash(out) != u32::from_le_bytes(t[..4].try_into().expect("4")) {
        return Err(corrupt("CRC mismatch"));
    }
    if u32::from_le_bytes(t[4..].try_into().expect("4")) != ulen {
        return Err(corrupt("ISIZE in the trailer disagrees with the data"));
    }
    Ok(())
}

//! Containers and compressors people send instead of the disk inside: gzip,
//! bzip2, xz, zstd, tar (ustar, GNU), OVA and OVF, ISO 9660, and plain text.

use super::bytes::{at, cstr, le_u16, le_u32};
use super::verdict::{Detected, Format, TarKind};

/// Formats known by magic bytes at fixed offsets.
pub(super) fn by_magic(head: &[u8], size: u64) -> Option<Detected> {
    let d = if head.starts_with(&[0x1f, 0x8b, 0x08]) {
        let mut d = Detected::new(Format::Gzip, size);
        d.detail = gzip_name(head).map(|n| format!("of '{n}'"));
        d
    } else if head.len() >= 10
        && head.starts_with(b"BZh")
        && (b'1'..=b'9').contains(&head[3])
        // A block header (pi) or the end-of-stream marker (sqrt(pi)) of an empty stream.
        && (head[4..10] == [0x31, 0x41, 0x59, 0x26, 0x53, 0x59]
            || head[4..10] == [0x17, 0x72, 0x45, 0x38, 0x50, 0x90])
    {
        Detected::new(Format::Bzip2, size)
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
        Detected::new(Format::Xz, size)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        // Skippable frames (seekable zstd, pzstd) come first in some streams.
        || le_u32(head, 0).is_some_and(|m| m & 0xffff_fff0 == 0x184d_2a50)
    {
        Detected::new(Format::Zstd, size)
    } else if let Some(d) = tar(head, size) {
        d
    } else if at::<5>(head, 0x8001) == Some(*b"CD001") {
        let mut d = Detected::new(Format::Iso9660, size);
        let blocks = le_u32(head, 0x8050).unwrap_or(0);
        let block = le_u16(head, 0x8080).unwrap_or(0);
        d.virtual_size = Some(u64::from(blocks) * u64::from(block)).filter(|&s| s > 0);
        d.detail = head
            .get(0x8028..0x8048)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(|s| s.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
            .filter(|s| !s.is_empty())
            .map(|s| format!("volume '{s}'"));
        d
    } else {
        return None;
    };
    Some(d)
}

/// The original file name a gzip header carries (FNAME), e.g. `disk.vhd`.
fn gzip_name(head: &[u8]) -> Option<&str> {
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    let flags = *head.get(3)?;
    if flags & FNAME == 0 {
        return None;
    }
    let mut at = 10usize;
    if flags & FEXTRA != 0 {
        at = at.checked_add(2 + usize::from(le_u16(head, 10)?))?;
    }
    let name = cstr(head.get(at..)?)?;
    // The name must end inside the bytes we have (a NUL follows it).
    head.get(at + name.len()).filter(|&&b| b == 0)?;
    (!name.is_empty()).then_some(name)
}

/// A tar archive by its ustar magic; an OVA when the first member is a `.ovf`.
fn tar(head: &[u8], size: u64) -> Option<Detected> {
    let kind = match at::<8>(head, 257)? {
        [b'u', b's', b't', b'a', b'r', 0, b'0', b'0'] => TarKind::Ustar,
        [b'u', b's', b't', b'a', b'r', b' ', b' ', 0] => TarKind::Gnu,
        _ => return None,
    };
    let typeflag = head[156];
    let name = if typeflag == b'L' {
        // GNU long name: the name is the data of this pseudo-member.
        head.get(512..1024).and_then(cstr).map(str::to_string)
    } else {
        let base = cstr(&head[..100]).unwrap_or("");
        let prefix = if kind == TarKind::Ustar {
            head.get(345..500).and_then(cstr).unwrap_or("")
        } else {
            ""
        };
        Some(if prefix.is_empty() {
            base.to_string()
        } else {
            format!("{prefix}/{base}")
        })
    }
    .filter(|n| !n.is_empty());
    let ova = name
        .as_deref()
        .is_some_and(|n| n.to_ascii_lowercase().ends_with(".ovf"));
    let mut d = Detected::new(if ova { Format::Ova } else { Format::Tar(kind) }, size);
    d.detail = name.map(|n| format!("first member '{n}'"));
    Some(d)
}

/// Printable text: an OVF descriptor, an HTML page, or other text.
pub(super) fn text(head: &[u8], size: u64) -> Option<Detected> {
    if head.is_empty() {
        return None;
    }
    let s = match std::str::from_utf8(head) {
        Ok(s) => s,
        // Text cut inside a multi-byte character by the end of `head`.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok()?,
        Err(_) => return None,
    };
    if s.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t' | '\x0c'))
    {
        return None;
    }
    let start = s.trim_start_matches('\u{feff}').trim_start();
    let lower: String = start
        .chars()
        .take(512)
        .collect::<String>()
        .to_ascii_lowercase();
    if s.contains("Envelope") && s.contains("schemas.dmtf.org/ovf/envelope") {
        return Some(Detected::new(Format::Ovf, size));
    }
    let mut d = Detected::new(Format::Text, size);
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        d.detail = Some("an HTML page".into());
    } else if lower.starts_with("<?xml") {
        d.detail = Some("XML".into());
    } else if lower.starts_with('{') || lower.starts_with('[') {
        d.detail = Some("JSON".into());
    }
    Some(d)
}

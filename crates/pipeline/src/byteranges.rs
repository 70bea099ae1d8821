//! Several byte ranges of one object in one GET: the `Range: bytes=a-b,c-d` header and
//! the `multipart/byteranges` body that answers it (RFC 9110 section 14.6).
//!
//! Swift serves up to 50 ranges per request (`swob.MAX_RANGES`) if they ascend and do not
//! overlap; past that it ignores the header and sends the whole object with 200. A
//! caller sampling a few KiB of each block of a segment ([`crate::ObjectStore::get_ranges`])
//! then pays one request per segment instead of one per block: each request costs the
//! Python proxy and object server milliseconds of CPU, about what they spend sending
//! 4 MiB.

use crate::error::{Error, ErrorKind, Result};
use std::ops::Range;

/// Most ranges asked for in one request (Swift refuses more than 50).
pub const MAX_PER_REQUEST: usize = 32;

/// The `Range` header value for `ranges` (end exclusive, non-empty).
pub fn header(ranges: &[Range<u64>]) -> String {
    let parts: Vec<String> = ranges
        .iter()
        .map(|r| format!("{}-{}", r.start, r.end - 1))
        .collect();
    format!("bytes={}", parts.join(","))
}

/// The boundary of a `multipart/byteranges` content type, `None` for any other type.
pub fn boundary(content_type: &str) -> Option<&str> {
    let mut parts = content_type.split(';');
    if !parts
        .next()?
        .trim()
        .eq_ignore_ascii_case("multipart/byteranges")
    {
        return None;
    }
    parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Most bytes a well-formed answer to `ranges` can hold: the data plus a generous
/// allowance per part for its delimiter and headers.
pub fn max_body(ranges: &[Range<u64>]) -> u64 {
    ranges.iter().map(|r| r.end - r.start + 512).sum::<u64>() + 512
}

/// Splits a `multipart/byteranges` `body` into the bytes of each of `ranges`, which it
/// must answer exactly and in order (each part's `Content-Range` is checked).
pub fn parse(
    body: &[u8],
    boundary: &str,
    ranges: &[Range<u64>],
    url: &str,
) -> Result<Vec<Vec<u8>>> {
    let bad = |what: String| Error::new(ErrorKind::Integrity, "get ranges", url, what);
    let delim = format!("--{boundary}");
    let mut at = find(body, delim.as_bytes(), 0)
        .ok_or_else(|| bad("no multipart boundary in the body".into()))?;
    let mut out = Vec::with_capacity(ranges.len());
    loop {
        at += delim.len();
        if body[at..].starts_with(b"--") {
            break;
        }
        let head_end = find(body, b"\r\n\r\n", at)
            .ok_or_else(|| bad(format!("part {} has no end of headers", out.len())))?;
        let head = String::from_utf8_lossy(&body[at..head_end]);
        let got = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case("content-range")
                    .then(|| content_range(v.trim()))
                    .flatten()
            })
            .ok_or_else(|| bad(format!("part {} has no Content-Range", out.len())))?;
        let want = ranges
            .get(out.len())
            .ok_or_else(|| bad(format!("more than the {} parts asked for", ranges.len())))?;
        if got != *want {
            return Err(bad(format!(
                "part {} holds bytes {}..{}, asked for {}..{}",
                out.len(),
                got.start,
                got.end,
                want.start,
                want.end
            )));
        }
        let start = head_end + 4;
        let end = start + (got.end - got.start) as usize;
        if end > body.len() {
            return Err(bad(format!("part {} is cut short", out.len())));
        }
        out.push(body[start..end].to_vec());
        at = find(body, delim.as_bytes(), end)
            .ok_or_else(|| bad(format!("no boundary after part {}", out.len() - 1)))?;
    }
    if out.len() != ranges.len() {
        return Err(bad(format!(
            "{} parts for {} ranges",
            out.len(),
            ranges.len()
        )));
    }
    Ok(out)
}

/// `bytes a-b/len` as `a..b + 1`.
fn content_range(v: &str) -> Option<Range<u64>> {
    let (unit, rest) = v.split_once(' ')?;
    if !unit.eq_ignore_ascii_case("bytes") {
        return None;
    }
    let (span, _) = rest.split_once('/')?;
    let (a, b) = span.split_once('-')?;
    let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    (a <= b).then(|| a..b + 1)
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shape of Swift's answer to `Range: bytes=0-3,10-14` of a 64-byte object
    /// (`pipeline/tests/swift.rs` reads a real one); the data may hold CR LF and the
    /// boundary's dashes, which only the Content-Range length can tell apart.
    const SWIFT_ANSWER: &[u8] = b"--5e3a1c\r\n\
Content-Type: application/octet-stream\r\n\
Content-Range: bytes 0-3/64\r\n\
\r\n\
ab\r\n\r\n\
--5e3a1c\r\n\
Content-Type: application/octet-stream\r\n\
Content-Range: bytes 10-14/64\r\n\
\r\n\
--5e3\r\n\
--5e3a1c--";

    #[test]
    fn parts_are_cut_by_their_content_range_not_by_the_next_boundary() {
        let ct = "multipart/byteranges;boundary=5e3a1c";
        let b = boundary(ct).unwrap();
        assert_eq!(b, "5e3a1c");
        let parts = parse(SWIFT_ANSWER, b, &[0..4, 10..15], "t").unwrap();
        assert_eq!(parts, [b"ab\r\n".to_vec(), b"--5e3".to_vec()]);
        assert_eq!(header(&[0..4, 10..15]), "bytes=0-3,10-14");
    }

    #[test]
    fn an_answer_that_is_not_what_was_asked_is_an_integrity_error() {
        let one = 0..4;
        for ranges in [
            &[0..4, 10..16][..],
            std::slice::from_ref(&one),
            &[0..4, 10..15, 20..21][..],
        ] {
            let e = parse(SWIFT_ANSWER, "5e3a1c", ranges, "swift://c/o").unwrap_err();
            assert_eq!(e.kind(), ErrorKind::Integrity, "{ranges:?}: {e}");
            assert!(e.to_string().contains("swift://c/o"), "{e}");
        }
        let cut = &SWIFT_ANSWER[..60];
        assert!(parse(cut, "5e3a1c", &[0..4, 10..15], "t").is_err());
        assert_eq!(boundary("application/octet-stream"), None);
        assert_eq!(
            boundary("multipart/byteranges; boundary=\"xy\""),
            Some("xy")
        );
    }
}

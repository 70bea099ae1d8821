//! A segment of a local store read by mapping its file: the MD5 is taken on the mapping (two
//! segments at a time in one pass, see [`map_segments`]) and the mapping itself is what a
//! server sends, so the bytes are never copied into a buffer.
//!
//! A stream of an object through `read` copies each byte from the page cache into a buffer
//! and, to be sent whole, once more into the sender's chunks; mapped, the only copy is the
//! socket's. Safe because the local store never writes a file in place (a write is a new
//! file renamed over the name): the mapped file keeps the bytes whose MD5 was checked. A
//! file truncated behind the store's back by something else would fault the reader (the
//! store's directory belongs to the store).

use crate::download::PlannedSegment;
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{md5_hex, md5_hex_pair};
use crate::store::ObjectStore;
use std::fs::File;

/// Largest segment mapped: its MD5 is checked before a byte of it goes out, so a larger one
/// would hold the first byte back for longer (0.2 s per 128 MiB at 600 MiB/s).
pub const MAX_MAPPED_SEGMENT: u64 = 128 << 20;

/// Whether `seg` can be read by [`map_segment`]: a whole plain object of a local store, with
/// a known MD5, at most [`MAX_MAPPED_SEGMENT`] bytes.
pub fn mappable(store: &dyn ObjectStore, seg: &PlannedSegment) -> bool {
    seg.range.is_none()
        && seg.md5.is_some()
        && seg.size > 0
        && seg.size <= MAX_MAPPED_SEGMENT
        && store.local_file(&seg.path).is_some()
}

/// The bytes of `seg` mapped from its file, their length and MD5 checked against the plan
/// ([`ErrorKind::Integrity`] when either differs). `Usage` when the segment is not
/// [`mappable`].
pub fn map_segment(store: &dyn ObjectStore, seg: &PlannedSegment) -> Result<memmap2::Mmap> {
    let mut maps = map_segments(store, std::slice::from_ref(seg))?;
    Ok(maps.remove(0))
}

/// [`map_segment`] of each of `segs`, their MD5s taken two at a time in one pass
/// ([`md5_hex_pair`]: two segments cost about as much as one).
pub fn map_segments(
    store: &dyn ObjectStore,
    segs: &[PlannedSegment],
) -> Result<Vec<memmap2::Mmap>> {
    let maps = segs
        .iter()
        .map(|s| open_map(store, s))
        .collect::<Result<Vec<_>>>()?;
    for (i, pair) in maps.chunks(2).enumerate() {
        let (x, y) = match pair {
            [a, b] => {
                let (x, y) = md5_hex_pair(a, b);
                (x, Some(y))
            }
            [a] => (md5_hex(a), None),
            _ => unreachable!("chunks of two"),
        };
        check_md5(store, &segs[2 * i], &x)?;
        if let Some(y) = y {
            check_md5(store, &segs[2 * i + 1], &y)?;
        }
    }
    Ok(maps)
}

/// Maps the file of `seg` after checking its length.
fn open_map(store: &dyn ObjectStore, seg: &PlannedSegment) -> Result<memmap2::Mmap> {
    let url = || store.url(&seg.path);
    let (Some(file), true) = (store.local_file(&seg.path), mappable(store, seg)) else {
        return Err(Error::new(
            ErrorKind::Usage,
            "download",
            url(),
            "not a whole local segment with a known MD5",
        ));
    };
    let f = File::open(&file).map_err(|e| Error::io("download", url(), e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("download", url(), e))?
        .len();
    if len != seg.size {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            url(),
            format!("segment is {len} bytes, the listing says {}", seg.size),
        ));
    }
    // SAFETY: the store never changes a file in place (module documentation); the map is
    // read only and its length is the file's.
    unsafe { memmap2::MmapOptions::new().populate().map(&f) }
        .map_err(|e| Error::io("download", url(), e))
}

fn check_md5(store: &dyn ObjectStore, seg: &PlannedSegment, got: &str) -> Result<()> {
    let expect = seg.md5.as_deref().unwrap_or_default();
    if got.eq_ignore_ascii_case(expect) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::Integrity,
        "download",
        store.url(&seg.path),
        format!("segment MD5 {got} differs from its ETag {expect}"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::download::plan;
    use crate::local::LocalStore;
    use crate::store::ObjectPath;
    use crate::upload::{upload, Source, UploadOptions};

    fn segmented(dir: &std::path::Path, data: &[u8]) -> (LocalStore, ObjectPath) {
        let store = LocalStore::new(dir).unwrap();
        let dest = ObjectPath::new("c", "o.img");
        let opts = UploadOptions {
            segment_size: 1000,
            jobs: 2,
            ..Default::default()
        };
        upload(
            &store,
            &dest,
            Source::stream(std::io::Cursor::new(data.to_vec())),
            &opts,
        )
        .unwrap();
        (store, dest)
    }

    #[test]
    fn segments_map_to_their_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..3500u32).map(|i| (i * 7 % 251) as u8).collect();
        let (store, dest) = segmented(dir.path(), &data);
        let p = plan(&store, &dest).unwrap();
        assert_eq!(p.segments.len(), 4);
        let mut got = Vec::new();
        for s in &p.segments {
            assert!(mappable(&store, s));
            got.extend_from_slice(&map_segment(&store, s).unwrap());
        }
        assert_eq!(got, data);
        let maps = map_segments(&store, &p.segments[1..]).unwrap();
        let got: Vec<u8> = maps.iter().flat_map(|m| m.iter().copied()).collect();
        assert_eq!(got, data[1000..]);
    }

    #[test]
    fn a_changed_segment_is_an_integrity_error() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![5u8; 2500];
        let (store, dest) = segmented(dir.path(), &data);
        let p = plan(&store, &dest).unwrap();
        let seg = &p.segments[1];
        let file = store.local_file(&seg.path).unwrap();
        // Same length, other bytes (written in place, as only an outsider would).
        std::fs::write(&file, vec![6u8; seg.size as usize]).unwrap();
        let e = map_segment(&store, seg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(e.to_string().contains("differs from its ETag"), "{e}");
        // The second of a pair hashed in one pass, too.
        let e = map_segments(&store, &p.segments[..2]).unwrap_err();
        assert!(e.to_string().contains("differs from its ETag"), "{e}");
        assert!(map_segments(&store, &p.segments[2..]).is_ok());
        std::fs::write(&file, vec![5u8; 10]).unwrap();
        let e = map_segment(&store, seg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
        assert!(e.to_string().contains("the listing says"), "{e}");
    }

    #[test]
    fn only_whole_local_segments_with_an_md5_are_mappable() {
        let dir = tempfile::tempdir().unwrap();
        let (store, dest) = segmented(dir.path(), &[1u8; 1500]);
        let mut s = plan(&store, &dest).unwrap().segments[0].clone();
        s.md5 = None;
        assert!(!mappable(&store, &s));
        assert_eq!(
            map_segment(&store, &s).unwrap_err().kind(),
            ErrorKind::Usage
        );
        s.md5 = Some("x".into());
        s.range = Some(0..10);
        assert!(!mappable(&store, &s));
    }
}

//! Verification after writing: what the store holds is re-read (a single object's size
//! and ETag; a Swift large object's segment listing, SLO manifest and reported size; an
//! S3 multipart object's size and multipart ETag) and compared with what was sent,
//! retrying while listings lag behind writes; a mismatch that persists is an integrity
//! error.

use super::options::LargeKind;
use super::plan::SegmentLayout;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{list_all, ListEntry, Manifest, ObjectPath, ObjectStore, SegmentRef};
use std::time::Duration;

/// The single object `dest` is `len` bytes with ETag `md5`; returns the ETag.
pub(super) fn verify_single(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    len: u64,
    md5: &str,
) -> Result<String> {
    eventually(store.retry_policy(), |_| {
        let i = store.head(dest)?;
        if i.size != len || i.etag.as_deref() != Some(md5) {
            return Err(Error::new(
                ErrorKind::Transient,
                "verify",
                store.url(dest),
                format!(
                    "stored object is {} bytes with ETag {:?}, expected {len} bytes with {md5}",
                    i.size, i.etag
                ),
            ));
        }
        Ok(i.etag.unwrap_or_default())
    })
}

/// Retries a check that may fail only because listings lag behind writes; a persisting
/// mismatch becomes an integrity error.
pub(super) fn eventually<T>(
    policy: crate::RetryPolicy,
    f: impl FnMut(u32) -> Result<T>,
) -> Result<T> {
    let policy = crate::RetryPolicy {
        max_attempts: policy.max_attempts.max(5),
        base_delay: policy.base_delay.max(Duration::from_millis(100)),
        max_delay: policy.max_delay,
    };
    policy.run(f).map_err(|e| {
        if e.kind() == ErrorKind::RetriesExhausted && e.op() == "verify" {
            e.with_kind(ErrorKind::Integrity)
        } else {
            e
        }
    })
}

/// The segment listing under the layout's prefix is exactly `segments` (for a DLO,
/// nothing else shares the prefix), an SLO's manifest lists them, and the manifest
/// reports `total` bytes; returns the manifest's ETag.
pub(super) fn verify_large(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    layout: &SegmentLayout,
    segments: &[SegmentRef],
    kind: LargeKind,
    total: u64,
) -> Result<String> {
    let want: Vec<ListEntry> = segments
        .iter()
        .map(|s| ListEntry {
            name: s.path.name.clone(),
            size: s.size,
            etag: s.etag.clone(),
        })
        .collect();
    eventually(store.retry_policy(), |_| {
        let mismatch = |what: String| {
            Err(Error::new(
                ErrorKind::Transient,
                "verify",
                store.url(dest),
                what,
            ))
        };
        let got = list_all(store, &layout.container, &layout.prefix)?;
        let got: Vec<ListEntry> = got
            .into_iter()
            .filter(|e| kind == LargeKind::Dlo || layout.position(&e.name).is_some())
            .collect();
        if got != want {
            return mismatch(format!(
                "segment listing has {} entries ({} bytes), expected {} ({} bytes) with matching ETags",
                got.len(),
                got.iter().map(|e| e.size).sum::<u64>(),
                want.len(),
                total
            ));
        }
        if kind == LargeKind::Slo {
            let m = store.get_slo_manifest(dest)?;
            if m != segments {
                return mismatch("SLO manifest differs from the segments written".into());
            }
        }
        let info = store.head(dest)?;
        let expect_manifest = match kind {
            LargeKind::Dlo => matches!(info.manifest, Some(Manifest::Dlo { .. })),
            _ => matches!(info.manifest, Some(Manifest::Slo)),
        };
        if !expect_manifest || info.size != total {
            return mismatch(format!(
                "manifest reports {} bytes ({:?}), expected {total}",
                info.size, info.manifest
            ));
        }
        Ok(info.etag.unwrap_or_default())
    })
}

/// The completed multipart object is `total` bytes with the multipart ETag of its parts.
pub(super) fn verify_multipart(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    segments: &[SegmentRef],
    total: u64,
) -> Result<String> {
    let want = crate::hash::s3_multipart_etag(segments.iter().map(|s| s.etag.as_str()));
    eventually(store.retry_policy(), |_| {
        let info = store.head(dest)?;
        let etag = info.etag.unwrap_or_default();
        if info.size != total || (etag.contains('-') && etag != want) {
            return Err(Error::new(
                ErrorKind::Transient,
                "verify",
                store.url(dest),
                format!(
                    "object is {} bytes with ETag {etag}, expected {total} with {want}",
                    info.size
                ),
            ));
        }
        Ok(etag)
    })
}

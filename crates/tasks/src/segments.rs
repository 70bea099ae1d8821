//! Segments of the large objects the tasks write (`<name>-00001`, `<name>-00002`, ... in
//! the object's container, Cloud Images' naming), over `cloudimg_pipeline`'s upload.
//!
//! Packages written by import and by [`crate::register`] go through
//! [`cloudimg_pipeline::upload::upload`] (buffered or file segments, parallel PUTs with
//! their MD5, listing verified, manifest last); [`crate::package`] feeds it a stream.
//! Export's segments are different: 1,048,576,000-byte ranges of a VHD regenerated on
//! demand, which the pipeline's upload cannot take without buffering whole segments, so
//! [`upload_bodies`] is a thin adapter over the pipeline's [`SegmentLayout`] naming and
//! the store's `put` (which hashes what it sends and checks the ETag), with resume.
//! What the pipeline's public API lacks for export to use it directly:
//! 1. an upload `Source` of re-readable bodies (e.g. `Source::Bodies(Vec<Box<dyn Body>>)`
//!    or a positional reader `Source::Ranges(Arc<dyn ReadAt>, len)`) sent segment by
//!    segment without buffering, hashed while sending (the file source reads each range
//!    twice, which for export would mean coalescing the chain twice);
//! 2. a way to skip the whole-object MD5/SHA-256/SHA-512 export does not need.
//!
//! Before anything points at segments, [`verify_listing`] re-reads the listing and
//! compares names, sizes and ETags; [`delete_prefix`] removes an object and its segments.

use crate::error::{Error, ErrorKind, Result};
use cloudimg_pipeline::hash::normalize_etag;
use cloudimg_pipeline::upload::{LargeKind, SegmentLayout, UploadOptions};
use cloudimg_pipeline::{Body, ObjectPath, ObjectStore, PutOptions};
use md5::{Digest, Md5};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// MD5 as an `io::Write` sink.
struct Md5Hasher(Md5);

impl Md5Hasher {
    fn new() -> Self {
        Md5Hasher(Md5::new())
    }

    fn finalize(self) -> md5::digest::Output<Md5> {
        self.0.finalize()
    }
}

impl std::io::Write for Md5Hasher {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Name of segment `k` (1-based) of `base`: zero padded so names sort in numeric order.
pub fn segment_name(base: &str, k: u32) -> String {
    format!("{base}-{k:05}")
}

/// A segment written and confirmed by the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Object name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// MD5 hex (the ETag the store returned, equal to the MD5 of what was sent).
    pub etag: String,
}

/// The pipeline's layout of Cloud Images segments of `container/name`: `<name>-00001`, ...
pub fn layout(container: &str, name: &str) -> SegmentLayout {
    SegmentLayout::new(
        &ObjectPath::new(container, name),
        &UploadOptions::default(),
        LargeKind::Dlo,
        None,
    )
    .expect("Cloud Images naming needs no size")
}

/// The segments of `container/name` in the listing, in order (other objects sharing
/// the prefix are left out).
pub fn list_segments(store: &dyn ObjectStore, container: &str, name: &str) -> Result<Vec<Written>> {
    let l = layout(container, name);
    let listed = cloudimg_pipeline::list_all(store, container, &l.prefix)
        .map_err(|e| Error::store("list segments", container, e))?;
    Ok(listed
        .into_iter()
        .filter(|e| l.position(&e.name).is_some())
        .map(|e| Written {
            name: e.name,
            size: e.size,
            etag: normalize_etag(&e.etag),
        })
        .collect())
}

/// A body whose bytes are regenerated on each read (a range of the exported VHD).
pub type LazyBody = Box<dyn Body>;

/// What [`upload_bodies`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodiesWritten {
    /// Every segment, in order.
    pub segments: Vec<Written>,
    /// Segments found stored with the right size and MD5 and not sent again.
    pub skipped: usize,
}

/// Uploads `bodies` as the segments of `container/name` with `jobs` PUTs in flight,
/// never holding a body in memory. With `resume`, a segment already stored with the
/// same size is hashed (its bytes regenerated once) and not sent when its ETag equals
/// that MD5. Segments of an earlier, longer upload past the last one are deleted. Stops
/// at the first failure and returns it; segments already stored stay (the caller
/// decides: delete, or keep them for a re-run to resume from).
///
/// This is the thin adapter standing in for `cloudimg_pipeline::upload::upload`, whose
/// inputs are a file or a stream buffered a segment at a time: export's segments are
/// 1,048,576,000 bytes and are regenerated on demand instead (see the module docs).
pub fn upload_bodies(
    store: &dyn ObjectStore,
    container: &str,
    name: &str,
    bodies: Vec<LazyBody>,
    jobs: usize,
    resume: bool,
) -> Result<BodiesWritten> {
    let l = layout(container, name);
    let count = bodies.len() as u64;
    let existing: HashMap<u64, Written> = list_segments(store, container, name)?
        .into_iter()
        .filter_map(|w| l.position(&w.name).map(|i| (i, w)))
        .collect();
    // Stale segments past the end would become part of the DLO.
    for (i, w) in &existing {
        if *i >= count {
            delete_missing_ok(store, &ObjectPath::new(container, &w.name))?;
        }
    }
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failed: Mutex<Option<Error>> = Mutex::new(None);
    let done: Mutex<BTreeMap<u64, (Written, bool)>> = Mutex::new(BTreeMap::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.max(1) {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::SeqCst);
                if k >= bodies.len() || stop.load(Ordering::SeqCst) {
                    return;
                }
                let body = &bodies[k];
                let path = ObjectPath::new(container, l.name(k as u64));
                let r = store_one(store, &path, &**body, existing.get(&(k as u64)), resume);
                match r {
                    Ok(w) => {
                        done.lock().expect("not poisoned").insert(k as u64, w);
                    }
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        failed.lock().expect("not poisoned").get_or_insert(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = failed.into_inner().expect("not poisoned") {
        return Err(e);
    }
    let done = done.into_inner().expect("not poisoned");
    if done.len() as u64 != count {
        return Err(Error::new(
            ErrorKind::Store,
            "upload segments",
            name,
            format!("{} of {count} segments confirmed", done.len()),
        ));
    }
    let skipped = done.values().filter(|(_, s)| *s).count();
    Ok(BodiesWritten {
        segments: done.into_values().map(|(w, _)| w).collect(),
        skipped,
    })
}

/// Stores one segment unless `have` already holds its bytes; returns it and whether it
/// was skipped.
fn store_one(
    store: &dyn ObjectStore,
    path: &ObjectPath,
    body: &dyn Body,
    have: Option<&Written>,
    resume: bool,
) -> Result<(Written, bool)> {
    let url = || store.url(path);
    if let Some(w) = have.filter(|w| resume && w.size == body.len()) {
        let mut r = body
            .reader()
            .map_err(|e| crate::error::from_io("hash segment", &url(), e))?;
        let mut h = Md5Hasher::new();
        let n = std::io::copy(&mut r, &mut h)
            .map_err(|e| crate::error::from_io("hash segment", &url(), e))?;
        let md5 = hex::encode(h.finalize());
        if n == w.size && md5 == w.etag {
            return Ok((w.clone(), true));
        }
    }
    // No MD5 given: the store hashes what it sends and compares the returned ETag.
    match store.put(path, body, &PutOptions::default()) {
        Ok(r) if r.size == body.len() => Ok((
            Written {
                name: path.name.clone(),
                size: r.size,
                etag: r.etag,
            },
            false,
        )),
        Ok(r) => Err(Error::new(
            ErrorKind::Store,
            "upload segment",
            url(),
            format!("store took {} of {} bytes", r.size, body.len()),
        )),
        Err(e) => Err(Error::store("upload segment", url(), e)),
    }
}

fn delete_missing_ok(store: &dyn ObjectStore, path: &ObjectPath) -> Result<()> {
    match store.delete(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::store("delete", store.url(path), e)),
    }
}

/// Re-lists `container` under `prefix` until it shows exactly `expected` (names, sizes,
/// ETags), retrying a few times for eventual consistency.
pub fn verify_listing(
    store: &dyn ObjectStore,
    container: &str,
    prefix: &str,
    expected: &[Written],
) -> Result<()> {
    let mut last = String::new();
    for attempt in 0..6u32 {
        if attempt > 0 {
            std::thread::sleep(Duration::from_millis(250 << attempt.min(4)));
        }
        let listed = cloudimg_pipeline::list_all(store, container, prefix)
            .map_err(|e| Error::store("verify segments", container, e))?;
        let listed: Vec<_> = listed
            .into_iter()
            .filter(|e| e.name.starts_with(prefix))
            .collect();
        if listed.len() == expected.len()
            && listed
                .iter()
                .zip(expected)
                .all(|(l, w)| l.name == w.name && l.size == w.size && l.etag == w.etag)
        {
            return Ok(());
        }
        last = format!(
            "listing shows {} segments under {prefix:?}, expected {} ({})",
            listed.len(),
            expected.len(),
            first_difference(&listed, expected)
        );
    }
    Err(Error::new(
        ErrorKind::Store,
        "verify segments",
        format!("{container}/{prefix}"),
        last,
    ))
}

fn first_difference(listed: &[cloudimg_pipeline::ListEntry], expected: &[Written]) -> String {
    for (i, w) in expected.iter().enumerate() {
        match listed.get(i) {
            None => return format!("{} missing", w.name),
            Some(l) if l.name != w.name => {
                return format!("{} where {} was expected", l.name, w.name)
            }
            Some(l) if l.size != w.size => {
                return format!("{} has {} bytes, wrote {}", w.name, l.size, w.size)
            }
            Some(l) if l.etag != w.etag => {
                return format!("{} has ETag {}, wrote {}", w.name, l.etag, w.etag)
            }
            Some(_) => {}
        }
    }
    listed
        .get(expected.len())
        .map(|l| format!("{} is extra", l.name))
        .unwrap_or_default()
}

/// Deletes `base` itself (first, so a manifest stops pointing at segments before they
/// go) and every object named `base...` under it that is a segment (`base-NNNNN`) in
/// `container`. Returns how many objects were deleted. Missing objects are fine.
pub fn delete_prefix(store: &dyn ObjectStore, container: &str, base: &str) -> Result<usize> {
    let entries = cloudimg_pipeline::list_all(store, container, base)
        .map_err(|e| Error::store("list for cleanup", container, e))?;
    let l = layout(container, base);
    let mut names: Vec<String> = entries
        .into_iter()
        .map(|e| e.name)
        .filter(|n| n == base || l.position(n).is_some())
        .collect();
    // The manifest (shortest name) goes first.
    names.sort_by_key(|n| (n.len(), n.clone()));
    let mut n = 0;
    for name in names {
        let path = ObjectPath::new(container, &name);
        match store.delete(&path) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::store("delete", store.url(&path), e)),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_numerically() {
        let a = segment_name("x.vhd", 9);
        let b = segment_name("x.vhd", 10);
        assert_eq!(a, "x.vhd-00009");
        assert!(a < b);
        let l = layout("c", "x.vhd");
        assert_eq!(l.name(8), a);
        assert_eq!(l.position("x.vhd-00001"), Some(0));
        assert_eq!(l.position("x.vhd-.json"), None);
        assert_eq!(l.position("x.vhd-"), None);
    }
}

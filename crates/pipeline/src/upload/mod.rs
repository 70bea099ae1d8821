//! Streaming upload, the one engine every byte written to a store goes through: any
//! input in (a stream of unknown length, a file, or a positional source whose ranges are
//! regenerated on demand), one object or a large object out, verified before success.
//!
//! An upload runs in four stages, one module each:
//! - [`plan`]: the large-object form ([`LargeKind`]), segment naming and limits
//!   ([`SegmentLayout`]);
//! - [`send`]: segment buffers, whole-object digests on their own threads, `jobs`
//!   parallel PUTs each carrying its segment's MD5, skipping what a resumed upload
//!   already stored;
//! - [`verify`]: re-reading what the store holds (listing, ETags, sizes), retrying for
//!   eventual consistency;
//! - [`commit`]: the manifest or multipart completion, written last, and the summary.
//!
//! What differs per large-object kind lives in [`swiftlo`] (Swift DLO/SLO: segments as
//! objects in a container) and [`multipart`] (S3: parts of an upload id); a single
//! object is one PUT ([`single`]). The input side is [`input`]; the settings and the
//! summary every stage shares are in [`options`].
//!
//! Memory: a stream is read in order into pooled segment buffers shared (never copied) by
//! the digest threads and the worker that sends it, so at most `(jobs + 1) x
//! segment_size` plus a small constant, whatever the input size. When `segment_size`
//! exceeds [`UploadOptions::max_buffer`], a file is sent by positional reads of each
//! segment's range instead (read twice: once to hash, once to send). A positional source
//! ([`Source::ranges`], e.g. an export's VHD computed from a chain of layers) with no
//! whole-object digest ([`Digests::NONE`]) is never buffered nor read twice: each segment
//! is produced while it is sent and the store hashes what it sends.
//!
//! The manifest (DLO, SLO or multipart completion) is written last, only after every
//! segment is stored with a matching ETag; then the listing is re-read and count, sizes
//! and ETags are compared before success is reported.
//!
//! Resume: segment names are deterministic for a destination, segment size and naming (and,
//! for python-swiftclient naming, the file's size and mtime), so re-running an interrupted
//! upload skips segments already stored with the right size and ETag. A failed upload
//! leaves its segments (for resume) unless [`UploadOptions::remove_on_error`]; it never
//! leaves a manifest. [`abort`] removes the segments of an upload, [`remove`] an object
//! and its segments.
//!
//! A service handing an image-data `PUT` to the engine calls, from a blocking thread,
//! `upload(store, &path, Source::stream(body), &UploadOptions { digests: Digests::GLANCE,
//! ..Default::default() })` and records `bytes`, `checksums.md5` and `checksums.sha512`
//! from the returned [`UploadSummary`].

mod commit;
mod input;
mod multipart;
mod options;
mod plan;
mod send;
mod single;
mod swiftlo;
mod verify;

pub use input::{ReadRange, Source};
pub(crate) use options::mib_s;
pub use options::{
    LargeKind, Progress, SegmentNaming, UploadOptions, UploadSummary, DEFAULT_JOBS,
    DEFAULT_SEGMENT_SIZE,
};
pub use plan::SegmentLayout;

use crate::error::{ErrorKind, Result};
#[cfg(doc)]
use crate::hash::Digests;
use crate::store::{ObjectPath, ObjectStore};
use std::time::Instant;

/// Uploads `source` to `dest`. See the module documentation for guarantees.
pub fn upload(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    source: Source,
    opts: &UploadOptions,
) -> Result<UploadSummary> {
    let start = Instant::now();
    let caps = store.capabilities();
    plan::check(store, dest, &source, opts, &caps)?;
    let size = source.len();
    // Decide the form; for a stream in auto mode the first segment decides.
    let mut kind = plan::pick_kind(opts.large, &caps, size, opts.segment_size)?;
    let (pos, stream) = source.split();
    // A positional source with no whole-object digest is produced once, while sent.
    let lazy = pos.is_some() && !opts.digests.any();
    if kind == LargeKind::Single && (lazy || size.is_some_and(|s| s > opts.max_buffer)) {
        if let Some((p, len)) = &pos {
            return single::put_positional(store, dest, p.body(0, *len), opts, start);
        }
    }
    // In order, from the start: what buffers and whole-object digests are fed from.
    let seq_body = pos.as_ref().map(|(p, len)| p.body(0, *len));
    // A file's segments are hashed in order and then sent from the file (the second read
    // comes from the page cache), so memory stays at a few chunks whatever the segment
    // size; other inputs are buffered a segment at a time when segments fit.
    let file = matches!(pos, Some((input::Positional::File(_), _)));
    let in_order =
        !lazy && ((opts.segment_size <= opts.max_buffer && !file) || kind == LargeKind::Single);
    let mut reader = input::sequential(seq_body.as_deref(), stream, in_order)?;
    let mut input = input::Input::new(reader.as_mut());

    let mut first = None;
    if kind == LargeKind::Single || kind == LargeKind::Auto {
        match single::buffer_first(&mut input, kind, &caps, size, opts)? {
            single::First::Whole(buf) => return single::put(store, dest, buf, opts, start),
            single::First::Segment(buf) => first = Some(buf),
        }
        kind = plan::pick_kind(LargeKind::Auto, &caps, Some(u64::MAX), opts.segment_size)?;
    }

    let plan = plan::Plan::new(dest, opts, &caps, kind, size)?;
    let (target, existing) = commit::begin(store, dest, &plan, opts)?;
    let job = send::Upload {
        store,
        dest,
        plan: &plan,
        target: &target,
        existing: &existing,
        opts,
    };
    let sent = send::send(&job, &mut input, first, pos.as_ref(), lazy);
    commit::finish(&job, sent, start)
}

/// Removes the segments (or the unfinished multipart upload) an upload of `dest` with
/// `opts` would use, so nothing of it remains; never touches a manifest. `size` is needed
/// only for python-swiftclient naming. Returns how many segments were deleted.
pub fn abort(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    opts: &UploadOptions,
    kind: LargeKind,
    size: Option<u64>,
) -> Result<u64> {
    if kind == LargeKind::Multipart {
        return multipart::abort_all(store, dest);
    }
    let layout = SegmentLayout::new(dest, opts, kind, size)?;
    swiftlo::remove_segments(store, &layout)
}

/// Removes `dest` and what an upload of it with `opts` stored: the object (manifest) first,
/// so nothing points at missing segments while they go, then its segments (or unfinished
/// multipart uploads). Missing objects are fine. `size` is needed only for
/// python-swiftclient naming. Returns how many objects (and uploads) were deleted.
pub fn remove(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    opts: &UploadOptions,
    kind: LargeKind,
    size: Option<u64>,
) -> Result<u64> {
    let n = match store.delete(dest) {
        Ok(()) => 1,
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    Ok(n + abort(store, dest, opts, kind, size)?)
}

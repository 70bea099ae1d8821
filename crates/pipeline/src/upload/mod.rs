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
//! object is one PUT ([`single`]). The input side is [`input`].
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
mod plan;
mod send;
mod single;
mod swiftlo;
mod verify;

pub use input::{ReadRange, Source};
pub use plan::SegmentLayout;

use crate::error::{ErrorKind, Result};
use crate::hash::{Checksums, Digests};
use crate::store::{ObjectPath, ObjectStore, SegmentRef};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Default segment size: 64 MiB, the buffer bound being `(jobs + 1) x 64 MiB` = 320 MiB at
/// the default 4 jobs (measured peak RSS of a 6 GiB upload from a pipe: 326 MiB). The
/// common Glance/python-swiftclient size. On the local one-node Swift (2 shared cores) an
/// upload is bound by CPU, not by segment size or connections: per GiB the required digests
/// cost 4.4 s of client CPU (both MD5s 1.5 s, SHA-256 0.75 s, SHA-512 2.1 s, on three
/// threads) and the Swift servers ~3.7 s, whatever the segmenting.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;
/// Default parallel PUTs. Measured at 64 MiB (256 MiB, 2 alternating rounds on a loaded
/// machine): `-j 2` 3.4 s, `-j 3` 3.6 s, `-j 4` 3.6 s, `-j 6` 3.2-3.8 s, i.e. within the
/// noise: the single-process server is the limit, so the default stays at 4, enough to keep
/// it busy while a segment is being hashed.
pub const DEFAULT_JOBS: usize = 4;

/// Which large-object form to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LargeKind {
    /// One PUT at or below the segment size; above it SLO (Swift, up to the segment limit),
    /// multipart (S3), DLO otherwise.
    Auto,
    /// Always one PUT (the input must fit one object).
    Single,
    /// Swift dynamic large object.
    Dlo,
    /// Swift static large object.
    Slo,
    /// S3 multipart upload.
    Multipart,
}

/// How segments are named (Swift DLO/SLO).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SegmentNaming {
    /// Cloud Images: `<object>-00001`, `-00002`, ... in the object's container (or the
    /// segment container if one is given).
    CloudImages,
    /// python-swiftclient: `<container>_segments/<object>/[slo/]<mtime>/<size>/<segsize>/<8-digit index from 0>`.
    /// `mtime` is the file's modification time as text; the input size must be known.
    SwiftClient {
        /// Modification time as python-swiftclient prints it (e.g. `1700000000.123456`).
        mtime: String,
    },
}

/// Progress callback: called with the number of bytes newly stored.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// Upload settings.
#[derive(Clone)]
pub struct UploadOptions {
    /// Segment (part) size in bytes.
    pub segment_size: u64,
    /// Parallel segment PUTs.
    pub jobs: usize,
    /// Large-object form.
    pub large: LargeKind,
    /// Container for segments (default: see [`SegmentNaming`]).
    pub segment_container: Option<String>,
    /// Segment naming.
    pub naming: SegmentNaming,
    /// Skip segments already stored with the right size and ETag.
    pub resume: bool,
    /// Delete the segments (abort the multipart upload) when the upload fails.
    pub remove_on_error: bool,
    /// Largest in-memory segment buffer; bigger segments need a file input.
    pub max_buffer: u64,
    /// Content type of the object.
    pub content_type: Option<String>,
    /// User metadata of the object (or manifest).
    pub metadata: BTreeMap<String, String>,
    /// Progress callback.
    pub progress: Option<Progress>,
    /// Whole-object digests computed besides MD5 (all by default).
    pub digests: Digests,
}

impl Default for UploadOptions {
    fn default() -> Self {
        UploadOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            jobs: DEFAULT_JOBS,
            large: LargeKind::Auto,
            segment_container: None,
            naming: SegmentNaming::CloudImages,
            resume: true,
            remove_on_error: false,
            max_buffer: 256 << 20,
            content_type: None,
            metadata: BTreeMap::new(),
            progress: None,
            digests: Digests::ALL,
        }
    }
}

impl std::fmt::Debug for UploadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UploadOptions")
            .field("segment_size", &self.segment_size)
            .field("jobs", &self.jobs)
            .field("large", &self.large)
            .field("segment_container", &self.segment_container)
            .field("naming", &self.naming)
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

/// A positional input whose byte ranges can be produced again, as often as asked (e.g.
/// an exported VHD computed on demand from a chain of layers): the upload sends each
/// segment from a fresh reader of its range, so a failed PUT is retried from the first
#[derive(Debug, Clone, Serialize)]
pub struct UploadSummary {
    /// Destination URL.
    pub url: String,
    /// `single`, `dlo`, `slo` or `multipart`.
    pub kind: String,
    /// Bytes in the object.
    pub bytes: u64,
    /// Segments (parts) making it up (1 for a single object).
    pub segments: u64,
    /// Segments found already stored and skipped (resume).
    pub segments_skipped: u64,
    /// Segment container and name prefix (large objects).
    pub segment_prefix: Option<String>,
    /// Whole-object digests.
    pub checksums: Checksums,
    /// The ETag the server reports for the object.
    pub etag: String,
    /// Wall time in seconds.
    pub duration_secs: f64,
    /// Bytes per second over the wall time, in MiB/s.
    pub throughput_mib_s: f64,
    /// The segments (parts) as stored and verified, in order; empty for a single object.
    #[serde(skip)]
    pub segment_list: Vec<SegmentRef>,
}

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
    let in_order = !lazy && (opts.segment_size <= opts.max_buffer || kind == LargeKind::Single);
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

pub(crate) fn mib_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / (1u64 << 20) as f64 / secs
    } else {
        0.0
    }
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

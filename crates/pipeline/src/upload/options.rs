//! The settings and the outcome of an upload, shared by every stage: options
//! ([`UploadOptions`], [`LargeKind`], [`SegmentNaming`]) and the [`UploadSummary`].

use crate::hash::{Checksums, Digests};
use crate::store::SegmentRef;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

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
    /// Whole-object digests; those not computed are empty.
    pub checksums: Checksums,
    /// Which whole-object digests were computed (`md5`, `sha256`, `sha512`).
    pub digests: Vec<String>,
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

pub(crate) fn mib_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / (1u64 << 20) as f64 / secs
    } else {
        0.0
    }
}

//! Streaming upload: any byte stream in, one object or a large object out.
//!
//! The calling thread reads the input in order into pooled segment buffers, each shared
//! (never copied) by the threads that use it: one thread per serial digest (SHA-256,
//! SHA-512, and one for MD5 that computes the whole-object MD5 and the segment's MD5 in the
//! same pass, see [`crate::hash::SegmentedMd5`]) and, once its MD5 is known, one of `jobs`
//! worker threads that PUTs the segment with that MD5, so the server refuses a corrupted
//! body, and compares the returned ETag. A buffer returns to the pool when its PUT and all
//! digests are done, so memory is at most `(jobs + 1) x segment_size` plus a small
//! constant, whatever the input size. When `segment_size` exceeds
//! [`UploadOptions::max_buffer`], a file input is sent by positional reads of each
//! segment's range instead of buffers (the file is read twice, once to hash). A
//! positional source ([`Source::ranges`], e.g. an export's VHD regenerated on demand)
//! with no whole-object digest ([`Digests::NONE`]) is never buffered nor read twice:
//! each segment is produced while it is sent and the store hashes what it sends.
//!
//! The manifest (DLO, SLO or multipart completion) is written last, only after every
//! segment is verified; then the listing is re-read, retrying for eventual consistency,
//! and count, sizes and ETags are compared before success is reported.
//!
//! Resume: segment names are deterministic for a destination, segment size and naming (and,
//! for python-swiftclient naming, the file's size and mtime), so re-running an interrupted
//! upload skips segments already stored with the right size and ETag. A failed upload
//! leaves its segments (for resume) unless [`UploadOptions::remove_on_error`]; it never
//! leaves a manifest. [`abort`] removes the segments of an upload.

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{normalize_etag, Checksums, Digests, MultiHasher, SegmentedMd5};
use crate::pool::Pool;
use crate::store::{
    list_all, Body, FileRange, ListEntry, Manifest, ObjectPath, ObjectStore, PartInfo, PutOptions,
    SegmentRef,
};
use md5::{Digest, Md5};
use serde::Serialize;
use sha2::{Sha256, Sha512};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
/// byte and no segment is ever held in memory.
pub trait ReadRange: Send + Sync {
    /// Bytes of the whole input.
    fn len(&self) -> u64;
    /// True when the input is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// A reader of exactly `len` bytes from `offset`.
    fn read_range(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>>;
}

/// The input of an upload.
pub enum Source {
    /// A regular file (size known; positional reads possible).
    File {
        /// The file.
        file: Arc<File>,
        /// Its size at open.
        len: u64,
    },
    /// Any stream (size unknown).
    Stream(Box<dyn Read + Send>),
    /// A positional, re-readable input. With [`Digests::NONE`] its segments are produced
    /// once each, while being sent (the store hashes what it sends and checks the ETag);
    /// a whole-object digest needs the input in order, so with one its segments are
    /// produced twice (hashed in order, then sent) unless they fit
    /// [`UploadOptions::max_buffer`].
    Ranges(Arc<dyn ReadRange>),
}

impl Source {
    /// A file input; a non-regular file (pipe, device) is treated as a stream.
    pub fn file(file: File) -> Result<Source> {
        let md = file
            .metadata()
            .map_err(|e| Error::io("upload", "input", e))?;
        if md.is_file() {
            Ok(Source::File {
                file: Arc::new(file),
                len: md.len(),
            })
        } else {
            Ok(Source::Stream(Box::new(file)))
        }
    }

    /// A stream input of unknown length, read once, in order, a segment at a time (at
    /// most `(jobs + 1) x segment_size` bytes buffered). What a service's image-data PUT
    /// hands over: `upload(store, path, Source::stream(body), &opts)` from a blocking
    /// thread returns the size and MD5 (and the SHA-512 with [`Digests::GLANCE`]).
    pub fn stream(r: impl Read + Send + 'static) -> Source {
        Source::Stream(Box::new(r))
    }

    /// A positional, re-readable input (see [`Source::Ranges`]).
    pub fn ranges(src: Arc<dyn ReadRange>) -> Source {
        Source::Ranges(src)
    }

    fn len(&self) -> Option<u64> {
        match self {
            Source::File { len, .. } => Some(*len),
            Source::Stream(_) => None,
            Source::Ranges(r) => Some(r.len()),
        }
    }
}

/// The positional side of a source: a file or a [`ReadRange`].
#[derive(Clone)]
enum Positional {
    File(Arc<File>),
    Ranges(Arc<dyn ReadRange>),
}

impl Positional {
    /// A re-readable body of bytes `offset..offset + len`.
    fn body(&self, offset: u64, len: u64) -> Box<dyn Body> {
        match self {
            Positional::File(file) => Box::new(FileRange {
                file: file.clone(),
                offset,
                len,
            }),
            Positional::Ranges(src) => Box::new(RangeBody {
                src: src.clone(),
                offset,
                len,
            }),
        }
    }
}

/// A range of a [`ReadRange`] as a request body.
struct RangeBody {
    src: Arc<dyn ReadRange>,
    offset: u64,
    len: u64,
}

impl Body for RangeBody {
    fn len(&self) -> u64 {
        self.len
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        self.src.read_range(self.offset, self.len)
    }
}

/// What an upload did.
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

/// Where segments go for an upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLayout {
    /// Segment container.
    pub container: String,
    /// Name prefix shared by all segments (the DLO prefix).
    pub prefix: String,
    first_index: u64,
    digits: usize,
}

impl SegmentLayout {
    /// Layout for `dest` with `opts`, the given kind and (for python-swiftclient naming) size.
    pub fn new(
        dest: &ObjectPath,
        opts: &UploadOptions,
        kind: LargeKind,
        size: Option<u64>,
    ) -> Result<Self> {
        match &opts.naming {
            SegmentNaming::CloudImages => Ok(SegmentLayout {
                container: opts
                    .segment_container
                    .clone()
                    .unwrap_or_else(|| dest.container.clone()),
                prefix: format!("{}-", dest.name),
                first_index: 1,
                digits: 5,
            }),
            SegmentNaming::SwiftClient { mtime } => {
                let size = size.ok_or_else(|| {
                    Error::usage(
                        "upload",
                        "python-swiftclient segment naming needs a file input (its size is part of the name)",
                    )
                })?;
                let slo = if kind == LargeKind::Slo { "slo/" } else { "" };
                Ok(SegmentLayout {
                    container: opts
                        .segment_container
                        .clone()
                        .unwrap_or_else(|| format!("{}_segments", dest.container)),
                    prefix: format!("{}/{slo}{mtime}/{size}/{}/", dest.name, opts.segment_size),
                    first_index: 0,
                    digits: 8,
                })
            }
        }
    }

    /// Name of segment `i` (0-based position).
    pub fn name(&self, i: u64) -> String {
        format!(
            "{}{:0width$}",
            self.prefix,
            i + self.first_index,
            width = self.digits
        )
    }

    /// The 0-based position of `name`, if it is one of this layout's segment names.
    pub fn position(&self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(&self.prefix)?;
        if rest.len() < self.digits || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse::<u64>().ok()?.checked_sub(self.first_index)
    }

    fn max_segments(&self) -> u64 {
        10u64.pow(self.digits as u32) - self.first_index
    }
}

/// One stored segment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Done {
    size: u64,
    etag: String,
    skipped: bool,
}

enum JobBody<'p> {
    Buf(Arc<SharedBuf<'p>>),
    /// A range of a positional source, re-read for each attempt.
    Range(Box<dyn Body>),
}

struct Job<'p> {
    index: u64,
    body: JobBody<'p>,
    md5: String,
}

/// Reads with a one-byte lookahead so the end of the input is known before a segment is
/// dispatched (deciding single PUT vs large object for streams).
struct Input<'a> {
    inner: &'a mut dyn Read,
    peeked: Option<u8>,
}

impl Input<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(b) = self.peeked.take() {
            buf[0] = b;
            return Ok(1);
        }
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r,
            }
        }
    }

    /// Appends up to `want` bytes to `buf`; returns how many.
    fn fill(&mut self, buf: &mut Vec<u8>, want: usize) -> io::Result<usize> {
        let start = buf.len();
        buf.resize(start + want, 0);
        let mut n = 0;
        while n < want {
            let r = self.read(&mut buf[start + n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        buf.truncate(start + n);
        Ok(n)
    }

    /// Fills `buf` unless the input ends first; returns how many bytes were read.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            let r = self.read(&mut buf[n..])?;
            if r == 0 {
                break;
            }
            n += r;
        }
        Ok(n)
    }

    fn at_eof(&mut self) -> io::Result<bool> {
        if self.peeked.is_some() {
            return Ok(false);
        }
        let mut b = [0u8; 1];
        let n = self.read(&mut b)?;
        if n == 1 {
            self.peeked = Some(b[0]);
        }
        Ok(n == 0)
    }
}

/// A segment (or chunk) buffer shared by the digest threads and the worker that sends it;
/// it goes back to its pool when the last of them lets go, so the pool's size is the
/// memory bound whatever order they finish in.
struct SharedBuf<'p> {
    buf: Vec<u8>,
    len: usize,
    pool: &'p Pool,
}

impl std::ops::Deref for SharedBuf<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Body for SharedBuf<'_> {
    fn len(&self) -> u64 {
        self.len as u64
    }
    fn reader(&self) -> io::Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(&self.buf[..self.len]))
    }
    fn as_slice(&self) -> Option<&[u8]> {
        Some(&self.buf[..self.len])
    }
}

impl Drop for SharedBuf<'_> {
    fn drop(&mut self) {
        self.pool.give(std::mem::take(&mut self.buf));
    }
}

/// What the MD5 thread is fed: bytes, then the end of a segment with its body, which it
/// passes on to the workers once the segment's MD5 is known.
enum HashMsg<'p> {
    Data(Arc<SharedBuf<'p>>),
    End(Job<'p>),
}

/// A thread hashing with `H` every buffer sent to it, returning the hex digest; neither
/// thread nor sender when the digest is not chosen (`on` false), so nothing is queued.
fn digest_thread<'s, 'p: 's, H: Digest + Send + 's>(
    s: &'s std::thread::Scope<'s, '_>,
    on: bool,
) -> (
    Option<Sender<Arc<SharedBuf<'p>>>>,
    Option<std::thread::ScopedJoinHandle<'s, String>>,
) {
    if !on {
        return (None, None);
    }
    let (tx, rx) = channel::<Arc<SharedBuf<'p>>>();
    let handle = s.spawn(move || {
        let mut h = H::new();
        for b in rx {
            h.update(&b[..]);
        }
        hex::encode(h.finalize())
    });
    (Some(tx), Some(handle))
}

/// MD5 and the chosen digests of one in-memory buffer, each on its own thread.
fn hash_all(data: &[u8], digests: Digests) -> Checksums {
    std::thread::scope(|s| {
        let sha512 = digests
            .sha512
            .then(|| s.spawn(|| hex::encode(Sha512::digest(data))));
        let sha256 = digests
            .sha256
            .then(|| s.spawn(|| hex::encode(Sha256::digest(data))));
        let md5 = hex::encode(Md5::digest(data));
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        Checksums {
            md5,
            sha256: join(sha256),
            sha512: join(sha512),
        }
    })
}

/// Uploads `source` to `dest`. See the module documentation for guarantees.
pub fn upload(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    source: Source,
    opts: &UploadOptions,
) -> Result<UploadSummary> {
    let start = Instant::now();
    let url = store.url(dest);
    if dest.name.is_empty() {
        return Err(Error::usage("upload", format!("{url}: no object name")));
    }
    let caps = store.capabilities();
    let seg_size = opts.segment_size;
    if seg_size == 0 || seg_size > caps.max_object_size {
        return Err(Error::usage(
            "upload",
            format!(
                "segment size {seg_size} must be between 1 and {}",
                caps.max_object_size
            ),
        ));
    }
    if seg_size > opts.max_buffer && matches!(source, Source::Stream(_)) {
        return Err(Error::usage(
            "upload",
            format!(
                "segment size {seg_size} is above the {} byte buffer limit: a stream needs smaller segments (or give a file)",
                opts.max_buffer
            ),
        ));
    }
    let size = source.len();
    let jobs = opts.jobs.max(1);

    // Decide the form; for a stream in auto mode the first segment decides.
    let mut kind = pick_kind(opts.large, &caps, size, seg_size)?;
    type Split = (Option<(Positional, u64)>, Option<Box<dyn Read + Send>>);
    let (file, stream): Split = match source {
        Source::File { file, len } => (Some((Positional::File(file), len)), None),
        Source::Ranges(r) => {
            let len = r.len();
            (Some((Positional::Ranges(r), len)), None)
        }
        Source::Stream(r) => (None, Some(r)),
    };
    // A positional source with no whole-object digest is produced once, while sent.
    let lazy = file.is_some() && !opts.digests.any();
    // In order, from the start: what buffers and whole-object digests are fed from.
    let seq_body = file.as_ref().map(|(p, len)| p.body(0, *len));
    let mut reader: Box<dyn Read + Send + '_> = match (&seq_body, stream) {
        // Opened only when read: a reader of a generated source may start producing at once.
        (Some(_), _) if lazy || (seg_size > opts.max_buffer && kind != LargeKind::Single) => {
            Box::new(io::empty())
        }
        (Some(b), _) => match b.reader() {
            Ok(r) => r,
            Err(e) => return Err(Error::io("upload", "input", e)),
        },
        (None, Some(r)) => r,
        (None, None) => unreachable!("a source is positional or a stream"),
    };
    let mut input = Input {
        inner: reader.as_mut(),
        peeked: None,
    };

    // Single object: at most one segment, buffered.
    let mut first: Option<Vec<u8>> = None;
    if kind == LargeKind::Single && (lazy || size.is_some_and(|s| s > opts.max_buffer)) {
        if let Some((p, len)) = &file {
            return single_put_positional(store, dest, p.body(0, *len), opts, start);
        }
    }
    if kind == LargeKind::Single || kind == LargeKind::Auto {
        let limit = if kind == LargeKind::Single {
            caps.max_object_size.min(opts.max_buffer.max(seg_size))
        } else {
            seg_size
        };
        let mut buf = Vec::with_capacity(size.unwrap_or(limit).min(limit) as usize);
        let mut filled = 0u64;
        while filled < limit {
            let want = (limit - filled).min(8 << 20) as usize;
            let n = input
                .fill(&mut buf, want)
                .map_err(|e| Error::io("upload", "input", e))?;
            if n == 0 {
                break;
            }
            filled += n as u64;
        }
        let eof = input
            .at_eof()
            .map_err(|e| Error::io("upload", "input", e))?;
        if eof {
            return single_put(store, dest, buf, opts, start);
        }
        if kind == LargeKind::Single {
            return Err(Error::usage(
                "upload",
                format!("input is larger than {limit} bytes: use a large object"),
            ));
        }
        kind = pick_kind(LargeKind::Auto, &caps, Some(u64::MAX), seg_size)?;
        first = Some(buf);
    }

    let layout = SegmentLayout::new(dest, opts, kind, size)?;
    let seg_path = |i: u64| ObjectPath::new(&layout.container, layout.name(i));
    if let Some(n) = size.map(|s| s.div_ceil(seg_size)) {
        let max = if kind == LargeKind::Dlo {
            layout.max_segments()
        } else {
            caps.max_segments.min(layout.max_segments())
        };
        if n > max {
            return Err(Error::usage(
                "upload",
                format!("{n} segments of {seg_size} bytes exceed the limit of {max}: use a larger segment size"),
            ));
        }
    }
    if kind == LargeKind::Multipart && seg_size < caps.min_part_size {
        return Err(Error::usage(
            "upload",
            format!("parts must be at least {} bytes", caps.min_part_size),
        ));
    }

    // What is already there (resume), and the multipart upload id.
    let mut existing: HashMap<u64, (u64, String)> = HashMap::new();
    let mut upload_id = None;
    if kind == LargeKind::Multipart {
        let found = if opts.resume {
            store.multipart_find(dest)?
        } else {
            None
        };
        let id = match found {
            Some(id) => {
                for p in store.multipart_list_parts(dest, &id)? {
                    existing.insert(u64::from(p.number) - 1, (p.size, p.etag));
                }
                id
            }
            None => store.multipart_begin(dest)?,
        };
        upload_id = Some(id);
    } else {
        store.ensure_container(&layout.container)?;
        if opts.resume {
            for e in list_all(store, &layout.container, &layout.prefix)? {
                if let Some(i) = layout.position(&e.name) {
                    existing.insert(i, (e.size, e.etag));
                }
            }
        }
    }

    // Pipeline: this thread reads segments into pooled buffers; one thread per serial
    // digest hashes them (the MD5 thread computes the whole-object and the segment MD5 in
    // one pass, then hands the segment to the workers); workers store. A buffer is shared
    // (Arc), never copied, and returns to the pool when its PUT and all digests are done.
    let buffered = seg_size <= opts.max_buffer && !lazy;
    let chunk = (8u64 << 20).min(seg_size) as usize;
    let pool = if buffered {
        Pool::new(jobs + 1, seg_size as usize)
    } else {
        // Positional segments: only the digests need memory.
        Pool::new(4, chunk)
    };
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let done: Mutex<BTreeMap<u64, Done>> = Mutex::new(BTreeMap::new());
    let fail = |e: Error| {
        stop.store(true, Ordering::SeqCst);
        if let Ok(mut f) = failure.lock() {
            f.get_or_insert(e);
        }
    };

    let mut total = 0u64;
    let mut count = 0u64;
    let mut checksums = Checksums::default();
    let (job_tx, job_rx) = channel::<Job>();
    // Lazy segments skip the digest threads: nothing to hash before sending.
    let lazy_tx = lazy.then(|| job_tx.clone());
    let job_rx = Mutex::new(job_rx);
    let (md5_tx, md5_rx) = channel::<HashMsg>();
    std::thread::scope(|s| {
        let md5_thread = s.spawn(move || {
            let mut h = SegmentedMd5::new();
            for m in md5_rx {
                match m {
                    HashMsg::Data(b) => h.update(&b),
                    HashMsg::End(mut job) => {
                        job.md5 = h.end_segment();
                        // Workers gone (failure): keep draining so the reader never blocks.
                        let _ = job_tx.send(job);
                    }
                }
            }
            h.finish()
        });
        let (sha256_tx, sha256_thread) = digest_thread::<Sha256>(s, opts.digests.sha256);
        let (sha512_tx, sha512_thread) = digest_thread::<Sha512>(s, opts.digests.sha512);
        for _ in 0..jobs {
            s.spawn(|| loop {
                let job = match job_rx.lock() {
                    Ok(r) => r.recv(),
                    Err(_) => return,
                };
                let Ok(job) = job else { return };
                if stop.load(Ordering::SeqCst) {
                    continue;
                }
                let body: &dyn Body = match &job.body {
                    JobBody::Buf(b) => &**b,
                    JobBody::Range(r) => &**r,
                };
                let len = body.len();
                let res = match existing.get(&job.index) {
                    Some((sz, et)) if *sz == len && already_stored(body, &job.md5, et) => {
                        Ok(Done {
                            size: len,
                            etag: normalize_etag(et),
                            skipped: true,
                        })
                    }
                    _ => store_segment(store, dest, &layout, upload_id.as_deref(), &job, body).map(
                        |etag| Done {
                            size: len,
                            etag,
                            skipped: false,
                        },
                    ),
                };
                drop(job.body);
                match res {
                    Ok(d) => {
                        if let Some(p) = &opts.progress {
                            p(d.size);
                        }
                        if let Ok(mut m) = done.lock() {
                            m.insert(job.index, d);
                        }
                    }
                    Err(e) => fail(e.with_segment(job.index + layout.first_index)),
                }
            });
        }

        let feed = |b| -> bool {
            sha256_tx
                .as_ref()
                .is_none_or(|t| t.send(Arc::clone(&b)).is_ok())
                && sha512_tx
                    .as_ref()
                    .is_none_or(|t| t.send(Arc::clone(&b)).is_ok())
                && md5_tx.send(HashMsg::Data(b)).is_ok()
        };
        let check_count = |count: u64| -> Result<()> {
            let limit = if kind == LargeKind::Dlo {
                layout.max_segments()
            } else {
                caps.max_segments.min(layout.max_segments())
            };
            if count > limit {
                return Err(Error::usage(
                    "upload",
                    format!("more than {limit} segments: use a larger segment size"),
                ));
            }
            Ok(())
        };
        let mut read = || -> Result<()> {
            let mut first = first.take();
            loop {
                if stop.load(Ordering::SeqCst) {
                    return Ok(());
                }
                let job_body = if buffered {
                    let shared = match first.take() {
                        Some(buf) => {
                            pool.adopt();
                            let len = buf.len();
                            SharedBuf {
                                buf,
                                len,
                                pool: &pool,
                            }
                        }
                        None => {
                            let mut buf = pool.take();
                            if buf.len() < seg_size as usize {
                                // Zeroed once per buffer, then reused as it is.
                                buf.resize(seg_size as usize, 0);
                            }
                            let n = input
                                .read_full(&mut buf[..seg_size as usize])
                                .map_err(|e| Error::io("upload", "input", e))?;
                            if n == 0 {
                                pool.give(buf);
                                return Ok(());
                            }
                            SharedBuf {
                                buf,
                                len: n,
                                pool: &pool,
                            }
                        }
                    };
                    let shared = Arc::new(shared);
                    if !feed(shared.clone()) {
                        return Ok(());
                    }
                    JobBody::Buf(shared)
                } else {
                    let Some((f, len)) = &file else {
                        return Ok(());
                    };
                    let off = total;
                    let n = (len - off).min(seg_size);
                    if n == 0 {
                        return Ok(());
                    }
                    let range = f.body(off, n);
                    if let Some(tx) = &lazy_tx {
                        // Hashed by the store while it is sent.
                        total += n;
                        let job = Job {
                            index: count,
                            body: JobBody::Range(range),
                            md5: String::new(),
                        };
                        count += 1;
                        check_count(count)?;
                        if tx.send(job).is_err() {
                            return Ok(());
                        }
                        continue;
                    }
                    // Hash the range chunk by chunk, in order, then send it with its MD5.
                    let mut r = range
                        .reader()
                        .map_err(|e| Error::io("upload", "input", e))?;
                    let mut left = n as usize;
                    while left > 0 {
                        let mut buf = pool.take();
                        let want = left.min(chunk);
                        if buf.len() < want {
                            buf.resize(want, 0);
                        }
                        r.read_exact(&mut buf[..want])
                            .map_err(|e| Error::io("upload", "input", e))?;
                        left -= want;
                        let shared = Arc::new(SharedBuf {
                            buf,
                            len: want,
                            pool: &pool,
                        });
                        if !feed(shared) {
                            return Ok(());
                        }
                    }
                    drop(r);
                    JobBody::Range(range)
                };
                let len = match &job_body {
                    JobBody::Buf(b) => b.len as u64,
                    JobBody::Range(r) => r.len(),
                };
                total += len;
                let job = Job {
                    index: count,
                    body: job_body,
                    md5: String::new(),
                };
                count += 1;
                check_count(count)?;
                if md5_tx.send(HashMsg::End(job)).is_err() {
                    return Ok(());
                }
            }
        };
        if let Err(e) = read() {
            fail(e);
        }
        drop(lazy_tx);
        drop(md5_tx);
        drop(sha256_tx);
        drop(sha512_tx);
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        let md5 = md5_thread.join().unwrap_or_default();
        checksums = Checksums {
            // Lazy segments never went through the MD5 thread.
            md5: if lazy { String::new() } else { md5 },
            sha256: join(sha256_thread),
            sha512: join(sha512_thread),
        };
    });

    if let Some(e) = failure.into_inner().ok().flatten() {
        if opts.remove_on_error {
            let _ = abort_layout(store, dest, &layout, upload_id.as_deref());
        }
        return Err(e);
    }
    let done = done.into_inner().unwrap_or_default();
    if done.len() as u64 != count {
        return Err(Error::new(
            ErrorKind::Integrity,
            "upload",
            &url,
            format!("{} of {count} segments stored", done.len()),
        ));
    }
    let skipped = done.values().filter(|d| d.skipped).count() as u64;
    let segments: Vec<SegmentRef> = done
        .iter()
        .map(|(i, d)| SegmentRef {
            path: seg_path(*i),
            etag: d.etag.clone(),
            size: d.size,
        })
        .collect();

    let etag = match kind {
        LargeKind::Dlo | LargeKind::Slo => {
            remove_stale(store, &layout, count, kind == LargeKind::Dlo)?;
            if kind == LargeKind::Dlo {
                store.put_dlo_manifest(dest, &layout.container, &layout.prefix)?;
            } else {
                store.put_slo_manifest(dest, &segments)?;
            }
            verify_large(store, dest, &layout, &segments, kind, total)?
        }
        LargeKind::Multipart => {
            let parts: Vec<PartInfo> = segments
                .iter()
                .enumerate()
                .map(|(i, s)| PartInfo {
                    number: i as u32 + 1,
                    etag: s.etag.clone(),
                    size: s.size,
                })
                .collect();
            let id = upload_id.clone().unwrap_or_default();
            store.multipart_complete(dest, &id, &parts)?;
            verify_multipart(store, dest, &segments, total)?
        }
        LargeKind::Auto | LargeKind::Single => unreachable!("resolved above"),
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(UploadSummary {
        url,
        kind: kind_name(kind).into(),
        bytes: total,
        segments: count,
        segments_skipped: skipped,
        segment_prefix: Some(format!("{}/{}", layout.container, layout.prefix)),
        checksums,
        etag,
        duration_secs: secs,
        throughput_mib_s: mib_s(total, secs),
        segment_list: segments,
    })
}

/// Whether a stored segment of the right size holds `body`: its ETag against the
/// segment's MD5, computed now (the body produced once more) when the segment was not
/// hashed before sending.
fn already_stored(body: &dyn Body, md5: &str, etag: &str) -> bool {
    let etag = normalize_etag(etag);
    if !md5.is_empty() {
        return etag == md5;
    }
    let Ok(mut r) = body.reader() else {
        return false;
    };
    let mut h = Md5::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Unreadable now: sending it will report why.
            Err(_) => return false,
        }
    }
    hex::encode(h.finalize()) == etag
}

pub(crate) fn mib_s(bytes: u64, secs: f64) -> f64 {
    if secs > 0.0 {
        bytes as f64 / (1u64 << 20) as f64 / secs
    } else {
        0.0
    }
}

fn kind_name(k: LargeKind) -> &'static str {
    match k {
        LargeKind::Auto | LargeKind::Single => "single",
        LargeKind::Dlo => "dlo",
        LargeKind::Slo => "slo",
        LargeKind::Multipart => "multipart",
    }
}

fn pick_kind(
    want: LargeKind,
    caps: &crate::store::Capabilities,
    size: Option<u64>,
    seg: u64,
) -> Result<LargeKind> {
    let ok = match want {
        LargeKind::Dlo => caps.dlo,
        LargeKind::Slo => caps.slo,
        LargeKind::Multipart => caps.multipart,
        LargeKind::Single => true,
        LargeKind::Auto => {
            return Ok(match size {
                Some(s) if s <= seg => LargeKind::Single,
                None => LargeKind::Auto,
                Some(s) => {
                    let n = s.div_ceil(seg);
                    if caps.multipart {
                        LargeKind::Multipart
                    } else if caps.slo && (n <= caps.max_segments || s == u64::MAX) {
                        LargeKind::Slo
                    } else {
                        LargeKind::Dlo
                    }
                }
            })
        }
    };
    if !ok {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "upload",
            "",
            format!("this backend cannot write {} objects", kind_name(want)),
        ));
    }
    Ok(want)
}

fn store_segment(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    layout: &SegmentLayout,
    upload_id: Option<&str>,
    job: &Job<'_>,
    body: &dyn Body,
) -> Result<String> {
    // Without an MD5 (a lazy range) the store hashes what it sends and checks the ETag.
    let md5 = (!job.md5.is_empty()).then_some(job.md5.as_str());
    let path = ObjectPath::new(&layout.container, layout.name(job.index));
    let r = match upload_id {
        Some(id) => store.multipart_put_part(dest, id, job.index as u32 + 1, body, md5)?,
        None => store.put(
            &path,
            body,
            &PutOptions {
                md5: md5.map(str::to_string),
                ..Default::default()
            },
        )?,
    };
    if r.size != body.len() {
        return Err(Error::new(
            ErrorKind::Integrity,
            "upload",
            store.url(&path),
            format!("store took {} of {} bytes", r.size, body.len()),
        ));
    }
    Ok(r.etag)
}

fn single_put(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    buf: Vec<u8>,
    opts: &UploadOptions,
    start: Instant,
) -> Result<UploadSummary> {
    let checksums = hash_all(&buf, opts.digests);
    let md5 = checksums.md5.clone();
    store.put(
        dest,
        &buf,
        &PutOptions {
            md5: Some(md5.clone()),
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone(),
        },
    )?;
    if let Some(p) = &opts.progress {
        p(buf.len() as u64);
    }
    let etag = verify_single(store, dest, buf.len() as u64, &md5)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(UploadSummary {
        url: store.url(dest),
        kind: "single".into(),
        bytes: buf.len() as u64,
        segments: 1,
        segments_skipped: 0,
        segment_prefix: None,
        checksums,
        etag,
        duration_secs: secs,
        throughput_mib_s: mib_s(buf.len() as u64, secs),
        segment_list: Vec::new(),
    })
}

/// One PUT of a positional input not buffered: with whole-object digests, hash it
/// first, then send it with its MD5 so the server verifies it; without, send it and let
/// the store hash what it sends.
fn single_put_positional(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    range: Box<dyn Body>,
    opts: &UploadOptions,
    start: Instant,
) -> Result<UploadSummary> {
    let len = range.len();
    let checksums = if opts.digests.any() {
        let mut whole = MultiHasher::with(opts.digests);
        let mut r = range
            .reader()
            .map_err(|e| Error::io("upload", "input", e))?;
        let mut chunk = vec![0u8; 4 << 20];
        loop {
            let k = r
                .read(&mut chunk)
                .map_err(|e| Error::io("upload", "input", e))?;
            if k == 0 {
                break;
            }
            whole.update(&chunk[..k]);
        }
        whole.finish()
    } else {
        Checksums::default()
    };
    // One object: its MD5 is the whole-object MD5.
    let sent = store.put(
        dest,
        &*range,
        &PutOptions {
            md5: (!checksums.md5.is_empty()).then(|| checksums.md5.clone()),
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone(),
        },
    )?;
    let md5 = sent.etag;
    if let Some(p) = &opts.progress {
        p(len);
    }
    let etag = verify_single(store, dest, len, &md5)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(UploadSummary {
        url: store.url(dest),
        kind: "single".into(),
        bytes: len,
        segments: 1,
        segments_skipped: 0,
        segment_prefix: None,
        checksums,
        etag,
        duration_secs: secs,
        throughput_mib_s: mib_s(len, secs),
        segment_list: Vec::new(),
    })
}

fn verify_single(
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
fn eventually<T>(policy: crate::RetryPolicy, f: impl FnMut(u32) -> Result<T>) -> Result<T> {
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

/// Deletes this layout's segments at positions >= `count` left by an earlier, longer
/// upload; with `strict` (DLO), any other object under the prefix is an error since it
/// would become part of the object.
fn remove_stale(
    store: &dyn ObjectStore,
    layout: &SegmentLayout,
    count: u64,
    strict: bool,
) -> Result<()> {
    for e in list_all(store, &layout.container, &layout.prefix)? {
        match layout.position(&e.name) {
            Some(i) if i < count => {}
            Some(_) => match store.delete(&ObjectPath::new(&layout.container, &e.name)) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            },
            None if strict => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "upload",
                    format!("{}/{}", layout.container, e.name),
                    format!(
                        "a foreign object shares the DLO prefix {:?} and would become part of the object",
                        layout.prefix
                    ),
                ))
            }
            None => {}
        }
    }
    Ok(())
}

fn verify_large(
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

fn verify_multipart(
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

fn abort_layout(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    layout: &SegmentLayout,
    upload_id: Option<&str>,
) -> Result<u64> {
    if let Some(id) = upload_id {
        store.multipart_abort(dest, id)?;
        return Ok(0);
    }
    let mut n = 0;
    for e in list_all(store, &layout.container, &layout.prefix)? {
        if layout.position(&e.name).is_some() {
            match store.delete(&ObjectPath::new(&layout.container, &e.name)) {
                Ok(()) => n += 1,
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(n)
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
        let mut n = 0;
        while let Some(id) = store.multipart_find(dest)? {
            store.multipart_abort(dest, &id)?;
            n += 1;
        }
        return Ok(n);
    }
    let layout = SegmentLayout::new(dest, opts, kind, size)?;
    abort_layout(store, dest, &layout, None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts() {
        let dest = ObjectPath::new("c", "img.vhd");
        let l = SegmentLayout::new(&dest, &UploadOptions::default(), LargeKind::Dlo, None).unwrap();
        assert_eq!(l.name(0), "img.vhd-00001");
        assert_eq!(l.position("img.vhd-00012"), Some(11));
        assert_eq!(l.position("img.vhd-backup"), None);
        assert_eq!(l.container, "c");
        let o = UploadOptions {
            naming: SegmentNaming::SwiftClient {
                mtime: "1.5".into(),
            },
            segment_size: 10,
            ..Default::default()
        };
        let l = SegmentLayout::new(&dest, &o, LargeKind::Slo, Some(25)).unwrap();
        assert_eq!(l.container, "c_segments");
        assert_eq!(l.name(2), "img.vhd/slo/1.5/25/10/00000002");
        assert_eq!(l.position("img.vhd/slo/1.5/25/10/00000002"), Some(2));
    }
}

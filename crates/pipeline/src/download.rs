//! Download of plain and large objects, segments fetched in parallel, with bounded memory.
//!
//! The object is planned first: a plain object is one segment; a Swift DLO is the listing
//! of its prefix (segment names with a numeric suffix must be contiguous, so a missing
//! segment is found rather than silently skipped, as Swift itself would); a Swift SLO is its
//! `multipart-manifest=get` list; an S3 multipart object is read by ranges of itself.
//! Every piece's length is checked, so a short or missing segment is an
//! [`ErrorKind::Integrity`] error, never a truncated success; each segment whose MD5 is
//! known (SLO manifest, DLO listing, a plain object's ETag) is checked against it.
//!
//! Two ways out:
//! - [`download_to_file`]: `jobs` workers each take a whole segment (a segment without a
//!   known MD5 is split into ranged pieces of `piece_size`), stream it through a small
//!   buffer, check its MD5 on the worker and write it at its offset with positional writes:
//!   no reordering, memory `jobs x 8 MiB`.
//! - [`download`] into any `Write` (stdout): pieces of at most `piece_size` are fetched by
//!   the workers into a pool of `jobs + 1` buffers and written in order by the calling
//!   thread; memory `(jobs + 1) x piece_size`.
//!
//! Whole-object digests (MD5, SHA-256, SHA-512 of all the bytes, in order) cost a serial pass
//! each, so they are computed only when [`DownloadOptions::digests`] asks; the summary lists
//! which were. A plain object's ETag is the MD5 of all its bytes, so it is checked in that
//! same ordered pass (the object is split into ranged pieces for parallelism).

use crate::error::{Error, ErrorKind, Result};
use crate::hash::Sha512;
use crate::hash::{normalize_etag, Checksums, SegmentedMd5};
use crate::pool::Pool;
use crate::store::{list_all, Manifest, ObjectPath, ObjectStore};
use crate::upload::{mib_s, Progress};
use md5::{Digest, Md5};
use serde::Serialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::time::Instant;

/// Default parallel GETs. Measured on the local one-node Swift (2 shared cores, loaded by
/// other work; 256 MiB SLO of 64 MiB segments to a file, 2 alternating rounds): `-j 2`
/// 2.3-2.7 s, `-j 4` 1.9-2.9 s, `-j 8` 1.6-1.7 s; the single proxy process is the limit,
/// and 4 keeps the stream bound `(jobs + 1) x piece` at 160 MiB.
pub const DEFAULT_JOBS: usize = 4;
/// Default piece (ranged GET, and buffer when the output is a stream) size: 32 MiB, so the
/// stream bound `(jobs + 1) x piece` stays at 160 MiB with the default jobs while each GET
/// is long enough that the request round trip is noise.
pub const DEFAULT_PIECE_SIZE: u64 = 32 << 20;
/// Buffer of each worker when writing a file at offsets.
const FILE_CHUNK: usize = 8 << 20;

pub use crate::hash::Digests;

/// Download settings.
#[derive(Clone)]
pub struct DownloadOptions {
    /// Parallel GETs.
    pub jobs: usize,
    /// Largest single GET (and buffer, when writing a stream) in bytes.
    pub piece_size: u64,
    /// Whole-object digests to compute (none by default; segment MD5s are always checked).
    pub digests: Digests,
    /// Progress callback (bytes written).
    pub progress: Option<Progress>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            jobs: DEFAULT_JOBS,
            piece_size: DEFAULT_PIECE_SIZE,
            digests: Digests::NONE,
            progress: None,
        }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("jobs", &self.jobs)
            .field("piece_size", &self.piece_size)
            .field("digests", &self.digests)
            .finish_non_exhaustive()
    }
}

/// What a download did.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadSummary {
    /// Source URL.
    pub url: String,
    /// `single`, `dlo`, `slo` or `multipart`.
    pub kind: String,
    /// Bytes written.
    pub bytes: u64,
    /// Segments read.
    pub segments: u64,
    /// Segments whose MD5 was checked against their ETag.
    pub segments_verified: u64,
    /// Whole-object digests of what was written; only those named in `digests` are set
    /// (the others are empty).
    pub checksums: Checksums,
    /// Which whole-object digests were computed (`md5`, `sha256`, `sha512`).
    pub digests: Vec<String>,
    /// Wall time in seconds.
    pub duration_secs: f64,
    /// MiB/s over the wall time.
    pub throughput_mib_s: f64,
}

/// One segment to read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedSegment {
    /// Object to GET.
    pub path: ObjectPath,
    /// Byte range of that object (None: all of it).
    pub range: Option<Range<u64>>,
    /// Expected length.
    pub size: u64,
    /// Expected MD5 (hex) of these bytes, when known.
    pub md5: Option<String>,
}

/// The read plan of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// `single`, `dlo`, `slo` or `multipart`.
    pub kind: String,
    /// Segments in order.
    pub segments: Vec<PlannedSegment>,
    /// Total bytes.
    pub size: u64,
}

/// Works out which objects and ranges make up `src`.
pub fn plan(store: &dyn ObjectStore, src: &ObjectPath) -> Result<Plan> {
    let info = store.head(src)?;
    let url = store.url(src);
    let whole = |kind: &str, md5: Option<String>| Plan {
        kind: kind.into(),
        segments: if info.size == 0 {
            vec![]
        } else {
            vec![PlannedSegment {
                path: src.clone(),
                range: None,
                size: info.size,
                md5,
            }]
        },
        size: info.size,
    };
    match &info.manifest {
        None => {
            let md5 = info
                .etag
                .clone()
                .filter(|e| e.len() == 32 && e.bytes().all(|b| b.is_ascii_hexdigit()));
            Ok(whole("single", md5))
        }
        Some(Manifest::S3Multipart { .. }) => Ok(whole("multipart", None)),
        Some(Manifest::Slo) => {
            let segs = store.get_slo_manifest(src)?;
            let segments: Vec<PlannedSegment> = segs
                .into_iter()
                .filter(|s| s.size > 0)
                .map(|s| PlannedSegment {
                    path: s.path,
                    range: None,
                    size: s.size,
                    md5: Some(normalize_etag(&s.etag)),
                })
                .collect();
            let size = total_size(&url, "SLO manifest", &segments)?;
            if size != info.size {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    "download",
                    &url,
                    format!(
                        "SLO manifest lists {size} bytes, server reports {}",
                        info.size
                    ),
                ));
            }
            Ok(Plan {
                kind: "slo".into(),
                segments,
                size,
            })
        }
        Some(Manifest::Dlo { container, prefix }) => {
            let entries = list_all(store, container, prefix)?;
            check_contiguous(&url, prefix, entries.iter().map(|e| e.name.as_str()))?;
            let segments: Vec<PlannedSegment> = entries
                .into_iter()
                .filter(|e| e.size > 0)
                .map(|e| PlannedSegment {
                    path: ObjectPath::new(container, e.name),
                    range: None,
                    size: e.size,
                    md5: Some(e.etag).filter(|e| e.len() == 32),
                })
                .collect();
            let size = total_size(&url, "DLO listing", &segments)?;
            Ok(Plan {
                kind: "dlo".into(),
                segments,
                size,
            })
        }
    }
}

/// The sum of the segment sizes a server listed: sizes come from the network, so a sum
/// past what any object can hold (u64, or an `i64` offset for the file we write) is a lie,
/// refused before anything is planned from it.
fn total_size(url: &str, what: &str, segments: &[PlannedSegment]) -> Result<u64> {
    segments
        .iter()
        .try_fold(0u64, |a, s| a.checked_add(s.size))
        .filter(|t| *t <= i64::MAX as u64)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Integrity,
                "download",
                url,
                format!("{what} sizes add up past 2^63 bytes"),
            )
        })
}

/// When every segment name ends in digits of one width after the prefix (Cloud Images'
/// `-00001`, python-swiftclient's `/00000000`), the numbers must run without gaps.
fn check_contiguous<'a>(
    url: &str,
    prefix: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<()> {
    let mut nums = Vec::new();
    for n in names {
        let tail = &n[prefix.len().min(n.len())..];
        let digits = tail.rsplit('/').next().unwrap_or(tail);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 18 {
            return Ok(());
        }
        // Only the final path component may vary (same directory prefix for every segment).
        nums.push((
            tail.len() - digits.len(),
            tail[..tail.len() - digits.len()].to_string(),
            digits.parse::<u64>().unwrap_or(0),
        ));
    }
    if nums.is_empty() {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            url,
            format!("DLO has no segments under prefix {prefix:?}"),
        ));
    }
    if nums.iter().any(|(_, d, _)| d != &nums[0].1) {
        return Ok(());
    }
    for w in nums.windows(2) {
        if w[1].2 != w[0].2 + 1 {
            return Err(Error::new(
                ErrorKind::Integrity,
                "download",
                url,
                format!("DLO segment {} is missing (after {})", w[0].2 + 1, w[0].2),
            ));
        }
    }
    Ok(())
}

struct Piece {
    seg: usize,
    path: ObjectPath,
    range: Option<Range<u64>>,
    len: u64,
    /// Offset of the piece in the output.
    at: u64,
    /// The expected MD5 when this piece is a whole segment whose MD5 is known: checked by
    /// the worker that fetches it.
    md5: Option<String>,
    last_of_segment: bool,
}

/// Where the bytes go.
enum Sink<'a> {
    /// In order, by the calling thread.
    Writer(&'a mut dyn Write),
    /// At offsets, by the workers.
    File(&'a File),
}

/// Downloads `src` into `out`, in order. See the module documentation.
pub fn download(
    store: &dyn ObjectStore,
    src: &ObjectPath,
    out: &mut dyn Write,
    opts: &DownloadOptions,
) -> Result<DownloadSummary> {
    run(store, src, Sink::Writer(out), opts)
}

/// Downloads `src` into `file` (from offset 0; the file is extended or truncated to the
/// object's size) with positional writes by the workers. See the module documentation.
pub fn download_to_file(
    store: &dyn ObjectStore,
    src: &ObjectPath,
    file: &File,
    opts: &DownloadOptions,
) -> Result<DownloadSummary> {
    run(store, src, Sink::File(file), opts)
}

/// The whole-object digests and the MD5 of a segment split into several pieces, fed in
/// order; each serial digest runs on its own thread for a large piece. The whole-object MD5
/// and the segment MD5 share one pass ([`SegmentedMd5`]).
struct Ordered {
    /// Whole-object MD5 (valid only when asked for: then every piece is fed) and the MD5
    /// of the current segment.
    md5: SegmentedMd5,
    want_md5: bool,
    sha256: Option<Sha256>,
    sha512: Option<Sha512>,
}

impl Ordered {
    /// The whole-object digests asked for (empty strings for the others).
    fn finish(self) -> Checksums {
        Checksums {
            md5: if self.want_md5 {
                self.md5.finish()
            } else {
                String::new()
            },
            sha256: self
                .sha256
                .map(|h| hex::encode(h.finalize()))
                .unwrap_or_default(),
            sha512: self.sha512.map(Sha512::finish_hex).unwrap_or_default(),
        }
    }

    fn update(&mut self, data: &[u8], seg: bool) {
        let Ordered {
            md5,
            want_md5,
            sha256,
            sha512,
        } = self;
        std::thread::scope(|s| {
            if let Some(h) = sha512 {
                s.spawn(|| h.update(data));
            }
            if let Some(h) = sha256 {
                s.spawn(|| h.update(data));
            }
            if seg || *want_md5 {
                md5.update(data);
            }
        });
    }
}

fn run(
    store: &dyn ObjectStore,
    src: &ObjectPath,
    mut sink: Sink<'_>,
    opts: &DownloadOptions,
) -> Result<DownloadSummary> {
    let start = Instant::now();
    let plan = plan(store, src)?;
    let url = store.url(src);
    let piece = opts.piece_size.max(1);
    let to_file = matches!(sink, Sink::File(_));
    // A plain object's MD5 covers all of it: split into ranges, it is checked in order.
    let split_single = plan.kind == "single" && plan.size > piece;
    let ordered = !to_file || opts.digests.any() || split_single;
    let pieces = cut_pieces(&plan, piece, ordered);
    if let Sink::File(f) = &sink {
        f.set_len(plan.size)
            .map_err(|e| Error::io("download", "output", e))?;
    }
    let jobs = opts.jobs.max(1);
    let pool = if ordered {
        Pool::new(jobs + 1, piece.min(plan.size.max(1)) as usize)
    } else {
        Pool::new(jobs, FILE_CHUNK.min(piece.min(plan.size.max(1)) as usize))
    };
    let fetch = Fetch {
        store,
        pieces: &pieces,
        pool: &pool,
        next: AtomicUsize::new(0),
        stop: AtomicBool::new(false),
        verified: AtomicU64::new(0),
        file: match &sink {
            Sink::File(f) => Some(*f),
            Sink::Writer(_) => None,
        },
        ordered,
    };
    let mut out = Collect {
        fetch: &fetch,
        plan: &plan,
        opts,
        url: &url,
        sink: &mut sink,
        hashes: Ordered {
            md5: SegmentedMd5::new(),
            want_md5: opts.digests.md5,
            sha256: opts.digests.sha256.then(Sha256::new),
            sha512: opts.digests.sha512.then(Sha512::new),
        },
        ready: BTreeMap::new(),
        want: 0,
        written: 0,
    };
    std::thread::scope(|s| {
        let (tx, rx) = channel::<(usize, Result<Option<Vec<u8>>>)>();
        for _ in 0..jobs {
            let tx = tx.clone();
            let fetch = &fetch;
            s.spawn(move || fetch.worker(tx));
        }
        drop(tx);
        out.collect(rx)
    })?;
    let (written, hashes) = (out.written, out.hashes);
    match &mut sink {
        Sink::Writer(out) => out.flush(),
        Sink::File(_) => Ok(()),
    }
    .map_err(|e| Error::io("download", "output", e))?;
    if written != plan.size {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            &url,
            format!("wrote {written} bytes, expected {}", plan.size),
        ));
    }
    let secs = start.elapsed().as_secs_f64();
    Ok(DownloadSummary {
        url,
        kind: plan.kind,
        bytes: written,
        segments: plan.segments.len() as u64,
        segments_verified: fetch.verified.into_inner(),
        checksums: hashes.finish(),
        digests: opts.digests.names(),
        duration_secs: secs,
        throughput_mib_s: mib_s(written, secs),
    })
}

/// Cuts the planned segments into the pieces the workers fetch: pieces of at most
/// `piece` bytes, except that a segment with a known MD5 streamed to a file (not
/// `ordered`) is one piece, checked by its worker.
fn cut_pieces(plan: &Plan, piece: u64, ordered: bool) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut at = 0u64;
    for (i, s) in plan.segments.iter().enumerate() {
        let base = s.range.as_ref().map_or(0, |r| r.start);
        let whole = s.md5.is_some() && !ordered;
        let step = if whole { s.size } else { piece };
        let mut off = 0;
        while off < s.size {
            let n = (s.size - off).min(step);
            let whole_segment = off == 0 && n == s.size;
            pieces.push(Piece {
                seg: i,
                path: s.path.clone(),
                range: (!(whole_segment && s.range.is_none())).then(|| base + off..base + off + n),
                len: n,
                at,
                md5: s.md5.clone().filter(|_| whole_segment),
                last_of_segment: off + n == s.size,
            });
            off += n;
            at += n;
        }
    }
    pieces
}

/// What the fetching workers share.
struct Fetch<'a> {
    store: &'a dyn ObjectStore,
    pieces: &'a [Piece],
    pool: &'a Pool,
    next: AtomicUsize,
    stop: AtomicBool,
    /// Segments whose MD5 was checked.
    verified: AtomicU64,
    /// Written at offsets by the workers when set.
    file: Option<&'a File>,
    /// Buffers go to the calling thread, in order, instead of back to the pool.
    ordered: bool,
}

impl Fetch<'_> {
    /// A worker: takes the next piece, GETs it (retrying), hands the outcome on.
    fn worker(&self, tx: std::sync::mpsc::Sender<(usize, Result<Option<Vec<u8>>>)>) {
        let policy = self.store.retry_policy();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                return;
            }
            let mut buf = self.pool.take();
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= self.pieces.len() || self.stop.load(Ordering::SeqCst) {
                self.pool.give(buf);
                return;
            }
            let p = &self.pieces[i];
            let r = match policy.run(|_| fetch(self.store, p, &mut buf, self.file, self.ordered)) {
                Ok(()) => {
                    if p.md5.is_some() {
                        self.verified.fetch_add(1, Ordering::SeqCst);
                    }
                    if self.ordered {
                        Ok(Some(buf))
                    } else {
                        self.pool.give(buf);
                        Ok(None)
                    }
                }
                Err(e) => {
                    self.pool.give(buf);
                    Err(e)
                }
            };
            if tx.send((i, r)).is_err() {
                return;
            }
        }
    }
}

/// The calling thread's side: puts the fetched pieces in order, hashes and writes them.
struct Collect<'a, 'w> {
    fetch: &'a Fetch<'a>,
    plan: &'a Plan,
    opts: &'a DownloadOptions,
    url: &'a str,
    sink: &'a mut Sink<'w>,
    hashes: Ordered,
    /// Fetched pieces waiting for those before them.
    ready: BTreeMap<usize, Vec<u8>>,
    /// The next piece to write.
    want: usize,
    written: u64,
}

impl Collect<'_, '_> {
    /// Takes every outcome the workers send; the first failure stops them.
    fn collect(
        &mut self,
        rx: std::sync::mpsc::Receiver<(usize, Result<Option<Vec<u8>>>)>,
    ) -> Result<()> {
        let pieces = self.fetch.pieces;
        let mut outcome: Result<()> = Ok(());
        for (i, r) in rx.iter() {
            if outcome.is_err() {
                if let Ok(Some(b)) = r {
                    self.fetch.pool.give(b);
                }
                continue;
            }
            match r {
                Ok(Some(b)) => {
                    self.ready.insert(i, b);
                }
                Ok(None) => {
                    self.written += pieces[i].len;
                    if let Some(prog) = &self.opts.progress {
                        prog(pieces[i].len);
                    }
                    self.want += 1;
                }
                Err(e) => outcome = Err(e.with_segment(pieces[i].seg as u64)),
            }
            if outcome.is_ok() {
                outcome = self.write_ready();
            }
            if outcome.is_err() {
                self.fetch.stop.store(true, Ordering::SeqCst);
                for (_, b) in std::mem::take(&mut self.ready) {
                    self.fetch.pool.give(b);
                }
            }
        }
        if outcome.is_ok() && self.want != pieces.len() {
            outcome = Err(Error::new(
                ErrorKind::Integrity,
                "download",
                self.url,
                format!("only {} of {} pieces arrived", self.want, pieces.len()),
            ));
        }
        outcome
    }

    /// Writes the pieces that are next in order; a segment split into pieces is checked
    /// against its MD5 here, in order.
    fn write_ready(&mut self) -> Result<()> {
        while let Some(buf) = self.ready.remove(&self.want) {
            let p = &self.fetch.pieces[self.want];
            let seg_expect = self.plan.segments[p.seg]
                .md5
                .as_ref()
                .filter(|_| p.md5.is_none());
            self.hashes.update(&buf, seg_expect.is_some());
            if let Sink::Writer(out) = &mut *self.sink {
                if let Err(e) = out.write_all(&buf) {
                    self.fetch.pool.give(buf);
                    return Err(Error::io("download", "output", e));
                }
            }
            self.written += buf.len() as u64;
            if let Some(prog) = &self.opts.progress {
                prog(buf.len() as u64);
            }
            self.fetch.pool.give(buf);
            self.want += 1;
            if p.last_of_segment {
                // Ends the segment lane whether or not it was fed, so the next one
                // starts fresh.
                let got = self.hashes.md5.end_segment();
                if let Some(expect) = seg_expect {
                    if &got != expect {
                        return Err(Error::new(
                            ErrorKind::Integrity,
                            "download",
                            self.fetch.store.url(&p.path),
                            format!("segment MD5 {got} differs from its ETag {expect}"),
                        )
                        .with_segment(p.seg as u64));
                    }
                    self.fetch.verified.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        Ok(())
    }
}

/// GETs one piece, checking its length (a body cut short is transient) and, when it is a
/// whole segment with a known MD5, its MD5. With `keep`, the bytes stay in `buf` (sized to
/// the piece) for the ordered pass; otherwise `buf` is a reusable chunk. With `file`, the
/// bytes are written at the piece's offset.
fn fetch(
    store: &dyn ObjectStore,
    p: &Piece,
    buf: &mut Vec<u8>,
    file: Option<&File>,
    keep: bool,
) -> Result<()> {
    let target = || store.url(&p.path);
    let cap = if keep {
        p.len as usize
    } else {
        (p.len as usize).min(FILE_CHUNK)
    };
    if buf.len() < cap {
        buf.resize(cap, 0);
    }
    let mut md5 = p.md5.as_ref().map(|_| Md5::new());
    // A piece from byte 0 is asked for without the server's hash (`get_range_unhashed`):
    // the client checks what it needs itself.
    let base = p.range.as_ref().map_or(0, |r| r.start);
    let split = base == 0 && p.len > 1;
    let got = if p.len == 0 {
        store.get(&p.path, p.range.clone())
    } else {
        crate::store::get_range_unhashed(store, &p.path, base..base + p.len)
    };
    let s = match got {
        // A range past the end: the segment is shorter than its listing says.
        Err(e) if split && (e.status() == Some(416) || e.kind() == ErrorKind::Usage) => {
            return Err(Error::new(
                ErrorKind::Integrity,
                "download",
                target(),
                format!("segment is shorter than the {} bytes listed ({e})", p.len),
            ))
        }
        r => r?,
    };
    if s.len != p.len {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            target(),
            format!("segment is {} bytes, the listing says {}", s.len, p.len),
        ));
    }
    let mut r = s.reader;
    let mut done = 0u64;
    while done < p.len {
        let (lo, n) = if keep {
            (
                done as usize,
                (p.len - done).min(FILE_CHUNK as u64) as usize,
            )
        } else {
            (0, (p.len - done).min(cap as u64) as usize)
        };
        let chunk = &mut buf[lo..lo + n];
        r.read_exact(chunk)
            .map_err(|e| Error::io("download", target(), e).with_kind(ErrorKind::Transient))?;
        if let Some(h) = &mut md5 {
            h.update(&*chunk);
        }
        if let Some(f) = file {
            use std::os::unix::fs::FileExt;
            f.write_all_at(chunk, p.at + done)
                .map_err(|e| Error::io("download", "output", e))?;
            crate::crashpoint::hit("download:mid-stream");
        }
        done += n as u64;
    }
    // A longer body than promised means the object changed under us.
    let mut extra = [0u8; 1];
    if matches!(r.read(&mut extra), Ok(n) if n > 0) {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            target(),
            "body longer than its Content-Length",
        ));
    }
    if keep {
        buf.truncate(p.len as usize);
    }
    if let (Some(h), Some(expect)) = (md5, &p.md5) {
        let got = hex::encode(h.finalize());
        if &got != expect {
            return Err(Error::new(
                ErrorKind::Integrity,
                "download",
                target(),
                format!("segment MD5 {got} differs from its ETag {expect}"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_lists() {
        assert_eq!(Digests::parse("").unwrap(), Digests::NONE);
        assert_eq!(Digests::parse("none").unwrap(), Digests::NONE);
        assert_eq!(Digests::parse("all").unwrap(), Digests::ALL);
        let d = Digests::parse("SHA256, md5").unwrap();
        assert_eq!(d.names(), ["md5", "sha256"]);
        assert!(d.any() && !d.sha512);
        assert!(Digests::parse("crc32").unwrap_err().contains("crc32"));
    }

    #[test]
    fn dlo_numbering_gaps() {
        let ok = ["p-00001", "p-00002", "p-00003"];
        assert!(check_contiguous("u", "p-", ok.into_iter()).is_ok());
        let gap = ["p-00001", "p-00003"];
        let e = check_contiguous("u", "p-", gap.into_iter()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity);
        assert!(e.detail().contains("segment 2 is missing"), "{e}");
    }
}

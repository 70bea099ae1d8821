//! Streaming download of plain and large objects into any `Write`, in order, with bounded
//! memory.
//!
//! The object is planned first: a plain object is one segment; a Swift DLO is the listing
//! of its prefix (segment names with a numeric suffix must be contiguous, so a missing
//! segment is found rather than silently skipped, as Swift itself would); a Swift SLO is its
//! `multipart-manifest=get` list; an S3 multipart object is read by ranges of itself.
//! Segments are split into pieces of at most `piece_size` bytes, fetched by `jobs` workers
//! (each piece retried on its own) into a pool of `jobs + 1` buffers, and written in order
//! by the calling thread, which hashes everything (whole-object MD5/SHA-256/SHA-512, and each
//! segment's MD5 against its listed ETag). Every piece's length is checked, so a short or
//! missing segment is an [`ErrorKind::Integrity`] error, never a truncated success.

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{normalize_etag, Checksums, MultiHasher};
use crate::pool::Pool;
use crate::store::{list_all, Manifest, ObjectPath, ObjectStore};
use crate::upload::{mib_s, Progress};
use md5::{Digest, Md5};
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::channel;
use std::time::Instant;

/// Default parallel GETs. See [`crate::upload::DEFAULT_JOBS`] for the measurements: the
/// same reasoning holds (the hashing, not the number of connections, is the limit).
pub const DEFAULT_JOBS: usize = 4;
/// Default piece (ranged GET and buffer) size: 32 MiB, so the bound `(jobs + 1) x piece`
/// stays at 160 MiB with the default jobs while each GET is long enough that the request
/// round trip is noise (a 64 MiB segment is two pieces).
pub const DEFAULT_PIECE_SIZE: u64 = 32 << 20;

/// Download settings.
#[derive(Clone)]
pub struct DownloadOptions {
    /// Parallel GETs.
    pub jobs: usize,
    /// Largest single GET (and buffer) in bytes.
    pub piece_size: u64,
    /// Progress callback (bytes written).
    pub progress: Option<Progress>,
}

impl Default for DownloadOptions {
    fn default() -> Self {
        DownloadOptions {
            jobs: DEFAULT_JOBS,
            piece_size: DEFAULT_PIECE_SIZE,
            progress: None,
        }
    }
}

impl std::fmt::Debug for DownloadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadOptions")
            .field("jobs", &self.jobs)
            .field("piece_size", &self.piece_size)
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
    /// Whole-object digests of what was written.
    pub checksums: Checksums,
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
            let size = segments.iter().map(|s| s.size).sum();
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
            let size = segments.iter().map(|s| s.size).sum();
            Ok(Plan {
                kind: "dlo".into(),
                segments,
                size,
            })
        }
    }
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
    last_of_segment: bool,
}

/// Downloads `src` into `out`. See the module documentation.
pub fn download(
    store: &dyn ObjectStore,
    src: &ObjectPath,
    out: &mut dyn Write,
    opts: &DownloadOptions,
) -> Result<DownloadSummary> {
    let start = Instant::now();
    let plan = plan(store, src)?;
    let url = store.url(src);
    let piece = opts.piece_size.max(1);
    let mut pieces = Vec::new();
    for (i, s) in plan.segments.iter().enumerate() {
        let base = s.range.as_ref().map_or(0, |r| r.start);
        let mut off = 0;
        while off < s.size {
            let n = (s.size - off).min(piece);
            let whole_segment = off == 0 && n == s.size && s.range.is_none();
            pieces.push(Piece {
                seg: i,
                path: s.path.clone(),
                range: (!whole_segment).then(|| base + off..base + off + n),
                len: n,
                last_of_segment: off + n == s.size,
            });
            off += n;
        }
    }
    let jobs = opts.jobs.max(1);
    let pool = Pool::new(jobs + 1, piece.min(plan.size.max(1)) as usize);
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = channel::<(usize, Result<Vec<u8>>)>();
    let policy = store.retry_policy();

    let mut whole = MultiHasher::new();
    let mut written = 0u64;
    let mut verified = 0u64;
    let result = std::thread::scope(|s| {
        for _ in 0..jobs {
            let tx = tx.clone();
            let (pool, next, stop, pieces) = (&pool, &next, &stop, &pieces);
            s.spawn(move || loop {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let mut buf = pool.take();
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= pieces.len() || stop.load(Ordering::SeqCst) {
                    pool.give(buf);
                    return;
                }
                let p = &pieces[i];
                let r = policy.run(|_| fetch(store, p, &mut buf)).map(|_| buf);
                if tx.send((i, r)).is_err() {
                    return;
                }
            });
        }
        drop(tx);

        let mut ready: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
        let mut want = 0usize;
        let mut seg_md5 = Md5::new();
        let mut outcome: Result<()> = Ok(());
        for (i, r) in rx.iter() {
            if outcome.is_err() {
                if let Ok(b) = r {
                    pool.give(b);
                }
                continue;
            }
            match r {
                Ok(b) => {
                    ready.insert(i, b);
                }
                Err(e) => {
                    outcome = Err(e.with_segment(pieces[i].seg as u64));
                }
            }
            while outcome.is_ok() {
                let Some(buf) = ready.remove(&want) else {
                    break;
                };
                let p = &pieces[want];
                std::thread::scope(|h| {
                    h.spawn(|| seg_md5.update(&buf));
                    whole.update(&buf);
                });
                if let Err(e) = out.write_all(&buf) {
                    outcome = Err(Error::io("download", "output", e));
                }
                written += buf.len() as u64;
                if let Some(prog) = &opts.progress {
                    prog(buf.len() as u64);
                }
                pool.give(buf);
                if p.last_of_segment {
                    let got = hex::encode(std::mem::take(&mut seg_md5).finalize());
                    if let Some(expect) = &plan.segments[p.seg].md5 {
                        if &got != expect {
                            outcome = Err(Error::new(
                                ErrorKind::Integrity,
                                "download",
                                store.url(&p.path),
                                format!("segment MD5 {got} differs from its ETag {expect}"),
                            )
                            .with_segment(p.seg as u64));
                        }
                        verified += 1;
                    }
                }
                want += 1;
            }
            if outcome.is_err() {
                stop.store(true, Ordering::SeqCst);
                for (_, b) in std::mem::take(&mut ready) {
                    pool.give(b);
                }
            }
        }
        if outcome.is_ok() && want != pieces.len() {
            outcome = Err(Error::new(
                ErrorKind::Integrity,
                "download",
                &url,
                format!("only {want} of {} pieces arrived", pieces.len()),
            ));
        }
        outcome
    });
    result?;
    out.flush()
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
        segments_verified: verified,
        checksums: whole.finish(),
        duration_secs: secs,
        throughput_mib_s: mib_s(written, secs),
    })
}

/// GETs one piece into `buf`, checking the length; a body cut short is transient.
fn fetch(store: &dyn ObjectStore, p: &Piece, buf: &mut Vec<u8>) -> Result<()> {
    buf.clear();
    let s = store.get(&p.path, p.range.clone())?;
    if s.len != p.len {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            store.url(&p.path),
            format!("segment is {} bytes, the listing says {}", s.len, p.len),
        ));
    }
    buf.resize(p.len as usize, 0);
    let mut r = s.reader;
    r.read_exact(buf).map_err(|e| {
        Error::io("download", store.url(&p.path), e).with_kind(ErrorKind::Transient)
    })?;
    // A longer body than promised means the object changed under us.
    let mut extra = [0u8; 1];
    if matches!(r.read(&mut extra), Ok(n) if n > 0) {
        return Err(Error::new(
            ErrorKind::Integrity,
            "download",
            store.url(&p.path),
            "body longer than its Content-Length",
        ));
    }
    Ok(())
}

//! Sending segments: the calling thread reads a stream in order into pooled segment
//! buffers (or, for a file or another positional source, cuts it into re-readable ranges,
//! read once in chunks for the digests and again, from the page cache, to be sent); one thread per
//! serial digest hashes them (the MD5 thread computes the whole-object MD5 and the
//! segment's MD5 in one pass, see [`crate::hash::SegmentedMd5`], then hands the segment
//! to the workers); `jobs` workers PUT each segment with its MD5, so the server refuses
//! a corrupted body, and compare the returned ETag. A buffer is shared (never copied)
//! and returns to its pool when its PUT and all digests are done, so the pool's size is
//! the memory bound. A lazy range (positional source, no whole-object digest) skips the
//! digest threads: the store hashes it while sending. The first failure stops the
//! reading and the workers; retries of a single PUT are the store's.

use super::input::{Input, Positional};
use super::options::UploadOptions;
use super::plan::{Existing, Plan, Target};
use crate::error::{Error, ErrorKind, Result};
use crate::hash::{normalize_etag, Checksums, SegmentedMd5, Sha512, StreamDigest};
use crate::pool::Pool;
use crate::store::{Body, HashedSlice, ObjectPath, ObjectStore, PutOptions};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::collections::BTreeMap;
use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// One upload of a large object: where, how, and what a resumed run may skip.
pub(super) struct Upload<'a> {
    pub store: &'a dyn ObjectStore,
    pub dest: &'a ObjectPath,
    pub plan: &'a Plan,
    pub target: &'a Target,
    /// Segments already stored (position -> size, ETag).
    pub existing: &'a Existing,
    pub opts: &'a UploadOptions,
}

/// One stored segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Done {
    pub size: u64,
    pub etag: String,
    pub skipped: bool,
}

/// What sending did: the segments stored, or the first failure.
pub(super) struct Sent {
    /// Bytes read from the input.
    pub total: u64,
    /// Segments cut from it.
    pub count: u64,
    /// Whole-object digests (those chosen).
    pub checksums: Checksums,
    /// Segments stored, by position.
    pub done: BTreeMap<u64, Done>,
    /// The first failure, if any.
    pub failure: Option<Error>,
}

enum JobBody<'p> {
    Buf(Arc<SharedBuf<'p>>),
    /// A range of a positional source, re-read for each attempt.
    Range(Box<dyn Body>),
}

impl JobBody<'_> {
    fn body(&self) -> &dyn Body {
        match self {
            JobBody::Buf(b) => &**b,
            JobBody::Range(r) => &**r,
        }
    }
}

struct Job<'p> {
    index: u64,
    body: JobBody<'p>,
    /// Hex MD5 of the body; empty for a lazy range.
    md5: String,
}

/// What the MD5 thread is fed: bytes, then the end of a segment with its body, which it
/// passes on to the workers once the segment's MD5 is known.
enum HashMsg<'p> {
    Data(Arc<SharedBuf<'p>>),
    End(Job<'p>),
}

/// State the reader and the workers share.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    failure: Mutex<Option<Error>>,
    done: Mutex<BTreeMap<u64, Done>>,
}

impl Shared {
    fn fail(&self, e: Error) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(mut f) = self.failure.lock() {
            f.get_or_insert(e);
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
}

/// Sends the input's segments (the already read `first` one, then the rest) to the
/// plan's destination; never fails itself: the first failure is in [`Sent::failure`].
pub(super) fn send(
    up: &Upload<'_>,
    input: &mut Input<'_>,
    first: Option<Vec<u8>>,
    pos: Option<&(Positional, u64)>,
    lazy: bool,
) -> Sent {
    let seg_size = up.plan.segment_size;
    let jobs = up.opts.jobs.max(1);
    // Files are re-read by range rather than buffered (see `upload`).
    let file = matches!(pos, Some((Positional::File(_), _)));
    let buffered = seg_size <= up.opts.max_buffer && !lazy && !file;
    let chunk = (8u64 << 20).min(seg_size) as usize;
    let pool = if buffered {
        Pool::new(jobs + 1, seg_size as usize)
    } else {
        // Positional segments: only the digests need memory.
        Pool::new(4, chunk)
    };
    let shared = Shared::default();
    let (job_tx, job_rx) = channel::<Job>();
    let job_rx = Mutex::new(job_rx);
    let (md5_tx, md5_rx) = channel::<HashMsg>();
    let mut read = (0, 0, Checksums::default());
    crate::crashpoint::hit("upload:before-first-segment");
    std::thread::scope(|s| {
        // Lazy segments skip the digest threads: nothing to hash before sending.
        let lazy_tx = lazy.then(|| job_tx.clone());
        let md5_thread = s.spawn(move || md5_lane(md5_rx, job_tx));
        let (sha256, sha256_thread) = digest_thread::<Sha256>(s, up.opts.digests.sha256);
        let (sha512, sha512_thread) = digest_thread::<Sha512>(s, up.opts.digests.sha512);
        for _ in 0..jobs {
            s.spawn(|| worker(up, &shared, &job_rx));
        }
        let mut reader = Reader {
            input,
            first,
            pos,
            buffered,
            chunk,
            seg_size,
            pool: &pool,
            plan: up.plan,
            shared: &shared,
            feeds: Feeds {
                md5: md5_tx,
                sha256,
                sha512,
                lazy: lazy_tx,
            },
            total: 0,
            count: 0,
        };
        if let Err(e) = reader.run() {
            shared.fail(e);
        }
        let (total, count) = (reader.total, reader.count);
        // Closes the channels: the digest threads finish, then the workers.
        drop(reader);
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        let md5 = md5_thread.join().unwrap_or_default();
        let checksums = Checksums {
            // Lazy segments never went through the MD5 thread.
            md5: if lazy { String::new() } else { md5 },
            sha256: join(sha256_thread),
            sha512: join(sha512_thread),
        };
        read = (total, count, checksums);
    });
    Sent {
        total: read.0,
        count: read.1,
        checksums: read.2,
        done: shared.done.into_inner().unwrap_or_default(),
        failure: shared.failure.into_inner().ok().flatten(),
    }
}

/// The MD5 thread: whole-object and segment MD5 in one pass; each segment goes on to the
/// workers with its MD5. Returns the whole-object MD5.
fn md5_lane<'p>(rx: Receiver<HashMsg<'p>>, jobs: Sender<Job<'p>>) -> String {
    let mut h = SegmentedMd5::new();
    for m in rx {
        match m {
            HashMsg::Data(b) => h.update(&b),
            HashMsg::End(mut job) => {
                job.md5 = h.end_segment();
                // Workers gone (failure): keep draining so the reader never blocks.
                let _ = jobs.send(job);
            }
        }
    }
    h.finish()
}

/// A worker: stores segments until the channel closes; after a failure it only drains.
fn worker(up: &Upload<'_>, shared: &Shared, jobs: &Mutex<Receiver<Job<'_>>>) {
    loop {
        let job = match jobs.lock() {
            Ok(r) => r.recv(),
            Err(_) => return,
        };
        let Ok(job) = job else { return };
        if shared.stopped() {
            continue;
        }
        let res = store_job(up, &job);
        let index = job.index;
        // The buffer goes back to the pool before anything else waits on it.
        drop(job);
        match res {
            Ok(d) => {
                if let Some(p) = &up.opts.progress {
                    p(d.size);
                }
                if let Ok(mut m) = shared.done.lock() {
                    m.insert(index, d);
                    if m.len() == 1 {
                        crate::crashpoint::hit("upload:after-first-segment");
                    }
                }
            }
            Err(e) => shared.fail(e.with_segment(index + up.plan.layout.first_index)),
        }
    }
}

/// Skips a segment a resumed upload already stored with the same bytes; sends it
/// otherwise.
fn store_job(up: &Upload<'_>, job: &Job<'_>) -> Result<Done> {
    let body = job.body.body();
    let len = body.len();
    match up.existing.get(&job.index) {
        Some((sz, et)) if *sz == len && already_stored(body, &job.md5, et) => Ok(Done {
            size: len,
            etag: normalize_etag(et),
            skipped: true,
        }),
        _ => store_segment(up, job, body).map(|etag| Done {
            size: len,
            etag,
            skipped: false,
        }),
    }
}

/// The senders into the digest threads and (lazy ranges) straight to the workers.
struct Feeds<'p> {
    md5: Sender<HashMsg<'p>>,
    sha256: Option<Sender<Arc<SharedBuf<'p>>>>,
    sha512: Option<Sender<Arc<SharedBuf<'p>>>>,
    lazy: Option<Sender<Job<'p>>>,
}

impl<'p> Feeds<'p> {
    /// Hands bytes to every digest; false when a digest thread is gone.
    fn data(&self, b: Arc<SharedBuf<'p>>) -> bool {
        let other = |t: &Option<Sender<Arc<SharedBuf<'p>>>>| {
            t.as_ref().is_none_or(|t| t.send(Arc::clone(&b)).is_ok())
        };
        other(&self.sha256) && other(&self.sha512) && self.md5.send(HashMsg::Data(b)).is_ok()
    }

    /// Ends a segment: to the MD5 thread, or straight to the workers for a lazy range.
    fn end(&self, job: Job<'p>) -> bool {
        match (&self.lazy, &job.body) {
            (Some(tx), JobBody::Range(_)) => tx.send(job).is_ok(),
            _ => self.md5.send(HashMsg::End(job)).is_ok(),
        }
    }
}

/// The reading side: cuts the input into segments and feeds them on.
struct Reader<'r, 'i, 'p> {
    input: &'r mut Input<'i>,
    /// The first segment, already read while deciding the object's form.
    first: Option<Vec<u8>>,
    pos: Option<&'r (Positional, u64)>,
    buffered: bool,
    chunk: usize,
    seg_size: u64,
    pool: &'p Pool,
    plan: &'r Plan,
    shared: &'r Shared,
    feeds: Feeds<'p>,
    total: u64,
    count: u64,
}

impl<'p> Reader<'_, '_, 'p> {
    /// Reads segments until the input ends, a digest thread or the workers are gone, or
    /// a failure stops the upload.
    fn run(&mut self) -> Result<()> {
        loop {
            if self.shared.stopped() {
                return Ok(());
            }
            let Some(body) = self.next_body()? else {
                return Ok(());
            };
            self.total += body.body().len();
            let job = Job {
                index: self.count,
                body,
                md5: String::new(),
            };
            self.count += 1;
            self.plan.check_count(self.count)?;
            if !self.feeds.end(job) {
                return Ok(());
            }
        }
    }

    /// The next segment's body, its bytes already handed to the digests; `None` at the
    /// end (or when the digest threads are gone).
    fn next_body(&mut self) -> Result<Option<JobBody<'p>>> {
        if self.buffered {
            return self.next_buffer();
        }
        let Some((src, len)) = self.pos else {
            return Ok(None);
        };
        let n = (len - self.total).min(self.seg_size);
        if n == 0 {
            return Ok(None);
        }
        let range = src.body(self.total, n);
        if self.feeds.lazy.is_some() {
            // Hashed by the store while it is sent.
            return Ok(Some(JobBody::Range(range)));
        }
        // Hash the range chunk by chunk, in order, then send it with its MD5.
        if !self.hash_range(&*range)? {
            return Ok(None);
        }
        Ok(Some(JobBody::Range(range)))
    }

    /// The next segment read into a pooled buffer.
    fn next_buffer(&mut self) -> Result<Option<JobBody<'p>>> {
        let seg_size = self.seg_size as usize;
        let shared = match self.first.take() {
            Some(buf) => {
                self.pool.adopt();
                let len = buf.len();
                SharedBuf {
                    buf,
                    len,
                    pool: self.pool,
                }
            }
            None => {
                let mut buf = self.pool.take();
                if buf.len() < seg_size {
                    // Zeroed once per buffer, then reused as it is.
                    buf.resize(seg_size, 0);
                }
                let n = self
                    .input
                    .read_full(&mut buf[..seg_size])
                    .map_err(|e| Error::io("upload", "input", e))?;
                if n == 0 {
                    self.pool.give(buf);
                    return Ok(None);
                }
                SharedBuf {
                    buf,
                    len: n,
                    pool: self.pool,
                }
            }
        };
        let shared = Arc::new(shared);
        if !self.feeds.data(shared.clone()) {
            return Ok(None);
        }
        Ok(Some(JobBody::Buf(shared)))
    }

    /// Feeds a range to the digests in pooled chunks; false when they are gone.
    fn hash_range(&self, range: &dyn Body) -> Result<bool> {
        let mut r = range
            .reader()
            .map_err(|e| Error::io("upload", "input", e))?;
        let mut left = range.len() as usize;
        while left > 0 {
            let mut buf = self.pool.take();
            let want = left.min(self.chunk);
            if buf.len() < want {
                buf.resize(want, 0);
            }
            r.read_exact(&mut buf[..want])
                .map_err(|e| Error::io("upload", "input", e))?;
            left -= want;
            let shared = Arc::new(SharedBuf {
                buf,
                len: want,
                pool: self.pool,
            });
            if !self.feeds.data(shared) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// PUTs one segment (or part) with its MD5 when known; returns the ETag the store
/// confirmed.
fn store_segment(up: &Upload<'_>, job: &Job<'_>, body: &dyn Body) -> Result<String> {
    let (store, dest, upload_id) = (up.store, up.dest, up.target.upload_id());
    // Without an MD5 (a lazy range) the store hashes what it sends and checks the ETag.
    let md5 = (!job.md5.is_empty()).then_some(job.md5.as_str());
    // A buffer's MD5 was computed from this very memory: a store that writes it in-process
    // takes it as the ETag rather than hashing the bytes again. A range is read again
    // from its source, which may have changed since it was hashed, so it carries no claim.
    let hashed = match (&job.body, md5, body.as_slice()) {
        (JobBody::Buf(_), Some(m), Some(bytes)) => Some(HashedSlice::new(bytes, m)),
        _ => None,
    };
    let body: &dyn Body = match &hashed {
        Some(h) => h,
        None => body,
    };
    let path = up.plan.segment_path(job.index);
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

/// A thread hashing with `H` every buffer sent to it, returning the hex digest; neither
/// thread nor sender when the digest is not chosen (`on` false), so nothing is queued.
fn digest_thread<'s, 'p: 's, H: StreamDigest + 's>(
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
        let mut h = H::start();
        for b in rx {
            h.feed(&b[..]);
        }
        h.hex()
    });
    (Some(tx), Some(handle))
}

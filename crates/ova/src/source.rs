//! The input side of unpacking: the compressed stream is hashed (MD5 always,
//! SHA256 on request) and counted as it is read, gunzipped when it starts with
//! the gzip magic (plain tar otherwise, as an OVA is), and the decompressed
//! side is held to the size and ratio caps so a bomb stops early.
//!
//! When the caller allows more than one job, the digests are computed on
//! threads of their own, and an indexed multi-member gzip
//! ([`crate::gzip::indexed`], recognised by its first member's `CI`
//! subfield) is inflated member by member on several threads
//! ([`crate::gzip::MemberReader`]); other gzip goes through flate2's
//! sequential decoder.

use crate::error::{Error, ErrorKind, Result};
use crate::gzip::{is_indexed_head, MemberReader};
use flate2::bufread::MultiGzDecoder;
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

/// Caps for untrusted archives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most entries (of any type) in the archive.
    pub max_members: usize,
    /// Largest single member.
    pub max_member_size: u64,
    /// Most decompressed bytes in all.
    pub max_total_size: u64,
    /// Most decompressed bytes per compressed byte, checked once
    /// `ratio_grace` bytes have come out (small archives compress absurdly well).
    pub max_ratio: u64,
    pub ratio_grace: u64,
}

impl Default for Limits {
    /// Sized for VHD packages: a VHD is at most 2040 GiB of data plus metadata;
    /// a real dynamic chain compresses well under 100:1, and deflate itself
    /// cannot exceed about 1032:1, so 200:1 past the first 256 MiB only stops
    /// bombs (raise it for fixed, nearly empty disks).
    fn default() -> Self {
        Limits {
            max_members: 256,
            max_member_size: 2048 << 30,
            max_total_size: 8 << 40,
            max_ratio: 200,
            ratio_grace: 256 << 20,
        }
    }
}

/// Digests of the compressed stream a caller expects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expected {
    pub md5: Option<[u8; 16]>,
    pub sha256: Option<[u8; 32]>,
}

impl Expected {
    /// Parses hex digests (either may be absent).
    pub fn from_hex(md5: Option<&str>, sha256: Option<&str>) -> Result<Expected> {
        fn parse<const N: usize>(s: &str, what: &str) -> Result<[u8; N]> {
            let mut out = [0u8; N];
            hex::decode_to_slice(s.trim(), &mut out).map_err(|_| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!("expected {what} is not {} hex digits: {s:?}", N * 2),
                )
            })?;
            Ok(out)
        }
        Ok(Expected {
            md5: md5.map(|s| parse(s, "MD5")).transpose()?,
            sha256: sha256.map(|s| parse(s, "SHA256")).transpose()?,
        })
    }
}

/// What was read, once the stream is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStats {
    /// Bytes of the (compressed) input.
    pub compressed_bytes: u64,
    /// Bytes after gunzip (equal to the input for a plain tar).
    pub uncompressed_bytes: u64,
    pub gzip: bool,
    /// True when the stream was an indexed multi-member gzip inflated on
    /// several threads.
    pub parallel: bool,
    /// Hex digests of the compressed input.
    pub md5: String,
    pub sha256: Option<String>,
}

/// Hashes and counts what passes through.
struct Hashing<R> {
    inner: R,
    digests: Digests,
    count: u64,
    progress: Option<ProgressFn>,
}

/// Called with the number of compressed bytes read so far.
pub type ProgressFn = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

/// Chunks queued per hashing thread: 8 MiB at the 256 KiB reads of the
/// decoder's buffer.
const HASH_QUEUE: usize = 32;

/// Where the digests of the compressed stream are computed.
enum Digests {
    /// On the reading thread.
    Inline { md5: Md5, sha256: Option<Sha256> },
    /// Each on its own thread, fed with copies of what was read. MD5 and
    /// SHA256 cost more CPU than inflating a typical image (measured on an
    /// indexed package of a VHD chain: 42% and 18% of unpack's samples, inflate 4%),
    /// and MD5 cannot be split, so off the reading thread they overlap with
    /// the inflating and with each other.
    Threads {
        md5: HashThread<Md5>,
        sha256: Option<HashThread<Sha256>>,
    },
}

/// A digest updated on its own thread.
/// Dropped unfinished (an unpack that failed), it still closes its queue and joins its
/// thread: a detached thread would outlive the call that started it.
struct HashThread<H> {
    tx: Option<mpsc::SyncSender<Arc<Vec<u8>>>>,
    handle: Option<JoinHandle<H>>,
}

impl<H: Digest + Send + 'static> HashThread<H> {
    fn start(mut hasher: H, name: &str) -> io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Arc<Vec<u8>>>(HASH_QUEUE);
        let handle = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                for chunk in rx {
                    hasher.update(&chunk[..]);
                }
                hasher
            })?;
        Ok(HashThread {
            tx: Some(tx),
            handle: Some(handle),
        })
    }

    fn send(&self, chunk: Arc<Vec<u8>>) -> io::Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| io::Error::other("a hashing thread stopped"))?
            .send(chunk)
            .map_err(|_| io::Error::other("a hashing thread stopped"))
    }

    fn finish(mut self) -> Result<H> {
        self.tx = None;
        self.handle
            .take()
            .ok_or_else(|| Error::new(ErrorKind::Io, "a hashing thread was already joined"))?
            .join()
            .map_err(|_| Error::new(ErrorKind::Io, "a hashing thread panicked"))
    }
}

impl<H> Drop for HashThread<H> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl Digests {
    fn new(sha256: bool, threads: bool) -> Result<Digests> {
        if !threads {
            return Ok(Digests::Inline {
                md5: Md5::new(),
                sha256: sha256.then(Sha256::new),
            });
        }
        let start = |e| Error::io("start hashing threads", e);
        Ok(Digests::Threads {
            md5: HashThread::start(Md5::new(), "cloudimg-md5").map_err(start)?,
            sha256: if sha256 {
                Some(HashThread::start(Sha256::new(), "cloudimg-sha256").map_err(start)?)
            } else {
                None
            },
        })
    }

    fn update(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Digests::Inline { md5, sha256 } => {
                md5.update(data);
                if let Some(s) = sha256 {
                    s.update(data);
                }
            }
            Digests::Threads { md5, sha256 } => {
                if data.is_empty() {
                    return Ok(());
                }
                let chunk = Arc::new(data.to_vec());
                if let Some(s) = sha256 {
                    s.send(Arc::clone(&chunk))?;
                }
                md5.send(chunk)?;
            }
        }
        Ok(())
    }

    /// Hex MD5 and SHA256 (when asked for).
    fn finish(self) -> Result<(String, Option<String>)> {
        Ok(match self {
            Digests::Inline { md5, sha256 } => (
                hex::encode(md5.finalize()),
                sha256.map(|s| hex::encode(s.finalize())),
            ),
            Digests::Threads { md5, sha256 } => {
                let sha256 = sha256.map(HashThread::finish).transpose()?;
                (
                    hex::encode(md5.finish()?.finalize()),
                    sha256.map(|s| hex::encode(s.finalize())),
                )
            }
        })
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digests.update(&buf[..n])?;
        self.count += n as u64;
        if let Some(p) = &self.progress {
            p(self.count);
        }
        Ok(n)
    }
}

enum Body<R: Read> {
    Gzip(Box<MultiGzDecoder<BufReader<Hashing<R>>>>),
    Members(Box<MemberReader<BufReader<Hashing<R>>>>),
    Plain(Box<BufReader<Hashing<R>>>),
}

/// A `Read` of the decompressed archive that hashes, counts and caps.
pub struct Decoder<R: Read> {
    body: Body<R>,
    out: u64,
    limits: Limits,
}

impl<R: Read> Decoder<R> {
    /// Wraps `source`; sniffs the gzip magic from the first bytes. Decodes
    /// on the calling thread (see [`Decoder::with_jobs`]).
    pub fn new(
        source: R,
        limits: Limits,
        sha256: bool,
        progress: Option<ProgressFn>,
    ) -> Result<Self> {
        Self::with_jobs(source, limits, sha256, progress, 1)
    }

    /// Like [`Decoder::new`], but with `jobs > 1` (0: all cores) the digests
    /// are computed on threads of their own and an indexed multi-member gzip
    /// is inflated on `jobs` threads. The output, the checks and the digests
    /// are the same; only the speed differs.
    pub fn with_jobs(
        source: R,
        limits: Limits,
        sha256: bool,
        progress: Option<ProgressFn>,
        jobs: usize,
    ) -> Result<Self> {
        let jobs = if jobs == 0 {
            crate::gzip::default_jobs()
        } else {
            jobs
        };
        let hashing = Hashing {
            inner: source,
            digests: Digests::new(sha256, jobs > 1)?,
            count: 0,
            progress,
        };
        let mut buf = BufReader::with_capacity(256 * 1024, hashing);
        let head = buf
            .fill_buf()
            .map_err(|e| Error::io("read archive", e).at(0))?;
        let body = if jobs > 1 && is_indexed_head(head) {
            Body::Members(Box::new(MemberReader::new(buf, jobs)?))
        } else if head.starts_with(&crate::gzip::header::MAGIC) {
            Body::Gzip(Box::new(MultiGzDecoder::new(buf)))
        } else {
            Body::Plain(Box::new(buf))
        };
        Ok(Decoder {
            body,
            out: 0,
            limits,
        })
    }

    pub fn is_gzip(&self) -> bool {
        matches!(self.body, Body::Gzip(_) | Body::Members(_))
    }

    /// True when the stream is being inflated member by member in parallel.
    pub fn is_parallel(&self) -> bool {
        matches!(self.body, Body::Members(_))
    }

    fn hashing(&self) -> &Hashing<R> {
        match &self.body {
            Body::Gzip(g) => g.get_ref().get_ref(),
            Body::Members(m) => m.get_ref().get_ref(),
            Body::Plain(b) => b.get_ref(),
        }
    }

    /// Compressed bytes read so far.
    pub fn compressed_bytes(&self) -> u64 {
        self.hashing().count
    }

    /// Reads to the end (checking the gzip trailer and feeding the hashes),
    /// then returns the statistics.
    pub fn finish(mut self) -> Result<StreamStats> {
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let at = self.out;
            match self.read(&mut buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("read after end of archive", e).at(at)),
            }
        }
        let gzip = self.is_gzip();
        let parallel = self.is_parallel();
        let h = match self.body {
            Body::Gzip(g) => g.into_inner().into_inner(),
            Body::Members(m) => m.into_inner().into_inner(),
            Body::Plain(b) => (*b).into_inner(),
        };
        let (md5, sha256) = h.digests.finish()?;
        Ok(StreamStats {
            compressed_bytes: h.count,
            uncompressed_bytes: self.out,
            gzip,
            parallel,
            md5,
            sha256,
        })
    }
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = match &mut self.body {
            Body::Gzip(g) => g.read(buf),
            Body::Members(m) => m.read(buf),
            Body::Plain(b) => b.read(buf),
        }?;
        self.out += n as u64;
        let l = &self.limits;
        if self.out > l.max_total_size {
            return Err(Error::new(
                ErrorKind::LimitExceeded,
                format!("archive expands past {} bytes", l.max_total_size),
            )
            .at(self.out)
            .into_io());
        }
        if self.out > l.ratio_grace {
            let compressed = self.compressed_bytes().max(1);
            if self.out / compressed > l.max_ratio {
                return Err(Error::new(
                    ErrorKind::LimitExceeded,
                    format!(
                        "compression ratio over {}:1 ({} bytes from {compressed}): a decompression bomb?",
                        l.max_ratio, self.out
                    ),
                )
                .at(self.out)
                .into_io());
            }
        }
        Ok(n)
    }
}

/// Compares the stream's digests with what the caller expected.
pub fn verify(stats: &StreamStats, expected: &Expected) -> Result<()> {
    if let Some(md5) = expected.md5 {
        let want = hex::encode(md5);
        if stats.md5 != want {
            return Err(Error::new(
                ErrorKind::ChecksumMismatch,
                format!(
                    "MD5 of the compressed stream is {}, expected {want}",
                    stats.md5
                ),
            ));
        }
    }
    if let (Some(sha), Some(got)) = (expected.sha256, &stats.sha256) {
        let want = hex::encode(sha);
        if *got != want {
            return Err(Error::new(
                ErrorKind::ChecksumMismatch,
                format!("SHA256 of the compressed stream is {got}, expected {want}"),
            ));
        }
    }
    Ok(())
}

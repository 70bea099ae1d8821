//! Reading an object of a store by byte range, as a VHD layer ([`LayerIo`]) or as a
//! stream, whether it is a plain object, a Swift DLO or SLO.
//!
//! Large objects are resolved to their segments once (DLO: the listing under the prefix;
//! SLO: the manifest) and read segment by segment, which avoids the proxy's throttling of
//! long large-object GETs and lets each segment's length be checked. Reads are mostly
//! sequential (a VHD writer pulls the disk front to back), so one open GET is kept and
//! read forward, with a thread reading ahead into a bounded queue; a read far ahead opens
//! a new ranged GET. The last 16 MiB consumed stay in memory: the VHD reader looks at the
//! sector bitmaps of the blocks up to 8 MiB ahead (to merge data ranges) before it reads
//! the current block's data, a step back that would otherwise cost two new GETs per
//! block (measured: 502 GETs for a 512 MiB import, each also a proxy and an object
//! server request, most of the Swift servers' CPU time).

use crate::error::{Error, ErrorKind, Result};
use cloudimg_pipeline::{Manifest, ObjectPath, ObjectStore};
use cloudimg_vhd::LayerIo;
use std::collections::VecDeque;
use std::io::{self, Read};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Bytes read ahead per queue slot.
const CHUNK: usize = 1 << 20;
/// Queue slots of the read-ahead thread: memory is at most `CHUNK * (DEPTH + 2)`.
const DEPTH: usize = 8;
/// A forward gap up to this size is read and dropped rather than opening a new GET.
const SKIP: u64 = 8 << 20;
/// Consumed chunks kept for reads behind the open GET: the VHD reader's look-ahead (8 MiB
/// of merged ranges plus a 2 MiB block) and slack. Memory is at most
/// `CHUNK * (DEPTH + HISTORY + 2)`.
const HISTORY: usize = 16;

/// One piece of an object: a plain object or a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The object holding the bytes.
    pub path: ObjectPath,
    /// First byte of the piece in the whole object.
    pub start: u64,
    /// Bytes.
    pub len: u64,
}

/// An object resolved to its pieces.
pub struct ObjectIo {
    store: Arc<dyn ObjectStore>,
    url: String,
    pieces: Vec<Piece>,
    len: u64,
    open: Mutex<Option<OpenRead>>,
}

struct OpenRead {
    piece: usize,
    /// Offset in the whole object of the next byte `rx` yields.
    pos: u64,
    rx: Receiver<io::Result<Vec<u8>>>,
    /// The last chunk received and how much of it was consumed.
    pending: Vec<u8>,
    pending_at: usize,
    /// Consumed chunks before `pending`, oldest first, each with its offset.
    history: VecDeque<(u64, Vec<u8>)>,
    /// Returns chunks dropped from `history` to the reading thread.
    spare: Sender<Vec<u8>>,
}

impl std::fmt::Debug for ObjectIo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectIo")
            .field("url", &self.url)
            .field("len", &self.len)
            .field("pieces", &self.pieces.len())
            .finish()
    }
}

impl ObjectIo {
    /// Resolves `path` in `store`. A missing object is `NotFound`.
    pub fn open(store: Arc<dyn ObjectStore>, path: &ObjectPath) -> Result<ObjectIo> {
        let url = store.url(path);
        // Size and manifest only: the bytes are read and checked as a VHD anyway, and a
        // local store would hash the whole object for an ETag nobody reads.
        let info = store
            .head_unhashed(path)
            .map_err(|e| Error::store("open source", &url, e))?;
        let pieces = match &info.manifest {
            Some(Manifest::Dlo { container, prefix }) => {
                let segs = cloudimg_pipeline::list_all(&*store, container, prefix)
                    .map_err(|e| Error::store("list DLO segments", &url, e))?;
                let mut start = 0;
                segs.into_iter()
                    .filter(|s| s.name.starts_with(prefix.as_str()))
                    .map(|s| {
                        let p = Piece {
                            path: ObjectPath::new(container, s.name),
                            start,
                            len: s.size,
                        };
                        start += s.size;
                        p
                    })
                    .collect::<Vec<_>>()
            }
            Some(Manifest::Slo) => {
                let segs = store
                    .get_slo_manifest(path)
                    .map_err(|e| Error::store("read SLO manifest", &url, e))?;
                let mut start = 0;
                segs.into_iter()
                    .map(|s| {
                        let p = Piece {
                            path: s.path,
                            start,
                            len: s.size,
                        };
                        start += s.size;
                        p
                    })
                    .collect()
            }
            _ => vec![Piece {
                path: path.clone(),
                start: 0,
                len: info.size,
            }],
        };
        let pieces: Vec<Piece> = pieces.into_iter().filter(|p| p.len > 0).collect();
        let len = pieces.last().map(|p| p.start + p.len).unwrap_or(0);
        if info.manifest.is_some() && info.size != 0 && info.size != len {
            return Err(Error::new(
                ErrorKind::Store,
                "open source",
                &url,
                format!(
                    "the store reports {} bytes but the segments hold {len}",
                    info.size
                ),
            ));
        }
        Ok(ObjectIo::from_pieces(store, url, pieces))
    }

    /// An object made of given pieces (e.g. the segments an image record lists).
    pub fn from_pieces(store: Arc<dyn ObjectStore>, url: String, pieces: Vec<Piece>) -> ObjectIo {
        let len = pieces.last().map(|p| p.start + p.len).unwrap_or(0);
        ObjectIo {
            store,
            url,
            pieces,
            len,
            open: Mutex::new(None),
        }
    }

    /// The object's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The store holding the pieces.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The pieces, in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// Reads `[offset, offset + buf.len())`.
    pub fn read_range(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        self.read_exact_at(buf, offset)
            .map_err(|e| crate::error::from_io("read source", &self.url, e))
    }

    /// A reader of the whole object front to back.
    pub fn stream(self: &Arc<Self>) -> SeqReader {
        SeqReader {
            io: self.clone(),
            pos: 0,
        }
    }

    /// A reader of `[offset, offset + len)` with GETs of its own (one per piece it
    /// crosses, opened as it gets there), apart from the shared read-ahead: several
    /// can read different parts of the object at once.
    pub fn span(&self, offset: u64, len: u64) -> SpanReader<'_> {
        let end = offset.saturating_add(len).min(self.len);
        SpanReader {
            io: self,
            pos: offset.min(end),
            end,
            open: None,
        }
    }

    fn piece_at(&self, offset: u64) -> Option<usize> {
        let i = self.pieces.partition_point(|p| p.start + p.len <= offset);
        (i < self.pieces.len()).then_some(i)
    }

    fn start_read(&self, piece: usize, offset: u64) -> io::Result<OpenRead> {
        let p = &self.pieces[piece];
        let local = offset - p.start;
        let s = cloudimg_pipeline::get_range_unhashed(&*self.store, &p.path, local..p.len)
            .map_err(|e| {
                io::Error::other(Error::store("read source", self.store.url(&p.path), e))
            })?;
        if s.len != p.len - local {
            return Err(io::Error::other(Error::new(
                ErrorKind::Store,
                "read source",
                self.store.url(&p.path),
                format!(
                    "asked for {} bytes, the store offers {}",
                    p.len - local,
                    s.len
                ),
            )));
        }
        let (tx, rx) = sync_channel(DEPTH);
        // Chunks leaving the history come back to be filled again: a new 1 MiB buffer
        // per chunk costs its zeroing and its page faults (5 % of an import's CPU).
        let (spare, spares) = channel::<Vec<u8>>();
        let mut reader = s.reader;
        let mut left = s.len;
        std::thread::spawn(move || {
            while left > 0 {
                let n = (CHUNK as u64).min(left) as usize;
                let mut chunk = spares.try_recv().unwrap_or_default();
                chunk.resize(n, 0);
                let r = reader.read_exact(&mut chunk).map(|_| chunk);
                let stop = r.is_err();
                left = left.saturating_sub(CHUNK as u64);
                if tx.send(r).is_err() || stop {
                    return;
                }
            }
        });
        Ok(OpenRead {
            piece,
            pos: offset,
            rx,
            pending: Vec::new(),
            pending_at: 0,
            history: VecDeque::new(),
            spare,
        })
    }
}

impl OpenRead {
    /// Copies the next `buf.len()` bytes of the open GET.
    fn take(&mut self, mut buf: &mut [u8]) -> io::Result<()> {
        while !buf.is_empty() {
            if self.pending_at == self.pending.len() {
                let next = match self.rx.recv() {
                    Ok(r) => r?,
                    Err(_) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "source read ended early",
                        ))
                    }
                };
                let old = std::mem::replace(&mut self.pending, next);
                if !old.is_empty() {
                    self.history.push_back((self.pos - old.len() as u64, old));
                    if self.history.len() > HISTORY {
                        if let Some((_, done)) = self.history.pop_front() {
                            // The reader may be gone (its GET ended): then it is freed.
                            let _ = self.spare.send(done);
                        }
                    }
                }
                self.pending_at = 0;
            }
            let n = buf.len().min(self.pending.len() - self.pending_at);
            buf[..n].copy_from_slice(&self.pending[self.pending_at..self.pending_at + n]);
            self.pending_at += n;
            self.pos += n as u64;
            buf = &mut buf[n..];
        }
        Ok(())
    }

    /// First offset still in memory behind `pos`.
    fn kept_from(&self) -> u64 {
        match self.history.front() {
            Some((at, _)) => *at,
            None => self.pos - self.pending_at as u64,
        }
    }

    /// Copies what is kept in memory of `[offset, pos)` to the start of `buf`
    /// (`offset` must be at or after [`kept_from`](Self::kept_from)); returns how many
    /// bytes.
    fn copy_behind(&self, buf: &mut [u8], offset: u64) -> usize {
        let end = (offset + buf.len() as u64).min(self.pos);
        let cur = (
            self.pos - self.pending_at as u64,
            &self.pending[..self.pending_at],
        );
        let mut p = offset;
        for (at, data) in self.history.iter().map(|(a, d)| (*a, &d[..])).chain([cur]) {
            let stop = (at + data.len() as u64).min(end);
            if p >= stop {
                continue;
            }
            let n = (stop - p) as usize;
            let lo = (p - offset) as usize;
            buf[lo..lo + n].copy_from_slice(&data[(p - at) as usize..(p - at) as usize + n]);
            p = stop;
        }
        (p - offset) as usize
    }

    fn skip(&mut self, mut n: u64) -> io::Result<()> {
        let mut scratch = vec![0u8; (64 * 1024).min(n as usize)];
        while n > 0 {
            let k = (scratch.len() as u64).min(n) as usize;
            self.take(&mut scratch[..k])?;
            n -= k as u64;
        }
        Ok(())
    }
}

impl LayerIo for ObjectIo {
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "read past the end of the object",
                )
            })?;
        let mut open = self.open.lock().expect("not poisoned");
        while offset < end {
            let i = self.piece_at(offset).expect("inside the object");
            let p = &self.pieces[i];
            let n = ((p.start + p.len).min(end) - offset) as usize;
            let usable = open.as_ref().is_some_and(|o| {
                o.piece == i && o.kept_from() <= offset && offset.saturating_sub(o.pos) <= SKIP
            });
            if !usable {
                *open = Some(self.start_read(i, offset)?);
            }
            let o = open.as_mut().expect("just opened");
            let mut k = 0;
            if offset < o.pos {
                k = o.copy_behind(&mut buf[..n], offset);
            }
            let at = offset + k as u64;
            let r = if k == n {
                Ok(())
            } else {
                o.skip(at - o.pos).and_then(|_| o.take(&mut buf[k..n]))
            };
            if let Err(e) = r {
                *open = None;
                return Err(e);
            }
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

/// Reads part of an [`ObjectIo`] front to back: see [`ObjectIo::span`].
pub struct SpanReader<'a> {
    io: &'a ObjectIo,
    pos: u64,
    end: u64,
    /// The open GET and the bytes it has left.
    open: Option<(Box<dyn Read + Send>, u64)>,
}

impl SpanReader<'_> {
    /// Bytes of the span not read yet.
    pub fn remaining(&self) -> u64 {
        self.end - self.pos
    }

    fn open_at(&self) -> io::Result<(Box<dyn Read + Send>, u64)> {
        let io = self.io;
        let i = io.piece_at(self.pos).expect("inside the object");
        let p = &io.pieces[i];
        let local = self.pos - p.start;
        let want = (p.start + p.len).min(self.end) - self.pos;
        let s = cloudimg_pipeline::get_range_unhashed(&*io.store, &p.path, local..local + want)
            .map_err(|e| io::Error::other(Error::store("read source", io.store.url(&p.path), e)))?;
        if s.len != want {
            return Err(io::Error::other(Error::new(
                ErrorKind::Store,
                "read source",
                io.store.url(&p.path),
                format!(
                    "asked for {want} bytes at {local}, the store offers {}",
                    s.len
                ),
            )));
        }
        Ok((s.reader, want))
    }
}

impl Read for SpanReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos == self.end || buf.is_empty() {
            return Ok(0);
        }
        if self.open.as_ref().is_none_or(|(_, left)| *left == 0) {
            self.open = Some(self.open_at()?);
        }
        let (r, left) = self.open.as_mut().expect("just opened");
        let want = (*left).min(buf.len() as u64) as usize;
        let n = r.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the store ended a GET at byte {} of the object, {left} bytes early",
                    self.pos
                ),
            ));
        }
        *left -= n as u64;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Reads a whole [`ObjectIo`] front to back.
pub struct SeqReader {
    io: Arc<ObjectIo>,
    pos: u64,
}

impl Read for SeqReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (self.io.len - self.pos).min(buf.len() as u64) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.io.read_exact_at(&mut buf[..n], self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cloudimg_pipeline::local::LocalStore;
    use cloudimg_pipeline::{
        Body, Capabilities, GetStream, ListPage, ObjectInfo, PutOptions, PutResult, RetryPolicy,
    };
    use std::ops::Range;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A store that counts GETs.
    #[derive(Debug)]
    pub(crate) struct Counting {
        pub(crate) inner: LocalStore,
        pub(crate) gets: AtomicUsize,
    }

    impl ObjectStore for Counting {
        fn url(&self, path: &ObjectPath) -> String {
            self.inner.url(path)
        }
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        fn retry_policy(&self) -> RetryPolicy {
            self.inner.retry_policy()
        }
        fn ensure_container(&self, c: &str) -> cloudimg_pipeline::Result<()> {
            self.inner.ensure_container(c)
        }
        fn container_exists(&self, c: &str) -> cloudimg_pipeline::Result<bool> {
            self.inner.container_exists(c)
        }
        fn put(
            &self,
            p: &ObjectPath,
            b: &dyn Body,
            o: &PutOptions,
        ) -> cloudimg_pipeline::Result<PutResult> {
            self.inner.put(p, b, o)
        }
        fn get(
            &self,
            p: &ObjectPath,
            r: Option<Range<u64>>,
        ) -> cloudimg_pipeline::Result<GetStream> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            self.inner.get(p, r)
        }
        fn head(&self, p: &ObjectPath) -> cloudimg_pipeline::Result<ObjectInfo> {
            self.inner.head(p)
        }
        fn list(
            &self,
            c: &str,
            prefix: &str,
            marker: Option<&str>,
            limit: usize,
        ) -> cloudimg_pipeline::Result<ListPage> {
            self.inner.list(c, prefix, marker, limit)
        }
        fn delete(&self, p: &ObjectPath) -> cloudimg_pipeline::Result<()> {
            self.inner.delete(p)
        }
    }

    #[test]
    fn a_span_from_byte_0_is_the_first_byte_then_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Counting {
            inner: LocalStore::new(dir.path()).unwrap(),
            gets: AtomicUsize::new(0),
        });
        store.ensure_container("c").unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let path = ObjectPath::new("c", "o");
        store.put(&path, &data, &PutOptions::default()).unwrap();
        let io = ObjectIo::open(store.clone(), &path).unwrap();
        let mut got = Vec::new();
        io.span(0, data.len() as u64).read_to_end(&mut got).unwrap();
        assert!(got == data, "the bytes of the whole span");
        // Swift's object server hashes a read from byte 0: the first byte is one GET.
        assert_eq!(store.gets.load(Ordering::SeqCst), 2);
        let mut got = Vec::new();
        io.span(7, 1000).read_to_end(&mut got).unwrap();
        assert_eq!(got, &data[7..1007]);
        assert_eq!(store.gets.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn short_steps_back_are_served_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Counting {
            inner: LocalStore::new(dir.path()).unwrap(),
            gets: AtomicUsize::new(0),
        });
        store.ensure_container("c").unwrap();
        let data: Vec<u8> = (0..(24u32 << 20))
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let path = ObjectPath::new("c", "o");
        store.put(&path, &data, &PutOptions::default()).unwrap();
        let io = ObjectIo::open(store.clone(), &path).unwrap();
        // The VHD reader's pattern: the bitmap of a block 5 blocks ahead (10 MiB), then
        // the current block's data.
        let (bitmap, block) = (512u64, 2u64 << 20);
        let stride = bitmap + block;
        for k in 0..5 {
            let mut first = vec![0u8; bitmap as usize];
            io.read_exact_at(&mut first, k * stride).unwrap();
        }
        let mut k = 0;
        while (k + 6) * stride <= data.len() as u64 {
            for (off, len) in [((k + 5) * stride, bitmap), (k * stride + bitmap, block)] {
                let mut buf = vec![0u8; len as usize];
                io.read_exact_at(&mut buf, off).unwrap();
                assert_eq!(buf, &data[off as usize..(off + len) as usize], "at {off}");
            }
            k += 1;
        }
        // One GET for the pass, after the one of its first byte.
        assert_eq!(store.gets.load(Ordering::SeqCst), 2, "one GET for the pass");
        // Far behind: a new GET, still the right bytes.
        let mut buf = vec![0u8; 1000];
        io.read_exact_at(&mut buf, 5).unwrap();
        assert_eq!(buf, &data[5..1005]);
        assert_eq!(store.gets.load(Ordering::SeqCst), 3);
    }
}

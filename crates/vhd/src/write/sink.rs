//! Where a writer's bytes go: a regular file (zeros become holes) or a stream
//! (zeros are written out).

use super::{is_zero, MappedRange};
use crate::{Error, Result};
use std::fs::File;
use std::io::Write;
use std::sync::{mpsc, Arc};

/// Granularity of zero detection inside data: a page.
const ZERO_GRAIN: usize = 4096;
/// Zero runs shorter than this are written as data: a hole per page would cost
/// a syscall per page and fragment the output for nothing.
const MIN_HOLE: usize = 64 * 1024;

static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Empties `file` unless it already is. A fresh file is left alone because
/// ext4 flushes a file truncated to zero synchronously when it is closed
/// (`auto_da_alloc`), which costs seconds on large outputs.
pub(crate) fn truncate_if_needed(file: &File) -> Result<()> {
    let len = file
        .metadata()
        .map_err(|e| Error::io("stat output", e))?
        .len();
    if len != 0 {
        file.set_len(0)
            .map_err(|e| Error::io("truncate output", e))?;
    }
    Ok(())
}

/// A front-to-back output.
pub enum Sink<'a> {
    /// A regular file written with positional writes; skipped zeros stay holes.
    /// With `flush_behind`, writeback of what is written starts as the copy
    /// goes (see [`FLUSH_STEP`]): for a caller that fsyncs at the end.
    File {
        file: &'a File,
        pos: u64,
        flush_behind: bool,
    },
    /// A pipe or anything else that only takes bytes in order.
    Stream { out: &'a mut dyn Write, pos: u64 },
}

impl<'a> Sink<'a> {
    /// A sink into `file`, which is truncated first: holes left by skipped
    /// zeros must not expose old bytes.
    pub fn file(file: &'a File) -> Result<Sink<'a>> {
        truncate_if_needed(file)?;
        Ok(Sink::File {
            file,
            pos: 0,
            flush_behind: false,
        })
    }

    /// [`Sink::file`] for a file the caller fsyncs when done: the disk starts
    /// writing while the copy goes on, so the final fsync waits for the tail
    /// only.
    pub fn file_flushed_behind(file: &'a File) -> Result<Sink<'a>> {
        truncate_if_needed(file)?;
        Ok(Sink::File {
            file,
            pos: 0,
            flush_behind: true,
        })
    }

    /// A sink into a stream.
    pub fn stream(out: &'a mut dyn Write) -> Sink<'a> {
        Sink::Stream { out, pos: 0 }
    }

    /// Bytes emitted so far (holes included).
    pub fn position(&self) -> u64 {
        match self {
            Sink::File { pos, .. } | Sink::Stream { pos, .. } => *pos,
        }
    }

    /// Appends `buf`.
    pub fn write(&mut self, buf: &[u8]) -> Result<()> {
        match self {
            Sink::File { file, pos, .. } => {
                use std::os::unix::fs::FileExt;
                file.write_all_at(buf, *pos)
                    .map_err(|e| Error::io("write output", e).at(*pos))?;
                *pos += buf.len() as u64;
            }
            Sink::Stream { out, pos } => {
                out.write_all(buf)
                    .map_err(|e| Error::io("write output", e).at(*pos))?;
                *pos += buf.len() as u64;
            }
        }
        Ok(())
    }

    /// Appends `n` zero bytes: a hole in a file, real zeros in a stream.
    pub fn zeros(&mut self, mut n: u64) -> Result<()> {
        match self {
            Sink::File { pos, .. } => *pos += n,
            Sink::Stream { .. } => {
                while n > 0 {
                    let k = n.min(ZEROS.len() as u64) as usize;
                    self.write(&ZEROS[..k])?;
                    n -= k as u64;
                }
            }
        }
        Ok(())
    }

    /// Appends `buf`, turning long zero runs into holes in a file. Runs are
    /// made of the file's own pages (plus the partial pages at `buf`'s ends),
    /// so a hole covers whole pages wherever `buf` starts; zero runs at either
    /// end of `buf` are skipped whatever their length. The range must not
    /// hold older bytes (a fresh or truncated file, each range written once).
    pub fn write_sparse(&mut self, buf: &[u8]) -> Result<()> {
        let base = match self {
            Sink::Stream { .. } => return self.write(buf),
            Sink::File { pos, .. } => *pos,
        };
        let grain = ZERO_GRAIN as u64;
        // End (in `buf`) of the file page holding buf[p].
        let page_end = |p: usize| {
            let next = ((base + p as u64) / grain + 1) * grain;
            ((next - base) as usize).min(buf.len())
        };
        let mut pending = 0;
        let mut p = 0;
        while p < buf.len() {
            let e = page_end(p);
            if !is_zero(&buf[p..e]) {
                p = e;
                continue;
            }
            let mut ze = e;
            while ze < buf.len() {
                let e = page_end(ze);
                if !is_zero(&buf[ze..e]) {
                    break;
                }
                ze = e;
            }
            // At either end of `buf` a zero run costs no extra write to skip
            // (the data write just starts or stops at a page boundary).
            if ze - p >= MIN_HOLE || p == 0 || ze == buf.len() {
                if p > pending {
                    self.write(&buf[pending..p])?;
                }
                self.zeros((ze - p) as u64)?;
                pending = ze;
            }
            p = ze;
        }
        if buf.len() > pending {
            self.write(&buf[pending..])?;
        }
        Ok(())
    }

    /// Ends the output: sets a file's length (a trailing hole has no bytes
    /// yet) or flushes a stream. Returns the bytes emitted.
    pub fn finish(self) -> Result<u64> {
        match self {
            Sink::File { file, pos, .. } => {
                let len = file
                    .metadata()
                    .map_err(|e| Error::io("stat output", e))?
                    .len();
                if len != pos {
                    file.set_len(pos)
                        .map_err(|e| Error::io("extend output", e).at(pos))?;
                }
                Ok(pos)
            }
            Sink::Stream { out, pos } => {
                out.flush().map_err(|e| Error::io("flush output", e))?;
                Ok(pos)
            }
        }
    }
}

/// Memory a [`WriteBehind`] may hold in buffers (maps of the input queued
/// instead of buffers add at most as much again, counted as resident while
/// mapped). Beyond the three a pipeline
/// needs (one filled, one queued, one written), the rest absorb scheduling
/// delays: on a busy machine a wake-up can take longer than writing a buffer
/// (measured with strace: the writer thread idle 40% of the time with three
/// 4 MiB buffers at load 6 on two cores).
const WRITE_BEHIND_BUDGET: usize = 16 << 20;

/// Bytes written between two requests to start writeback. Large enough that
/// each request submits big I/Os, small enough that the disk starts early.
pub(crate) const FLUSH_STEP: u64 = 32 << 20;

/// Starts writeback (`sync_file_range(SYNC_FILE_RANGE_WRITE)`, which does not
/// wait for it) of each [`FLUSH_STEP`] written, so that a file fsynced at the
/// end has been going to disk all along instead of all at once in the fsync.
#[derive(Default)]
pub(crate) struct FlushBehind {
    /// The written range not yet handed to writeback.
    pending: Option<(u64, u64)>,
}

impl FlushBehind {
    /// Notes `len` bytes written at `pos` (positions mostly increase).
    pub(crate) fn wrote(&mut self, file: &File, pos: u64, len: u64) -> Result<()> {
        let (lo, hi) = match self.pending {
            Some((lo, hi)) => (lo.min(pos), hi.max(pos + len)),
            None => (pos, pos + len),
        };
        self.pending = Some((lo, hi));
        if hi - lo >= FLUSH_STEP {
            self.pending = None;
            start_writeback(file, lo, hi - lo)?;
        }
        Ok(())
    }
}

#[cfg(target_os = "linux")]
fn start_writeback(file: &File, pos: u64, len: u64) -> Result<()> {
    use std::os::unix::io::AsRawFd;
    let (Ok(p), Ok(n)) = (libc::off64_t::try_from(pos), libc::off64_t::try_from(len)) else {
        return Ok(());
    };
    // SAFETY: a descriptor we hold; the call only starts writeback.
    let r = unsafe { libc::sync_file_range(file.as_raw_fd(), p, n, libc::SYNC_FILE_RANGE_WRITE) };
    if r != 0 {
        let e = std::io::Error::last_os_error();
        // A filesystem without it: the final fsync does all the work, as before.
        if !matches!(
            e.raw_os_error(),
            Some(libc::ENOSYS | libc::EINVAL | libc::ESPIPE)
        ) {
            return Err(Error::io("start writeback", e).at(pos));
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn start_writeback(_file: &File, _pos: u64, _len: u64) -> Result<()> {
    Ok(())
}

/// One positional write for the writer thread: `buf[..plain]` as is, then
/// `buf[plain..len]` with long zero runs left as holes.
struct WriteJob {
    pos: u64,
    buf: JobBytes,
    plain: usize,
    len: usize,
}

/// The bytes of a [`WriteJob`]: a pooled buffer (returned after the write) or
/// a map of the input (unmapped after the write) after `head`, written as is
/// (a block's bitmap).
enum JobBytes {
    Buf(Vec<u8>),
    Map {
        head: Option<Arc<[u8]>>,
        map: MappedRange,
    },
}

/// Positional writes into a regular file on a second thread, so reading the
/// next buffer overlaps writing (and zero-scanning) the previous one.
///
/// Buffered writes into the page cache cost more than the reads feeding them
/// (measured on ext4: 1.6 ms per MiB written against 0.2 ms per MiB read), and
/// done in line they add up; on a second core they overlap. Memory: about
/// [`WRITE_BEHIND_BUDGET`], and never fewer than three buffers.
pub(crate) struct WriteBehind {
    jobs: Option<mpsc::SyncSender<WriteJob>>,
    free: mpsc::Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    allocated: usize,
    max_buffers: usize,
    buf_len: usize,
}

impl WriteBehind {
    /// A zeroed-length buffer of `buf_len` bytes to fill (its content is
    /// whatever it held before). Fails only when the writer thread stopped,
    /// whose own error [`with_write_behind`] then reports.
    pub(crate) fn buffer(&mut self) -> Result<Vec<u8>> {
        if let Some(b) = self.spare.pop() {
            return Ok(b);
        }
        if self.allocated < self.max_buffers {
            self.allocated += 1;
            return Ok(vec![0u8; self.buf_len]);
        }
        self.free.recv().map_err(|_| {
            Error::io(
                "write output",
                std::io::Error::other("writer thread stopped"),
            )
        })
    }

    /// Returns a buffer that turned out to need no write.
    pub(crate) fn give_back(&mut self, buf: Vec<u8>) {
        self.spare.push(buf);
    }

    /// Queues `buf[..plain]` (verbatim) and `buf[plain..len]` (sparse) for
    /// writing at `pos`.
    pub(crate) fn write(&mut self, pos: u64, buf: Vec<u8>, plain: usize, len: usize) -> Result<()> {
        self.send(WriteJob {
            pos,
            buf: JobBytes::Buf(buf),
            plain,
            len,
        })
    }

    /// Queues `head` (verbatim, if any) then the mapped bytes `map` (long zero
    /// runs left as holes) for writing at `pos`. The queue's bound also bounds
    /// the maps alive at once.
    pub(crate) fn write_mapped(
        &mut self,
        pos: u64,
        head: Option<Arc<[u8]>>,
        map: MappedRange,
    ) -> Result<()> {
        let plain = head.as_ref().map_or(0, |h| h.len());
        let len = plain + map.as_slice().len();
        self.send(WriteJob {
            pos,
            buf: JobBytes::Map { head, map },
            plain,
            len,
        })
    }

    fn send(&mut self, job: WriteJob) -> Result<()> {
        match &self.jobs {
            Some(tx) if tx.send(job).is_ok() => Ok(()),
            _ => Err(Error::io(
                "write output",
                std::io::Error::other("writer thread stopped"),
            )),
        }
    }
}

/// Runs `f` with a [`WriteBehind`] into `file`, waits for every queued write
/// and returns `f`'s result; a write error (the cause of any failure `f` saw
/// while queueing) wins over `f`'s own.
pub(crate) fn with_write_behind<R>(
    file: &File,
    buf_len: usize,
    flush_behind: bool,
    f: impl FnOnce(&mut WriteBehind) -> Result<R>,
) -> Result<R> {
    std::thread::scope(|scope| {
        let max_buffers = (WRITE_BEHIND_BUDGET / buf_len.max(1)).clamp(3, 16);
        // The queue can hold every buffer, so the reader never waits on it.
        let (job_tx, job_rx) = mpsc::sync_channel::<WriteJob>(max_buffers);
        let (free_tx, free_rx) = mpsc::channel::<Vec<u8>>();
        let writer = std::thread::Builder::new()
            .name("cloudimg-write".into())
            .spawn_scoped(scope, move || -> Result<()> {
                let mut flusher = flush_behind.then(FlushBehind::default);
                for job in job_rx {
                    let (plain, sparse) = match &job.buf {
                        JobBytes::Buf(b) => (&b[..job.plain], &b[job.plain..job.len]),
                        JobBytes::Map { head, map } => {
                            (head.as_deref().unwrap_or_default(), map.as_slice())
                        }
                    };
                    Sink::File {
                        file,
                        pos: job.pos,
                        flush_behind: false,
                    }
                    .write(plain)?;
                    Sink::File {
                        file,
                        pos: job.pos + job.plain as u64,
                        flush_behind: false,
                    }
                    .write_sparse(sparse)?;
                    if let Some(fb) = &mut flusher {
                        fb.wrote(file, job.pos, job.len as u64)?;
                    }
                    if let JobBytes::Buf(b) = job.buf {
                        // The owner may be gone already (it failed); nothing to do then.
                        let _ = free_tx.send(b);
                    }
                }
                Ok(())
            })
            .map_err(|e| Error::io("start writer thread", e))?;
        let mut wb = WriteBehind {
            jobs: Some(job_tx),
            free: free_rx,
            spare: Vec::new(),
            allocated: 0,
            max_buffers,
            buf_len,
        };
        let result = f(&mut wb);
        // Closing the queue lets the writer finish what it holds and stop.
        wb.jobs.take();
        drop(wb);
        let written = writer.join().unwrap_or_else(|_| {
            Err(Error::io(
                "write output",
                std::io::Error::other("writer thread panicked"),
            ))
        });
        written?;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_file_output_equals_stream_output() {
        let mut data = vec![0u8; 1 << 20];
        data[5] = 1;
        data[300_000] = 2;
        data[(1 << 20) - 1] = 3;
        let f = tempfile::tempfile().unwrap();
        let mut s = Sink::file(&f).unwrap();
        s.write_sparse(&data).unwrap();
        s.zeros(100).unwrap();
        assert_eq!(s.finish().unwrap(), (1 << 20) + 100);
        let mut back = vec![0u8; (1 << 20) + 100];
        use std::os::unix::fs::FileExt;
        f.read_exact_at(&mut back, 0).unwrap();
        data.extend_from_slice(&[0; 100]);
        assert_eq!(back, data);

        let mut v = Vec::new();
        let mut s = Sink::stream(&mut v);
        s.write_sparse(&data).unwrap();
        s.finish().unwrap();
        assert_eq!(v, data);
    }

    #[test]
    fn write_behind_writes_every_buffer_and_reports_write_errors() {
        let f = tempfile::tempfile().unwrap();
        let n = with_write_behind(&f, 200_000, true, |wb| {
            for k in 0..20u64 {
                let mut b = wb.buffer()?;
                b.fill(0);
                b[0] = k as u8 + 1;
                b[150_000] = 9;
                wb.write(k * 200_000, b, 1, 200_000)?;
            }
            Ok(20u64)
        })
        .unwrap();
        assert_eq!(n, 20);
        // Trailing zeros are left unwritten; the callers set the length.
        f.set_len(20 * 200_000).unwrap();
        use std::os::unix::fs::FileExt;
        let mut back = vec![0u8; 200_000];
        for k in 0..20u64 {
            f.read_exact_at(&mut back, k * 200_000).unwrap();
            assert_eq!((back[0], back[150_000]), (k as u8 + 1, 9));
            assert!(is_zero(&back[1..150_000]));
        }

        // A read-only file: the writer's error is the one reported.
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ro");
        std::fs::write(&p, b"").unwrap();
        let ro = File::open(&p).unwrap();
        let e = with_write_behind(&ro, 4096, false, |wb| {
            for k in 0..50u64 {
                let mut b = wb.buffer()?;
                b.fill(1);
                wb.write(k * 4096, b, 0, 4096)?;
            }
            Ok(())
        })
        .unwrap_err();
        assert!(e.to_string().contains("write output"), "{e}");
    }
}

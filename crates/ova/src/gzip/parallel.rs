//! One standard gzip member, compressed on several threads the way pigz does
//! it: the input is cut into chunks, each chunk is raw-deflated with the
//! previous 32 KiB as its dictionary and ends with a sync flush, so the
//! pieces concatenate into one deflate stream; the CRC32s of the chunks are
//! combined. Any gzip reader sees an ordinary `.gz`.

use super::deflate::{compress_chunk, End, WINDOW};
use super::header;
use super::ordered::Ordered;
use crate::error::{Error, ErrorKind, Result};
use std::io::{self, Write};
use std::sync::Arc;

/// How to compress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GzOptions {
    /// 1 (fastest) to 9 (smallest); gzip's default is 6.
    pub level: u32,
    /// Worker threads.
    pub jobs: usize,
    /// Input bytes per job.
    pub chunk_size: usize,
    /// Modification time stored in the header (0: none).
    pub mtime: u32,
}

impl Default for GzOptions {
    fn default() -> Self {
        GzOptions {
            level: super::DEFAULT_LEVEL,
            jobs: super::default_jobs(),
            chunk_size: super::DEFAULT_CHUNK,
            mtime: 0,
        }
    }
}

impl GzOptions {
    /// Checks the values a caller may get wrong.
    pub fn validate(&self) -> Result<()> {
        if !(1..=9).contains(&self.level) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("compression level {} is not 1-9", self.level),
            ));
        }
        if self.jobs == 0 || self.jobs > 256 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{} jobs is not 1-256", self.jobs),
            ));
        }
        if !(WINDOW..=64 << 20).contains(&self.chunk_size) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("chunk size {} is not 32 KiB-64 MiB", self.chunk_size),
            ));
        }
        Ok(())
    }
}

/// Chunks in flight per worker. Two per worker left the workers idle whenever
/// the producing thread waited for a CPU on a busy machine (measured with
/// `perf sched`: about 10 ms of scheduling delay per wake-up under load, as long
/// as compressing two chunks); eight per worker rides that out for a few MiB.
const IN_FLIGHT_PER_JOB: usize = 8;

type ChunkResult = io::Result<(Vec<u8>, crc32fast::Hasher, Vec<u8>)>;

/// A `Write` that gzips into `W` on `jobs` threads. Call [`ParGzWriter::finish`];
/// dropping it loses the end of the stream.
///
/// Memory: the chunk being filled plus at most `8 x jobs` chunks (input and
/// output) in flight: 4 MiB for two jobs at the default 128 KiB chunk.
pub struct ParGzWriter<W: Write> {
    inner: W,
    opts: GzOptions,
    buf: Vec<u8>,
    /// The last 32 KiB of the previous chunk: the next chunk's dictionary.
    dict: Arc<Vec<u8>>,
    queue: Ordered<ChunkResult>,
    spare: Vec<Vec<u8>>,
    crc: crc32fast::Hasher,
    total_in: u64,
    total_out: u64,
    header_written: bool,
    failed: bool,
}

impl<W: Write> ParGzWriter<W> {
    pub fn new(inner: W, opts: GzOptions) -> Result<Self> {
        opts.validate()?;
        let queue = Ordered::new(opts.jobs, IN_FLIGHT_PER_JOB * opts.jobs)
            .map_err(|e| Error::io("start compression threads", e))?;
        Ok(ParGzWriter {
            inner,
            opts,
            buf: Vec::with_capacity(opts.chunk_size),
            dict: Arc::new(Vec::new()),
            queue,
            spare: Vec::new(),
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            total_out: 0,
            header_written: false,
            failed: false,
        })
    }

    /// Uncompressed bytes accepted so far.
    pub fn total_in(&self) -> u64 {
        self.total_in
    }

    /// Compressed bytes written to the sink so far.
    pub fn total_out(&self) -> u64 {
        self.total_out
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    /// Compresses what is left, writes the trailer and returns the sink.
    pub fn finish(mut self) -> Result<W> {
        self.finish_inner()
            .map_err(|e| Error::io("finish gzip stream", e))?;
        Ok(self.inner)
    }

    fn finish_inner(&mut self) -> io::Result<()> {
        self.check_failed()?;
        self.submit(End::Finish)?;
        while !self.queue.is_empty() {
            self.drain_one(true)?;
        }
        let trailer = header::trailer(self.crc.clone().finalize(), self.total_in);
        self.put(&trailer)?;
        self.inner.flush()
    }

    fn check_failed(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("gzip writer failed earlier"));
        }
        Ok(())
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.header_written {
            self.header_written = true;
            let h = header::plain(self.opts.level, self.opts.mtime);
            self.put(&h)?;
        }
        self.inner
            .write_all(bytes)
            .inspect_err(|_| self.failed = true)?;
        self.total_out += bytes.len() as u64;
        Ok(())
    }

    /// Sends the current buffer to a worker.
    fn submit(&mut self, end: End) -> io::Result<()> {
        while self.queue.is_full() {
            self.drain_one(true)?;
        }
        let next = self
            .spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(self.opts.chunk_size));
        let data = std::mem::replace(&mut self.buf, next);
        let dict = Arc::clone(&self.dict);
        let tail = data.len().saturating_sub(WINDOW);
        // The next dictionary spans chunk boundaries when this chunk is short.
        let mut next_dict = if data.len() < WINDOW {
            let keep = WINDOW - data.len();
            dict[dict.len().saturating_sub(keep)..].to_vec()
        } else {
            Vec::with_capacity(WINDOW)
        };
        next_dict.extend_from_slice(&data[tail..]);
        self.dict = Arc::new(next_dict);
        let level = self.opts.level;
        self.queue.submit(move || {
            let out = compress_chunk(level, &dict, &data, end)?;
            let mut crc = crc32fast::Hasher::new();
            crc.update(&data);
            Ok((out, crc, data))
        });
        // Write out whatever is already done so the sink sees steady progress.
        while self.drain_one(false)? {}
        Ok(())
    }

    /// Writes the oldest finished chunk; false when none was ready (without `wait`).
    fn drain_one(&mut self, wait: bool) -> io::Result<bool> {
        let Some(res) = self.queue.next(wait) else {
            return Ok(false);
        };
        let (out, crc, mut data) = res
            .map_err(|_| io::Error::other("compression worker panicked"))
            .and_then(|r| r)
            .inspect_err(|_| self.failed = true)?;
        self.crc.combine(&crc);
        self.put(&out)?;
        data.clear();
        if self.spare.len() < IN_FLIGHT_PER_JOB * self.opts.jobs {
            self.spare.push(data);
        }
        Ok(true)
    }
}

impl<W: Write> Write for ParGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.check_failed()?;
        let room = self.opts.chunk_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        self.total_in += n as u64;
        if self.buf.len() == self.opts.chunk_size {
            self.submit(End::Sync)?;
        }
        Ok(n)
    }

    /// Writes the chunks already compressed; a partial chunk stays buffered
    /// (forcing it out would cost compression for no reader's benefit).
    fn flush(&mut self) -> io::Result<()> {
        self.check_failed()?;
        while self.drain_one(false)? {}
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (i / 50_000) % 2 == 0 {
                    (x >> 24) as u8
                } else {
                    b"the quick brown fox "[i % 20]
                }
            })
            .collect()
    }

    fn gz(data: &[u8], opts: GzOptions) -> Vec<u8> {
        let mut w = ParGzWriter::new(Vec::new(), opts).unwrap();
        // Odd write sizes exercise chunk boundaries.
        for piece in data.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        w.finish().unwrap()
    }

    #[test]
    fn flate2_reads_it_back() {
        let data = sample(1_000_000);
        for (level, jobs) in [(1, 1), (6, 2), (9, 3)] {
            let opts = GzOptions {
                level,
                jobs,
                chunk_size: 64 * 1024,
                mtime: 0,
            };
            let out = gz(&data, opts);
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "level {level} jobs {jobs}");
        }
    }

    #[test]
    fn empty_and_tiny_inputs() {
        for data in [&b""[..], b"x"] {
            let out = gz(data, GzOptions::default());
            let mut back = Vec::new();
            flate2::read::GzDecoder::new(&out[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }

    /// Chunking costs under 1 % against the same engine given the whole
    /// input at once (the engine's own ratio is measured in BENCHMARKS.md).
    #[test]
    fn size_is_close_to_single_stream_deflate() {
        let data = sample(2_000_000);
        for level in [1, 6, 9] {
            let opts = GzOptions {
                level,
                ..GzOptions::default()
            };
            let par = gz(&data, opts);
            let single = compress_chunk(level, &[], &data, End::Finish).unwrap();
            let ratio = par.len() as f64 / (single.len() + 18) as f64;
            assert!(
                ratio < 1.01,
                "level {level}: parallel {} vs single {}",
                par.len(),
                single.len()
            );
        }
    }

    #[test]
    fn rejects_bad_levels() {
        let opts = GzOptions {
            level: 10,
            ..GzOptions::default()
        };
        let e = ParGzWriter::new(Vec::new(), opts).err().unwrap();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    }
}

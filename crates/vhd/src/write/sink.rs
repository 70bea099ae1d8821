//! Where a writer's bytes go: a regular file (zeros become holes) or a stream
//! (zeros are written out).

use super::is_zero;
use crate::{Error, Result};
use std::fs::File;
use std::io::Write;

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
    File { file: &'a File, pos: u64 },
    /// A pipe or anything else that only takes bytes in order.
    Stream { out: &'a mut dyn Write, pos: u64 },
}

impl<'a> Sink<'a> {
    /// A sink into `file`, which is truncated first: holes left by skipped
    /// zeros must not expose old bytes.
    pub fn file(file: &'a File) -> Result<Sink<'a>> {
        truncate_if_needed(file)?;
        Ok(Sink::File { file, pos: 0 })
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
            Sink::File { file, pos } => {
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

    /// Appends `buf`, turning long page-aligned zero runs into holes in a file.
    pub fn write_sparse(&mut self, buf: &[u8]) -> Result<()> {
        if matches!(self, Sink::Stream { .. }) {
            return self.write(buf);
        }
        let page_zero = |p: usize| is_zero(&buf[p..(p + ZERO_GRAIN).min(buf.len())]);
        let mut pending = 0;
        let mut p = 0;
        while p < buf.len() {
            if !page_zero(p) {
                p += ZERO_GRAIN;
                continue;
            }
            let mut ze = p;
            while ze < buf.len() && page_zero(ze) {
                ze += ZERO_GRAIN;
            }
            let ze = ze.min(buf.len());
            if ze - p >= MIN_HOLE {
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
            Sink::File { file, pos } => {
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
}

//! Runs a reader on its own thread and hands its bytes over in 1 MiB
//! buffers, so gunzip and hashing overlap with parsing and writing files.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

const BUF: usize = 1 << 20;
/// Buffers in flight: enough to ride out a slow write without much memory.
const DEPTH: usize = 4;

/// The consuming end: a `Read` over the buffers the producer sends.
pub struct PipeReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    free: SyncSender<Vec<u8>>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

/// The producing end, given to the thread.
pub struct PipeWriter {
    tx: SyncSender<io::Result<Vec<u8>>>,
    free: Receiver<Vec<u8>>,
}

pub fn pipe() -> (PipeWriter, PipeReader) {
    let (tx, rx) = sync_channel(DEPTH);
    let (free_tx, free_rx) = sync_channel(DEPTH + 2);
    (
        PipeWriter { tx, free: free_rx },
        PipeReader {
            rx,
            free: free_tx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        },
    )
}

impl PipeWriter {
    /// Copies `src` to the reader until EOF. Fails when the reader is gone (it
    /// stopped early) or `src` failed; that error is also passed to the reader.
    pub fn pump<R: Read>(&self, src: &mut R) -> io::Result<()> {
        loop {
            let mut buf = self.free.try_recv().unwrap_or_else(|_| vec![0u8; BUF]);
            buf.resize(BUF, 0);
            let mut filled = 0;
            while filled < BUF {
                match src.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // The reader sees the good bytes, then the original error
                        // (which may carry a crate error); the pump returns a copy.
                        if filled > 0 {
                            buf.truncate(filled);
                            let _ = self.tx.send(Ok(buf));
                        }
                        let copy = io::Error::new(e.kind(), e.to_string());
                        let _ = self.tx.send(Err(e));
                        return Err(copy);
                    }
                }
            }
            if filled == 0 {
                return Ok(());
            }
            buf.truncate(filled);
            if self.tx.send(Ok(buf)).is_err() {
                return Err(io::Error::new(io::ErrorKind::BrokenPipe, "reader stopped"));
            }
        }
    }
}

impl Read for PipeReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.cur.len() {
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Ok(buf)) => {
                    let old = std::mem::replace(&mut self.cur, buf);
                    let _ = self.free.try_send(old);
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                Err(_) => {
                    self.done = true;
                    return Ok(0);
                }
            }
        }
        let n = out.len().min(self.cur.len() - self.pos);
        out[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

impl PipeWriter {
    /// Passes an error to the reader (it sees it after the bytes sent so far).
    pub fn fail(&self, e: io::Error) {
        let _ = self.tx.send(Err(e));
    }
}

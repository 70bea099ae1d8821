//! A fixed set of reusable byte buffers: the memory bound of uploads and downloads.
//! `take` blocks until a buffer is free, so at most `count` buffers ever exist.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

pub(crate) struct Pool {
    tx: SyncSender<Vec<u8>>,
    rx: Mutex<Receiver<Vec<u8>>>,
    created: Mutex<usize>,
    count: usize,
    size: usize,
}

impl Pool {
    /// `count` buffers of `size` bytes each, allocated lazily.
    pub fn new(count: usize, size: usize) -> Self {
        let (tx, rx) = sync_channel(count);
        Pool {
            tx,
            rx: Mutex::new(rx),
            created: Mutex::new(0),
            count,
            size,
        }
    }

    /// A free buffer, waiting if all are in use. A reused buffer keeps its length and
    /// contents, so callers that overwrite it need not zero it again.
    pub fn take(&self) -> Vec<u8> {
        if let Ok(rx) = self.rx.lock() {
            if let Ok(b) = rx.try_recv() {
                return b;
            }
        }
        if let Ok(mut n) = self.created.lock() {
            if *n < self.count {
                *n += 1;
                return Vec::with_capacity(self.size);
            }
        }
        let rx = self.rx.lock().unwrap_or_else(|p| p.into_inner());
        match rx.recv() {
            Ok(b) => b,
            // Unreachable while `self` holds a sender; allocate rather than panic.
            Err(_) => Vec::with_capacity(self.size),
        }
    }

    /// Counts a buffer allocated outside the pool (and later given to it) against the
    /// pool's size, so the bound holds.
    pub fn adopt(&self) {
        if let Ok(mut n) = self.created.lock() {
            *n += 1;
        }
    }

    /// Returns a buffer for reuse.
    pub fn give(&self, buf: Vec<u8>) {
        let _ = self.tx.try_send(buf);
    }
}

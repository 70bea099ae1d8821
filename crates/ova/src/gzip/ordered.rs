//! A bounded, order-preserving job queue on a rayon pool: jobs run in
//! parallel, results come back in submission order, and at most `max` jobs
//! (and so at most `max` chunks of memory) are in flight.

use std::collections::VecDeque;
use std::sync::{mpsc, Arc};

pub(crate) struct Ordered<T: Send + 'static> {
    pool: Arc<rayon::ThreadPool>,
    pending: VecDeque<mpsc::Receiver<T>>,
    max: usize,
}

/// A worker panicked, so its result never arrives.
#[derive(Debug)]
pub(crate) struct WorkerLost;

impl<T: Send + 'static> Ordered<T> {
    /// A queue running on `threads` new worker threads with at most `max` jobs in flight.
    pub(crate) fn new(threads: usize, max: usize) -> std::io::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("cloudimg-gz-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(Ordered {
            pool: Arc::new(pool),
            pending: VecDeque::new(),
            max: max.max(1),
        })
    }

    /// True when submitting now would exceed the in-flight bound.
    pub(crate) fn is_full(&self) -> bool {
        self.pending.len() >= self.max
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Starts `job`; call only when not [`Ordered::is_full`].
    pub(crate) fn submit(&mut self, job: impl FnOnce() -> T + Send + 'static) {
        let (tx, rx) = mpsc::sync_channel(1);
        self.pool.spawn(move || {
            // The receiver is gone only when the owner was dropped mid-stream.
            let _ = tx.send(job());
        });
        self.pending.push_back(rx);
    }

    /// The oldest result, waiting for it when `wait`; `None` when nothing is
    /// pending or (without `wait`) the oldest is not done yet.
    pub(crate) fn next(&mut self, wait: bool) -> Option<Result<T, WorkerLost>> {
        let rx = self.pending.front()?;
        let got = if wait {
            rx.recv().map_err(|_| WorkerLost)
        } else {
            match rx.try_recv() {
                Ok(v) => Ok(v),
                Err(mpsc::TryRecvError::Empty) => return None,
                Err(mpsc::TryRecvError::Disconnected) => Err(WorkerLost),
            }
        };
        self.pending.pop_front();
        Some(got)
    }
}

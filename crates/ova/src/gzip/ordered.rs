//! A bounded, order-preserving job queue on its own worker threads: jobs run
//! in parallel, results come back in submission order, and at most `max` jobs
//! (and so at most `max` chunks of memory) are in flight.
//!
//! Plain threads blocked on a channel rather than a rayon pool: rayon's idle
//! workers spin looking for work, which on a busy two-core machine steals the
//! very CPU the compressing worker needs (measured: two rayon workers were
//! slower than one).

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;

type Job = Box<dyn FnOnce() + Send + 'static>;

pub(crate) struct Ordered<T: Send + 'static> {
    jobs: Option<mpsc::Sender<Job>>,
    /// The workers' end of the job channel, kept so the owner can run a job
    /// itself while it waits ([`Ordered::next_helping`]).
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    workers: Vec<JoinHandle<()>>,
    pending: VecDeque<mpsc::Receiver<T>>,
    max: usize,
}

impl<T: Send + 'static> Drop for Ordered<T> {
    fn drop(&mut self) {
        // Closing the job channel ends the workers once they finish what they hold.
        self.jobs.take();
        self.pending.clear();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// A worker panicked, so its result never arrives.
#[derive(Debug)]
pub(crate) struct WorkerLost;

impl<T: Send + 'static> Ordered<T> {
    /// A queue running on `threads` new worker threads with at most `max` jobs in flight.
    pub(crate) fn new(threads: usize, max: usize) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut workers = Vec::new();
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("cloudimg-gz-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for the next job.
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                })?;
            workers.push(handle);
        }
        Ok(Ordered {
            jobs: Some(tx),
            queue: rx,
            workers,
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
        let run: Job = Box::new(move || {
            // The receiver is gone only when the owner was dropped mid-stream.
            let _ = tx.send(job());
        });
        // Workers outlive the sender (joined in Drop), so this send cannot fail;
        // if it did, the dropped job's receiver reports the loss in `next`.
        if let Some(jobs) = &self.jobs {
            let _ = jobs.send(run);
        }
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

    /// Like `next(true)`, but while the oldest result is not ready the
    /// calling thread runs queued jobs itself instead of sleeping. On a
    /// loaded machine every wake-up of a sleeping thread costs milliseconds;
    /// a caller that works rather than waits keeps the CPU it already has.
    pub(crate) fn next_helping(&mut self) -> Option<Result<T, WorkerLost>> {
        let rx = self.pending.front()?;
        let got = loop {
            match rx.try_recv() {
                Ok(v) => break Ok(v),
                Err(mpsc::TryRecvError::Disconnected) => break Err(WorkerLost),
                Err(mpsc::TryRecvError::Empty) => {}
            }
            // A worker holds the lock only while it waits for a job, so a
            // held lock means nothing is queued: sleep on the result then.
            let job = match self.queue.try_lock() {
                Ok(guard) => guard.try_recv().ok(),
                Err(_) => None,
            };
            match job {
                Some(job) => job(),
                None => break rx.recv().map_err(|_| WorkerLost),
            }
        };
        self.pending.pop_front();
        Some(got)
    }
}

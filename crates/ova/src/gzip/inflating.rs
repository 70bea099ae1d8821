//! Members of the indexed form being inflated, in order, on worker threads:
//! the engine under both [`super::indexed`] (blocks read through the index)
//! and [`super::members`] (members cut off a stream), kept here so neither
//! of them imports the other.

use super::member::inflate_member_into;
use super::ordered::Ordered;
use crate::error::{Error, ErrorKind, Result};
use std::collections::VecDeque;

/// Members in flight per job: enough that a worker has queued members while
/// the reading thread waits for a CPU, few enough that the buffers stay in
/// cache (2 to 16 in flight for two jobs measured alike on a loaded 2-core
/// machine).
const IN_FLIGHT_PER_JOB: usize = 4;
/// Uncompressed bytes in flight per job (at least one member is always
/// allowed): 16 MiB for two jobs at the 1 MiB members `pack --indexed` writes.
const IN_FLIGHT_BYTES_PER_JOB: u64 = 8 << 20;
/// Names the member in an error from [`super::member::inflate_member`].
fn located(e: Error, compressed_offset: u64, uncompressed_offset: u64) -> Error {
    let why = e.message().trim_start_matches("gzip member: ");
    Error::new(
        e.kind(),
        format!(
            "gzip member at compressed offset {compressed_offset} \
             (uncompressed offset {uncompressed_offset}): {why}"
        ),
    )
    .at(compressed_offset)
}

/// A member's data (or why it failed) and its compressed bytes, for reuse.
type Decoded = (Result<Vec<u8>>, Vec<u8>);

/// Members being inflated, in order: on worker threads when `jobs > 1`,
/// on the calling thread (one at a time) otherwise.
///
/// Buffers go round rather than being freed: allocating and freeing a fresh
/// MiB per member across threads makes glibc hand memory back and fault it
/// in again (measured: a sixth more CPU, a fifth of it in the kernel).
pub(crate) struct Inflating {
    queue: Option<Ordered<Decoded>>,
    /// Results inflated on the calling thread (`jobs == 1`).
    ready: VecDeque<Decoded>,
    /// Declared uncompressed sizes of what is in flight, oldest first.
    sizes: VecDeque<u64>,
    bytes: u64,
    max_members: usize,
    max_bytes: u64,
    spare_in: Vec<Vec<u8>>,
    spare_out: Vec<Vec<u8>>,
}

impl Inflating {
    pub(crate) fn new(jobs: usize) -> Result<Inflating> {
        if jobs > 256 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{jobs} decompression jobs is not 1-256"),
            ));
        }
        let jobs = jobs.max(1);
        let queue = if jobs > 1 {
            // The calling thread inflates too while it waits (`next_helping`),
            // so `jobs` threads work with `jobs - 1` workers; a worker more
            // would only contend for the same cores.
            Some(
                Ordered::new(jobs - 1, IN_FLIGHT_PER_JOB * jobs)
                    .map_err(|e| Error::io("start decompression threads", e))?,
            )
        } else {
            None
        };
        Ok(Inflating {
            queue,
            ready: VecDeque::new(),
            sizes: VecDeque::new(),
            bytes: 0,
            max_members: if jobs > 1 {
                IN_FLIGHT_PER_JOB * jobs
            } else {
                1
            },
            max_bytes: IN_FLIGHT_BYTES_PER_JOB * jobs as u64,
            spare_in: Vec::new(),
            spare_out: Vec::new(),
        })
    }

    /// True while a member is in flight.
    pub(crate) fn has_pending(&self) -> bool {
        !self.sizes.is_empty()
    }

    /// True when a member of `ulen` uncompressed bytes may be submitted now.
    pub(crate) fn has_room(&self, ulen: u32) -> bool {
        self.sizes.is_empty()
            || (self.sizes.len() < self.max_members
                && self.bytes + u64::from(ulen) <= self.max_bytes)
    }

    /// An empty buffer to read a member into.
    pub(crate) fn input_buffer(&mut self) -> Vec<u8> {
        let mut b = self.spare_in.pop().unwrap_or_default();
        b.clear();
        b
    }

    /// Takes back a buffer [`Inflating::next`] returned, once it was used.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if buf.capacity() > 0 && self.spare_out.len() <= self.max_members {
            self.spare_out.push(buf);
        }
    }

    /// Starts inflating a whole member (checked against `ulen`); call only
    /// when [`Inflating::has_room`].
    pub(crate) fn submit(&mut self, member: Vec<u8>, ulen: u32, coff: u64, uoff: u64) {
        let mut out = self.spare_out.pop().unwrap_or_default();
        let job = move || {
            let r = inflate_member_into(&member, ulen, &mut out)
                .map(|()| out)
                .map_err(|e| located(e, coff, uoff));
            (r, member)
        };
        match &mut self.queue {
            Some(q) => q.submit(job),
            None => self.ready.push_back(job()),
        }
        self.sizes.push_back(u64::from(ulen));
        self.bytes += u64::from(ulen);
    }

    /// The oldest member's data, waiting for it; `None` when nothing is in flight.
    pub(crate) fn next(&mut self) -> Option<Result<Vec<u8>>> {
        let size = self.sizes.pop_front()?;
        self.bytes -= size;
        let (data, member) = match &mut self.queue {
            Some(q) => match q.next_helping() {
                Some(Ok(r)) => r,
                Some(Err(_)) | None => {
                    let lost = Error::new(ErrorKind::Io, "a decompression worker panicked");
                    return Some(Err(lost));
                }
            },
            None => self
                .ready
                .pop_front()
                .expect("one result per submitted member"),
        };
        if self.spare_in.len() <= self.max_members {
            self.spare_in.push(member);
        }
        Some(data)
    }
}

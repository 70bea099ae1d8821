//! A VHD chain (or one image) as a [`DiskSource`], driven by its allocation map.
//!
//! The writers move forward only, so this keeps a short queue of extents from
//! [`Chain::extents`] and reads each piece straight from the layer that holds
//! it with positional reads: no per-sector lookups, no bitmap re-reads.

use super::DiskSource;
use crate::alloc::{Extent, Extents, Source};
use crate::chain::Chain;
use crate::Result;
use std::collections::VecDeque;

/// Data ranges closer than this are reported as one, so a block with a
/// partial bitmap is read in one pass instead of sector runs.
const MERGE_GAP: u64 = 64 * 1024;
/// Longest range reported at once (bounds the extent queue).
const MAX_MERGED: u64 = 8 << 20;

/// Reads a chain's virtual disk front to back.
pub struct ChainSource<'a> {
    chain: &'a Chain,
    extents: Extents<'a>,
    queue: VecDeque<Extent>,
    exhausted: bool,
}

impl<'a> ChainSource<'a> {
    pub fn new(chain: &'a Chain) -> ChainSource<'a> {
        ChainSource {
            chain,
            extents: chain.extents(),
            queue: VecDeque::new(),
            exhausted: false,
        }
    }

    /// Pulls the next extent into the queue; false at the end.
    fn pull(&mut self) -> Result<bool> {
        if self.exhausted {
            return Ok(false);
        }
        match self.extents.next() {
            Some(e) => {
                self.queue.push_back(e?);
                Ok(true)
            }
            None => {
                self.exhausted = true;
                Ok(false)
            }
        }
    }

    /// Drops extents that end at or before `p`, and makes sure the queue's
    /// front (if any remains) ends after `p`.
    fn advance_to(&mut self, p: u64) -> Result<()> {
        loop {
            while self.queue.front().is_some_and(|e| e.end() <= p) {
                self.queue.pop_front();
            }
            if !self.queue.is_empty() || !self.pull()? {
                return Ok(());
            }
        }
    }
}

impl DiskSource for ChainSource<'_> {
    fn virtual_size(&self) -> u64 {
        self.chain.virtual_size()
    }

    fn next_data(&mut self, from: u64) -> Result<Option<(u64, u64)>> {
        self.advance_to(from)?;
        // Skip zero extents; they are never needed again (reads before the
        // queue's front are zeros by construction).
        loop {
            match self.queue.front() {
                None => return Ok(None),
                Some(e) if e.is_zero() => {
                    self.queue.pop_front();
                    if self.queue.is_empty() && !self.pull()? {
                        return Ok(None);
                    }
                }
                Some(_) => break,
            }
        }
        let first = self.queue[0];
        let start = first.offset.max(from);
        let mut end = first.end();
        // Merge the following data extents separated by short zero gaps.
        let mut i = 1;
        loop {
            if i >= self.queue.len() && !self.pull()? {
                break;
            }
            let e = self.queue[i];
            if e.offset - end > MERGE_GAP || e.end() - start > MAX_MERGED {
                break;
            }
            if e.is_zero() {
                if e.len > MERGE_GAP {
                    break;
                }
            } else {
                end = e.end();
            }
            i += 1;
        }
        Ok(Some((start, end)))
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset + buf.len() as u64;
        let mut p = offset;
        while p < end {
            self.advance_to(p)?;
            let lo = (p - offset) as usize;
            let Some(&e) = self.queue.front() else {
                buf[lo..].fill(0);
                return Ok(());
            };
            if e.offset > p {
                let stop = e.offset.min(end);
                buf[lo..(stop - offset) as usize].fill(0);
                p = stop;
                continue;
            }
            let stop = e.end().min(end);
            let piece = &mut buf[lo..(stop - offset) as usize];
            match e.source {
                Source::Zero => piece.fill(0),
                Source::Layer { layer, file_offset } => {
                    let img = &self.chain.layers()[layer];
                    img.read_raw(piece, file_offset + (p - e.offset))?;
                }
            }
            p = stop;
        }
        Ok(())
    }
}

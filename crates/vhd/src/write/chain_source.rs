//! A VHD chain (or one image) as a [`DiskSource`], driven by its allocation map.
//!
//! The writers move forward only, so this keeps a short queue of extents from
//! [`Chain::extents`] and reads each piece straight from the layer that holds
//! it with positional reads: no per-sector lookups, no bitmap re-reads.
//!
//! Holes of a layer file (an allocated block whose zero parts the writer left
//! as holes, as qemu-img and we do) are found with `SEEK_DATA`/`SEEK_HOLE` and
//! zero-filled instead of read: reading a hole still costs the kernel a
//! zero-filled page-cache page and a copy.

use super::DiskSource;
use crate::alloc::{Extent, Extents, Source};
use crate::chain::Chain;
use crate::image::Image;
use crate::Result;
use std::collections::VecDeque;
use std::fs::File;

/// Data ranges closer than this are reported as one, so a block with a
/// partial bitmap is read in one pass instead of sector runs.
const MERGE_GAP: u64 = 64 * 1024;
/// Longest range reported at once (bounds the extent queue).
const MAX_MERGED: u64 = 8 << 20;
/// Layer reads shorter than this are not worth looking for holes in, and
/// holes shorter than this are read through (a syscall pair per small hole
/// would cost more than the copy).
const MIN_HOLE: u64 = 64 * 1024;

/// Reads a chain's virtual disk front to back.
pub struct ChainSource<'a> {
    chain: &'a Chain,
    extents: Extents<'a>,
    queue: VecDeque<Extent>,
    exhausted: bool,
    /// Each layer's file opened again, only to ask where its holes are;
    /// `None` when it cannot be (then everything is read).
    probes: Vec<Option<File>>,
}

impl<'a> ChainSource<'a> {
    pub fn new(chain: &'a Chain) -> ChainSource<'a> {
        ChainSource {
            chain,
            extents: chain.extents(),
            queue: VecDeque::new(),
            exhausted: false,
            probes: chain
                .layers()
                .iter()
                .map(|l| File::open(l.path()).ok())
                .collect(),
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
                    let probe = self.probes.get(layer).and_then(Option::as_ref);
                    read_skipping_holes(img, probe, piece, file_offset + (p - e.offset))?;
                }
            }
            p = stop;
        }
        Ok(())
    }
}

/// Reads `buf.len()` bytes of `img` at `offset`, zero-filling (not reading)
/// the holes `probe` reports in that range.
fn read_skipping_holes(
    img: &Image,
    probe: Option<&File>,
    buf: &mut [u8],
    offset: u64,
) -> Result<()> {
    let end = offset + buf.len() as u64;
    // A range past the end of the file goes to read_raw, which reports the
    // truncation (a hole probe would see zeros there).
    let Some(probe) = probe.filter(|_| buf.len() as u64 >= MIN_HOLE && end <= img.file_len())
    else {
        return img.read_raw(buf, offset);
    };
    let mut q = offset;
    while q < end {
        let lo = (q - offset) as usize;
        let Some(data) = seek(probe, q, Whence::Data) else {
            // ENXIO: no data after `q`. Anything else (no hole support): read.
            if seek_failed_at_eof() {
                buf[lo..].fill(0);
            } else {
                img.read_raw(&mut buf[lo..], q)?;
            }
            return Ok(());
        };
        if data >= end {
            buf[lo..].fill(0);
            return Ok(());
        }
        let data = data.max(q);
        buf[lo..(data - offset) as usize].fill(0);
        // Extend the data run over holes too short to be worth skipping.
        let mut hole = seek(probe, data, Whence::Hole).unwrap_or(end).min(end);
        while hole < end {
            match seek(probe, hole, Whence::Data) {
                Some(next) if next < end && next - hole < MIN_HOLE => {
                    hole = seek(probe, next, Whence::Hole).unwrap_or(end).min(end);
                }
                _ => break,
            }
        }
        let hole = hole.max(data + 1).min(end);
        img.read_raw(
            &mut buf[(data - offset) as usize..(hole - offset) as usize],
            data,
        )?;
        q = hole;
    }
    Ok(())
}

enum Whence {
    Data,
    Hole,
}

#[cfg(target_os = "linux")]
fn seek(f: &File, from: u64, whence: Whence) -> Option<u64> {
    use std::os::unix::io::AsRawFd;
    let off = libc::off_t::try_from(from).ok()?;
    let whence = match whence {
        Whence::Data => libc::SEEK_DATA,
        Whence::Hole => libc::SEEK_HOLE,
    };
    // SAFETY: lseek on a descriptor this source owns and uses for nothing else;
    // it only moves that descriptor's file position.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off, whence) };
    u64::try_from(r).ok()
}

#[cfg(not(target_os = "linux"))]
fn seek(_: &File, _: u64, _: Whence) -> Option<u64> {
    None
}

/// True when the last failed [`seek`] meant "no data after this offset".
fn seek_failed_at_eof() -> bool {
    #[cfg(target_os = "linux")]
    {
        std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO)
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

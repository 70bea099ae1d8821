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

use super::{Direct, DiskSource, MappedRange};
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
/// Ranges shorter than this are read, not mapped: a map costs two syscalls
/// and a TLB flush, more than copying a few pages.
const MIN_MAP: u64 = 256 * 1024;

/// Reads a chain's virtual disk front to back.
pub struct ChainSource<'a> {
    chain: &'a Chain,
    extents: Extents<'a>,
    queue: VecDeque<Extent>,
    exhausted: bool,
    /// Each layer's file, only to ask where its holes are and to map it;
    /// `None` when the layer is not a local file (then everything is read).
    probes: Vec<Option<File>>,
}

impl<'a> ChainSource<'a> {
    pub fn new(chain: &'a Chain) -> ChainSource<'a> {
        ChainSource {
            chain,
            extents: chain.extents(),
            queue: VecDeque::new(),
            exhausted: false,
            // A duplicate of the layer's own descriptor: the same file for
            // sure (a path may since name another), and its own use of the
            // file is positional, so seeking does not disturb it.
            probes: chain
                .layers()
                .iter()
                .map(|l| l.io().as_file().and_then(|f| f.try_clone().ok()))
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

    fn direct_at(&mut self, offset: u64, len: usize) -> Result<Option<Direct>> {
        let end = offset + len as u64;
        if len == 0 {
            return Ok(None);
        }
        self.advance_to(offset)?;
        let Some(&e) = self.queue.front() else {
            return Ok(Some(Direct::Zeros(len as u64)));
        };
        if e.offset > offset {
            return Ok(Some(Direct::Zeros(e.offset.min(end) - offset)));
        }
        let stop = e.end().min(end);
        let Source::Layer { layer, file_offset } = e.source else {
            return Ok(Some(Direct::Zeros(stop - offset)));
        };
        let img = &self.chain.layers()[layer];
        let at = file_offset + (offset - e.offset);
        let span = stop - offset;
        let Some(probe) = self.probes.get(layer).and_then(Option::as_ref) else {
            return Ok(None);
        };
        // Past the end of the file: read_at reports the truncation.
        if at + span > img.file_len() {
            return Ok(None);
        }
        // Holes of the layer file are zeros that cost nothing to skip, where
        // mapping them would fill page-cache pages with zeros.
        let Some(data) = seek(probe, at, Whence::Data) else {
            return Ok(seek_failed_at_eof().then_some(Direct::Zeros(span)));
        };
        if data >= at + span {
            return Ok(Some(Direct::Zeros(span)));
        }
        if data - at >= MIN_HOLE {
            return Ok(Some(Direct::Zeros(data - at)));
        }
        // Data from `at` (a short hole before it is read through), up to the
        // next hole worth skipping.
        let run_end = data_run_end(probe, data, at + span);
        let n = run_end - at;
        if n < MIN_MAP {
            return Ok(Some(Direct::Read(n)));
        }
        // A failed map (address space, an odd file) is not an error: read instead.
        Ok(Some(
            MappedRange::map(probe, at, n as usize).map_or(Direct::Read(n), Direct::Map),
        ))
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
        let hole = data_run_end(probe, data, end);
        img.read_raw(
            &mut buf[(data - offset) as usize..(hole - offset) as usize],
            data,
        )?;
        q = hole;
    }
    Ok(())
}

/// Where the data run of `probe` starting at `data` ends, no later than
/// `end`: holes too short to be worth skipping count as data. Always above
/// `data`.
fn data_run_end(probe: &File, data: u64, end: u64) -> u64 {
    let mut hole = seek(probe, data, Whence::Hole).unwrap_or(end).min(end);
    while hole < end {
        match seek(probe, hole, Whence::Data) {
            Some(next) if next < end && next - hole < MIN_HOLE => {
                hole = seek(probe, next, Whence::Hole).unwrap_or(end).min(end);
            }
            _ => break,
        }
    }
    hole.max(data + 1).min(end)
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::chain::ChainOptions;
    use cloudimg_fixtures::{chain, Generated, LayerSpec, Layout, SizeMode};
    use std::path::Path;

    const MIB: u64 = 1 << 20;
    /// Sectors per MiB.
    const S: u64 = MIB / 512;

    /// A 16 MiB, 2-layer chain with 2 MiB blocks: full blocks in either layer,
    /// partial bitmaps, zero data inside allocated blocks, and a hole punched
    /// in the base file (under zero data, so the disk is unchanged).
    pub(crate) fn sample_chain(dir: &Path) -> Generated {
        let base = LayerSpec::new("base.vhd", Layout::Qemu, 2 << 20)
            .size_mode(SizeMode::ForceSize)
            .write(0, 2 * S, 1) // block 0: data
            .write(2 * S, S, 0) // block 1: a zero MiB (then punched), a data MiB
            .write(3 * S, S, 2)
            .write(4 * S + 7, 100, 3) // block 2: partial bitmap
            .write(6 * S, 2 * S, 4) // block 3: data, half hidden by the child
            .write(12 * S, 2 * S, 0); // block 6: all zeros, allocated
        let child = LayerSpec::new("child.vhd", Layout::VhdUtil, 2 << 20)
            .write(6 * S + 3, S, 5) // block 3: partial, unaligned
            .write(10 * S, 2 * S, 6); // block 5: data
        let g = chain(dir, 16 * MIB, 42, &[base, child]).unwrap();
        // Punch the zero MiB of block 1 out of the base file.
        let img = Image::open(g.base()).unwrap();
        let at = img.block_data_offset(1).unwrap();
        let (lo, hi) = (at.next_multiple_of(4096), (at + MIB) / 4096 * 4096);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(g.base())
            .unwrap();
        use std::os::unix::io::AsRawFd;
        // SAFETY: fallocate on a descriptor we own, inside the file.
        let r = unsafe {
            libc::fallocate(
                f.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                lo as libc::off_t,
                (hi - lo) as libc::off_t,
            )
        };
        assert_eq!(r, 0, "punch hole: {}", std::io::Error::last_os_error());
        g
    }

    #[test]
    fn direct_pieces_match_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let g = sample_chain(dir.path());
        let expect = g.oracle.to_vec();
        let chain = Chain::open(g.leaf(), &ChainOptions::default()).unwrap();
        let mut src = ChainSource::new(&chain);
        let (mut maps, mut zeros, mut reads) = (0, 0, 0);
        let mut pos = 0u64;
        let size = src.virtual_size();
        while pos < size {
            // Ask for ranges that straddle blocks and extents.
            let want = (size - pos).min(3 * MIB + 4096) as usize;
            let (lo, piece) = (pos as usize, src.direct_at(pos, want).unwrap());
            let n = match piece {
                Some(Direct::Map(m)) => {
                    maps += 1;
                    let n = m.as_slice().len();
                    assert_eq!(m.as_slice(), &expect[lo..lo + n], "map at {pos}");
                    n
                }
                Some(Direct::Zeros(k)) => {
                    zeros += 1;
                    assert!(super::super::is_zero(&expect[lo..lo + k as usize]));
                    k as usize
                }
                Some(Direct::Read(k)) => {
                    reads += 1;
                    let mut b = vec![0u8; k as usize];
                    src.read_at(pos, &mut b).unwrap();
                    assert_eq!(b, &expect[lo..lo + k as usize], "read at {pos}");
                    k as usize
                }
                None => {
                    let mut b = vec![0u8; want];
                    src.read_at(pos, &mut b).unwrap();
                    assert_eq!(b, &expect[lo..lo + want], "read at {pos}");
                    want
                }
            };
            assert!(n > 0 && n <= want);
            pos += n as u64;
        }
        assert!(maps > 0 && zeros > 0 && reads > 0, "{maps} {zeros} {reads}");
    }
}

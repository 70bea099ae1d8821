//! The layout of a dynamic VHD decided before its first byte: which blocks are
//! allocated and where everything goes, and the front-to-back stream writer.
//!
//! Layout: footer copy at 0, dynamic header at 0x200, BAT at 0x600 (padded to a
//! sector), then the allocated blocks in virtual order (sector bitmap with every
//! sector of the block set, then the data), then the footer. No batmap, no
//! locators: nothing a reader could disagree about.

use super::{check_block_size, new_uuid, vhd_size, DiskSource, DynamicOptions, Progress};
use crate::bat::MAX_BAT_ENTRIES;
use crate::format::footer::FOOTER_SIZE;
use crate::format::header::{bitmap_size, BAT_UNUSED, HEADER_SIZE};
use crate::{DiskType, DynamicHeader, Error, ErrorKind, Footer, Result, SECTOR_SIZE};
use std::io::Write;
use uuid::Uuid;

/// Where the BAT starts: right after the footer copy and the header.
pub(crate) const TABLE_OFFSET: u64 = (FOOTER_SIZE + HEADER_SIZE) as u64;
/// Data is moved through buffers of at most this size, whatever the block size.
pub(crate) const IO_CHUNK: usize = 4 << 20;

/// A dynamic disk's layout: size, block size and the allocated blocks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicLayout {
    virtual_size: u64,
    block_size: u32,
    entries: u32,
    /// Allocated block indices, ascending.
    blocks: Vec<u32>,
    uuid: Uuid,
    timestamp: u32,
    disk_type: DiskType,
}

impl DynamicLayout {
    /// A layout allocating exactly `blocks` (indices, any order, duplicates
    /// ignored) of a disk of `virtual_size` bytes (rounded up to a sector).
    pub fn new(
        virtual_size: u64,
        block_size: u32,
        mut blocks: Vec<u32>,
        uuid: Option<Uuid>,
    ) -> Result<DynamicLayout> {
        check_block_size(block_size)?;
        let virtual_size = vhd_size(virtual_size)?;
        let entries = virtual_size.div_ceil(u64::from(block_size));
        if entries > MAX_BAT_ENTRIES {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("block size {block_size} needs {entries} BAT entries for this disk; use a larger block size"),
            )
            .field("block_size"));
        }
        let entries = entries as u32;
        blocks.sort_unstable();
        blocks.dedup();
        if blocks.last().is_some_and(|&b| b >= entries) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "allocated block beyond the disk",
            ));
        }
        let layout = DynamicLayout {
            virtual_size,
            block_size,
            entries,
            blocks,
            uuid: new_uuid(uuid),
            timestamp: crate::format::time::now(),
            disk_type: DiskType::Dynamic,
        };
        // Every bitmap sector number must fit the 32-bit BAT entry.
        let last = layout.block_offset(layout.blocks.len().saturating_sub(1) as u64);
        if last / SECTOR_SIZE >= u64::from(BAT_UNUSED) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "image too large for 32-bit BAT entries",
            ));
        }
        Ok(layout)
    }

    /// Decides the allocated blocks from `source`: blocks its metadata says may
    /// hold data, minus those whose data is all zeros unless
    /// `opts.keep_zero_blocks`. The zero scan reads only allocated ranges.
    pub fn plan(source: &mut dyn DiskSource, opts: &DynamicOptions) -> Result<DynamicLayout> {
        check_block_size(opts.block_size)?;
        let size = source.virtual_size();
        let bs = u64::from(opts.block_size);
        let entries = size.div_ceil(bs);
        let mut blocks = Vec::new();
        let mut buf = vec![0u8; IO_CHUNK.min(opts.block_size as usize)];
        let mut b = 0u64;
        while b < entries {
            let Some((start, end)) = source.next_data(b * bs)? else {
                break;
            };
            let first = (start / bs).max(b);
            let last = end.div_ceil(bs).min(entries);
            for blk in first..last {
                if opts.keep_zero_blocks || !block_is_zero(source, blk * bs, bs, &mut buf)? {
                    blocks.push(blk as u32);
                }
            }
            b = last.max(first + 1);
        }
        DynamicLayout::new(size, opts.block_size, blocks, opts.uuid)
    }

    /// Virtual size in bytes.
    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Allocated block indices, ascending.
    pub fn allocated_blocks(&self) -> &[u32] {
        &self.blocks
    }

    /// The UUID the footer will carry.
    pub fn uuid(&self) -> Uuid {
        self.uuid
    }

    /// BAT entries (blocks covering the virtual size).
    pub fn entries(&self) -> u32 {
        self.entries
    }

    /// Bytes of the BAT on disk, padded to a sector.
    pub(crate) fn bat_bytes(&self) -> u64 {
        (u64::from(self.entries) * 4).next_multiple_of(SECTOR_SIZE)
    }

    /// Where the first block starts.
    pub(crate) fn data_start(&self) -> u64 {
        TABLE_OFFSET + self.bat_bytes()
    }

    /// Bytes one block occupies in the file: bitmap plus data.
    pub(crate) fn stride(&self) -> u64 {
        bitmap_size(self.block_size) + u64::from(self.block_size)
    }

    /// File offset of the `k`-th allocated block (its bitmap).
    pub(crate) fn block_offset(&self, k: u64) -> u64 {
        self.data_start() + k * self.stride()
    }

    /// Length of the whole file, known before writing.
    pub fn total_len(&self) -> u64 {
        self.block_offset(self.blocks.len() as u64) + FOOTER_SIZE as u64
    }

    /// The footer (sealed) for this layout.
    pub fn footer(&self) -> [u8; FOOTER_SIZE] {
        Footer::new(self.disk_type, self.virtual_size, self.uuid, self.timestamp).seal()
    }

    /// The dynamic header (sealed) for this layout.
    pub fn header(&self) -> [u8; HEADER_SIZE] {
        DynamicHeader::new(TABLE_OFFSET, self.entries, self.block_size).seal()
    }

    /// The bitmap written before every block: all of the block's sectors set.
    pub(crate) fn full_bitmap(&self) -> Vec<u8> {
        full_bitmap(self.block_size)
    }

    /// Writes the BAT for `blocks` placed in order, in bounded chunks.
    pub(crate) fn write_bat(
        &self,
        blocks: &[u32],
        out: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        let mut chunk = Vec::with_capacity(64 * 1024);
        let mut next = blocks.iter().enumerate().peekable();
        for i in 0..u64::from(self.entries).next_multiple_of(SECTOR_SIZE / 4) {
            let entry = match next.peek() {
                Some(&(k, &b)) if u64::from(b) == i => {
                    next.next();
                    (self.block_offset(k as u64) / SECTOR_SIZE) as u32
                }
                // Padding entries past the table are unused too, as qemu writes them.
                _ => BAT_UNUSED,
            };
            chunk.extend_from_slice(&entry.to_be_bytes());
            if chunk.len() == chunk.capacity() {
                out(&chunk)?;
                chunk.clear();
            }
        }
        if !chunk.is_empty() {
            out(&chunk)?;
        }
        Ok(())
    }

    /// Writes the whole file to `out` strictly front to back, reading each
    /// allocated block from `source`. Returns the bytes written, which equal
    /// [`total_len`](DynamicLayout::total_len).
    pub fn write_to(
        &self,
        source: &mut dyn DiskSource,
        out: &mut dyn Write,
        progress: Progress<'_>,
    ) -> Result<u64> {
        if source.virtual_size() > self.virtual_size {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "source larger than the layout",
            ));
        }
        let mut pos = 0u64;
        let mut put = |buf: &[u8], pos: &mut u64| -> Result<()> {
            out.write_all(buf)
                .map_err(|e| Error::io("write output", e).at(*pos))?;
            *pos += buf.len() as u64;
            Ok(())
        };
        let footer = self.footer();
        put(&footer, &mut pos)?;
        put(&self.header(), &mut pos)?;
        let mut bat_pos = pos;
        self.write_bat(&self.blocks, &mut |b| put(b, &mut bat_pos))?;
        pos = bat_pos;
        let bitmap = self.full_bitmap();
        let bs = u64::from(self.block_size);
        let mut buf = vec![0u8; IO_CHUNK.min(self.block_size as usize)];
        for &b in &self.blocks {
            put(&bitmap, &mut pos)?;
            let start = u64::from(b) * bs;
            let mut off = 0u64;
            while off < bs {
                let n = (bs - off).min(buf.len() as u64) as usize;
                read_clipped(source, start + off, &mut buf[..n])?;
                put(&buf[..n], &mut pos)?;
                off += n as u64;
            }
            progress((start + bs).min(self.virtual_size));
        }
        put(&footer, &mut pos)?;
        out.flush().map_err(|e| Error::io("flush output", e))?;
        progress(self.virtual_size);
        debug_assert_eq!(pos, self.total_len());
        Ok(pos)
    }
}

/// A block bitmap with the first `block_size / 512` bits set, padded to a sector.
pub(crate) fn full_bitmap(block_size: u32) -> Vec<u8> {
    let mut bitmap = vec![0u8; bitmap_size(block_size) as usize];
    let sectors = (block_size / 512) as usize;
    bitmap[..sectors / 8].fill(0xff);
    if sectors % 8 != 0 {
        bitmap[sectors / 8] = 0xffu8 << (8 - sectors % 8);
    }
    bitmap
}

/// Reads `buf.len()` virtual bytes at `offset`; bytes past the end of the
/// source (the tail of the last block) are zeros.
pub(crate) fn read_clipped(source: &mut dyn DiskSource, offset: u64, buf: &mut [u8]) -> Result<()> {
    let size = source.virtual_size();
    let inside = size.saturating_sub(offset).min(buf.len() as u64) as usize;
    let (head, tail) = buf.split_at_mut(inside);
    let end = offset + inside as u64;
    // Only the ranges the source's metadata calls data are read; the rest is
    // zero-filled here. Reading a hole of a sparse raw file is not free: the
    // kernel zero-fills page-cache pages for it (measured: half the read time
    // of a 2 MiB block that is half hole).
    let mut p = offset;
    while p < end {
        let lo = (p - offset) as usize;
        match source.next_data(p)? {
            Some((s, e)) if s < end => {
                let s = s.max(p);
                let e = if e > s { e.min(end) } else { end };
                head[lo..(s - offset) as usize].fill(0);
                source.read_at(s, &mut head[(s - offset) as usize..(e - offset) as usize])?;
                p = e;
            }
            _ => {
                head[lo..].fill(0);
                break;
            }
        }
    }
    tail.fill(0);
    Ok(())
}

/// True when the block at `start` of `len` bytes reads as zeros; stops at the
/// first chunk with data.
pub(crate) fn block_is_zero(
    source: &mut dyn DiskSource,
    start: u64,
    len: u64,
    buf: &mut [u8],
) -> Result<bool> {
    let mut off = 0u64;
    while off < len {
        let n = (len - off).min(buf.len() as u64) as usize;
        read_clipped(source, start + off, &mut buf[..n])?;
        if !super::is_zero(&buf[..n]) {
            return Ok(false);
        }
        off += n as u64;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::MemorySource;

    #[test]
    fn bitmaps_cover_exactly_the_block() {
        assert_eq!(full_bitmap(512)[0], 0x80);
        assert_eq!(full_bitmap(2 << 20)[..512], [0xff; 512]);
        assert_eq!(full_bitmap(4096)[0], 0xff);
        assert_eq!(full_bitmap(4096)[1], 0);
    }

    #[test]
    fn plan_skips_zero_and_unallocated_blocks() {
        let bs = 4096u32;
        let mut disk = vec![0u8; 10 * 4096 + 512];
        disk[4096 * 2 + 7] = 1; // block 2
        disk[10 * 4096 + 3] = 9; // the partial last block 10
        let ranges = vec![(0, 4096 * 4), (4096 * 10, 10 * 4096 + 512)];
        let mut src = MemorySource::with_ranges(disk.clone(), ranges);
        let opts = DynamicOptions {
            block_size: bs,
            ..Default::default()
        };
        let l = DynamicLayout::plan(&mut src, &opts).unwrap();
        assert_eq!(l.allocated_blocks(), &[2, 10]);
        assert_eq!(l.entries(), 11);
        let keep = DynamicOptions {
            keep_zero_blocks: true,
            ..opts
        };
        let l2 = DynamicLayout::plan(&mut src, &keep).unwrap();
        assert_eq!(l2.allocated_blocks(), &[0, 1, 2, 3, 10]);
        let mut out = Vec::new();
        let n = l.write_to(&mut src, &mut out, &mut |_| {}).unwrap();
        assert_eq!(n, l.total_len());
        assert_eq!(out.len() as u64, l.total_len());
        assert_eq!(&out[..512], &out[out.len() - 512..]);
    }
}

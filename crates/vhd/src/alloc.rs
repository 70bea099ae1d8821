//! The allocation map: which layer (and where in its file) holds each range of
//! the virtual disk, or that the range reads as zeros.
//!
//! Built from metadata only: the BATs (in memory) and one bitmap read per
//! allocated block per layer (the image caches the last one, and the walk is in
//! order, so each is read once). Runs of unallocated blocks are skipped a whole
//! run at a time, so an empty 2 TiB disk is one step, not a million. Layers may
//! have different block sizes: the walk works in sectors and stops each step at
//! the nearest boundary where any layer's answer could change.

use crate::bat::{self, BAT_UNUSED};
use crate::chain::Chain;
use crate::image::Image;
use crate::{DiskType, Error, ErrorKind, Result, SECTOR_SIZE};
use serde::Serialize;
use std::ops::Range;

/// Where the bytes of an extent come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Source {
    /// No layer holds the range: it reads as zeros. (For the extents of a single
    /// differencing image, it means "not in this file".)
    Zero,
    /// Layer `layer` (0 = leaf) holds the range, starting at `file_offset`.
    Layer { layer: usize, file_offset: u64 },
}

/// A range `[offset, offset + len)` of the virtual disk and its source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Extent {
    pub offset: u64,
    pub len: u64,
    pub source: Source,
}

impl Extent {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }

    /// True when the range reads as zeros.
    pub fn is_zero(&self) -> bool {
        self.source == Source::Zero
    }

    /// Appends `next` when it continues this extent from the same source.
    fn try_merge(&mut self, next: &Extent) -> bool {
        if self.end() != next.offset {
            return false;
        }
        let contiguous = match (self.source, next.source) {
            (Source::Zero, Source::Zero) => true,
            (
                Source::Layer {
                    layer: a,
                    file_offset: fa,
                },
                Source::Layer {
                    layer: b,
                    file_offset: fb,
                },
            ) => a == b && fa + self.len == fb,
            _ => false,
        };
        if contiguous {
            self.len += next.len;
        }
        contiguous
    }
}

/// Iterator over the extents of a range of a virtual disk, in order, exactly
/// covering the range. Yields an error (and then stops) when metadata points
/// outside a layer's file.
pub struct Extents<'a> {
    layers: &'a [Image],
    /// Byte range requested; extents are clipped to it.
    start: u64,
    end: u64,
    /// Next sector to resolve, and the sector the walk stops at.
    pos: u64,
    end_sector: u64,
    /// Per layer: `(from, next)` means blocks `from..next` are unallocated and
    /// `next` is allocated (or the end of the BAT).
    next_alloc: Vec<(usize, usize)>,
    pending: Option<Extent>,
    done: bool,
}

impl<'a> Extents<'a> {
    /// Extents of `range` (bytes) over `layers`, leaf first. The range must lie
    /// within the virtual size of the layers.
    pub fn new(layers: &'a [Image], range: Range<u64>) -> Extents<'a> {
        let start = range.start.min(range.end);
        Extents {
            layers,
            start,
            end: range.end,
            pos: start / SECTOR_SIZE,
            end_sector: range.end.div_ceil(SECTOR_SIZE),
            next_alloc: vec![(usize::MAX, 0); layers.len()],
            pending: None,
            done: false,
        }
    }

    fn next_allocated(&mut self, layer: usize, block: usize) -> usize {
        let (from, next) = self.next_alloc[layer];
        if from <= block && block <= next {
            return next;
        }
        let next = bat::next_allocated(self.layers[layer].bat(), block);
        self.next_alloc[layer] = (block, next);
        next
    }

    /// The source of sector `pos` and the sector where that answer may change.
    fn resolve(&mut self, pos: u64) -> Result<(Source, u64)> {
        let mut limit = self.end_sector;
        for i in 0..self.layers.len() {
            let img = &self.layers[i];
            if img.disk_type() == DiskType::Fixed {
                return Ok((
                    Source::Layer {
                        layer: i,
                        file_offset: pos * SECTOR_SIZE,
                    },
                    limit,
                ));
            }
            let spb = u64::from(img.sectors_per_block());
            let block = (pos / spb) as usize;
            let entry = img.bat().get(block).copied().unwrap_or(BAT_UNUSED);
            if entry == BAT_UNUSED {
                let next = self.next_allocated(i, block) as u64;
                // Past the table, nothing is allocated in this layer.
                let next = if next >= img.bat().len() as u64 {
                    u64::MAX
                } else {
                    next * spb
                };
                limit = limit.min(next);
                continue;
            }
            let bitmap = img.read_bitmap(block as u32)?;
            let block_start = block as u64 * spb;
            let in_block = (pos - block_start) as u32;
            let run_end = block_start + u64::from(bitmap.run_end(in_block, spb as u32));
            limit = limit.min(run_end);
            if bitmap.is_set(in_block) {
                let file_offset = u64::from(entry) * SECTOR_SIZE
                    + img.bitmap_size()
                    + u64::from(in_block) * SECTOR_SIZE;
                let need = (limit - pos) * SECTOR_SIZE;
                if file_offset
                    .checked_add(need)
                    .is_none_or(|e| e > img.file_len())
                {
                    return Err(Error::new(
                        ErrorKind::Truncated,
                        format!(
                            "block {block} data at {file_offset:#x} lies past the end of the {}-byte file",
                            img.file_len()
                        ),
                    )
                    .field("bat")
                    .at(img.bat_entry_offset(block as u32))
                    .path(img.path()));
                }
                return Ok((
                    Source::Layer {
                        layer: i,
                        file_offset,
                    },
                    limit,
                ));
            }
        }
        Ok((Source::Zero, limit))
    }

    /// Resolves the next piece, clipped to the requested byte range.
    fn step(&mut self) -> Result<Option<Extent>> {
        if self.pos >= self.end_sector || self.start >= self.end {
            return Ok(None);
        }
        let pos = self.pos;
        let (source, limit) = self.resolve(pos)?;
        let limit = limit.max(pos + 1).min(self.end_sector);
        self.pos = limit;
        let lo = (pos * SECTOR_SIZE).max(self.start);
        let hi = (limit * SECTOR_SIZE).min(self.end);
        let source = match source {
            Source::Layer { layer, file_offset } => Source::Layer {
                layer,
                file_offset: file_offset + (lo - pos * SECTOR_SIZE),
            },
            Source::Zero => Source::Zero,
        };
        Ok(Some(Extent {
            offset: lo,
            len: hi - lo,
            source,
        }))
    }
}

impl Iterator for Extents<'_> {
    type Item = Result<Extent>;

    fn next(&mut self) -> Option<Result<Extent>> {
        if self.done {
            return None;
        }
        loop {
            match self.step() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
                Ok(None) => {
                    self.done = true;
                    return self.pending.take().map(Ok);
                }
                Ok(Some(piece)) => match self.pending.as_mut() {
                    Some(p) => {
                        if !p.try_merge(&piece) {
                            let out = *p;
                            self.pending = Some(piece);
                            return Some(Ok(out));
                        }
                    }
                    None => self.pending = Some(piece),
                },
            }
        }
    }
}

impl Chain {
    /// Extents covering the whole virtual disk.
    pub fn extents(&self) -> Extents<'_> {
        Extents::new(self.layers(), 0..self.virtual_size())
    }

    /// Extents covering `range` (bytes, clipped to the virtual size).
    pub fn extents_in(&self, range: Range<u64>) -> Extents<'_> {
        let size = self.virtual_size();
        Extents::new(self.layers(), range.start.min(size)..range.end.min(size))
    }
}

impl Image {
    /// Extents of this file alone. For a differencing disk `Source::Zero`
    /// means "not in this file" (the parent would supply it).
    pub fn extents(&self) -> Extents<'_> {
        Extents::new(std::slice::from_ref(self), 0..self.virtual_size())
    }

    /// Bytes of data this file holds: allocated blocks times the block size, or
    /// the virtual size of a fixed disk.
    pub fn allocated_bytes(&self) -> u64 {
        match self.block_size() {
            Some(bs) => self.allocated_blocks() * u64::from(bs),
            None => self.virtual_size(),
        }
    }
}

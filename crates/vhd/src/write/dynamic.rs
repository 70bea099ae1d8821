//! One-pass dynamic VHD writer for regular files: blocks are written where they
//! belong as soon as they are found to hold data, metadata last.
//!
//! Compared with [`DynamicLayout::write_to`], which must plan first and so reads
//! allocated data twice to leave zero blocks out, this reads everything once. A
//! crash midway leaves a file with no header (its first sector is still a hole),
//! which no reader mistakes for a complete image.

use super::layout::{block_is_zero, read_clipped, DynamicLayout, IO_CHUNK};
use super::sink::with_write_behind;
use super::{check_block_size, vhd_size, Direct, DiskSource, DynamicOptions, Progress, Sink};
use crate::{Error, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

/// Writes `source` as a dynamic VHD into `file` (truncated first) with
/// positional writes. Returns the layout written; the file is
/// [`DynamicLayout::total_len`] bytes long.
pub fn write_dynamic_file(
    source: &mut dyn DiskSource,
    file: &File,
    opts: &DynamicOptions,
    progress: Progress<'_>,
) -> Result<DynamicLayout> {
    write_dynamic_file_with(source, file, opts, false, progress)
}

/// [`write_dynamic_file`], starting writeback as blocks are written when
/// `flush_behind` (the caller fsyncs at the end; see [`Sink::File`]).
pub(crate) fn write_dynamic_file_with(
    source: &mut dyn DiskSource,
    file: &File,
    opts: &DynamicOptions,
    flush_behind: bool,
    progress: Progress<'_>,
) -> Result<DynamicLayout> {
    check_block_size(opts.block_size)?;
    let size = vhd_size(source.virtual_size())?;
    // An empty layout validates the sizes and fixes where block k goes.
    let empty = DynamicLayout::new(size, opts.block_size, Vec::new(), opts.uuid)?;
    super::sink::truncate_if_needed(file)?;
    let bs = u64::from(opts.block_size);
    let entries = u64::from(empty.entries());
    let bitmap = empty.full_bitmap();
    if opts.block_size as usize <= IO_CHUNK {
        // Blocks are read here and written on a second thread: bitmap and
        // data side by side, one positional write per block.
        let blen = bitmap.len();
        let shared_bitmap: Arc<[u8]> = bitmap.clone().into();
        let whole = size / bs; // blocks entirely inside the disk
        let blocks =
            with_write_behind(file, blen + opts.block_size as usize, flush_behind, |wb| {
                let mut blocks = Vec::new();
                let mut b = 0u64;
                while b < entries {
                    let Some((start, end)) = source.next_data(b * bs)? else {
                        break;
                    };
                    let first = (start / bs).max(b);
                    let last = end.div_ceil(bs).min(entries);
                    for blk in first..last {
                        let vstart = blk * bs;
                        // A block that one file holds whole goes out straight
                        // from its map; one known to be zeros is not read at all.
                        let direct = if blk < whole {
                            source.direct_at(vstart, bs as usize)?
                        } else {
                            None
                        };
                        match direct {
                            Some(Direct::Map(m)) if m.as_slice().len() as u64 == bs => {
                                if !opts.keep_zero_blocks && super::is_zero(m.as_slice()) {
                                    continue;
                                }
                                let at = empty.block_offset(blocks.len() as u64);
                                wb.write_mapped(at, Some(shared_bitmap.clone()), m)?;
                                blocks.push(blk as u32);
                                progress((vstart + bs).min(size));
                                continue;
                            }
                            Some(Direct::Zeros(k)) if k == bs && !opts.keep_zero_blocks => continue,
                            _ => {}
                        }
                        let mut buf = wb.buffer()?;
                        read_clipped(source, vstart, &mut buf[blen..])?;
                        if !opts.keep_zero_blocks && super::is_zero(&buf[blen..]) {
                            wb.give_back(buf);
                            continue;
                        }
                        buf[..blen].copy_from_slice(&bitmap);
                        // Every range of a fresh file is written at most once, so
                        // zero pages inside a block can stay holes.
                        let at = empty.block_offset(blocks.len() as u64);
                        let len = buf.len();
                        wb.write(at, buf, blen, len)?;
                        blocks.push(blk as u32);
                        progress((vstart + bs).min(size));
                    }
                    b = last.max(first + 1);
                }
                Ok(blocks)
            })?;
        return finish(size, opts, &empty, blocks, file, progress);
    }
    // Blocks larger than IO_CHUNK: a chunk at a time, in line.
    let mut buf = vec![0u8; IO_CHUNK];
    let mut blocks = Vec::new();
    let mut b = 0u64;
    while b < entries {
        let Some((start, end)) = source.next_data(b * bs)? else {
            break;
        };
        let first = (start / bs).max(b);
        let last = end.div_ceil(bs).min(entries);
        for blk in first..last {
            let at = empty.block_offset(blocks.len() as u64);
            let vstart = blk * bs;
            if !opts.keep_zero_blocks && block_is_zero(source, vstart, bs, &mut buf)? {
                continue;
            }
            file.write_all_at(&bitmap, at)
                .map_err(|e| Error::io("write bitmap", e).at(at))?;
            let mut off = 0u64;
            while off < bs {
                let n = (bs - off).min(IO_CHUNK as u64) as usize;
                let chunk = &mut buf[..n];
                read_clipped(source, vstart + off, chunk)?;
                let pos = at + bitmap.len() as u64 + off;
                Sink::File {
                    file,
                    pos,
                    flush_behind: false,
                }
                .write_sparse(chunk)?;
                off += n as u64;
            }
            blocks.push(blk as u32);
            progress((vstart + bs).min(size));
        }
        b = last.max(first + 1);
    }
    finish(size, opts, &empty, blocks, file, progress)
}

/// Writes the metadata of the blocks written and reports the end.
fn finish(
    size: u64,
    opts: &DynamicOptions,
    empty: &DynamicLayout,
    blocks: Vec<u32>,
    file: &File,
    progress: Progress<'_>,
) -> Result<DynamicLayout> {
    let layout = DynamicLayout::new(size, opts.block_size, blocks, Some(empty.uuid()))?;
    write_metadata(&layout, file)?;
    progress(size);
    Ok(layout)
}

/// Writes the footer copy, header, BAT and tail footer of `layout` into `file`.
pub(crate) fn write_metadata(layout: &DynamicLayout, file: &File) -> Result<()> {
    let footer = layout.footer();
    let tail = layout.total_len() - footer.len() as u64;
    file.write_all_at(&footer, tail)
        .map_err(|e| Error::io("write footer", e).at(tail))?;
    let mut pos = super::layout::TABLE_OFFSET;
    layout.write_bat(layout.allocated_blocks(), &mut |chunk| {
        file.write_all_at(chunk, pos)
            .map_err(|e| Error::io("write BAT", e).at(pos))?;
        pos += chunk.len() as u64;
        Ok(())
    })?;
    file.write_all_at(&layout.header(), 512)
        .map_err(|e| Error::io("write header", e).at(512))?;
    file.write_all_at(&footer, 0)
        .map_err(|e| Error::io("write footer copy", e).at(0))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::write::MemorySource;

    #[test]
    fn one_pass_equals_stream_layout() {
        let mut disk = vec![0u8; 3 * 4096 + 1024];
        disk[4096 + 1] = 5;
        disk[3 * 4096 + 1000] = 6;
        let opts = DynamicOptions {
            block_size: 4096,
            uuid: Some(uuid::Uuid::from_u128(7)),
            ..Default::default()
        };
        let f = tempfile::tempfile().unwrap();
        let l = write_dynamic_file(&mut MemorySource::new(disk.clone()), &f, &opts, &mut |_| {})
            .unwrap();
        assert_eq!(l.allocated_blocks(), &[1, 3]);
        assert_eq!(f.metadata().unwrap().len(), l.total_len());
        let planned = DynamicLayout::plan(&mut MemorySource::new(disk.clone()), &opts).unwrap();
        let mut v = Vec::new();
        planned
            .write_to(&mut MemorySource::new(disk), &mut v, &mut |_| {})
            .unwrap();
        let mut back = vec![0u8; v.len()];
        f.read_exact_at(&mut back, 0).unwrap();
        // Identical except the timestamps (and so the checksums) of the footers.
        assert_eq!(back[512..v.len() - 512], v[512..v.len() - 512]);
    }
}

#[cfg(test)]
mod chain_tests {
    use super::*;
    use crate::chain::{Chain, ChainOptions};
    use crate::write::chain_source::tests::sample_chain;
    use crate::write::ChainSource;

    #[test]
    fn chain_to_dynamic_file_reads_back_as_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let g = sample_chain(dir.path());
        let expect = g.oracle.to_vec();
        let chain = Chain::open(g.leaf(), &ChainOptions::default()).unwrap();
        let out = dir.path().join("out.vhd");
        let f = File::create(&out).unwrap();
        let l = write_dynamic_file(
            &mut ChainSource::new(&chain),
            &f,
            &DynamicOptions::default(),
            &mut |_| {},
        )
        .unwrap();
        drop(f);
        // Blocks 4 and 7 are unallocated and block 6 holds only zeros.
        assert_eq!(l.allocated_blocks(), &[0, 1, 2, 3, 5]);
        let back = Chain::open(&out, &ChainOptions::default()).unwrap();
        let mut got = vec![0u8; expect.len()];
        back.read_at(0, &mut got).unwrap();
        assert!(got == expect, "coalesced image differs from the chain");
    }
}

//! Merging a differencing child into its immediate parent, in place.
//!
//! Only sectors whose bit is set in the child's bitmap are copied, so a Hyper-V
//! child that owns 3 sectors of a 2 MiB block changes exactly those 3 sectors
//! of the parent. Parent blocks that were unallocated are appended where the
//! tail footer was (their bitmap has only the child's sectors set, their other
//! data zeros), and the footer moves to the new end. The child is not changed.
//!
//! Two streaming passes over the child's allocation map (metadata only): the
//! first copies every parent byte range the merge will overwrite into the
//! journal and commits it; the second writes. Memory is one parent block's run
//! list plus a 4 MiB copy buffer.

use super::faults::Faults;
use super::journal::{self, refuse_if_journaled, JournalInfo, JournalWriter};
use crate::alloc::Source;
use crate::bitmap::Bitmap;
use crate::chain::{Chain, ChainOptions};
use crate::format::footer::FOOTER_SIZE;
use crate::format::header::{BAT_UNUSED, HEADER_SIZE};
use crate::image::Image;
use crate::{DiskType, Error, ErrorKind, Result, SECTOR_SIZE};
use serde::Serialize;
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const COPY_CHUNK: usize = 4 << 20;
/// Grouping window for a fixed parent, which has no blocks.
const FIXED_WINDOW: u64 = 2 << 20;

/// Options of an in-place coalesce.
#[derive(Debug, Default)]
pub struct InPlaceOptions {
    /// How to find the parent from the child.
    pub chain: ChainOptions,
    /// Test hook: abort the process before this many writes have happened.
    #[doc(hidden)]
    pub abort_after_writes: Option<u64>,
}

/// What an in-place coalesce did.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    pub parent: PathBuf,
    pub child: PathBuf,
    /// Sectors copied from the child.
    pub sectors_copied: u64,
    /// Parent blocks that already existed and received child sectors.
    pub blocks_updated: u64,
    /// Parent blocks appended.
    pub blocks_allocated: u64,
    /// Parent file length after the merge.
    pub parent_len: u64,
}

/// A run of child sectors: virtual offset, length, offset in the child file.
#[derive(Debug, Clone, Copy)]
struct Run {
    voff: u64,
    len: u64,
    child_off: u64,
}

/// Merges `child` into its immediate parent in place, crash safe.
pub fn coalesce_into_parent(child: &Path, opts: &InPlaceOptions) -> Result<MergeReport> {
    let faults = faults(opts);
    merge(child, &opts.chain, None, &faults)
}

/// Finishes an interrupted merge: restores the parent from its journal, then
/// merges the recorded child again.
pub fn resume(parent: &Path, opts: &InPlaceOptions) -> Result<MergeReport> {
    let faults = faults(opts);
    let info = journal::rollback_with(parent, &faults)?;
    let child = parent_dir(parent).join(&info.child);
    // The journal's parent is the one to merge into, whatever the locators say.
    let mut chain = opts.chain.clone();
    chain.parents.insert(0, parent.to_path_buf());
    merge(&child, &chain, Some(info.child_uuid), &faults)
}

/// Undoes an interrupted merge from the parent's journal.
pub fn rollback(parent: &Path, opts: &InPlaceOptions) -> Result<JournalInfo> {
    journal::rollback_with(parent, &faults(opts))
}

fn faults(opts: &InPlaceOptions) -> Faults {
    opts.abort_after_writes
        .map_or_else(Faults::none, Faults::abort_after)
}

fn merge(
    child_path: &Path,
    chain_opts: &ChainOptions,
    want_uuid: Option<uuid::Uuid>,
    faults: &Faults,
) -> Result<MergeReport> {
    refuse_if_journaled(child_path)?;
    let chain = Chain::open(child_path, chain_opts)?;
    for l in chain.layers() {
        refuse_if_journaled(l.path())?;
    }
    let layers = chain.layers();
    let child = &layers[0];
    if child.disk_type() != DiskType::Differencing || layers.len() < 2 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "only a differencing disk can be merged into its parent",
        )
        .path(child_path));
    }
    if want_uuid.is_some_and(|u| u != child.uuid()) {
        return Err(Error::new(
            ErrorKind::Journal,
            format!(
                "the journal names child UUID {} but {} has {}",
                want_uuid.unwrap_or_default(),
                child_path.display(),
                child.uuid()
            ),
        )
        .path(child_path));
    }
    let parent = &layers[1];
    let ppath = parent.path().to_path_buf();
    let sparse = parent.disk_type().is_sparse();
    let original_len = parent.file_len();
    if sparse && parent.footer_offset() + FOOTER_SIZE as u64 != original_len {
        return Err(Error::new(
            ErrorKind::Corrupt,
            "the parent's tail footer is damaged; repair it before merging into it",
        )
        .field("footer")
        .path(&ppath));
    }
    // No other process may read the parent while it changes: its readers hold shared
    // locks, which make this fail; once it holds, their opens fail.
    if let Some(f) = parent.io().as_file() {
        crate::filelock::exclusive(f, &ppath)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&ppath)
        .map_err(|e| Error::io("open parent for writing", e).path(&ppath))?;
    let group = match parent.block_size() {
        Some(bs) if sparse => u64::from(bs),
        _ => FIXED_WINDOW,
    };

    // Pass 1: journal every range the merge overwrites.
    let info = JournalInfo {
        original_len,
        // Relative to the parent's folder, so a resume finds the child even
        // when the pair has been moved together.
        child: relative_to_parent(&ppath, child_path),
        child_uuid: child.uuid(),
    };
    let mut jw = JournalWriter::create(&ppath, &info, faults)?;
    let mut buf = vec![0u8; COPY_CHUNK];
    let mut tail_footer = [0u8; FOOTER_SIZE];
    if sparse {
        let h = parent.header().expect("sparse parent has a header");
        let mut head = [0u8; FOOTER_SIZE];
        parent.read_raw(&mut head, 0)?;
        jw.record(0, &head)?;
        let mut hb = [0u8; HEADER_SIZE];
        parent.read_raw(&mut hb, parent.footer().data_offset)?;
        jw.record(parent.footer().data_offset, &hb)?;
        let bat_len = parent.bat().len() * 4;
        let mut bat = vec![0u8; bat_len];
        parent.read_raw(&mut bat, h.table_offset)?;
        jw.record(h.table_offset, &bat)?;
        parent.read_raw(&mut tail_footer, parent.footer_offset())?;
        jw.record(parent.footer_offset(), &tail_footer)?;
    }
    for_each_group(child, group, |pb, runs| {
        let Some(base) = parent_block_data(parent, pb, group) else {
            return Ok(());
        };
        if sparse {
            let bm_off = base - parent.bitmap_size();
            let mut bm = vec![0u8; parent.bitmap_size() as usize];
            parent.read_raw(&mut bm, bm_off)?;
            jw.record(bm_off, &bm)?;
        }
        for r in runs {
            let at = base + (r.voff - pb * group);
            let mut done = 0;
            while done < r.len {
                let n = (r.len - done).min(COPY_CHUNK as u64) as usize;
                parent.read_raw(&mut buf[..n], at + done)?;
                jw.record(at + done, &buf[..n])?;
                done += n as u64;
            }
        }
        Ok(())
    })?;
    jw.commit()?;

    // Pass 2: write.
    let mut report = MergeReport {
        parent: ppath.clone(),
        child: child_path.to_path_buf(),
        sectors_copied: 0,
        blocks_updated: 0,
        blocks_allocated: 0,
        parent_len: original_len,
    };
    let mut bat = parent.bat().to_vec();
    let mut next_free = if sparse {
        parent.footer_offset()
    } else {
        original_len
    };
    let put = |data: &[u8], at: u64| -> Result<()> {
        faults.point()?;
        file.write_all_at(data, at)
            .map_err(|e| Error::io("write parent", e).path(&ppath).at(at))
    };
    for_each_group(child, group, |pb, runs| {
        let block_start = pb * group;
        report.sectors_copied += runs.iter().map(|r| r.len / SECTOR_SIZE).sum::<u64>();
        if let Some(base) = parent_block_data(parent, pb, group) {
            for r in runs {
                copy_run(child, r, base + (r.voff - block_start), &mut buf, &put)?;
            }
            if sparse {
                let old = parent.read_bitmap(pb as u32)?;
                let mut bm = Bitmap::from_bytes(old.as_bytes(), old.sectors());
                set_bits(&mut bm, runs, block_start);
                if bm != *old {
                    put(bm.as_bytes(), base - parent.bitmap_size())?;
                }
            }
            report.blocks_updated += 1;
            return Ok(());
        }
        // A new parent block at the end: bitmap of the child's sectors, zeros elsewhere.
        let spb = parent.sectors_per_block();
        let mut bm = Bitmap::filled(spb, false);
        set_bits(&mut bm, runs, block_start);
        let mut bm_bytes = vec![0u8; parent.bitmap_size() as usize];
        bm_bytes[..bm.as_bytes().len()].copy_from_slice(bm.as_bytes());
        let at = next_free;
        let sector = at / SECTOR_SIZE;
        if sector >= u64::from(BAT_UNUSED) {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "parent would outgrow 32-bit BAT entries",
            )
            .path(&ppath));
        }
        put(&bm_bytes, at)?;
        let data_at = at + parent.bitmap_size();
        let mut off = 0u64;
        let mut runs_left = runs;
        while off < group {
            let n = (group - off).min(COPY_CHUNK as u64) as usize;
            let chunk = &mut buf[..n];
            chunk.fill(0);
            let (lo, hi) = (block_start + off, block_start + off + n as u64);
            for r in runs_left {
                let s = r.voff.max(lo);
                let e = (r.voff + r.len).min(hi);
                if s < e {
                    child.read_raw(
                        &mut chunk[(s - lo) as usize..(e - lo) as usize],
                        r.child_off + (s - r.voff),
                    )?;
                }
            }
            while runs_left.first().is_some_and(|r| r.voff + r.len <= hi) {
                runs_left = &runs_left[1..];
            }
            put(chunk, data_at + off)?;
            off += n as u64;
        }
        bat[pb as usize] = sector as u32;
        next_free = data_at + group;
        report.blocks_allocated += 1;
        Ok(())
    })?;
    if sparse {
        let h = parent.header().expect("sparse parent has a header");
        if report.blocks_allocated > 0 {
            let bytes: Vec<u8> = bat.iter().flat_map(|e| e.to_be_bytes()).collect();
            for (i, chunk) in bytes.chunks(1 << 20).enumerate() {
                put(chunk, h.table_offset + (i as u64) * (1 << 20))?;
            }
            put(&tail_footer, next_free)?;
            faults.point()?;
            file.set_len(next_free + FOOTER_SIZE as u64)
                .map_err(|e| Error::io("extend parent", e).path(&ppath))?;
        }
        report.parent_len = next_free + FOOTER_SIZE as u64;
    }
    faults.point()?;
    file.sync_all()
        .map_err(|e| Error::io("fsync parent", e).path(&ppath))?;
    journal::finish(&ppath, faults)?;
    Ok(report)
}

/// The first data byte of the parent's group `pb`: its block's data when
/// allocated, the virtual offset itself for a fixed parent, `None` otherwise.
fn parent_block_data(parent: &Image, pb: u64, group: u64) -> Option<u64> {
    if parent.disk_type() == DiskType::Fixed {
        return Some(pb * group);
    }
    parent.block_data_offset(u32::try_from(pb).ok()?)
}

fn set_bits(bm: &mut Bitmap, runs: &[Run], block_start: u64) {
    for r in runs {
        let first = (r.voff - block_start) / SECTOR_SIZE;
        for s in first..first + r.len / SECTOR_SIZE {
            bm.set(s as u32, true);
        }
    }
}

fn copy_run(
    child: &Image,
    r: &Run,
    to: u64,
    buf: &mut [u8],
    put: &dyn Fn(&[u8], u64) -> Result<()>,
) -> Result<()> {
    let mut done = 0u64;
    while done < r.len {
        let n = (r.len - done).min(buf.len() as u64) as usize;
        child.read_raw(&mut buf[..n], r.child_off + done)?;
        put(&buf[..n], to + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Streams the child's own sectors grouped by parent block (`group` bytes),
/// calling `f(block, runs)` once per block that receives any.
fn for_each_group(
    child: &Image,
    group: u64,
    mut f: impl FnMut(u64, &[Run]) -> Result<()>,
) -> Result<()> {
    let mut current: Option<u64> = None;
    let mut runs: Vec<Run> = Vec::new();
    for ext in child.extents() {
        let ext = ext?;
        let Source::Layer { file_offset, .. } = ext.source else {
            continue;
        };
        let mut voff = ext.offset;
        let end = ext.end();
        while voff < end {
            let pb = voff / group;
            let stop = end.min((pb + 1) * group);
            if current != Some(pb) {
                if let Some(c) = current {
                    f(c, &runs)?;
                }
                runs.clear();
                current = Some(pb);
            }
            runs.push(Run {
                voff,
                len: stop - voff,
                child_off: file_offset + (voff - ext.offset),
            });
            voff = stop;
        }
    }
    if let Some(c) = current {
        f(c, &runs)?;
    }
    Ok(())
}

fn absolute(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn parent_dir(p: &Path) -> PathBuf {
    absolute(p)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

fn relative_to_parent(parent: &Path, child: &Path) -> PathBuf {
    PathBuf::from(crate::create::relative_path(
        &parent_dir(parent),
        &absolute(child),
    ))
}

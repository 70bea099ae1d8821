//! The zero scan of a fixed source: which blocks hold data, with as little of the
//! source read as the answer needs.
//!
//! A package's dynamic VHD is written front to back, so its BAT (which blocks are
//! allocated) must be known before its first byte; for a fixed source that means a look
//! at every block before the transfer reads them. Read whole, that look is a second
//! download (5 of the Swift servers' 10 CPU-s in a 4 GiB import, and 1.5 of the
//! client's). But a block with data nearly always shows it in its first bytes, and one
//! non-zero byte decides it, so the scan goes in two steps:
//!
//! 1. **Sample**: the first [`SAMPLE`] bytes of every block, asked for many blocks at
//!    once ([`cloudimg_pipeline::ObjectStore::get_ranges`]: one GET per 32 blocks of a
//!    Swift segment). A sample with a non-zero byte marks its block as data.
//! 2. **Confirm**: the blocks whose sample is all zeros are read whole (runs of them as
//!    64 MiB spans, `jobs` GETs at once), and only a block read whole and found all zeros
//!    is left out of the BAT. A store without cheap multi-range reads (S3, Swift over
//!    https) skips step 1: every block is confirmed.
//!
//! The bytes are not hashed: the plan only decides what the transfer reads, and the
//! transfer reads (and checks) every byte it writes. Memory is one block per thread, and
//! the samples of 32 blocks.

use crate::error::{Error, Result};
use crate::objectio::ObjectIo;
use std::io::Read;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes per GET of the confirm step: large enough that a request's cost is noise,
/// small enough that the threads finish together.
const SPAN: u64 = 64 << 20;
/// Bytes sampled at the start of each block.
pub const SAMPLE: u64 = 4096;

/// The indices of the blocks of `[0, size)` of `io` that are not all zeros, ascending.
/// `done` is told the bytes decided so far (from any thread).
pub fn nonzero_blocks(
    io: &ObjectIo,
    size: u64,
    block: u32,
    jobs: usize,
    done: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u32>> {
    let bs = u64::from(block);
    let blocks = size.div_ceil(bs);
    let decided = AtomicU64::new(0);
    let (mut data, unsure) = match sample(io, size, bs, jobs)? {
        Some(sampled) => {
            let mut data = Vec::new();
            let mut unsure = Vec::new();
            for (b, has_data) in sampled.into_iter().enumerate() {
                if has_data {
                    data.push(b as u32);
                } else {
                    unsure.push(b as u64);
                }
            }
            let n = data.iter().map(|&b| bs.min(size - u64::from(b) * bs)).sum();
            decided.fetch_add(n, Ordering::Relaxed);
            done(n);
            (data, unsure)
        }
        None => (Vec::new(), (0..blocks).collect()),
    };
    let spans = spans_of(&unsure, bs, size);
    data.extend(confirm(io, &spans, bs, jobs, &decided, done)?);
    data.sort_unstable();
    Ok(data)
}

/// Per block: true when its sample holds a non-zero byte. `None` when the store cannot
/// read many small ranges cheaply.
fn sample(io: &ObjectIo, size: u64, bs: u64, jobs: usize) -> Result<Option<Vec<bool>>> {
    // Per piece, the samples of the blocks that start in it (cut at the piece's end).
    let mut work: Vec<(usize, Vec<u64>, Vec<Range<u64>>)> = Vec::new();
    for (i, p) in io.pieces().iter().enumerate() {
        let end = (p.start + p.len).min(size);
        let mut b = p.start.div_ceil(bs);
        let (mut ids, mut ranges) = (Vec::new(), Vec::new());
        while b * bs < end {
            let at = b * bs;
            let stop = (at + SAMPLE).min(end).min(at + bs);
            ids.push(b);
            ranges.push(at - p.start..stop - p.start);
            b += 1;
        }
        if !ids.is_empty() {
            work.push((i, ids, ranges));
        }
    }
    let blocks = size.div_ceil(bs) as usize;
    let found = Mutex::new(vec![false; blocks]);
    let next = AtomicUsize::new(0);
    let unsupported = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, work.len().max(1)) {
            s.spawn(|| loop {
                if unsupported.load(Ordering::Relaxed)
                    || first_error.lock().expect("not poisoned").is_some()
                {
                    return;
                }
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some((piece, ids, ranges)) = work.get(k) else {
                    return;
                };
                let path = &io.pieces()[*piece].path;
                match io.store().get_ranges(path, ranges) {
                    Ok(Some(parts)) => {
                        let mut f = found.lock().expect("not poisoned");
                        for (b, part) in ids.iter().zip(parts) {
                            if !cloudimg_vhd::write::is_zero(&part) {
                                f[*b as usize] = true;
                            }
                        }
                    }
                    Ok(None) => unsupported.store(true, Ordering::Relaxed),
                    Err(e) => {
                        let e = Error::store("sample source", io.store().url(path), e);
                        first_error.lock().expect("not poisoned").get_or_insert(e);
                    }
                }
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("not poisoned") {
        return Err(e);
    }
    if unsupported.into_inner() {
        return Ok(None);
    }
    Ok(Some(found.into_inner().expect("not poisoned")))
}

/// The runs of consecutive `blocks` (ascending) as byte spans of at most [`SPAN`],
/// cut at `size`.
fn spans_of(blocks: &[u64], bs: u64, size: u64) -> Vec<(u64, u64)> {
    let per = (SPAN / bs).max(1);
    let mut spans: Vec<(u64, u64)> = Vec::new();
    for &b in blocks {
        let (at, end) = (b * bs, ((b + 1) * bs).min(size));
        match spans.last_mut() {
            Some((s, e)) if *e == at && (*e - *s) < per * bs => *e = end,
            _ => spans.push((at, end)),
        }
    }
    spans
}

/// Reads each span whole with `jobs` GETs at once; returns the blocks holding data.
fn confirm(
    io: &ObjectIo,
    spans: &[(u64, u64)],
    bs: u64,
    jobs: usize,
    decided: &AtomicU64,
    done: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u32>> {
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let found: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, spans.len().max(1)) {
            s.spawn(|| {
                let mut buf = vec![0u8; bs as usize];
                let mut mine = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(start, end)) = spans.get(i) else {
                        break;
                    };
                    let r = scan_span(io, start, end - start, bs, &mut buf, |b| {
                        mine.push(b);
                    });
                    match r {
                        Ok(n) => done(decided.fetch_add(n, Ordering::Relaxed) + n),
                        Err(e) => {
                            failed.store(true, Ordering::Relaxed);
                            first_error.lock().expect("not poisoned").get_or_insert(e);
                        }
                    }
                }
                found.lock().expect("not poisoned").extend(mine);
            });
        }
    });
    if let Some(e) = first_error.into_inner().expect("not poisoned") {
        return Err(e);
    }
    Ok(found.into_inner().expect("not poisoned"))
}

/// Reads `[start, start + len)` block by block, calling `nonzero` with the index of
/// each block holding data; returns the bytes read.
fn scan_span(
    io: &ObjectIo,
    start: u64,
    len: u64,
    bs: u64,
    buf: &mut [u8],
    mut nonzero: impl FnMut(u32),
) -> Result<u64> {
    let mut r = io.span(start, len);
    let mut at = start;
    while r.remaining() > 0 {
        let n = r.remaining().min(bs) as usize;
        r.read_exact(&mut buf[..n])
            .map_err(|e| crate::error::from_io("scan source", io.url(), e))?;
        if !cloudimg_vhd::write::is_zero(&buf[..n]) {
            nonzero((at / bs) as u32);
        }
        at += n as u64;
    }
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objectio::tests::Counting;
    use crate::objectio::Piece;
    use cloudimg_pipeline::local::LocalStore;
    use cloudimg_pipeline::{ObjectPath, ObjectStore, PutOptions};
    use std::sync::Arc;

    /// An object of `blocks` blocks of `bs` bytes, split into pieces of `piece` bytes
    /// (a DLO's segments, not aligned with the blocks), where the blocks in `data`
    /// hold one non-zero byte at a place that moves with the block (inside the sample
    /// for some, past it for others). `ranges`: a store that reads many ranges at once
    /// (the local store) or one that cannot (every block is then read whole).
    fn object(
        bs: u64,
        blocks: u64,
        data: &[u32],
        piece: u64,
        ranges: bool,
    ) -> (tempfile::TempDir, ObjectIo, Arc<Counting>) {
        let dir = tempfile::tempdir().unwrap();
        let counting = Arc::new(Counting {
            inner: LocalStore::new(dir.path()).unwrap(),
            gets: AtomicUsize::new(0),
        });
        let store: Arc<dyn ObjectStore> = if ranges {
            Arc::new(LocalStore::new(dir.path()).unwrap())
        } else {
            counting.clone()
        };
        store.ensure_container("c").unwrap();
        let mut bytes = vec![0u8; (bs * blocks) as usize];
        for &b in data {
            let at = u64::from(b) * bs + (u64::from(b) * 977) % bs;
            bytes[at as usize] = 0x5a;
        }
        let mut pieces = Vec::new();
        for (k, chunk) in bytes.chunks(piece as usize).enumerate() {
            let path = ObjectPath::new("c", format!("seg/{k:04}"));
            store
                .put(&path, &chunk.to_vec(), &PutOptions::default())
                .unwrap();
            pieces.push(Piece {
                path,
                start: k as u64 * piece,
                len: chunk.len() as u64,
            });
        }
        let io = ObjectIo::from_pieces(store, "test://c/o".into(), pieces);
        (dir, io, counting)
    }

    #[test]
    fn finds_exactly_the_blocks_with_data_across_pieces_and_threads() {
        let bs = 64 << 10;
        // 100 blocks: several spans per thread only if SPAN were small, so cover the
        // piece boundaries instead: pieces of 100,000 bytes cut blocks in the middle.
        // The data byte of blocks 0, 1 and 4 lies in their sample, the others' past it.
        let data = [0, 1, 4, 7, 31, 32, 33, 64, 98, 99];
        for ranges in [true, false] {
            let (_d, io, counting) = object(bs, 100, &data, 100_000, ranges);
            for jobs in [1, 2, 4, 9] {
                let got = nonzero_blocks(&io, bs * 100, bs as u32, jobs, &|_| {}).unwrap();
                assert_eq!(got, data, "jobs {jobs}, ranges {ranges}");
            }
            if !ranges {
                assert!(
                    counting.gets.load(Ordering::SeqCst) > 0,
                    "read through the store"
                );
            }
        }
    }

    #[test]
    fn a_short_last_block_is_scanned_to_the_end_of_the_disk() {
        let bs = 64 << 10;
        let (_d, io, _) = object(bs, 3, &[2], 1 << 20, true);
        // The disk ends 100 bytes into block 2; its data byte sits beyond: zero.
        let got = nonzero_blocks(&io, 2 * bs + 100, bs as u32, 2, &|_| {}).unwrap();
        let mark = (2 * 977) % bs;
        assert!(
            mark >= 100,
            "the fixture's byte must lie past the disk's end"
        );
        assert!(got.is_empty(), "{got:?}");
        let got = nonzero_blocks(&io, 3 * bs, bs as u32, 2, &|_| {}).unwrap();
        assert_eq!(got, [2]);
    }

    #[test]
    fn progress_reaches_the_size_and_a_missing_piece_is_an_error() {
        let bs = 64 << 10;
        let (dir, io, _) = object(bs, 8, &[3], 3 * bs, true);
        let last = AtomicU64::new(0);
        nonzero_blocks(&io, 8 * bs, bs as u32, 2, &|n| {
            last.fetch_max(n, Ordering::Relaxed);
        })
        .unwrap();
        assert_eq!(last.load(Ordering::Relaxed), 8 * bs);
        std::fs::remove_file(dir.path().join("c/seg/0001")).unwrap();
        let e = nonzero_blocks(&io, 8 * bs, bs as u32, 2, &|_| {}).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound, "{e}");
        assert!(e.to_string().contains("seg/0001"), "{e}");
    }
}

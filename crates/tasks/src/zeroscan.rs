//! The zero scan of a fixed source: which blocks hold data, read by several ranged
//! GETs at once.
//!
//! A package's dynamic VHD is written front to back, so its BAT (which blocks are
//! allocated) must be known before its first byte; for a fixed source that takes a
//! read of the whole disk before the transfer reads it again. Over the network that
//! first read is a whole download: one GET at a time it cost as much as the transfer
//! (12 s of a 29 s import of 4 GiB from Swift). Here it is split into spans read by
//! `jobs` threads, each with its own GET, checking each block as it arrives and keeping
//! nothing: memory is one block per thread. The bytes are not hashed: the plan only
//! decides what the transfer reads, and the transfer reads (and checks) every byte it
//! writes.

use crate::error::{Error, Result};
use crate::objectio::ObjectIo;
use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Bytes per GET: large enough that a request's cost is noise, small enough that the
/// threads finish together.
const SPAN: u64 = 64 << 20;

/// The indices of the blocks of `[0, size)` of `io` that are not all zeros, ascending.
/// `done` is told the bytes scanned so far (from any thread).
pub fn nonzero_blocks(
    io: &ObjectIo,
    size: u64,
    block: u32,
    jobs: usize,
    done: &(dyn Fn(u64) + Sync),
) -> Result<Vec<u32>> {
    let bs = u64::from(block);
    let span = (SPAN / bs).max(1) * bs;
    let spans = size.div_ceil(span) as usize;
    let next = AtomicUsize::new(0);
    let scanned = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let found: Mutex<Vec<u32>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs.clamp(1, spans.max(1)) {
            s.spawn(|| {
                let mut buf = vec![0u8; block as usize];
                let mut mine = Vec::new();
                while !failed.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= spans {
                        break;
                    }
                    let start = i as u64 * span;
                    let r = scan_span(io, start, span.min(size - start), bs, &mut buf, |b| {
                        mine.push(b);
                    });
                    match r {
                        Ok(n) => done(scanned.fetch_add(n, Ordering::Relaxed) + n),
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
    let mut blocks = found.into_inner().expect("not poisoned");
    blocks.sort_unstable();
    Ok(blocks)
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
    use crate::objectio::Piece;
    use cloudimg_pipeline::local::LocalStore;
    use cloudimg_pipeline::{ObjectPath, ObjectStore, PutOptions};
    use std::sync::Arc;

    /// An object of `blocks` blocks of `bs` bytes, split into pieces of `piece` bytes
    /// (a DLO's segments, not aligned with the blocks), where the blocks in `data`
    /// hold one non-zero byte at a place that moves with the block.
    fn object(bs: u64, blocks: u64, data: &[u32], piece: u64) -> (tempfile::TempDir, ObjectIo) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::new(dir.path()).unwrap());
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
        (dir, io)
    }

    #[test]
    fn finds_exactly_the_blocks_with_data_across_pieces_and_threads() {
        let bs = 64 << 10;
        // 100 blocks: several spans per thread only if SPAN were small, so cover the
        // piece boundaries instead: pieces of 100,000 bytes cut blocks in the middle.
        let data = [0, 1, 7, 31, 32, 33, 64, 98, 99];
        let (_d, io) = object(bs, 100, &data, 100_000);
        for jobs in [1, 2, 4, 9] {
            let got = nonzero_blocks(&io, bs * 100, bs as u32, jobs, &|_| {}).unwrap();
            assert_eq!(got, data, "jobs {jobs}");
        }
    }

    #[test]
    fn a_short_last_block_is_scanned_to_the_end_of_the_disk() {
        let bs = 64 << 10;
        let (_d, io) = object(bs, 3, &[2], 1 << 20);
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
        let (dir, io) = object(bs, 8, &[3], 3 * bs);
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

//! Helpers shared by the VHD targets: bounded walks of the allocation map and
//! reads of the virtual disk that check the reader's invariants.

use cloudimg_vhd::{Chain, ChainReader, Source};
use std::io::{Read, Seek, SeekFrom};

/// Most extents walked per input: a crafted bitmap can alternate every sector,
/// and the walk must stay fast, not exhaustive.
pub const MAX_EXTENTS: usize = 4096;
/// Largest read per input.
pub const MAX_READ: usize = 64 * 1024;

/// Walks the extents: in order, contiguous from 0, non-empty, inside the virtual
/// size. Returns the extents walked (at most [`MAX_EXTENTS`]).
pub fn walk_extents(chain: &Chain) -> Vec<cloudimg_vhd::Extent> {
    let size = chain.virtual_size();
    let mut expect = 0u64;
    let mut out = Vec::new();
    for e in chain.extents().take(MAX_EXTENTS) {
        let Ok(e) = e else { break };
        assert_eq!(e.offset, expect, "extents are contiguous and in order");
        assert!(e.len > 0, "no empty extent");
        assert!(e.end() <= size, "extent inside the virtual size");
        if let Source::Layer { layer, .. } = e.source {
            assert!(
                layer < chain.layers().len(),
                "extent names an existing layer"
            );
        }
        expect = e.end();
        out.push(e);
    }
    out
}

/// Reads a few ranges chosen from `seed`; a zero extent must read as zeros and
/// the streaming reader must agree with positional reads.
pub fn read_some(chain: &Chain, extents: &[cloudimg_vhd::Extent], seed: &[u8]) {
    let size = chain.virtual_size();
    if size == 0 {
        return;
    }
    let pick = |i: usize| -> u64 {
        let mut v = 0u64;
        for (k, b) in seed.iter().skip(i * 8).take(8).enumerate() {
            v |= u64::from(*b) << (8 * k);
        }
        v
    };
    let start = pick(0) % size;
    let len = (pick(1) % MAX_READ as u64).min(size - start) as usize;
    let mut a = vec![0u8; len];
    if chain.read_at(start, &mut a).is_ok() {
        let mut reader = ChainReader::new(chain);
        let mut b = vec![0u8; len];
        if reader.seek(SeekFrom::Start(start)).is_ok() && reader.read_exact(&mut b).is_ok() {
            assert!(a == b, "ChainReader agrees with Chain::read_at");
        }
    }
    // The first few zero extents read as zeros (when they can be read at all).
    for e in extents.iter().filter(|e| e.is_zero()).take(4) {
        let n = e.len.min(MAX_READ as u64) as usize;
        let mut buf = vec![0xA5u8; n];
        if chain.read_at(e.offset, &mut buf).is_ok() {
            assert!(buf.iter().all(|&b| b == 0), "a zero extent reads as zeros");
        }
    }
}

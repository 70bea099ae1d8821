//! Streaming writers: dynamic VHD, fixed VHD and raw output from any virtual disk.
//!
//! Every writer pulls the virtual disk from a [`DiskSource`] in increasing
//! offset order, a window at a time, so memory stays at one window whatever the
//! disk size, and nothing reads the parts of the source its metadata says are
//! unallocated.
//!
//! # Knowing the layout before the first byte
//! A dynamic VHD starts with its BAT, which says where every block lives, so a
//! writer that emits the file strictly front to back (to a pipe, a tar entry, an
//! object store upload) must know which blocks it will allocate before writing
//! anything. [`DynamicLayout::plan`] decides that from the source's metadata
//! and, unless `keep_zero_blocks` is set, a zero scan of the data that metadata
//! calls allocated: that scan reads the allocated data twice (once to plan, once
//! to write) but gives a sparse output and an exact [`DynamicLayout::total_len`]
//! up front, which a tar header or a `Content-Length` needs.
//!
//! When the output is a regular file, [`write_dynamic_file`] avoids the second
//! read: it writes each block where it belongs as soon as it is found to hold
//! data and writes the header and BAT last, with positional writes. That is the
//! path `convert` takes for file output; the stream path is for pipes.
//!
//! # One copy of the data, not two
//! Converting is bound by copying bytes from the page cache into the page
//! cache. When a source can say that a range is held unchanged by one file
//! ([`DiskSource::direct_at`]: a VHD layer's block data, not split by partial
//! bitmaps or holes), the raw and dynamic writers write it straight from a
//! [`MappedRange`] of that file instead of reading it into a buffer first, and
//! skip the ranges the source knows are zeros without touching them. On a
//! 256 MiB qemu-made VHD that took the CPU time of a conversion to raw from
//! about 110 ms to 70 ms (see `benches/compare/convert.sh`). A map lives only until its write is done,
//! and the write-behind queue bounds how many exist at once.
//!
//! Tried and measured, not used (issue 13, BENCHMARKS.md, 2026-12-06):
//! `copy_file_range(2)` for these runs: on ext4, which has no reflinks (and VHD
//! data sits 512 bytes off page alignment anyway), the kernel splices 64 KiB at
//! a time, and 920 MiB took more CPU than the `pwrite`s it replaced (raw ->
//! VHD 0.51 s against 0.42 s, VHD -> raw 0.35 s against 0.31 s). Mapping a raw
//! input's data runs too: 11-27 % less CPU for raw -> VHD, but 8-13 % more
//! wall time with `--no-sync` when the second core is free: the writing
//! thread is the bottleneck either way, and its copy from a fresh map is
//! slower than from a buffer the reading thread has just filled on the other
//! core (unmapping on the reading thread, or having it read the map first to
//! warm the cache, did not change that).
//!
//! # Output every reader agrees on
//! Footers come from [`Footer::new`](crate::Footer::new): original size equals
//! current size, the specification's CHS geometry, and creator `qem2`, which
//! every qemu version (and vhd-util, libvhdi, Hyper-V) reads by current size, so
//! a size that is not a whole number of CHS cylinders keeps its exact value.
//! Each output gets a fresh random UUID and valid checksums.

mod chain_source;
mod dynamic;
mod fixed;
mod layout;
mod mapped;
mod raw;
mod sink;
mod source;

pub use chain_source::ChainSource;
pub use dynamic::write_dynamic_file;
pub(crate) use dynamic::write_dynamic_file_with;
pub use fixed::{fixed_size, write_fixed};
pub use layout::DynamicLayout;
pub use mapped::MappedRange;
pub use raw::write_raw;
pub use sink::Sink;
pub use source::{Direct, DiskSource, MemorySource, RawFileSource};

use crate::format::header::DEFAULT_BLOCK_SIZE;
use crate::{Error, ErrorKind, Result, MAX_VIRTUAL_SIZE, SECTOR_SIZE};

/// Smallest block size accepted for dynamic output.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest block size accepted for dynamic output. vhd-util reads only up to
/// 2 MiB (the default); larger blocks suit qemu and Hyper-V only.
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// Bytes a writer works on at once when the output has no blocks (raw, fixed).
pub const WINDOW: usize = 2 << 20;

/// Called with the number of virtual bytes done so far.
pub type Progress<'a> = &'a mut dyn FnMut(u64);

/// Options of the dynamic writers.
#[derive(Debug, Clone)]
pub struct DynamicOptions {
    /// Block size in bytes: a power of two in `MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE`.
    pub block_size: u32,
    /// Allocate blocks whose data turns out to be all zeros (the source's
    /// metadata still decides: unallocated source ranges are never allocated).
    pub keep_zero_blocks: bool,
    /// The UUID to write; a fresh random one when `None`.
    pub uuid: Option<uuid::Uuid>,
}

impl Default for DynamicOptions {
    fn default() -> Self {
        DynamicOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            keep_zero_blocks: false,
            uuid: None,
        }
    }
}

/// Options of the fixed writer.
#[derive(Debug, Clone, Default)]
pub struct FixedOptions {
    /// Round the disk size up to a whole MiB (Azure refuses anything else).
    pub round_to_mib: bool,
    /// The UUID to write; a fresh random one when `None`.
    pub uuid: Option<uuid::Uuid>,
}

/// Checks a block size for dynamic output.
pub fn check_block_size(block_size: u32) -> Result<()> {
    if !block_size.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!(
                "block size {block_size} must be a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}"
            ),
        )
        .field("block_size"));
    }
    Ok(())
}

/// The VHD size for a source of `size` bytes: whole sectors (a raw file of an
/// odd length is padded with zeros, as qemu does), at most the format's limit.
pub fn vhd_size(size: u64) -> Result<u64> {
    let rounded = size
        .checked_next_multiple_of(SECTOR_SIZE)
        .filter(|&s| s <= MAX_VIRTUAL_SIZE)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("virtual size {size} is above the VHD limit of {MAX_VIRTUAL_SIZE} bytes (2040 GiB)"),
            )
        })?;
    Ok(rounded)
}

/// True when every byte of `buf` is zero. Works on 64-byte chunks so the
/// compiler vectorises it; this runs over every byte written.
pub fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(64);
    for c in &mut chunks {
        let mut acc = 0u64;
        for w in c.chunks_exact(8) {
            acc |= u64::from_ne_bytes(w.try_into().expect("8 bytes"));
        }
        if acc != 0 {
            return false;
        }
    }
    chunks.remainder().iter().all(|&b| b == 0)
}

fn new_uuid(given: Option<uuid::Uuid>) -> uuid::Uuid {
    given.unwrap_or_else(uuid::Uuid::new_v4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        let mut b = vec![0u8; 4099];
        assert!(is_zero(&b));
        b[4098] = 1;
        assert!(!is_zero(&b));
        b[4098] = 0;
        b[70] = 1;
        assert!(!is_zero(&b));
        assert!(is_zero(&[]));
    }

    #[test]
    fn sizes_and_block_sizes() {
        assert_eq!(vhd_size(1).unwrap(), 512);
        assert_eq!(vhd_size(1024).unwrap(), 1024);
        assert!(vhd_size(MAX_VIRTUAL_SIZE + 1).is_err());
        assert!(check_block_size(2 << 20).is_ok());
        assert!(check_block_size(3 << 20).is_err());
        assert!(check_block_size(256).is_err());
        assert_eq!(
            check_block_size(0).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
}

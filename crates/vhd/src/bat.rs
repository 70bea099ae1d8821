//! The block allocation table: where each block of a sparse disk lives.
//!
//! Entries are big-endian sector numbers of the block's bitmap, or
//! [`BAT_UNUSED`]. Only the entries the virtual size needs are kept in memory,
//! and their number is capped, so a crafted `max_table_entries` cannot make us
//! allocate gigabytes.

pub use crate::format::header::BAT_UNUSED;
use crate::io::LayerIo;
use crate::{Error, Result, SECTOR_SIZE};

/// Most BAT entries kept in memory (64 MiB of table): 32 TiB with 2 MiB blocks,
/// far beyond the format's 2040 GiB limit, so only absurd block sizes hit it.
pub const MAX_BAT_ENTRIES: u64 = 1 << 24;

/// Bytes read from the table per I/O when loading it.
const CHUNK_ENTRIES: usize = 64 * 1024;

/// Entries needed to cover `size` bytes with blocks of `block_size` bytes.
pub fn entries_for(size: u64, block_size: u32) -> u64 {
    if block_size == 0 {
        return 0;
    }
    size.div_ceil(u64::from(block_size))
}

/// The absolute byte offset of a block's bitmap, or `None` when unallocated.
pub fn entry_offset(entry: u32) -> Option<u64> {
    (entry != BAT_UNUSED).then(|| u64::from(entry) * SECTOR_SIZE)
}

/// Reads `entries` entries at `offset`. The caller has checked the range lies
/// inside the layer and `entries <= MAX_BAT_ENTRIES`.
pub fn read_bat(io: &dyn LayerIo, offset: u64, entries: u64) -> Result<Vec<u32>> {
    let entries = usize::try_from(entries.min(MAX_BAT_ENTRIES))
        .map_err(|_| Error::new(crate::ErrorKind::Unsupported, "BAT too large"))?;
    let mut bat = Vec::with_capacity(entries);
    let mut buf = vec![0u8; CHUNK_ENTRIES.min(entries) * 4];
    let mut done = 0usize;
    while done < entries {
        let n = CHUNK_ENTRIES.min(entries - done);
        let chunk = &mut buf[..n * 4];
        io.read_exact_at(chunk, offset + done as u64 * 4)
            .map_err(|e| {
                Error::io("read BAT", e)
                    .field("bat")
                    .at(offset + done as u64 * 4)
            })?;
        bat.extend(
            chunk
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])),
        );
        done += n;
    }
    Ok(bat)
}

/// Index of the first allocated entry at or after `from`, or `bat.len()`.
pub fn next_allocated(bat: &[u32], from: usize) -> usize {
    bat.get(from..)
        .and_then(|rest| rest.iter().position(|&e| e != BAT_UNUSED))
        .map_or(bat.len(), |p| from + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_entries() {
        let mut bytes = vec![0u8; 16];
        bytes[0..4].copy_from_slice(&3u32.to_be_bytes());
        bytes[4..8].copy_from_slice(&BAT_UNUSED.to_be_bytes());
        bytes[8..12].copy_from_slice(&0x1004u32.to_be_bytes());
        let bat = read_bat(&bytes, 0, 3).unwrap();
        assert_eq!(bat, vec![3, BAT_UNUSED, 0x1004]);
        assert_eq!(entry_offset(bat[0]), Some(1536));
        assert_eq!(entry_offset(bat[1]), None);
        assert_eq!(next_allocated(&bat, 1), 2);
        assert_eq!(next_allocated(&bat, 3), 3);
        assert_eq!(entries_for(10 << 20, 2 << 20), 5);
        assert_eq!(entries_for(1, 2 << 20), 1);
        assert!(read_bat(&bytes, 8, 3).is_err());
    }
}

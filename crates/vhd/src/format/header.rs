//! The 1024-byte dynamic disk header of dynamic and differencing disks.

use super::locator::{ParentLocator, LOCATOR_COUNT, LOCATOR_ENTRY_SIZE};
use super::{be_u32, be_u64, checksum::vhd_checksum, uuid_at};
use uuid::Uuid;

/// Size of the header on disk.
pub const HEADER_SIZE: usize = 1024;
/// The header cookie.
pub const COOKIE: &[u8; 8] = b"cxsparse";
/// Byte offset of the checksum field inside the header.
pub const CHECKSUM_AT: usize = 36;
/// The only header version the specification defines.
pub const HEADER_VERSION: u32 = 0x0001_0000;
/// The default block size, used by every common tool.
pub const DEFAULT_BLOCK_SIZE: u32 = 2 * 1024 * 1024;
/// Smallest block size accepted: one sector.
pub const MIN_BLOCK_SIZE: u32 = 512;
/// Largest block size accepted (qemu's limit). Every common tool writes 2 MiB.
pub const MAX_BLOCK_SIZE: u32 = 256 << 20;
/// BAT entry of a block that is not allocated.
pub const BAT_UNUSED: u32 = 0xFFFF_FFFF;

/// Field offsets inside the header, for error messages.
pub mod at {
    pub const COOKIE: u64 = 0;
    pub const DATA_OFFSET: u64 = 8;
    pub const TABLE_OFFSET: u64 = 16;
    pub const HEADER_VERSION: u64 = 24;
    pub const MAX_TABLE_ENTRIES: u64 = 28;
    pub const BLOCK_SIZE: u64 = 32;
    pub const CHECKSUM: u64 = 36;
    pub const PARENT_UUID: u64 = 40;
    pub const PARENT_TIMESTAMP: u64 = 56;
    pub const RESERVED1: u64 = 60;
    pub const PARENT_NAME: u64 = 64;
    pub const LOCATORS: u64 = 576;
    pub const RESERVED2: u64 = 768;
}

/// A parsed dynamic header, fields as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicHeader {
    pub cookie: [u8; 8],
    pub data_offset: u64,
    pub table_offset: u64,
    pub header_version: u32,
    pub max_table_entries: u32,
    pub block_size: u32,
    pub checksum: u32,
    pub parent_uuid: Uuid,
    pub parent_timestamp: u32,
    pub reserved1: u32,
    /// UTF-16BE, NUL padded.
    pub parent_name_raw: [u8; 512],
    pub locators: [ParentLocator; LOCATOR_COUNT],
    pub reserved2: [u8; 256],
}

impl DynamicHeader {
    /// Parses the header bytes; `None` when the cookie is missing.
    pub fn parse(b: &[u8; HEADER_SIZE]) -> Option<DynamicHeader> {
        if &b[..8] != COOKIE {
            return None;
        }
        let mut locators = [ParentLocator::EMPTY; LOCATOR_COUNT];
        for (i, l) in locators.iter_mut().enumerate() {
            let at = 576 + i * LOCATOR_ENTRY_SIZE;
            *l = ParentLocator::parse(&b[at..at + LOCATOR_ENTRY_SIZE]);
        }
        Some(DynamicHeader {
            cookie: *COOKIE,
            data_offset: be_u64(b, 8),
            table_offset: be_u64(b, 16),
            header_version: be_u32(b, 24),
            max_table_entries: be_u32(b, 28),
            block_size: be_u32(b, 32),
            checksum: be_u32(b, 36),
            parent_uuid: uuid_at(b, 40),
            parent_timestamp: be_u32(b, 56),
            reserved1: be_u32(b, 60),
            parent_name_raw: b[64..576].try_into().expect("512"),
            locators,
            reserved2: b[768..1024].try_into().expect("256"),
        })
    }

    pub fn to_bytes(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&self.cookie);
        b[8..16].copy_from_slice(&self.data_offset.to_be_bytes());
        b[16..24].copy_from_slice(&self.table_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.header_version.to_be_bytes());
        b[28..32].copy_from_slice(&self.max_table_entries.to_be_bytes());
        b[32..36].copy_from_slice(&self.block_size.to_be_bytes());
        b[36..40].copy_from_slice(&self.checksum.to_be_bytes());
        b[40..56].copy_from_slice(self.parent_uuid.as_bytes());
        b[56..60].copy_from_slice(&self.parent_timestamp.to_be_bytes());
        b[60..64].copy_from_slice(&self.reserved1.to_be_bytes());
        b[64..576].copy_from_slice(&self.parent_name_raw);
        for (i, l) in self.locators.iter().enumerate() {
            let at = 576 + i * LOCATOR_ENTRY_SIZE;
            b[at..at + LOCATOR_ENTRY_SIZE].copy_from_slice(&l.to_bytes());
        }
        b[768..1024].copy_from_slice(&self.reserved2);
        b
    }

    pub fn computed_checksum(&self) -> u32 {
        vhd_checksum(&self.to_bytes(), CHECKSUM_AT)
    }

    pub fn checksum_ok(&self) -> bool {
        self.checksum == self.computed_checksum()
    }

    /// Sets the checksum field to the computed value and returns the bytes.
    pub fn seal(&mut self) -> [u8; HEADER_SIZE] {
        self.checksum = self.computed_checksum();
        self.to_bytes()
    }

    /// The parent's unicode name, decoded from UTF-16BE up to the first NUL.
    pub fn parent_name(&self) -> String {
        let units: Vec<u16> = self
            .parent_name_raw
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    }

    /// Stores `name` as UTF-16BE, truncated to the field's 256 code units.
    pub fn set_parent_name(&mut self, name: &str) {
        self.parent_name_raw = [0; 512];
        for (i, u) in name.encode_utf16().take(256).enumerate() {
            self.parent_name_raw[i * 2..i * 2 + 2].copy_from_slice(&u.to_be_bytes());
        }
    }

    /// Bytes of one block's sector bitmap: one bit a sector, padded to a sector.
    pub fn bitmap_size(&self) -> u64 {
        bitmap_size(self.block_size)
    }

    /// A header with the specification's defaults, the BAT right after it.
    pub fn new(table_offset: u64, max_table_entries: u32, block_size: u32) -> DynamicHeader {
        DynamicHeader {
            cookie: *COOKIE,
            data_offset: u64::MAX,
            table_offset,
            header_version: HEADER_VERSION,
            max_table_entries,
            block_size,
            checksum: 0,
            parent_uuid: Uuid::nil(),
            parent_timestamp: 0,
            reserved1: 0,
            parent_name_raw: [0; 512],
            locators: [ParentLocator::EMPTY; LOCATOR_COUNT],
            reserved2: [0; 256],
        }
    }
}

/// Bytes of the sector bitmap that precedes each block of `block_size` bytes.
pub fn bitmap_size(block_size: u32) -> u64 {
    let bits = u64::from(block_size) / 512;
    bits.div_ceil(8).div_ceil(512) * 512
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::locator::PlatformCode;

    #[test]
    fn round_trips_and_seals() {
        let mut h = DynamicHeader::new(0x600, 20, DEFAULT_BLOCK_SIZE);
        h.set_parent_name("base.vhd");
        h.locators[0] = ParentLocator {
            code: PlatformCode::W2ru,
            data_space: 1,
            data_length: 16,
            reserved: 0,
            data_offset: 0x800,
        };
        let bytes = h.seal();
        let back = DynamicHeader::parse(&bytes).unwrap();
        assert_eq!(back, h);
        assert!(back.checksum_ok());
        assert_eq!(back.parent_name(), "base.vhd");
    }

    #[test]
    fn bitmap_is_padded_to_a_sector() {
        assert_eq!(bitmap_size(2 << 20), 512);
        assert_eq!(bitmap_size(512), 512);
        assert_eq!(bitmap_size(4 << 20), 1024);
    }

    #[test]
    fn hyperv_child_header_checksum() {
        // Bytes 0x200.. of go-vhd's win8-child.vhd: BAT at 0x2000, 20 entries, 2 MiB.
        let mut b = [0u8; HEADER_SIZE];
        b[..8].copy_from_slice(b"cxsparse");
        b[8..16].copy_from_slice(&[0xff; 8]);
        b[16..24].copy_from_slice(&0x2000u64.to_be_bytes());
        b[24..28].copy_from_slice(&HEADER_VERSION.to_be_bytes());
        b[28..32].copy_from_slice(&20u32.to_be_bytes());
        b[32..36].copy_from_slice(&(2u32 << 20).to_be_bytes());
        let h = DynamicHeader::parse(&b).unwrap();
        assert_eq!(h.table_offset, 0x2000);
        assert_eq!(h.max_table_entries, 20);
        assert!(!h.checksum_ok());
    }
}

//! The 512-byte hard disk footer: the last sector of every VHD, and a copy in
//! the first sector of dynamic and differencing disks.

use super::{be_u32, be_u64, checksum::vhd_checksum, geometry::Geometry, tag_to_string, uuid_at};
use serde::Serialize;
use uuid::Uuid;

/// Size of the footer on disk.
pub const FOOTER_SIZE: usize = 512;
/// The footer cookie.
pub const COOKIE: &[u8; 8] = b"conectix";
/// Byte offset of the checksum field inside the footer.
pub const CHECKSUM_AT: usize = 64;
/// The only format version the specification defines.
pub const FORMAT_VERSION: u32 = 0x0001_0000;
/// Features bit that must always be set.
pub const FEATURE_RESERVED: u32 = 0x2;
/// Features bit marking a temporary disk.
pub const FEATURE_TEMPORARY: u32 = 0x1;
/// Data offset of a fixed disk: there is no dynamic header.
pub const FIXED_DATA_OFFSET: u64 = u64::MAX;

/// Field offsets, for error messages that name the byte.
pub mod at {
    pub const COOKIE: u64 = 0;
    pub const FEATURES: u64 = 8;
    pub const FORMAT_VERSION: u64 = 12;
    pub const DATA_OFFSET: u64 = 16;
    pub const TIMESTAMP: u64 = 24;
    pub const CREATOR_APP: u64 = 28;
    pub const ORIGINAL_SIZE: u64 = 40;
    pub const CURRENT_SIZE: u64 = 48;
    pub const GEOMETRY: u64 = 56;
    pub const DISK_TYPE: u64 = 60;
    pub const CHECKSUM: u64 = 64;
    pub const UUID: u64 = 68;
    pub const SAVED_STATE: u64 = 84;
    pub const RESERVED: u64 = 86;
}

/// The disk type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskType {
    Fixed,
    Dynamic,
    Differencing,
    /// Anything else (0 none, 1 and 5 deprecated, or garbage).
    #[serde(untagged)]
    Other(u32),
}

impl DiskType {
    pub fn from_u32(v: u32) -> DiskType {
        match v {
            2 => DiskType::Fixed,
            3 => DiskType::Dynamic,
            4 => DiskType::Differencing,
            other => DiskType::Other(other),
        }
    }

    pub fn to_u32(self) -> u32 {
        match self {
            DiskType::Fixed => 2,
            DiskType::Dynamic => 3,
            DiskType::Differencing => 4,
            DiskType::Other(v) => v,
        }
    }

    /// Dynamic and differencing disks carry a dynamic header and a BAT.
    pub fn is_sparse(self) -> bool {
        matches!(self, DiskType::Dynamic | DiskType::Differencing)
    }

    pub fn name(self) -> &'static str {
        match self {
            DiskType::Fixed => "fixed",
            DiskType::Dynamic => "dynamic",
            DiskType::Differencing => "differencing",
            DiskType::Other(_) => "unknown",
        }
    }
}

/// A parsed footer. Fields are kept as stored, including ones a checker must judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Footer {
    pub cookie: [u8; 8],
    pub features: u32,
    pub format_version: u32,
    pub data_offset: u64,
    pub timestamp: u32,
    pub creator_app: [u8; 4],
    pub creator_version: u32,
    pub creator_os: [u8; 4],
    pub original_size: u64,
    pub current_size: u64,
    pub geometry: Geometry,
    pub disk_type: DiskType,
    pub checksum: u32,
    pub uuid: Uuid,
    pub saved_state: u8,
    /// Byte 85: tapdisk's "hidden" flag, reserved in the specification.
    pub hidden: u8,
    pub reserved: [u8; 426],
}

impl Footer {
    /// True when the bytes start with the footer cookie.
    pub fn has_cookie(bytes: &[u8]) -> bool {
        bytes.len() >= 8 && &bytes[..8] == COOKIE
    }

    /// Parses the 512 bytes of a footer. Fails only when the cookie is missing;
    /// every other field is returned as stored.
    pub fn parse(b: &[u8; FOOTER_SIZE]) -> Option<Footer> {
        if !Footer::has_cookie(b) {
            return None;
        }
        Some(Footer {
            cookie: *COOKIE,
            features: be_u32(b, 8),
            format_version: be_u32(b, 12),
            data_offset: be_u64(b, 16),
            timestamp: be_u32(b, 24),
            creator_app: b[28..32].try_into().expect("4"),
            creator_version: be_u32(b, 32),
            creator_os: b[36..40].try_into().expect("4"),
            original_size: be_u64(b, 40),
            current_size: be_u64(b, 48),
            geometry: Geometry::parse(&b[56..60]),
            disk_type: DiskType::from_u32(be_u32(b, 60)),
            checksum: be_u32(b, 64),
            uuid: uuid_at(b, 68),
            saved_state: b[84],
            hidden: b[85],
            reserved: b[86..512].try_into().expect("426"),
        })
    }

    /// Serialises the footer exactly as stored (the checksum field is written as is).
    pub fn to_bytes(&self) -> [u8; FOOTER_SIZE] {
        let mut b = [0u8; FOOTER_SIZE];
        b[0..8].copy_from_slice(&self.cookie);
        b[8..12].copy_from_slice(&self.features.to_be_bytes());
        b[12..16].copy_from_slice(&self.format_version.to_be_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.timestamp.to_be_bytes());
        b[28..32].copy_from_slice(&self.creator_app);
        b[32..36].copy_from_slice(&self.creator_version.to_be_bytes());
        b[36..40].copy_from_slice(&self.creator_os);
        b[40..48].copy_from_slice(&self.original_size.to_be_bytes());
        b[48..56].copy_from_slice(&self.current_size.to_be_bytes());
        b[56..60].copy_from_slice(&self.geometry.to_bytes());
        b[60..64].copy_from_slice(&self.disk_type.to_u32().to_be_bytes());
        b[64..68].copy_from_slice(&self.checksum.to_be_bytes());
        b[68..84].copy_from_slice(self.uuid.as_bytes());
        b[84] = self.saved_state;
        b[85] = self.hidden;
        b[86..512].copy_from_slice(&self.reserved);
        b
    }

    /// The checksum the footer should carry.
    pub fn computed_checksum(&self) -> u32 {
        vhd_checksum(&self.to_bytes(), CHECKSUM_AT)
    }

    /// Sets the checksum field to the computed value and returns the bytes.
    pub fn seal(&mut self) -> [u8; FOOTER_SIZE] {
        self.checksum = self.computed_checksum();
        self.to_bytes()
    }

    pub fn checksum_ok(&self) -> bool {
        self.checksum == self.computed_checksum()
    }

    /// The creator application as text (`tap\0` shows as `tap\0`).
    pub fn creator(&self) -> String {
        tag_to_string(&self.creator_app)
    }

    /// A new footer with the specification's defaults for a disk of `size` bytes.
    /// Original size equals current size and the geometry is the spec's, which is
    /// what every reader (qemu by CHS or by current size, vhd-util, libvhdi,
    /// Hyper-V) agrees on when the creator is one qemu reads by current size.
    pub fn new(disk_type: DiskType, size: u64, uuid: Uuid, timestamp: u32) -> Footer {
        Footer {
            cookie: *COOKIE,
            features: FEATURE_RESERVED,
            format_version: FORMAT_VERSION,
            data_offset: if disk_type.is_sparse() {
                512
            } else {
                FIXED_DATA_OFFSET
            },
            timestamp,
            // qemu (every version) takes the current size for `qem2`, as does every
            // other reader, so the CHS rounding never changes the disk size.
            creator_app: *b"qem2",
            creator_version: 0x0001_0000,
            creator_os: *b"Wi2k",
            original_size: size,
            current_size: size,
            geometry: Geometry::for_size(size),
            disk_type,
            checksum: 0,
            uuid,
            saved_state: 0,
            hidden: 0,
            reserved: [0; 426],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tail footer of go-vhd's win8.vhd (Hyper-V, dynamic, 40 MiB), annotated.
    const WIN8: [u8; 96] = [
        b'c', b'o', b'n', b'e', b'c', b't', b'i', b'x', // cookie
        0, 0, 0, 2, // features: reserved bit
        0, 1, 0, 0, // format version 1.0
        0, 0, 0, 0, 0, 0, 2, 0, // data offset 0x200
        0x1c, 0x6c, 0x0c, 0x56, // timestamp
        b'w', b'i', b'n', b' ', // creator app: Hyper-V
        0, 6, 0, 3, // creator version
        b'W', b'i', b'2', b'k', // creator host OS
        0, 0, 0, 0, 2, 0x80, 0, 0, // original size 40 MiB
        0, 0, 0, 0, 2, 0x80, 0, 0, // current size 40 MiB
        3, 0xc3, 5, 0x11, // geometry 963/5/17
        0, 0, 0, 3, // disk type: dynamic
        0xff, 0xff, 0xf0, 0x0a, // checksum
        0xad, 0xb7, 0x19, 0x75, 0x4b, 0x5b, 0x0b, 0x40, // uuid
        0xb0, 0x25, 0xd0, 0x6d, 0xab, 0x31, 0xb2, 0x6f, //
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // saved state, hidden, reserved
    ];

    fn win8() -> [u8; 512] {
        let mut b = [0u8; 512];
        b[..96].copy_from_slice(&WIN8);
        b
    }

    #[test]
    fn parses_a_hyperv_footer() {
        let f = Footer::parse(&win8()).unwrap();
        assert_eq!(f.disk_type, DiskType::Dynamic);
        assert_eq!(f.current_size, 41_943_040);
        assert_eq!(f.geometry.to_string(), "963/5/17");
        assert_eq!(f.creator(), "win ");
        assert_eq!(f.uuid.to_string(), "adb71975-4b5b-0b40-b025-d06dab31b26f");
        assert!(f.checksum_ok());
        assert_eq!(f.to_bytes(), win8());
    }

    #[test]
    fn refuses_without_cookie_and_detects_bit_flips() {
        let mut b = win8();
        b[50] ^= 1;
        assert!(!Footer::parse(&b).unwrap().checksum_ok());
        b[0] = b'x';
        assert!(Footer::parse(&b).is_none());
    }

    #[test]
    fn new_footer_is_sealed_and_sized() {
        let mut f = Footer::new(DiskType::Dynamic, 10 << 20, Uuid::nil(), 0);
        let bytes = f.seal();
        let back = Footer::parse(&bytes).unwrap();
        assert!(back.checksum_ok());
        assert_eq!(back.data_offset, 512);
        assert_eq!(back.original_size, back.current_size);
    }
}

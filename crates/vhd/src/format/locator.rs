//! Parent locator entries of the dynamic header, and decoding of their data.

use super::{be_u32, be_u64};
use serde::Serialize;

/// Size of one locator entry in the dynamic header.
pub const LOCATOR_ENTRY_SIZE: usize = 24;
/// How many locator entries the header holds.
pub const LOCATOR_COUNT: usize = 8;
/// Largest locator data we will read: a path, so a few KiB is generous.
pub const MAX_LOCATOR_DATA: u32 = 64 * 1024;

/// The platform code of a locator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PlatformCode {
    /// 0: the entry is unused.
    None,
    /// `W2ku`: absolute Windows path, UTF-16LE.
    W2ku,
    /// `W2ru`: relative Windows path, UTF-16LE.
    W2ru,
    /// `MacX`: a UTF-8 file URL.
    MacX,
    /// `Mac `: Mac OS alias blob.
    Mac,
    /// `Wi2k`: deprecated absolute Windows path (ASCII).
    Wi2k,
    /// `Wi2r`: deprecated relative Windows path (ASCII).
    Wi2r,
    /// Anything else.
    Unknown([u8; 4]),
}

impl PlatformCode {
    pub fn from_bytes(b: [u8; 4]) -> PlatformCode {
        match &b {
            [0, 0, 0, 0] => PlatformCode::None,
            b"W2ku" => PlatformCode::W2ku,
            b"W2ru" => PlatformCode::W2ru,
            b"MacX" => PlatformCode::MacX,
            b"Mac " => PlatformCode::Mac,
            b"Wi2k" => PlatformCode::Wi2k,
            b"Wi2r" => PlatformCode::Wi2r,
            _ => PlatformCode::Unknown(b),
        }
    }

    pub fn to_bytes(self) -> [u8; 4] {
        match self {
            PlatformCode::None => [0; 4],
            PlatformCode::W2ku => *b"W2ku",
            PlatformCode::W2ru => *b"W2ru",
            PlatformCode::MacX => *b"MacX",
            PlatformCode::Mac => *b"Mac ",
            PlatformCode::Wi2k => *b"Wi2k",
            PlatformCode::Wi2r => *b"Wi2r",
            PlatformCode::Unknown(b) => b,
        }
    }

    pub fn name(self) -> String {
        match self {
            PlatformCode::None => "none".into(),
            PlatformCode::Unknown(b) => super::tag_to_string(&b),
            other => String::from_utf8_lossy(&other.to_bytes())
                .trim_end()
                .to_string(),
        }
    }

    /// True for the codes whose data is a path we know how to decode.
    pub fn is_path(self) -> bool {
        matches!(
            self,
            PlatformCode::W2ku
                | PlatformCode::W2ru
                | PlatformCode::MacX
                | PlatformCode::Wi2k
                | PlatformCode::Wi2r
        )
    }

    /// True when the path is relative to the child's folder.
    pub fn is_relative(self) -> bool {
        matches!(self, PlatformCode::W2ru | PlatformCode::Wi2r)
    }
}

/// One 24-byte locator entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParentLocator {
    pub code: PlatformCode,
    /// As stored: the spec says sectors, Hyper-V writes bytes.
    pub data_space: u32,
    pub data_length: u32,
    pub reserved: u32,
    pub data_offset: u64,
}

impl ParentLocator {
    pub const EMPTY: ParentLocator = ParentLocator {
        code: PlatformCode::None,
        data_space: 0,
        data_length: 0,
        reserved: 0,
        data_offset: 0,
    };

    pub(crate) fn parse(b: &[u8]) -> ParentLocator {
        ParentLocator {
            code: PlatformCode::from_bytes(b[0..4].try_into().expect("4")),
            data_space: be_u32(b, 4),
            data_length: be_u32(b, 8),
            reserved: be_u32(b, 12),
            data_offset: be_u64(b, 16),
        }
    }

    pub(crate) fn to_bytes(self) -> [u8; LOCATOR_ENTRY_SIZE] {
        let mut b = [0u8; LOCATOR_ENTRY_SIZE];
        b[0..4].copy_from_slice(&self.code.to_bytes());
        b[4..8].copy_from_slice(&self.data_space.to_be_bytes());
        b[8..12].copy_from_slice(&self.data_length.to_be_bytes());
        b[12..16].copy_from_slice(&self.reserved.to_be_bytes());
        b[16..24].copy_from_slice(&self.data_offset.to_be_bytes());
        b
    }

    pub fn is_used(&self) -> bool {
        self.code != PlatformCode::None
    }

    /// Bytes reserved for the data. vhd-util reads a value below 512 as sectors
    /// (the specification) and anything else as bytes (what Hyper-V writes).
    pub fn data_space_bytes(&self) -> u64 {
        if self.data_space < 512 {
            u64::from(self.data_space) * 512
        } else {
            u64::from(self.data_space)
        }
    }

    /// Decodes locator data into a path string, or `None` for codes that hold no
    /// path or data that does not decode.
    pub fn decode_path(&self, data: &[u8]) -> Option<String> {
        let text = match self.code {
            PlatformCode::W2ku | PlatformCode::W2ru => {
                let units: Vec<u16> = data
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .take_while(|&u| u != 0)
                    .collect();
                String::from_utf16(&units).ok()?
            }
            PlatformCode::MacX | PlatformCode::Wi2k | PlatformCode::Wi2r => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                let s = std::str::from_utf8(&data[..end]).ok()?;
                s.strip_prefix("file://").unwrap_or(s).to_string()
            }
            _ => return None,
        };
        (!text.is_empty()).then_some(text)
    }

    /// Encodes `path` as this code stores it (UTF-16LE for W2ku/W2ru, a
    /// `file://` URL for MacX).
    pub fn encode_path(code: PlatformCode, path: &str) -> Vec<u8> {
        match code {
            PlatformCode::W2ku | PlatformCode::W2ru => {
                path.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
            }
            PlatformCode::MacX => format!("file://{path}").into_bytes(),
            _ => path.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_space_sectors_or_bytes() {
        let mut l = ParentLocator {
            code: PlatformCode::W2ku,
            data_space: 1,
            ..ParentLocator::EMPTY
        };
        assert_eq!(l.data_space_bytes(), 512);
        l.data_space = 4096;
        assert_eq!(l.data_space_bytes(), 4096);
    }

    #[test]
    fn decodes_windows_and_mac_paths() {
        let w = ParentLocator {
            code: PlatformCode::W2ru,
            ..ParentLocator::EMPTY
        };
        let data = ParentLocator::encode_path(PlatformCode::W2ru, ".\\base.vhd");
        assert_eq!(w.decode_path(&data).unwrap(), ".\\base.vhd");
        let m = ParentLocator {
            code: PlatformCode::MacX,
            ..ParentLocator::EMPTY
        };
        assert_eq!(
            m.decode_path(b"file://./base.vhd\0\0").unwrap(),
            "./base.vhd"
        );
        assert!(m.decode_path(b"\0").is_none());
    }

    #[test]
    fn entry_round_trips() {
        let l = ParentLocator {
            code: PlatformCode::W2ku,
            data_space: 4096,
            data_length: 66,
            reserved: 0,
            data_offset: 0x1000,
        };
        assert_eq!(ParentLocator::parse(&l.to_bytes()), l);
    }
}

//! What `cloudimg info` reports about one VHD: a serialisable summary of its
//! metadata and, for a differencing disk, the chain it resolves to.

use crate::chain::{Chain, ChainOptions};
use crate::format::{tag_to_string, time};
use crate::image::{Image, LocatorInfo, Warning};
use crate::{DiskType, Geometry, Result};
use serde::Serialize;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The application that made the file, as the footer records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Creator {
    /// Four-character tag: `win `, `qemu`, `tap\0`, `vpc `, ...
    pub app: String,
    /// `major.minor` from the creator version field.
    pub version: String,
    /// Host OS tag: `Wi2k`, `Mac `.
    pub os: String,
}

/// One layer of a resolved chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainEntry {
    pub path: PathBuf,
    pub uuid: Uuid,
}

/// Everything `info` shows about one file.
#[derive(Debug, Clone, Serialize)]
pub struct Info {
    pub path: PathBuf,
    pub format: &'static str,
    /// `fixed`, `dynamic` or `differencing`.
    pub subformat: &'static str,
    /// The footer's current size: what vhd-util, Hyper-V and Azure use.
    pub virtual_size: u64,
    /// Cylinders x heads x sectors x 512: what qemu uses for some creators.
    pub chs_size: u64,
    pub geometry: Geometry,
    /// The footer's original size (what libvhdi reports).
    pub original_size: u64,
    pub block_size: Option<u32>,
    /// Data blocks allocated in this file (whole blocks), or the size of a fixed disk.
    pub allocated_bytes: u64,
    pub file_size: u64,
    pub uuid: Uuid,
    pub parent_uuid: Option<Uuid>,
    pub parent_name: Option<String>,
    pub parent_timestamp: Option<String>,
    pub parent_locators: Vec<LocatorInfo>,
    pub creator: Creator,
    /// Footer timestamp, ISO 8601 UTC.
    pub timestamp: String,
    pub saved_state: bool,
    /// `tail`, or `head` when the tail copy was damaged.
    pub footer_copy: &'static str,
    /// For a differencing disk: the resolved chain, leaf first.
    pub chain: Option<Vec<ChainEntry>>,
    /// For a differencing disk whose chain did not resolve: why.
    pub chain_error: Option<String>,
    pub warnings: Vec<Warning>,
}

impl Info {
    /// The summary of one opened file, without resolving its parents.
    pub fn from_image(img: &Image) -> Info {
        let f = img.footer();
        let h = img.header();
        let differencing = img.disk_type() == DiskType::Differencing;
        Info {
            path: img.path().to_path_buf(),
            format: "vhd",
            subformat: img.disk_type().name(),
            virtual_size: img.virtual_size(),
            chs_size: f.geometry.chs_size(),
            geometry: f.geometry,
            original_size: f.original_size,
            block_size: img.block_size(),
            allocated_bytes: img.allocated_bytes(),
            file_size: img.file_len(),
            uuid: f.uuid,
            parent_uuid: img.parent_uuid(),
            parent_name: img.parent_name(),
            parent_timestamp: h
                // Hyper-V writes 0: nothing recorded.
                .filter(|h| differencing && h.parent_timestamp != 0)
                .map(|h| time::to_iso8601(h.parent_timestamp)),
            parent_locators: img.parent_locators().to_vec(),
            creator: Creator {
                app: tag_to_string(&f.creator_app),
                version: format!("{}.{}", f.creator_version >> 16, f.creator_version & 0xffff),
                os: tag_to_string(&f.creator_os),
            },
            timestamp: time::to_iso8601(f.timestamp),
            saved_state: f.saved_state != 0,
            footer_copy: if img.footer_offset() == 0 && img.file_len() > 512 {
                "head"
            } else {
                "tail"
            },
            chain: None,
            chain_error: None,
            warnings: img.warnings().to_vec(),
        }
    }
}

/// Opens `path` and summarises it; for a differencing disk also resolves the
/// chain with `opts`. Only a file that cannot be opened is an error; a chain
/// that does not resolve is reported in [`Info::chain_error`].
pub fn info(path: impl AsRef<Path>, opts: &ChainOptions) -> Result<Info> {
    let path = path.as_ref();
    let img = Image::open(path)?;
    let mut info = Info::from_image(&img);
    if img.disk_type() == DiskType::Differencing {
        drop(img);
        match Chain::open(path, opts) {
            Ok(chain) => {
                info.chain = Some(
                    chain
                        .layers()
                        .iter()
                        .map(|l| ChainEntry {
                            path: l.path().to_path_buf(),
                            uuid: l.uuid(),
                        })
                        .collect(),
                );
            }
            Err(e) => info.chain_error = Some(e.to_string()),
        }
    }
    Ok(info)
}

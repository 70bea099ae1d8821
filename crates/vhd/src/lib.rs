//! Virtual Hard Disk (VHD) images: fixed, dynamic and differencing disks.
//!
//! The on-disk structures live in [`format`] and are parsed apart from any I/O;
//! everything that touches files builds on them. Every failure is an [`Error`]
//! with a stable [`ErrorKind`] plus the file, field and byte offset involved.

pub mod alloc;
pub mod bat;
pub mod bitmap;
pub mod chain;
pub mod check;
pub mod coalesce;
pub mod convert;
pub mod create;
pub mod detect;
pub mod error;
mod filelock;
pub mod format;
pub mod image;
pub mod info;
pub mod io;
mod journaled;
pub mod outpath;
pub mod reader;
pub mod replace;
mod rules;
pub mod write;

pub use alloc::{Extent, Extents, Source};
pub use bitmap::Bitmap;
pub use chain::{Chain, ChainOptions, ChainWarning};
pub use error::{Error, ErrorKind, Result};
pub use format::{
    checksum::vhd_checksum, footer::DiskType, footer::Footer, geometry::Geometry,
    header::DynamicHeader, locator::ParentLocator, locator::PlatformCode,
};
pub use image::{Image, LocatorInfo, Warning};
pub use io::{FileIo, LayerIo};
pub use reader::ChainReader;

/// Bytes in a VHD sector; every offset in the format counts in these.
pub const SECTOR_SIZE: u64 = 512;
/// The largest virtual size the format allows (0xff000000 sectors, 2040 GiB).
pub const MAX_VIRTUAL_SIZE: u64 = 0xff00_0000 * SECTOR_SIZE;

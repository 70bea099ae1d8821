//! Glance-style import and export tasks for VHD images, as Rackspace Cloud Images runs
//! them, over the `cloudimg_vhd`, `cloudimg_ova` and `cloudimg_pipeline` crates.
//!
//! - [`task`]: the Glance v2 task JSON and the two task inputs.
//! - [`codes`]: the Cloud Images failure codes (396, 523, 721, 614, 413, 609, 111).
//! - [`imagestore`]: where images live (package object + metadata record).
//! - [`import`]: object in a container -> validated, converted, packaged image.
//! - [`export`]: image -> one dynamic VHD as a DLO `<uuid>.vhd` in a container.
//! - [`indexedpkg`]: layers of an indexed package read by byte range from the store.
//! - [`progress`]: progress callbacks.
//! - [`lock`]: one run at a time of an import or an export, across processes.
//!
//! # Same disk, different bytes
//! An image imported and then exported holds the same virtual disk, byte for byte, but
//! its files differ: import rewrites the VHD (a fresh dynamic VHD, new UUID and
//! timestamps, zero blocks dropped) and wraps it in a gzipped tarball, and export
//! coalesces the chain into another fresh VHD. So the image's `checksum` (MD5 of the
//! package) matches neither the uploaded VHD nor the exported one; compare virtual disks
//! (`cloudimg convert -O raw`, `qemu-img convert -O raw`), never file checksums.
//!
//! Every failure is an [`Error`] with a stable [`ErrorKind`]; a failed task carries the
//! matching [`FailureCode`] in its message.

mod chanread;
pub mod codes;
pub mod error;
pub mod export;
pub mod imagestore;
pub mod import;
pub mod indexedpkg;
pub mod lock;
pub mod objectio;
pub mod outvhd;
pub mod package;
pub mod progress;
pub mod register;
pub mod task;
pub mod time;
mod zeroscan;

pub use codes::FailureCode;
pub use error::{Error, ErrorKind, Result};
pub use imagestore::{ImageRecord, ImageStore, Visibility};
pub use progress::{Phase, Progress, ProgressFn};
pub use task::{ExportInput, ImportInput, Task, TaskStatus, TaskType};

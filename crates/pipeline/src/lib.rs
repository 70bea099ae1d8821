//! Object storage pipeline for cloudimg: one [`ObjectStore`] trait over a local directory
//! ([`local::LocalStore`]), OpenStack Swift ([`swift::SwiftStore`]) and S3
//! ([`s3::S3Store`]); streaming large-object [`upload`] and [`download`] with bounded
//! memory, parallel workers and end-to-end integrity checks; and one [`retry`] policy.
//!
//! Typical use:
//! ```no_run
//! # fn main() -> cloudimg_pipeline::Result<()> {
//! use cloudimg_pipeline::{open_url, upload, download};
//! let (store, path) = open_url("swift://images/disk.vhd")?;
//! let file = std::fs::File::open("disk.vhd").unwrap();
//! let summary = upload::upload(&*store, &path, upload::Source::file(file)?, &upload::UploadOptions::default())?;
//! println!("{}", summary.checksums.sha256);
//! let mut out = Vec::new();
//! download::download(&*store, &path, &mut out, &download::DownloadOptions::default())?;
//! # Ok(()) }
//! ```

pub mod byteranges;
pub mod crashpoint;
pub mod download;
pub mod error;
pub mod hash;
pub mod http;
pub mod httpwire;
/// Whether a writer still runs (its own crate: the ova and cli temporaries use it too).
pub use cloudimg_liveness as liveness;
pub mod local;
pub mod mapped;
mod md5pair;
mod pool;
mod rawhttp;
pub mod retry;
pub mod s3;
pub mod store;
pub mod swift;
pub mod upload;
pub mod url;

pub use error::{Error, ErrorKind, Result};
pub use retry::RetryPolicy;
pub use store::{
    get_range_unhashed, list_all, Body, Capabilities, FileRange, GetStream, ListEntry, ListPage,
    Manifest, ObjectInfo, ObjectPath, ObjectStore, PartInfo, PutOptions, PutResult, SegmentRef,
};
pub use url::open_url;

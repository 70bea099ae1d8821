//! Tarballs of VHD images, as cloud image services move them.
//!
//! - [`tar`]: ustar headers, a streaming reader and writer.
//! - [`gzip`]: a parallel gzip writer (pigz style, one standard member) and an
//!   indexed multi-member form that a reader can decompress in parallel and seek.
//! - [`xenserver`]: the chain layout (`0.vhd` leaf .. `N-1.vhd` base) nova and
//!   os-xenapi write and read.
//! - [`ovf`]: the standard OVA (descriptor, manifest, disks).
//! - [`unpack`]: safe extraction of untrusted archives.
//!
//! Every failure is an [`Error`] with a stable [`ErrorKind`] naming the member and
//! the offset in the archive.

pub mod error;
pub mod tar;

pub use error::{Error, ErrorKind, Result};
pub mod gzip;

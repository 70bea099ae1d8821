//! Tarballs of VHD images, as cloud image services move them.
//!
//! - [`tar`]: a streaming reader and writer over the `tar` crate's headers.
//! - [`gzip`]: a parallel gzip writer (pigz style, one standard member) and an
//!   indexed multi-member form that a reader can decompress in parallel and seek.
//! - [`pack`]: entries into a (compressed) tar with digests of the output.
//! - [`xenserver`]: the chain layout (`0.vhd` leaf .. `N-1.vhd` base) nova and
//!   os-xenapi write and read, packed or streamed.
//! - [`ovf`]: the standard OVA (descriptor, manifest, disks).
//! - [`unpack`]: safe extraction of untrusted archives.
//!
//! Every failure is an [`Error`] with a stable [`ErrorKind`] naming the member and
//! the offset in the archive.

mod admit;
pub mod error;
pub mod gzip;
pub mod names;
pub mod ovf;
pub mod pack;
mod pipe;
pub mod source;
pub mod tar;
pub mod unpack;
pub mod vhdmeta;
pub mod xenserver;

pub use error::{Error, ErrorKind, Result};
pub use pack::{pack, Compression, PackInput, PackOptions, PackReport};
pub use source::{Expected, Limits};
pub use unpack::{unpack, Layout, UnpackOptions, UnpackReport};

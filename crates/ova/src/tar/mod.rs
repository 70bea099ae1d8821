//! Tar archives through the `tar` crate, which parses and writes the 512-byte
//! headers (ustar, GNU and v7; GNU long names, pax `path`/`linkpath`/`size`).
//! [`reader`] streams entries front to back with our bounds on top of the
//! crate's parsing; [`writer`] streams entries of a length known up front.

pub mod header;
pub mod reader;
pub mod writer;

pub use ::tar::{EntryType, Header};
pub use header::file_header;
pub use reader::{Entry, EntryHeader, TarReader};
pub use writer::{TarWriter, WrittenEntry};

/// Size of a tar block (header or data record).
pub const BLOCK: usize = 512;

/// `len` rounded up to a whole number of blocks.
pub fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK as u64) * BLOCK as u64
}

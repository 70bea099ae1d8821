//! Tar archives: the ustar header ([`header`]), a streaming reader ([`reader`])
//! and a streaming writer ([`writer`]).

pub mod header;
pub mod reader;
pub mod writer;

pub use header::{EntryType, Header, BLOCK};
pub use reader::{Entry, TarReader};
pub use writer::{TarWriter, WrittenEntry};

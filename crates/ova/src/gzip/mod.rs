//! Gzip output made in parallel, and gzip input read in parallel.
//!
//! - [`ParGzWriter`]: one standard gzip member compressed pigz-style (chunks
//!   primed with the previous 32 KiB, sync-flushed, CRC combined), read by
//!   every gzip reader.
//! - [`indexed`]: BGZF-like multi-member gzip with an index, so our reader can
//!   decompress members in parallel and read any byte range.
//! - [`members`]: the indexed form decompressed front to back from any
//!   stream, members inflated in parallel, output in order.

pub(crate) mod deflate;
pub mod engine;
pub mod header;
pub mod indexed;
mod inflating;
#[cfg(all(feature = "isal", target_arch = "x86_64"))]
mod isal;
mod member;
pub mod members;
pub(crate) mod ordered;
pub mod parallel;
pub(crate) mod whole;

pub use engine::ENGINE;
pub use members::{is_indexed_head, MemberReader};
pub use parallel::{GzOptions, ParGzWriter};

/// Default chunk of input compressed by one job: pigz's. Measured against 64
/// and 256 KiB on a 128 MiB mix (`cargo bench -p cloudimg-ova --bench gzip`):
/// no slower than either, 0.02% larger output than 256 KiB, still smaller
/// than `gzip -6`.
pub const DEFAULT_CHUNK: usize = 128 * 1024;
/// Default compression level (gzip's).
pub const DEFAULT_LEVEL: u32 = 6;

/// Worker threads to use when the caller does not say: the available cores.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

//! Coalescing differencing chains.
//!
//! Out of place, a chain becomes one new image: that is [`crate::convert`] with
//! a VHD input (see [`coalesce_to`]). In place, a child is merged into its
//! immediate parent sector by sector, crash safe through an undo journal kept
//! beside the parent (see [`journal`]), as `vhd-util coalesce -j` does.

pub mod faults;
mod inplace;
pub mod journal;

pub use inplace::{coalesce_into_parent, resume, rollback, InPlaceOptions, MergeReport};
pub use journal::{journal_path, refuse_if_journaled, JournalInfo};

use crate::convert::{convert, ConvertOptions, ConvertReport, InputFormat, Output};
use crate::Result;
use std::path::Path;

/// Writes the whole chain ending at `leaf` as one image (dynamic VHD by default;
/// see [`ConvertOptions::output`]).
pub fn coalesce_to(
    leaf: &Path,
    out: Output<'_>,
    opts: &ConvertOptions,
    progress: crate::write::Progress<'_>,
) -> Result<ConvertReport> {
    let opts = ConvertOptions {
        input: Some(InputFormat::Vhd),
        ..opts.clone()
    };
    convert(leaf, out, &opts, progress)
}

//! Whether an interrupted in-place coalesce left its undo journal beside an
//! image. Every opener asks before reading (image, convert, create, the
//! in-place merge itself), so the question sits here, below all of them,
//! rather than in [`crate::coalesce`], which is built on convert; the journal
//! itself is [`crate::coalesce::journal`].

use crate::{Error, ErrorKind, Result};
use std::path::{Path, PathBuf};

/// Where the journal of `parent` lives.
pub fn journal_path(parent: &Path) -> PathBuf {
    let mut name = parent.file_name().unwrap_or_default().to_os_string();
    name.push(".cloudimg-journal");
    parent.with_file_name(name)
}

/// Fails with [`ErrorKind::Journal`] when an interrupted in-place coalesce left
/// a journal beside `path`, saying how to finish or undo it.
pub fn refuse_if_journaled(path: &Path) -> Result<()> {
    let j = journal_path(path);
    if j.exists() {
        return Err(Error::new(
            ErrorKind::Journal,
            format!(
                "an interrupted in-place coalesce left {}; the image may be half merged. \
                 Run `cloudimg coalesce --rollback {}` to restore it, or `cloudimg coalesce --resume {}` to finish the merge",
                j.display(),
                path.display(),
                path.display()
            ),
        )
        .path(path));
    }
    Ok(())
}

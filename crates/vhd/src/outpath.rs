//! Output paths, shared by every command that writes a file (convert, coalesce, pack,
//! download, upload to a local store): whether the output is one of the inputs, and
//! whether it is something other than a regular file.
//!
//! "The same file" is the same device and inode, so a symlink or a hard link to an input
//! is caught as well as the input's own name. An output that exists and is not a regular
//! file (a character device such as `/dev/null`, a FIFO, a block device) is opened and
//! written into front to back; writing under a temporary name and renaming it over the
//! target would replace the device with a regular file.

use crate::{Error, ErrorKind, Result};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// True when `a` and `b` name the same file (device and inode, symlinks followed).
/// False when either does not exist.
pub fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

/// Refuses (`InvalidArgument`, exit 2 in the CLI) an output that is one of `inputs`.
pub fn refuse_output_among_inputs<'a>(
    out: &Path,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    for input in inputs {
        if same_file(out, input) {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!(
                    "the output is the input file {} (same device and inode): writing it would destroy the input",
                    input.display()
                ),
            )
            .path(out));
        }
    }
    Ok(())
}

/// True when `out` exists and is not a regular file (symlinks followed).
pub fn is_special(out: &Path) -> bool {
    std::fs::metadata(out).is_ok_and(|m| !m.is_file())
}

/// Opens `out` for writing in place when it exists and is not a regular file (a folder
/// fails here, before anything is written); `None` for a path that a temporary file and
/// a rename should produce.
pub fn open_special(out: &Path) -> io::Result<Option<File>> {
    match std::fs::metadata(out) {
        Ok(m) if !m.is_file() => OpenOptions::new().write(true).open(out).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_the_same_file() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        std::fs::write(&a, b"x").unwrap();
        std::fs::hard_link(&a, d.path().join("h")).unwrap();
        std::os::unix::fs::symlink(&a, d.path().join("s")).unwrap();
        std::fs::write(d.path().join("b"), b"x").unwrap();
        assert!(same_file(&a, &d.path().join("h")));
        assert!(same_file(&a, &d.path().join("s")));
        assert!(!same_file(&a, &d.path().join("b")));
        assert!(!same_file(&a, &d.path().join("missing")));
        let e = refuse_output_among_inputs(&d.path().join("h"), [a.as_path()]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(!e.kind().is_data_error());
    }

    #[test]
    fn devices_are_opened_in_place_and_folders_refused() {
        assert!(is_special(Path::new("/dev/null")));
        assert!(open_special(Path::new("/dev/null")).unwrap().is_some());
        let d = tempfile::tempdir().unwrap();
        assert!(open_special(d.path()).is_err());
        let f = d.path().join("f");
        std::fs::write(&f, b"x").unwrap();
        assert!(!is_special(&f));
        assert!(open_special(&f).unwrap().is_none());
        assert!(open_special(&d.path().join("missing")).unwrap().is_none());
    }
}

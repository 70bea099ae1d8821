//! Which tar entries may be unpacked: the entry policy (member count,
//! names, types, duplicates, sizes) shared by [`crate::unpack`] (files in a
//! folder) and [`crate::xenserver`] (a chain read as a stream). It sits
//! below both so neither imports the other.

use crate::error::{Error, ErrorKind, Result};
use crate::names::{sanitize, SafeName};
use crate::source::Limits;
use crate::tar::{EntryType, Header};

/// Decides whether an entry may be unpacked: `Ok(None)` for the archive root
/// (skipped), `Ok(Some(file name))` for a file, an error for anything unsafe.
/// `count` is the entry's ordinal; `seen` tells whether a name was taken.
pub(crate) fn admit(
    header: &Header,
    count: usize,
    limits: &Limits,
    seen: impl Fn(&str) -> bool,
) -> Result<Option<String>> {
    if count > limits.max_members {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!("more than {} members", limits.max_members),
        ));
    }
    let name = sanitize(&header.name)?;
    let ty = header.entry_type;
    match (ty, &name) {
        (EntryType::Directory, SafeName::Root) => return Ok(None),
        (EntryType::Directory, _) => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                "subdirectories are not supported (packages are flat)",
            ))
        }
        (EntryType::HardLink | EntryType::Symlink, _) => {
            return Err(Error::new(
                ErrorKind::UnsafeEntry,
                format!(
                    "{} to {:?} refused",
                    ty.name(),
                    String::from_utf8_lossy(&header.link_name)
                ),
            ))
        }
        (EntryType::CharDevice | EntryType::BlockDevice | EntryType::Fifo, _) => {
            return Err(Error::new(
                ErrorKind::UnsafeEntry,
                format!("{} refused", ty.name()),
            ))
        }
        (t, _) if !t.is_file() => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{} (type {:?}) not supported",
                    t.name(),
                    t.to_byte() as char
                ),
            ))
        }
        _ => {}
    }
    let SafeName::File(file_name) = name else {
        return Err(Error::new(
            ErrorKind::UnsafePath,
            "regular file named like the root",
        ));
    };
    if seen(&file_name) {
        return Err(Error::new(
            ErrorKind::Duplicate,
            "a member of this name appeared earlier in the archive",
        ));
    }
    if header.size > limits.max_member_size {
        return Err(Error::new(
            ErrorKind::LimitExceeded,
            format!(
                "{} bytes, over the {}-byte cap",
                header.size, limits.max_member_size
            ),
        ));
    }
    Ok(Some(file_name))
}

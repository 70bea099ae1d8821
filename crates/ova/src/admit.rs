//! Which tar entries may be unpacked: the entry policy (member count,
//! names, types, duplicates, sizes) shared by [`crate::unpack`] (files in a
//! folder) and [`crate::xenserver`] (a chain read as a stream). It sits
//! below both so neither imports the other.

use crate::error::{Error, ErrorKind, Result};
use crate::names::{sanitize, SafeName};
use crate::source::Limits;
use crate::tar::{EntryHeader, EntryType};

/// Decides whether an entry may be unpacked: `Ok(None)` for the archive root
/// (skipped), `Ok(Some(file name))` for a file, an error for anything unsafe.
/// `count` is the entry's ordinal; `seen` tells whether a name was taken.
pub(crate) fn admit(
    header: &EntryHeader,
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
        (EntryType::Link | EntryType::Symlink, _) => {
            return Err(Error::new(
                ErrorKind::UnsafeEntry,
                format!(
                    "{} to {:?} refused",
                    type_name(ty),
                    String::from_utf8_lossy(&header.link_name)
                ),
            ))
        }
        (EntryType::Char | EntryType::Block | EntryType::Fifo, _) => {
            return Err(Error::new(
                ErrorKind::UnsafeEntry,
                format!("{} refused", type_name(ty)),
            ))
        }
        (EntryType::Regular | EntryType::Continuous, _) => {}
        (t, _) => {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{} (type {:?}) not supported",
                    type_name(t),
                    t.as_byte() as char
                ),
            ))
        }
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

/// A short name of an entry type, for messages.
fn type_name(t: EntryType) -> &'static str {
    match t {
        EntryType::Regular | EntryType::Continuous => "regular file",
        EntryType::Link => "hard link",
        EntryType::Symlink => "symbolic link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Directory => "directory",
        EntryType::Fifo => "fifo",
        EntryType::GNULongName => "GNU long name",
        EntryType::GNULongLink => "GNU long link",
        EntryType::GNUSparse => "GNU sparse file",
        EntryType::XHeader => "pax header",
        EntryType::XGlobalHeader => "pax global header",
        _ => "unknown entry type",
    }
}

//! The ustar header of one regular file, as we write it: shared by the writer and by
//! the reader's tests, which build archives byte by byte.

use super::{EntryType, Header};
use crate::error::{Error, ErrorKind, Result};
use std::io;

/// The ustar header we write for a regular file: mode 0644, root owner. Names
/// over 100 bytes are split into the ustar prefix at a `/`; absolute names,
/// `..` and names that cannot be split are refused.
pub fn file_header(name: &str, size: u64, mtime: u64) -> Result<Header> {
    let bad = |e: io::Error| {
        Error::new(
            ErrorKind::InvalidArgument,
            format!("cannot write a ustar header: {e}"),
        )
        .member(name)
    };
    let mut h = Header::new_ustar();
    h.set_path(name).map_err(bad)?;
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h.set_username("root").map_err(bad)?;
    h.set_groupname("root").map_err(bad)?;
    h.set_entry_type(EntryType::Regular);
    h.set_cksum();
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_long_names_and_take_large_sizes() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let h = file_header(&name, 10 << 30, 0).unwrap();
        assert_eq!(&h.as_bytes()[257..263], b"ustar\0");
        assert_eq!(h.path_bytes().as_ref(), name.as_bytes());
        assert_eq!(h.as_bytes()[124] & 0x80, 0x80);
        assert_eq!(h.entry_size().unwrap(), 10 << 30);
        for bad in ["x".repeat(150), "../x".into(), "/etc/x".into()] {
            assert_eq!(
                file_header(&bad, 0, 0).unwrap_err().kind(),
                ErrorKind::InvalidArgument
            );
        }
    }
}

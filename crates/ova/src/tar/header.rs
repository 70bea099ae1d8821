//! The 512-byte tar header as a plain struct: parse, serialise, checksum.
//!
//! We write POSIX ustar (magic `ustar\0`, version `00`) and read ustar, GNU
//! (`ustar  \0`) and old v7 headers. Numeric fields are octal; a size that does
//! not fit the 11 octal digits (8 GiB and up) is written in GNU base-256 form
//! (high bit of the first byte set), which GNU tar, bsdtar and Python read.

use crate::error::{Error, ErrorKind, Result};

/// Size of a tar block (header or data record).
pub const BLOCK: usize = 512;
/// Largest size the 11-digit octal field holds (8 GiB - 1).
pub const MAX_OCTAL_SIZE: u64 = 0o77777777777;

/// The type flag of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryType {
    /// `0` or NUL (old tar).
    Regular,
    /// `1`.
    HardLink,
    /// `2`.
    Symlink,
    /// `3`.
    CharDevice,
    /// `4`.
    BlockDevice,
    /// `5`.
    Directory,
    /// `6`.
    Fifo,
    /// `7`: contiguous file, read as a regular file.
    Contiguous,
    /// `L`: GNU long name for the next entry.
    GnuLongName,
    /// `K`: GNU long link name for the next entry.
    GnuLongLink,
    /// `x`: pax extended header for the next entry.
    PaxHeader,
    /// `g`: pax global header.
    PaxGlobal,
    /// Anything else (GNU sparse `S`, volume labels, vendor types).
    Other(u8),
}

impl EntryType {
    pub fn from_byte(b: u8) -> EntryType {
        match b {
            b'0' | 0 => EntryType::Regular,
            b'1' => EntryType::HardLink,
            b'2' => EntryType::Symlink,
            b'3' => EntryType::CharDevice,
            b'4' => EntryType::BlockDevice,
            b'5' => EntryType::Directory,
            b'6' => EntryType::Fifo,
            b'7' => EntryType::Contiguous,
            b'L' => EntryType::GnuLongName,
            b'K' => EntryType::GnuLongLink,
            b'x' => EntryType::PaxHeader,
            b'g' => EntryType::PaxGlobal,
            other => EntryType::Other(other),
        }
    }

    pub fn to_byte(self) -> u8 {
        match self {
            EntryType::Regular => b'0',
            EntryType::HardLink => b'1',
            EntryType::Symlink => b'2',
            EntryType::CharDevice => b'3',
            EntryType::BlockDevice => b'4',
            EntryType::Directory => b'5',
            EntryType::Fifo => b'6',
            EntryType::Contiguous => b'7',
            EntryType::GnuLongName => b'L',
            EntryType::GnuLongLink => b'K',
            EntryType::PaxHeader => b'x',
            EntryType::PaxGlobal => b'g',
            EntryType::Other(b) => b,
        }
    }

    /// True for the types whose data is file content.
    pub fn is_file(self) -> bool {
        matches!(self, EntryType::Regular | EntryType::Contiguous)
    }

    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            EntryType::Regular | EntryType::Contiguous => "regular file",
            EntryType::HardLink => "hard link",
            EntryType::Symlink => "symbolic link",
            EntryType::CharDevice => "character device",
            EntryType::BlockDevice => "block device",
            EntryType::Directory => "directory",
            EntryType::Fifo => "fifo",
            EntryType::GnuLongName => "GNU long name",
            EntryType::GnuLongLink => "GNU long link",
            EntryType::PaxHeader => "pax header",
            EntryType::PaxGlobal => "pax global header",
            EntryType::Other(_) => "unknown entry type",
        }
    }
}

/// One header block, fields decoded. Names are raw bytes: tar does not promise UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// `prefix/name` joined when the ustar prefix is set.
    pub name: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    pub mtime: u64,
    pub entry_type: EntryType,
    pub link_name: Vec<u8>,
    pub uname: Vec<u8>,
    pub gname: Vec<u8>,
    pub dev_major: u32,
    pub dev_minor: u32,
}

impl Header {
    /// A regular-file header with the defaults we write: mode 0644, root owner.
    pub fn file(name: &str, size: u64, mtime: u64) -> Header {
        Header {
            name: name.as_bytes().to_vec(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            size,
            mtime,
            entry_type: EntryType::Regular,
            link_name: Vec::new(),
            uname: b"root".to_vec(),
            gname: b"root".to_vec(),
            dev_major: 0,
            dev_minor: 0,
        }
    }

    /// True when every byte of the block is zero (the end-of-archive marker).
    pub fn is_zero_block(b: &[u8; BLOCK]) -> bool {
        b.iter().all(|&x| x == 0)
    }

    /// The checksum as tar defines it: the byte sum with the checksum field read as spaces.
    /// Returns the unsigned sum and the signed sum (some old tars summed `char`).
    pub fn checksums(b: &[u8; BLOCK]) -> (u64, i64) {
        let mut unsigned = 0u64;
        let mut signed = 0i64;
        for (i, &x) in b.iter().enumerate() {
            let x = if (148..156).contains(&i) { b' ' } else { x };
            unsigned += u64::from(x);
            signed += i64::from(x as i8);
        }
        (unsigned, signed)
    }

    /// Parses a header block. `offset` (of the block in the archive) goes into errors.
    pub fn parse(b: &[u8; BLOCK], offset: u64) -> Result<Header> {
        let stored = parse_number(&b[148..156], "chksum", offset)?;
        let (unsigned, signed) = Header::checksums(b);
        if stored != unsigned && stored as i64 != signed {
            return Err(Error::new(
                ErrorKind::Corrupt,
                format!("tar header checksum is {stored}, the header sums to {unsigned}"),
            )
            .at(offset));
        }
        let magic = &b[257..263];
        let is_ustar = magic == b"ustar\0";
        let mut name = cstr(&b[0..100]).to_vec();
        if is_ustar {
            // GNU tar's old magic ("ustar  \0") uses this area for atime/ctime.
            let prefix = cstr(&b[345..500]);
            if !prefix.is_empty() {
                let mut full = prefix.to_vec();
                full.push(b'/');
                full.extend_from_slice(&name);
                name = full;
            }
        }
        Ok(Header {
            name,
            mode: parse_number(&b[100..108], "mode", offset)? as u32,
            uid: parse_number(&b[108..116], "uid", offset)?,
            gid: parse_number(&b[116..124], "gid", offset)?,
            size: parse_number(&b[124..136], "size", offset)?,
            mtime: parse_number(&b[136..148], "mtime", offset)?,
            entry_type: EntryType::from_byte(b[156]),
            link_name: cstr(&b[157..257]).to_vec(),
            uname: cstr(&b[265..297]).to_vec(),
            gname: cstr(&b[297..329]).to_vec(),
            dev_major: parse_number(&b[329..337], "devmajor", offset)? as u32,
            dev_minor: parse_number(&b[337..345], "devminor", offset)? as u32,
        })
    }

    /// Serialises as ustar. Names longer than 100 bytes are split into prefix/name
    /// at a `/`; a name that cannot be split is refused (we only write short names).
    pub fn to_bytes(&self) -> Result<[u8; BLOCK]> {
        let mut b = [0u8; BLOCK];
        let (prefix, name) = split_name(&self.name).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                "name too long for a ustar header (at most 100 bytes, or 155/100 split at '/')",
            )
            .member(String::from_utf8_lossy(&self.name))
        })?;
        b[..name.len()].copy_from_slice(name);
        write_octal(&mut b[100..108], u64::from(self.mode))?;
        write_octal(&mut b[108..116], self.uid)?;
        write_octal(&mut b[116..124], self.gid)?;
        if self.size <= MAX_OCTAL_SIZE {
            write_octal(&mut b[124..136], self.size)?;
        } else {
            write_base256(&mut b[124..136], self.size);
        }
        write_octal(&mut b[136..148], self.mtime)?;
        b[156] = self.entry_type.to_byte();
        put_bytes(&mut b[157..257], &self.link_name, "linkname")?;
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put_bytes(&mut b[265..297], &self.uname, "uname")?;
        put_bytes(&mut b[297..329], &self.gname, "gname")?;
        write_octal(&mut b[329..337], u64::from(self.dev_major))?;
        write_octal(&mut b[337..345], u64::from(self.dev_minor))?;
        b[345..345 + prefix.len()].copy_from_slice(prefix);
        let (sum, _) = Header::checksums(&b);
        // Six octal digits, NUL, space: the form every tar writes.
        let digits = format!("{sum:06o}");
        b[148..154].copy_from_slice(digits.as_bytes());
        b[154] = 0;
        b[155] = b' ';
        Ok(b)
    }

    /// Bytes of data blocks following the header (size rounded up to 512).
    pub fn padded_size(&self) -> u64 {
        padded(self.size)
    }
}

/// `len` rounded up to a whole number of blocks.
pub fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK as u64) * BLOCK as u64
}

/// The bytes up to the first NUL.
fn cstr(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&x| x == 0).unwrap_or(field.len());
    &field[..end]
}

fn put_bytes(field: &mut [u8], value: &[u8], what: &str) -> Result<()> {
    if value.len() > field.len() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{what} longer than {} bytes", field.len()),
        ));
    }
    field[..value.len()].copy_from_slice(value);
    Ok(())
}

/// Splits a long name into ustar (prefix, name); `None` when impossible.
fn split_name(name: &[u8]) -> Option<(&[u8], &[u8])> {
    if name.len() <= 100 {
        return Some((&[], name));
    }
    if name.len() > 256 {
        return None;
    }
    // The prefix must fit 155 bytes and the rest 100: pick the first '/' that works.
    name.iter()
        .enumerate()
        .filter(|&(i, &c)| c == b'/' && i <= 155 && name.len() - i - 1 <= 100 && i > 0)
        .map(|(i, _)| (&name[..i], &name[i + 1..]))
        .next()
        .filter(|(_, rest)| !rest.is_empty())
}

/// Octal (spaces/NULs around it tolerated) or GNU base-256 when the top bit is set.
fn parse_number(field: &[u8], what: &'static str, offset: u64) -> Result<u64> {
    if field.first().is_some_and(|&x| x & 0x80 != 0) {
        // Base-256: big-endian two's complement; negative values are nonsense here.
        if field[0] & 0x40 != 0 {
            return Err(bad_number(what, offset, "negative base-256 number"));
        }
        let mut v: u64 = u64::from(field[0] & 0x3f);
        for &x in &field[1..] {
            v = v
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(x)))
                .ok_or_else(|| bad_number(what, offset, "base-256 number overflows 64 bits"))?;
        }
        return Ok(v);
    }
    let trimmed: Vec<u8> = field
        .iter()
        .copied()
        .skip_while(|&x| x == b' ')
        .take_while(|&x| x != 0 && x != b' ')
        .collect();
    let mut v: u64 = 0;
    for &x in &trimmed {
        if !(b'0'..=b'7').contains(&x) {
            return Err(bad_number(what, offset, "not an octal number"));
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(x - b'0')))
            .ok_or_else(|| bad_number(what, offset, "octal number overflows 64 bits"))?;
    }
    Ok(v)
}

fn bad_number(what: &'static str, offset: u64, why: &str) -> Error {
    Error::new(
        ErrorKind::Corrupt,
        format!("tar header field {what}: {why}"),
    )
    .at(offset)
}

/// Zero-padded octal with a trailing NUL, filling the field.
fn write_octal(field: &mut [u8], v: u64) -> Result<()> {
    let digits = format!("{v:0width$o}", width = field.len() - 1);
    if digits.len() > field.len() - 1 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            format!("{v} does not fit a {}-digit octal field", field.len() - 1),
        ));
    }
    field[..digits.len()].copy_from_slice(digits.as_bytes());
    field[digits.len()] = 0;
    Ok(())
}

fn write_base256(field: &mut [u8], v: u64) {
    field.fill(0);
    let n = field.len();
    field[n - 8..].copy_from_slice(&v.to_be_bytes());
    field[0] |= 0x80;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_file_header() {
        let h = Header::file("0.vhd", 12345, 1_700_000_000);
        let b = h.to_bytes().unwrap();
        assert_eq!(&b[257..263], b"ustar\0");
        assert_eq!(Header::parse(&b, 0).unwrap(), h);
    }

    #[test]
    fn large_sizes_use_base256() {
        let h = Header::file("big.vhd", 10 << 30, 0);
        let b = h.to_bytes().unwrap();
        assert_eq!(b[124] & 0x80, 0x80);
        assert_eq!(Header::parse(&b, 0).unwrap().size, 10 << 30);
        let h = Header::file("edge.vhd", MAX_OCTAL_SIZE, 0);
        let b = h.to_bytes().unwrap();
        assert_eq!(&b[124..136], b"77777777777\0");
    }

    #[test]
    fn bad_checksum_is_corrupt_at_offset() {
        let mut b = Header::file("a", 1, 0).to_bytes().unwrap();
        b[0] = b'b';
        let e = Header::parse(&b, 1024).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Corrupt);
        assert_eq!(e.offset(), Some(1024));
    }

    #[test]
    fn long_names_split_into_prefix() {
        let name = format!("{}/{}", "d".repeat(120), "f".repeat(90));
        let h = Header::file(&name, 0, 0);
        let b = h.to_bytes().unwrap();
        assert_eq!(Header::parse(&b, 0).unwrap().name, name.as_bytes());
        let unsplittable = "x".repeat(150);
        assert!(Header::file(&unsplittable, 0, 0).to_bytes().is_err());
    }

    #[test]
    fn parses_gnu_tar_spacing() {
        // GNU tar writes "0000644\0" and old tars " 644 \0"; both are 420.
        assert_eq!(parse_number(b" 644 \0\0\0", "mode", 0).unwrap(), 0o644);
        assert_eq!(parse_number(b"0000644\0", "mode", 0).unwrap(), 0o644);
        assert_eq!(parse_number(b"\0\0\0\0", "mode", 0).unwrap(), 0);
        assert!(parse_number(b"0009\0", "mode", 0).is_err());
    }
}

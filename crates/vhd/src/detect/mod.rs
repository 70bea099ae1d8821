//! What a file is, from its first bytes and its last sector: the one place that
//! knows the magic numbers of the disk, archive and compression formats people
//! hand us instead of a VHD, and which of them name other files.
//!
//! [`detect`] is pure: give it up to [`HEAD_LEN`] bytes from the start, the last
//! 512 bytes and the size, and it reads nothing else, so a web handler can call
//! it on the first chunk of an upload and an import on two ranged reads. The
//! safety findings ([`Hazard`]) follow oslo.utils' `format_inspector` after
//! CVE-2024-32498: an image that makes its reader open another file (a QCOW2
//! backing or data file, VMDK extents, a VHD parent) is how a host's files leak
//! into a guest, so a service must refuse it whatever the declared format.
//! [`Detected::not_vhd`] words the error for users: what the data is and the
//! command that makes a VHD of it.

mod advice;
mod archive;
mod disk;

use crate::io::{FileIo, LayerIo};
use serde::Serialize;
use std::fmt;
use std::io;
use std::path::Path;

pub use advice::Flow;

/// How many leading bytes [`detect`] looks at; more are ignored, fewer only
/// hide what lies past them (an ISO 9660 volume descriptor sits at 32 KiB).
pub const HEAD_LEN: usize = 64 * 1024;
/// How many trailing bytes [`detect`] looks at: one VHD footer.
pub const TAIL_LEN: usize = 512;

/// A VHD's disk type as the detector saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VhdKind {
    Fixed,
    Dynamic,
    Differencing,
    /// A cookie, but a disk type the format does not define.
    Other,
}

/// The two VMDK shapes: a binary sparse extent (with its descriptor inside) or a
/// text descriptor naming extent files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VmdkKind {
    Sparse,
    Descriptor,
}

/// POSIX ustar or the GNU variant (`ustar  \0` magic, long names as extra members).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TarKind {
    Ustar,
    Gnu,
}

/// What the bytes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "format", content = "kind")]
pub enum Format {
    Vhd(VhdKind),
    Qcow2,
    /// QEMU's first copy-on-write format (version 1).
    Qcow,
    Vhdx,
    Vmdk(VmdkKind),
    Vdi,
    Qed,
    Iso9660,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
    Tar(TarKind),
    /// A tar archive whose first member is an OVF descriptor.
    Ova,
    /// An OVF descriptor (XML) on its own.
    Ovf,
    /// Printable text: an error page, a descriptor of some other kind, a script.
    Text,
    /// Nothing recognised: a raw disk, or data that is no image at all.
    Raw,
    /// Zero bytes.
    Empty,
}

impl Format {
    /// Short name as people write it: `VHD`, `QCOW2`, `gzip`, `raw`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Vhd(_) => "VHD",
            Format::Qcow2 => "QCOW2",
            Format::Qcow => "QCOW",
            Format::Vhdx => "VHDX",
            Format::Vmdk(_) => "VMDK",
            Format::Vdi => "VDI",
            Format::Qed => "QED",
            Format::Iso9660 => "ISO 9660",
            Format::Gzip => "gzip",
            Format::Bzip2 => "bzip2",
            Format::Xz => "xz",
            Format::Zstd => "zstd",
            Format::Tar(_) => "tar",
            Format::Ova => "OVA",
            Format::Ovf => "OVF",
            Format::Text => "text",
            Format::Raw => "raw",
            Format::Empty => "empty",
        }
    }

    /// The Glance `disk_format` these bytes are, when Glance has a name for it
    /// (an API compares it with the format the client declared).
    pub fn glance_disk_format(self) -> Option<&'static str> {
        Some(match self {
            Format::Vhd(_) => "vhd",
            Format::Qcow2 => "qcow2",
            Format::Vhdx => "vhdx",
            Format::Vmdk(_) => "vmdk",
            Format::Vdi => "vdi",
            Format::Iso9660 => "iso",
            Format::Raw => "raw",
            _ => return None,
        })
    }

    /// A virtual-disk format other than VHD, which `qemu-img convert` reads.
    pub fn is_foreign_disk(self) -> bool {
        matches!(
            self,
            Format::Qcow2
                | Format::Qcow
                | Format::Vhdx
                | Format::Vmdk(_)
                | Format::Vdi
                | Format::Qed
        )
    }

    /// A compressed stream (whatever it holds).
    pub fn is_compressed(self) -> bool {
        matches!(
            self,
            Format::Gzip | Format::Bzip2 | Format::Xz | Format::Zstd
        )
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A reason to refuse an image on a service even when it is the declared format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "hazard")]
pub enum Hazard {
    /// The image makes its reader open another file: `what` is the field
    /// (`backing file`, `data file`, `extent`, `parent`, `parent locator W2ku`),
    /// `name` the file named when it lies within the bytes given, `host_path`
    /// true when that name is absolute (a path on whatever host opens it).
    NamesOtherFile {
        what: String,
        name: Option<String>,
        host_path: bool,
    },
    /// Something a streaming reader cannot check or must not follow: an unknown
    /// incompatible feature, a VMDK type other than monolithicSparse or
    /// streamOptimized, a grain directory at the end.
    Unsupported { what: String },
}

impl fmt::Display for Hazard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Hazard::NamesOtherFile {
                what,
                name: Some(n),
                ..
            } => write!(f, "{what} '{n}'"),
            Hazard::NamesOtherFile {
                what, name: None, ..
            } => f.write_str(what),
            Hazard::Unsupported { what } => f.write_str(what),
        }
    }
}

/// What [`detect`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detected {
    pub format: Format,
    /// The size given to [`detect`].
    pub size: u64,
    /// The disk size the image's header states, where the format keeps it in
    /// the bytes given.
    pub virtual_size: Option<u64>,
    /// Something worth saying next to the name: a QCOW2's version, a VMDK's
    /// createType, the name a gzip stream was made from, the first member of a
    /// tarball, the partition table of raw data.
    pub detail: Option<String>,
    /// Findings a service must refuse (see [`Hazard`]).
    pub hazards: Vec<Hazard>,
}

impl Detected {
    fn new(format: Format, size: u64) -> Detected {
        Detected {
            format,
            size,
            virtual_size: None,
            detail: None,
            hazards: Vec::new(),
        }
    }

    /// True when the image makes its reader open another file.
    pub fn names_other_files(&self) -> bool {
        self.hazards
            .iter()
            .any(|h| matches!(h, Hazard::NamesOtherFile { .. }))
    }

    /// True when the bytes are a VHD (any disk type).
    pub fn is_vhd(&self) -> bool {
        matches!(self.format, Format::Vhd(_))
    }
}

/// Names what `head` (the first bytes, up to [`HEAD_LEN`] used), `tail` (the
/// last bytes, up to [`TAIL_LEN`] used) and `size` (the whole length) are.
/// Never panics and never allocates more than the names it decodes.
pub fn detect(head: &[u8], tail: &[u8], size: u64) -> Detected {
    let head = &head[..head.len().min(HEAD_LEN)];
    let tail = &tail[tail.len().saturating_sub(TAIL_LEN)..];
    if size == 0 {
        return Detected::new(Format::Empty, 0);
    }
    // The footer first: a fixed VHD's first sector is the guest's, and may hold
    // anything, including another format's magic.
    if let Some(d) = disk::vhd(head, tail, size) {
        return d;
    }
    disk::by_magic(head, size)
        .or_else(|| archive::by_magic(head, size))
        .unwrap_or_else(|| disk::raw_or_text(head, size))
}

/// Reads the first [`HEAD_LEN`] and last [`TAIL_LEN`] bytes of `io` (two reads,
/// or one for a small file) and detects what it holds.
pub fn detect_io(io: &dyn LayerIo) -> io::Result<Detected> {
    let size = io.len();
    let head_len = size.min(HEAD_LEN as u64) as usize;
    let mut head = vec![0u8; head_len];
    io.read_exact_at(&mut head, 0)?;
    let tail_len = size.min(TAIL_LEN as u64) as usize;
    let tail = if size == head_len as u64 {
        head[head_len - tail_len..].to_vec()
    } else {
        let mut t = vec![0u8; tail_len];
        io.read_exact_at(&mut t, size - tail_len as u64)?;
        t
    };
    Ok(detect(&head, &tail, size))
}

/// [`detect_io`] on the file at `path`.
pub fn detect_file(path: impl AsRef<Path>) -> io::Result<Detected> {
    detect_io(&FileIo::open(path)?)
}

/// Little helpers over slices that may be short: `None` past the end.
pub(crate) mod bytes {
    pub fn at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
        b.get(at..at.checked_add(N)?)?.try_into().ok()
    }
    pub fn be_u32(b: &[u8], off: usize) -> Option<u32> {
        at(b, off).map(u32::from_be_bytes)
    }
    pub fn be_u64(b: &[u8], off: usize) -> Option<u64> {
        at(b, off).map(u64::from_be_bytes)
    }
    pub fn le_u16(b: &[u8], off: usize) -> Option<u16> {
        at(b, off).map(u16::from_le_bytes)
    }
    pub fn le_u32(b: &[u8], off: usize) -> Option<u32> {
        at(b, off).map(u32::from_le_bytes)
    }
    pub fn le_u64(b: &[u8], off: usize) -> Option<u64> {
        at(b, off).map(u64::from_le_bytes)
    }
    /// `len` bytes at `off` (a u64 from a header), when they lie within `b`.
    pub fn range(b: &[u8], off: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        b.get(start..end)
    }
    /// The bytes up to the first NUL, as text when they decode.
    pub fn cstr(b: &[u8]) -> Option<&str> {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        std::str::from_utf8(&b[..end]).ok()
    }
}

/// True when a name read from an image is a path on the host that opens it:
/// absolute, a drive or UNC path, a URL, or one that climbs out with `..`.
pub(crate) fn is_host_path(name: &str) -> bool {
    let b = name.as_bytes();
    name.starts_with('/')
        || name.starts_with('\\')
        || name.contains("://")
        || (b.len() >= 2 && b[1] == b':' && b[0].is_ascii_alphabetic())
        || name.split(['/', '\\']).any(|c| c == "..")
}

#[cfg(test)]
mod tests;

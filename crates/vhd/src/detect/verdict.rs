//! What the detector says about a file: the formats and their kinds, the
//! hazards (names of other files an image makes its reader open) and the
//! [`Detected`] answer. The recognisers (`disk`, `archive`) build these and
//! `detect` hands them out, so they sit below both.

use serde::Serialize;
use std::fmt;

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
    pub(super) fn new(format: Format, size: u64) -> Detected {
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

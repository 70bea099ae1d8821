//! Virtual-disk formats: VHD (from its footer), QCOW2, QCOW, VHDX, VMDK, VDI and
//! QED (from their headers), and raw data when nothing else matched.
//!
//! Header layouts: QCOW2 from qemu's docs/interop/qcow2.txt, QED from
//! docs/interop/qed_spec.txt, VMDK from VMware's "Virtual Disk Format 5.0",
//! VDI from VirtualBox's VDICore.h. Only fields that say what the image is or
//! which other files it opens are read.

use super::bytes::{at, be_u32, be_u64, cstr, le_u16, le_u32, le_u64, range};
use super::verdict::{is_host_path, Detected, Format, Hazard, VhdKind, VmdkKind};
use crate::format::footer::{Footer, COOKIE, FOOTER_SIZE};
use crate::format::header::{DynamicHeader, HEADER_SIZE};
use crate::DiskType;

/// A VHD, recognised by its footer: the tail copy, or the head copy a sparse
/// disk keeps (for a disk whose tail was cut off or damaged).
pub(super) fn vhd(head: &[u8], tail: &[u8], size: u64) -> Option<Detected> {
    let parse = |b: &[u8]| -> Option<Footer> {
        let raw: [u8; FOOTER_SIZE] = b.get(..FOOTER_SIZE)?.try_into().ok()?;
        Footer::parse(&raw)
    };
    let footer = (tail.len() == FOOTER_SIZE && tail.starts_with(COOKIE))
        .then(|| parse(tail))
        .flatten()
        .or_else(|| parse(head).filter(|f| f.disk_type.is_sparse() && size > FOOTER_SIZE as u64))?;
    let kind = match footer.disk_type {
        DiskType::Fixed => VhdKind::Fixed,
        DiskType::Dynamic => VhdKind::Dynamic,
        DiskType::Differencing => VhdKind::Differencing,
        DiskType::Other(_) => VhdKind::Other,
    };
    let mut d = Detected::new(Format::Vhd(kind), size);
    d.virtual_size = Some(footer.current_size);
    if kind == VhdKind::Differencing {
        d.hazards = vhd_parent(head, footer.data_offset);
    }
    Some(d)
}

/// A differencing disk always reads its parent: name it, and every locator
/// whose data lies within `head`.
fn vhd_parent(head: &[u8], header_at: u64) -> Vec<Hazard> {
    let mut out = Vec::new();
    let header = range(head, header_at, HEADER_SIZE as u64)
        .and_then(|b| <&[u8; HEADER_SIZE]>::try_from(b).ok())
        .and_then(DynamicHeader::parse);
    if let Some(h) = header {
        let name = h.parent_name();
        if !name.is_empty() {
            out.push(Hazard::NamesOtherFile {
                what: "parent".into(),
                host_path: is_host_path(&name),
                name: Some(name),
            });
        }
        for l in h
            .locators
            .iter()
            .filter(|l| l.is_used() && l.code.is_path())
        {
            let name = range(head, l.data_offset, u64::from(l.data_length))
                .and_then(|data| l.decode_path(data));
            let host_path = match &name {
                Some(n) => is_host_path(n),
                None => !l.code.is_relative(),
            };
            out.push(Hazard::NamesOtherFile {
                what: format!("parent locator {}", l.code.name()),
                name,
                host_path,
            });
        }
    }
    if out.is_empty() {
        out.push(Hazard::NamesOtherFile {
            what: "parent".into(),
            name: None,
            host_path: false,
        });
    }
    out
}

/// The disk formats that start with a magic number (or, for a VMDK
/// descriptor, with its text).
pub(super) fn by_magic(head: &[u8], size: u64) -> Option<Detected> {
    if head.starts_with(b"QFI\xfb") {
        return Some(qcow(head, size));
    }
    if head.starts_with(b"vhdxfile") {
        let mut d = Detected::new(Format::Vhdx, size);
        // The creator, UTF-16LE, says which tool wrote it (Hyper-V, qemu-img).
        let units: Vec<u16> = head
            .get(8..520)
            .unwrap_or_default()
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&u| u != 0)
            .collect();
        d.detail = String::from_utf16(&units)
            .ok()
            .filter(|s| !s.trim().is_empty())
            .map(|s| format!("created by {}", s.trim()));
        return Some(d);
    }
    if head.starts_with(b"KDMV") {
        return Some(vmdk_sparse(head, size));
    }
    if head.starts_with(b"QED\0") {
        return Some(qed(head, size));
    }
    if le_u32(head, 0x40) == Some(0xbeda_107f) {
        return Some(vdi(head, size));
    }
    vmdk_descriptor_text(head).map(|text| {
        let mut d = Detected::new(Format::Vmdk(VmdkKind::Descriptor), size);
        let desc = descriptor(text);
        d.virtual_size = desc.sectors.checked_mul(512);
        d.detail = desc.create_type.map(|t| format!("createType {t}"));
        d.hazards = desc
            .extents
            .into_iter()
            .filter_map(|e| e.name)
            .map(|n| Hazard::NamesOtherFile {
                what: "extent".into(),
                host_path: is_host_path(&n),
                name: Some(n),
            })
            .collect();
        d
    })
}

/// QCOW (version 1) and QCOW2 (versions 2 and 3): the backing file, and for
/// version 3 the external data file and incompatible features.
fn qcow(head: &[u8], size: u64) -> Detected {
    let version = be_u32(head, 4).unwrap_or(0);
    let format = if version == 1 {
        Format::Qcow
    } else {
        Format::Qcow2
    };
    let mut d = Detected::new(format, size);
    d.virtual_size = be_u64(head, 24);
    d.detail = Some(format!("version {version}"));
    let backing_at = be_u64(head, 8).unwrap_or(0);
    if backing_at != 0 {
        let len = be_u32(head, 16).unwrap_or(0);
        let name = range(head, backing_at, u64::from(len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_string);
        d.hazards.push(Hazard::NamesOtherFile {
            what: "backing file".into(),
            host_path: name.as_deref().is_none_or(is_host_path),
            name,
        });
    }
    if format == Format::Qcow || version < 3 {
        return d;
    }
    // Incompatible features qemu knows: dirty, corrupt, external data file,
    // compression type, extended L2. Anything else a reader cannot vouch for.
    const DATA_FILE: u64 = 1 << 2;
    const KNOWN: u64 = 0x1f;
    let incompatible = be_u64(head, 72).unwrap_or(0);
    if incompatible & !KNOWN != 0 {
        d.hazards.push(Hazard::Unsupported {
            what: format!("unknown incompatible features {:#x}", incompatible & !KNOWN),
        });
    }
    let data_file = qcow2_data_file_name(head);
    if incompatible & DATA_FILE != 0 || data_file.is_some() {
        d.hazards.push(Hazard::NamesOtherFile {
            what: "data file".into(),
            host_path: data_file.as_deref().is_none_or(is_host_path),
            name: data_file,
        });
    }
    d
}

/// The external data file name from the header extensions, when present in `head`.
fn qcow2_data_file_name(head: &[u8]) -> Option<String> {
    const END: u32 = 0;
    const DATA_FILE_NAME: u32 = 0x4441_5441;
    let mut at = be_u32(head, 100).unwrap_or(104) as usize;
    // Bounded: each extension is at least 8 bytes and `head` is at most 64 KiB,
    // but a header may also lie about lengths; stop at the end of the bytes.
    for _ in 0..1024 {
        let kind = be_u32(head, at)?;
        let len = be_u32(head, at + 4)? as usize;
        if kind == END {
            return None;
        }
        if kind == DATA_FILE_NAME {
            let b = head.get(at + 8..(at + 8).checked_add(len)?)?;
            return std::str::from_utf8(b).ok().map(str::to_string);
        }
        at = at.checked_add(8)?.checked_add(len.checked_add(7)? & !7)?;
    }
    None
}

/// A hosted sparse extent (`KDMV`): its embedded descriptor may only name
/// itself, as one SPARSE extent without a directory.
fn vmdk_sparse(head: &[u8], size: u64) -> Detected {
    let mut d = Detected::new(Format::Vmdk(VmdkKind::Sparse), size);
    d.virtual_size = le_u64(head, 12).and_then(|s| s.checked_mul(512));
    let compressed = le_u16(head, 77).is_some_and(|c| c != 0);
    if le_u64(head, 56) == Some(u64::MAX) {
        d.hazards.push(Hazard::Unsupported {
            what: "grain directory at the end of the file (a footer a stream cannot honour)".into(),
        });
    }
    let desc_at = le_u64(head, 28).unwrap_or(0);
    let desc_len = le_u64(head, 36).unwrap_or(0);
    let text = (desc_at != 0)
        .then(|| {
            range(
                head,
                desc_at.checked_mul(512)?,
                desc_len.checked_mul(512)?.min(head.len() as u64),
            )
        })
        .flatten()
        .and_then(cstr);
    let Some(text) = text else {
        d.detail = Some(if compressed {
            "streamOptimized".into()
        } else {
            "sparse".into()
        });
        return d;
    };
    let desc = descriptor(text);
    d.detail = desc.create_type.as_ref().map(|t| format!("createType {t}"));
    if let Some(t) = &desc.create_type {
        if t != "monolithicSparse" && t != "streamOptimized" {
            d.hazards.push(Hazard::Unsupported {
                what: format!(
                    "createType {t} (only monolithicSparse and streamOptimized are self-contained)"
                ),
            });
        }
    }
    for (i, e) in desc.extents.into_iter().enumerate() {
        let own = i == 0
            && e.kind.eq_ignore_ascii_case("SPARSE")
            && e.name.as_deref().is_some_and(|n| !n.contains(['/', '\\']));
        if !own {
            if let Some(n) = e.name {
                d.hazards.push(Hazard::NamesOtherFile {
                    what: "extent".into(),
                    host_path: is_host_path(&n),
                    name: Some(n),
                });
            }
        }
    }
    d
}

/// The text of a VMDK descriptor file, when `head` is one.
fn vmdk_descriptor_text(head: &[u8]) -> Option<&str> {
    let text = cstr(head.get(..head.len().min(64 * 1024))?).or_else(|| {
        // A descriptor cut inside a UTF-8 sequence by the end of `head`.
        let e = std::str::from_utf8(head).err()?;
        (e.error_len().is_none())
            .then(|| std::str::from_utf8(&head[..e.valid_up_to()]).ok())
            .flatten()
    })?;
    let start = text.trim_start();
    (start.starts_with("# Disk DescriptorFile")
        || (start.starts_with('#') && text.contains("createType=")))
    .then_some(text)
}

struct Extent {
    kind: String,
    name: Option<String>,
}

struct Descriptor {
    create_type: Option<String>,
    extents: Vec<Extent>,
    sectors: u64,
}

/// The createType and extent lines (`RW 2048 FLAT "disk-flat.vmdk" 0`) of a
/// descriptor; at most 64 extents are kept, which is more than any tool writes.
fn descriptor(text: &str) -> Descriptor {
    let mut d = Descriptor {
        create_type: None,
        extents: Vec::new(),
        sectors: 0,
    };
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("createType") {
            if let Some(v) = v.trim_start().strip_prefix('=') {
                d.create_type = Some(v.trim().trim_matches('"').to_string());
            }
            continue;
        }
        let mut words = line.split_whitespace();
        let access = words.next().unwrap_or("");
        if !matches!(access, "RW" | "RDONLY" | "NOACCESS") {
            continue;
        }
        let Some(sectors) = words.next().and_then(|s| s.parse::<u64>().ok()) else {
            continue;
        };
        let kind = words.next().unwrap_or("").to_string();
        let name = line
            .split_once('"')
            .and_then(|(_, rest)| rest.split_once('"'))
            .map(|(n, _)| n.to_string());
        d.sectors = d.sectors.saturating_add(sectors);
        if d.extents.len() < 64 {
            d.extents.push(Extent { kind, name });
        }
    }
    d
}

/// QED: a backing file when feature bit 0 is set.
fn qed(head: &[u8], size: u64) -> Detected {
    let mut d = Detected::new(Format::Qed, size);
    d.virtual_size = le_u64(head, 48);
    let features = le_u64(head, 16).unwrap_or(0);
    if features & 1 != 0 {
        let at = le_u32(head, 56).unwrap_or(0);
        let len = le_u32(head, 60).unwrap_or(0);
        let name = range(head, u64::from(at), u64::from(len))
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(str::to_string);
        d.hazards.push(Hazard::NamesOtherFile {
            what: "backing file".into(),
            host_path: name.as_deref().is_none_or(is_host_path),
            name,
        });
    }
    d
}

/// VDI: the image type says dynamic, fixed or differencing (a child that needs
/// its parent, found by UUID).
fn vdi(head: &[u8], size: u64) -> Detected {
    let mut d = Detected::new(Format::Vdi, size);
    d.virtual_size = le_u64(head, 0x170);
    let kind = le_u32(head, 0x4c).unwrap_or(0);
    d.detail = Some(
        match kind {
            1 => "dynamic",
            2 => "fixed",
            3 => "undo",
            4 => "differencing",
            _ => "unknown type",
        }
        .into(),
    );
    if kind == 4 || kind == 3 {
        d.hazards.push(Hazard::NamesOtherFile {
            what: "parent (by UUID)".into(),
            name: None,
            host_path: false,
        });
    }
    d
}

/// Nothing recognised: printable text (an HTML error page saved as the image
/// is the common case), or raw data with whatever a partition table says.
pub(super) fn raw_or_text(head: &[u8], size: u64) -> Detected {
    if let Some(d) = super::archive::text(head, size) {
        return d;
    }
    let mut d = Detected::new(Format::Raw, size);
    d.virtual_size = Some(size);
    let mut notes = Vec::new();
    if at::<8>(head, 512) == Some(*b"EFI PART") {
        notes.push("GPT partition table");
    } else if at::<2>(head, 510) == Some([0x55, 0xaa]) {
        notes.push("MBR boot sector");
    } else if !head.is_empty() && head.iter().all(|&b| b == 0) {
        notes.push("starts with zeros");
    }
    if size % 512 != 0 {
        notes.push("not a whole number of 512-byte sectors");
    }
    if !notes.is_empty() {
        d.detail = Some(notes.join(", "));
    }
    d
}

//! The words for what was detected: a noun phrase for the format, and the one
//! line a user reads when a VHD was expected, ending in what to run.

use super::verdict::{Detected, Format, Hazard, VhdKind, VmdkKind};
use crate::format::footer::FOOTER_SIZE;

/// Where the data was given, which decides the advice: a local file can be
/// decompressed, unpacked or converted with a command; an import takes the VHD
/// itself and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The command line, on a local file.
    Local,
    /// An import (task or API upload): the object must be the VHD.
    Import,
}

impl Detected {
    /// What the bytes are, e.g. `a QCOW2 image (version 3) that names other
    /// files: backing file 'base.qcow2'`.
    pub fn describe(&self) -> String {
        let (noun, note) = match self.format {
            Format::Vhd(VhdKind::Fixed) => ("a fixed VHD", None),
            Format::Vhd(VhdKind::Dynamic) => ("a dynamic VHD", None),
            Format::Vhd(VhdKind::Differencing) => ("a differencing VHD", None),
            Format::Vhd(VhdKind::Other) => ("a VHD of an unknown disk type", None),
            Format::Qcow2 => ("a QCOW2 image", None),
            Format::Qcow => ("a QCOW image", None),
            Format::Vhdx => ("a VHDX image", Some("Hyper-V")),
            Format::Vmdk(VmdkKind::Sparse) => ("a VMDK image", None),
            Format::Vmdk(VmdkKind::Descriptor) => ("a VMDK descriptor", None),
            Format::Vdi => ("a VDI image", Some("VirtualBox")),
            Format::Qed => ("a QED image", None),
            Format::Iso9660 => ("an ISO 9660 image", Some("CD/DVD")),
            Format::Gzip => ("gzip-compressed data", None),
            Format::Bzip2 => ("bzip2-compressed data", None),
            Format::Xz => ("xz-compressed data", None),
            Format::Zstd => ("zstd-compressed data", None),
            Format::Tar(_) => ("a tar archive", None),
            Format::Ova => ("an OVA package", None),
            Format::Ovf => ("an OVF descriptor", None),
            Format::Text => ("text", None),
            Format::Raw => ("raw data", None),
            Format::Empty => ("empty (0 bytes)", None),
        };
        let notes: Vec<&str> = note.into_iter().chain(self.detail.as_deref()).collect();
        let mut s = noun.to_string();
        if !notes.is_empty() {
            s.push_str(&format!(" ({})", notes.join(", ")));
        }
        let names: Vec<String> = self
            .hazards
            .iter()
            .filter(|h| matches!(h, Hazard::NamesOtherFile { .. }))
            .map(Hazard::to_string)
            .collect();
        if !names.is_empty() {
            s.push_str(&format!(" that names other files: {}", names.join(", ")));
        }
        s
    }

    /// The line for data that should have been a VHD and is not: `subject` is
    /// how the sentence names the data ("the file", "the object"), `src` the
    /// name a command line uses for it. `None` when it is a VHD.
    pub fn not_vhd(&self, subject: &str, src: &str, flow: Flow) -> Option<String> {
        let what = self.describe();
        let base = src.rsplit(['/', '\\']).next().unwrap_or(src);
        let base = if base.is_empty() { "disk" } else { base };
        let out = vhd_name(base);
        let (cmd_src, cmd_out) = match flow {
            Flow::Local => (quote(src), quote(&vhd_path(src, &out))),
            Flow::Import => (quote(base), quote(&out)),
        };
        let convert = |cmd: String| match flow {
            Flow::Local => format!("{subject} is {what}, not a VHD; convert it with: {cmd}"),
            Flow::Import => {
                format!("{subject} is {what}; Cloud Images imports VHD: convert it with `{cmd}` and import the result")
            }
        };
        Some(match self.format {
            Format::Vhd(_) => return None,
            f if f.is_foreign_disk() => {
                convert(format!("qemu-img convert -O vpc {cmd_src} {cmd_out}"))
            }
            Format::Raw if self.size < FOOTER_SIZE as u64 => format!(
                "{subject} is {} bytes, too short for a VHD (a VHD ends in a 512-byte footer)",
                self.size
            ),
            Format::Raw => {
                let cmd = match flow {
                    Flow::Local => format!("cloudimg convert -f raw -O vpc {cmd_src} {cmd_out}"),
                    Flow::Import => format!("qemu-img convert -f raw -O vpc {cmd_src} {cmd_out}"),
                };
                let and = match flow {
                    Flow::Local => "",
                    Flow::Import => " and import the result",
                };
                format!(
                    "{subject} has no 'conectix' footer at the end or the start, and no other known format ({what}); if it is a raw disk, convert it with: {cmd}{and}"
                )
            }
            f if f.is_compressed() => {
                let tool = match f {
                    Format::Gzip => "gunzip -k",
                    Format::Bzip2 => "bunzip2 -k",
                    Format::Xz => "unxz -k",
                    _ => "unzstd",
                };
                match flow {
                    Flow::Local => format!(
                        "{subject} is {what}, not a VHD; decompress it first: {tool} {cmd_src} (a compressed tarball of VHDs goes to `cloudimg unpack`)"
                    ),
                    Flow::Import => format!(
                        "{subject} is {what}; imports take the VHD itself, uncompressed: decompress it ({tool}) and import the .vhd"
                    ),
                }
            }
            Format::Tar(_) | Format::Ova => match flow {
                Flow::Local => format!(
                    "{subject} is {what}, not a VHD; unpack it with: cloudimg unpack {cmd_src} DIR"
                ),
                Flow::Import => format!(
                    "{subject} is {what}; imports take the VHD itself: unpack the archive and import the .vhd inside"
                ),
            },
            Format::Ovf => format!(
                "{subject} is {what}, which lists a virtual machine's disks but holds none; use the disk it names"
            ),
            Format::Iso9660 => format!(
                "{subject} is {what}, not a disk; install from it onto a disk and use that disk as a VHD"
            ),
            _ => format!("{subject} is {what}, not a VHD"),
        })
    }
}

/// `disk.qcow2` -> `disk.vhd`; a name that already ends in `.vhd` (a QCOW2
/// named as if it were a VHD) gets `-converted.vhd`, so the command never
/// writes over its input.
fn vhd_name(base: &str) -> String {
    let stem = match base.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => base,
    };
    let out = format!("{stem}.vhd");
    if out == base {
        format!("{stem}-converted.vhd")
    } else {
        out
    }
}

/// `out` in the folder of `src`, as the user spelled it.
fn vhd_path(src: &str, out: &str) -> String {
    match src.rfind(['/', '\\']) {
        Some(i) => format!("{}{out}", &src[..=i]),
        None => out.to_string(),
    }
}

/// Single-quotes a word for a POSIX shell when it needs it.
fn quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:@%+=,".contains(&b));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_never_overwrite_the_input() {
        assert_eq!(vhd_name("disk.qcow2"), "disk.vhd");
        assert_eq!(vhd_name("disk.vhd"), "disk-converted.vhd");
        assert_eq!(vhd_name("disk"), "disk.vhd");
        assert_eq!(vhd_name(".hidden"), ".hidden.vhd");
        assert_eq!(vhd_path("/tmp/a/disk.qcow2", "disk.vhd"), "/tmp/a/disk.vhd");
        assert_eq!(quote("my disk.qcow2"), "'my disk.qcow2'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}

//! Whether uploaded image data is what its `disk_format` says, and safe to serve: the
//! format inspection Glance does since CVE-2024-32498 (bug 2059809). Data that makes its
//! reader open another file (a QCOW2 backing or data file, VMDK extents, a differencing
//! VHD's parent) is refused whatever the declared format, and data of one disk format
//! declared as another (a QCOW2 sent as `raw` or `vhd`) is refused, so a hypervisor never
//! interprets a guest-supplied header it was not told about.

use crate::error::{ApiError, ApiResult};
use cloudimg_vhd::detect::{Detected, Format};

/// Checks `det` (the detector's view of the stored bytes) against the declared formats;
/// the message says what the data is and what to do.
pub fn check(det: &Detected, disk_format: &str, container_format: &str) -> ApiResult<()> {
    if det.names_other_files() {
        let what: Vec<String> = det.hazards.iter().map(|h| h.to_string()).collect();
        return Err(ApiError::bad(format!(
            "Image data refused: it is {} and names other files ({}); images that make their \
             reader open another file are not accepted (flatten it first, for example \
             `qemu-img convert -O {} SRC OUT`)",
            det.format.name(),
            what.join(", "),
            if disk_format == "vhd" { "vpc" } else { "raw" }
        )));
    }
    // A package (ovf, ova, docker...) wraps the disk; only bare data is a disk itself.
    if container_format != "bare" {
        return Ok(());
    }
    let found = det.format.glance_disk_format();
    let ok = match disk_format {
        "raw" => !det.format.is_foreign_disk() && !matches!(det.format, Format::Vhd(_)),
        "vhd" | "qcow2" | "vhdx" | "vmdk" | "vdi" | "iso" => found == Some(disk_format),
        // ami/ari/aki/ploop: nothing to compare with.
        _ => true,
    };
    if ok {
        return Ok(());
    }
    Err(ApiError::bad(format!(
        "Image data does not match its disk_format: it was declared {disk_format} but the \
         bytes are {}{}; set disk_format to what the data is{}",
        det.describe(),
        match found {
            Some(f) if f != disk_format => format!(" (disk_format {f})"),
            _ => String::new(),
        },
        if disk_format == "vhd" {
            " or convert it: `qemu-img convert -O vpc -o subformat=dynamic SRC OUT.vhd`"
        } else {
            ""
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudimg_vhd::detect::detect;

    #[test]
    fn declared_formats() {
        let mut qcow2 = vec![0u8; 512];
        qcow2[..4].copy_from_slice(b"QFI\xfb");
        qcow2[4..8].copy_from_slice(&3u32.to_be_bytes());
        let d = detect(&qcow2, &qcow2[..], 1 << 20);
        assert_eq!(d.format, Format::Qcow2);
        assert!(matches!(
            check(&d, "raw", "bare"),
            Err(ApiError::BadRequest(_))
        ));
        let e = check(&d, "vhd", "bare").unwrap_err().to_string();
        assert!(e.contains("QCOW2") && e.contains("qemu-img convert"), "{e}");
        assert!(check(&d, "qcow2", "bare").is_ok());
        // A package is not a disk: no comparison.
        assert!(check(&d, "vhd", "ovf").is_ok());
        let raw = vec![7u8; 4096];
        let d = detect(&raw, &raw[raw.len() - 512..], 4096);
        assert!(check(&d, "raw", "bare").is_ok());
        assert!(check(&d, "vhd", "bare").is_err());
    }
}

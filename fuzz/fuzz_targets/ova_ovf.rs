//! The OVF descriptor and manifest of an OVA: `<descriptor>` or
//! `<descriptor>\n--mf--\n<manifest>`, checked against one disk file.
#![no_main]

use cloudimg_ova::ovf::{check_unpacked, UnpackedFile};
use libfuzzer_sys::fuzz_target;

const SEP: &[u8] = b"\n--mf--\n";
const DISK_SHA256: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fuzz_target!(|data: &[u8]| {
    let (ovf, mf) = match data.windows(SEP.len()).position(|w| w == SEP) {
        Some(i) => (&data[..i], Some(&data[i + SEP.len()..])),
        None => (data, None),
    };
    let mut files = vec![UnpackedFile {
        name: "disk.ovf",
        size: ovf.len() as u64,
        sha256: None,
        sha1: None,
        text: Some(ovf),
    }];
    if let Some(mf) = mf {
        files.push(UnpackedFile {
            name: "disk.mf",
            size: mf.len() as u64,
            sha256: None,
            sha1: None,
            text: Some(mf),
        });
    }
    files.push(UnpackedFile {
        name: "disk.vhd",
        size: 32768,
        sha256: Some(DISK_SHA256),
        sha1: None,
        text: None,
    });
    let _ = check_unpacked(&files);
});

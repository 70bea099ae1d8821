//! The 512-byte VHD footer: parsing any bytes must not panic, and a parsed footer must
//! serialise back to exactly the bytes it came from (the parser keeps every field).
#![no_main]

use cloudimg_vhd::Footer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = [0u8; 512];
    let n = data.len().min(512);
    b[..n].copy_from_slice(&data[..n]);
    let Some(footer) = Footer::parse(&b) else {
        return;
    };
    assert_eq!(footer.to_bytes(), b, "footer round trip");
    let _ = footer.checksum_ok();
    let _ = footer.creator();
    let _ = footer.disk_type.name();
    let _ = footer.geometry.chs_size();
    let _ = format!("{}", footer.geometry);
    let mut sealed = footer.clone();
    let bytes = sealed.seal();
    let again = Footer::parse(&bytes).expect("a sealed footer parses");
    assert!(again.checksum_ok(), "a sealed footer has a valid checksum");
});

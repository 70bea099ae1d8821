//! The 1024-byte dynamic header: parsing must not panic, must round trip, and the
//! parent name and every parent locator must decode (or refuse) without panicking.
#![no_main]

use cloudimg_vhd::DynamicHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut b = [0u8; 1024];
    let n = data.len().min(1024);
    b[..n].copy_from_slice(&data[..n]);
    let Some(header) = DynamicHeader::parse(&b) else {
        return;
    };
    assert_eq!(header.to_bytes(), b, "header round trip");
    let _ = header.checksum_ok();
    let _ = header.parent_name();
    let _ = header.bitmap_size();
    // Whatever follows the header stands in for the locators' data areas.
    let tail = data.get(1024..).unwrap_or(&[]);
    for loc in &header.locators {
        let _ = loc.is_used();
        let _ = loc.data_space_bytes();
        let _ = loc.code.name();
        let _ = loc.decode_path(tail);
    }
    let mut sealed = header.clone();
    let bytes = sealed.seal();
    assert!(DynamicHeader::parse(&bytes)
        .expect("sealed parses")
        .checksum_ok());
});

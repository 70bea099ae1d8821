//! The streaming tar reader (the `tar` crate's header parsing with our bounds on
//! top): headers (ustar, GNU long names, pax) and member data of any bytes must
//! parse or fail cleanly, and positions must only move forward.
#![no_main]

use cloudimg_ova::tar::TarReader;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let mut tar = TarReader::new(data);
    let mut last = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..1024 {
        let entry = match tar.next_entry() {
            Ok(Some(e)) => e,
            Ok(None) | Err(_) => break,
        };
        assert!(
            entry.data_offset >= entry.header_offset,
            "data follows its header"
        );
        assert!(entry.header_offset >= last, "entries move forward");
        last = entry.data_offset;
        let _ = entry.name();
        let mut entry = entry;
        let mut budget = 4u32 << 20;
        while budget > 0 {
            match entry.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n as u32),
            }
        }
    }
    assert!(tar.position() <= data.len() as u64, "never past the input");
});

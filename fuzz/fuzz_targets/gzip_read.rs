//! Gzip input: the archive decoder (single and multi-member streams, with caps),
//! the indexed multi-member reader (index parsing, range reads) and member inflate.
#![no_main]

use cloudimg_ova::gzip::indexed::{inflate_member, Index, IndexedReader};
use cloudimg_ova::source::Decoder;
use cloudimg_ova::Limits;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_members: 64,
        max_member_size: 32 << 20,
        max_total_size: 32 << 20,
        max_ratio: 1100,
        ratio_grace: 1 << 20,
    };
    if let Ok(mut d) = Decoder::new(data, limits, true, None) {
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0u64;
        loop {
            match d.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n as u64,
            }
            assert!(
                total <= limits.max_total_size + buf.len() as u64,
                "the cap holds"
            );
        }
        let _ = d.finish();
    }
    let _ = Index::from_bytes(data);
    let _ = inflate_member(data, data.len() as u32);
    if let Ok(r) = IndexedReader::open(data.to_vec(), data.len() as u64, 1) {
        let total: u64 = r.index().compressed_len();
        let _ = total;
        let mut buf = vec![0u8; 4096];
        let _ = r.read_range(0, &mut buf);
        let _ = r.copy_to(std::io::sink());
    }
});

//! Gzip input: the archive decoder (single and multi-member streams, with caps),
//! the indexed multi-member reader (index parsing, range reads) and member inflate;
//! and, as a differential check, the parallel member decoder against the sequential
//! one: where both succeed they give the same bytes.
#![no_main]

use cloudimg_ova::gzip::indexed::{inflate_member, Index, IndexedReader};
use cloudimg_ova::gzip::MemberReader;
use cloudimg_ova::source::Decoder;
use cloudimg_ova::Limits;
use libfuzzer_sys::fuzz_target;
use std::io::Read;

/// Everything `r` yields, up to `cap` bytes; `None` on an error.
fn drain(mut r: impl Read, cap: usize) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > cap {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
}

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
    // Parallel member decoding (two jobs) agrees with flate2's sequential decoder.
    if let Ok(parallel) = MemberReader::new(data, 2) {
        if let Some(p) = drain(parallel, 32 << 20) {
            let sequential = flate2::read::MultiGzDecoder::new(data);
            if let Some(s) = drain(sequential, 32 << 20) {
                assert_eq!(p, s, "parallel and sequential decoding differ");
            }
        }
    }
});

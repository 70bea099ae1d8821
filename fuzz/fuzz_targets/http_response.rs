//! A whole HTTP/1.1 answer to a GET as a server may send it (head, then a body framed by
//! Content-Length, chunked or the close): parsing and reading it must not panic, hang or
//! allocate from a number in it; a body read is never longer than the bytes that came.
#![no_main]

use cloudimg_pipeline::httpwire::decode_response;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The last byte picks the read size, so chunk and read boundaries fall everywhere.
    let chunk = data.last().map_or(1, |b| usize::from(*b) + 1);
    if let Ok((status, body)) = decode_response(data, chunk) {
        assert!((100..1000).contains(&status));
        assert!(body.len() <= data.len(), "a body never outgrows its bytes");
    }
});

//! Every S3 answer we parse (bucket listing, multipart initiate, uploads, parts, complete,
//! `<Error>`): any text must parse to a value or a typed error, never a panic; part
//! numbers taken are within S3's 1..=10,000.
#![no_main]

use cloudimg_pipeline::s3::xml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = xml::list_page(text, "t");
    let _ = xml::upload_id(text, "t");
    let _ = xml::upload_of(text, "k", "t");
    let _ = xml::complete_etag(text, "t");
    if let Ok((parts, next)) = xml::parts_page(text, "t") {
        for p in &parts {
            assert!((1..=xml::MAX_PART_NUMBER).contains(&p.number));
            assert!(!p.etag.contains('"'));
        }
        let _ = next;
    }
});

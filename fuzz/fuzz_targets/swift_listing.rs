//! A Swift JSON container listing (`?format=json`): parsing any bytes must not panic;
//! a parsed page keeps only named, sized entries, with normalised (unquoted, lowercase)
//! ETags, and is truncated exactly when it is full.
#![no_main]

use cloudimg_pipeline::swift::parse_listing;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The input's length picks the page limit (the bytes stay plain JSON, so the seeds
    // parse) so that both full and short pages are reached.
    let limit = data.len() % 8 + 1;
    let Ok(page) = parse_listing(data, limit) else {
        return;
    };
    for e in &page.entries {
        assert!(!e.etag.contains('"'), "ETag unquoted");
        assert_eq!(e.etag, e.etag.to_ascii_lowercase(), "ETag lowercase");
    }
    if page.entries.len() >= limit {
        assert!(page.truncated, "a full page asks for the next one");
    }
});

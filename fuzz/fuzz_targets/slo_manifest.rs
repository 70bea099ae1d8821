//! An SLO manifest as `?multipart-manifest=get` returns it: parsing any bytes must not
//! panic; every accepted segment names a container and an object, with a normalised ETag.
#![no_main]

use cloudimg_pipeline::swift::parse_slo_manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(segments) = parse_slo_manifest(data) else {
        return;
    };
    for s in &segments {
        assert!(!s.path.container.is_empty(), "segment has a container");
        assert!(
            !s.path.container.starts_with('/'),
            "container without a leading slash"
        );
        assert!(!s.etag.contains('"'), "ETag unquoted");
        assert_eq!(s.etag, s.etag.to_ascii_lowercase(), "ETag lowercase");
    }
});

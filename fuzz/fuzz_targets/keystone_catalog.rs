//! The token document Keystone answers `POST /v3/auth/tokens` with: finding the public
//! object-store endpoint in any bytes must not panic, and what it finds is an http(s) URL
//! of that catalog.
#![no_main]

use cloudimg_pipeline::swift::catalog_endpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for region in [None, Some("RegionOne")] {
        if let Ok(Some(url)) = catalog_endpoint(data, region) {
            assert!(url.starts_with("http://") || url.starts_with("https://"));
        }
    }
});

//! The shared suite against S3: Swift's s3api on the local test Swift.

mod common;

use cloudimg_pipeline::s3::{S3Config, S3Store};

#[test]
fn s3_suite() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let store = S3Store::new(S3Config {
        endpoint: env.s3_endpoint,
        region: std::env::var("S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        access_key: env.s3_access_key,
        secret_key: env.s3_secret_key,
    });
    // s3api enforces S3's 5 MiB minimum part size.
    common::run_suite(&store, &common::unique("s3"), 5 << 20);
}

//! The shared suite against the local test Swift (scripts/swift-up.sh), plus token renewal.

mod common;

use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::{ErrorKind, ObjectPath, ObjectStore, PutOptions, RetryPolicy};

pub fn swift_store() -> Option<SwiftStore> {
    let env = cloudimg_fixtures::env::swift()?;
    Some(SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url,
        user: env.user,
        key: env.key,
    }))
}

#[test]
fn swift_suite() {
    let Some(store) = swift_store() else { return };
    common::run_suite(&store, &common::unique("swift"), 64 * 1024);
}

#[test]
fn expired_token_is_renewed_once() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let good = swift_store().unwrap();
    let (storage, _) = good.session().unwrap();
    // A stale token with renewable credentials: the 401 triggers one re-login.
    let store = SwiftStore::with_config(
        SwiftAuth::V1 {
            auth_url: env.auth_url.clone(),
            user: env.user.clone(),
            key: env.key.clone(),
        },
        Some((storage.clone(), "AUTH_tkexpired".into())),
        Default::default(),
        RetryPolicy::default(),
    );
    let c = common::unique("tok");
    store.ensure_container(&c).unwrap();
    store
        .put(
            &ObjectPath::new(&c, "o"),
            &b"hi".to_vec(),
            &PutOptions::default(),
        )
        .unwrap();
    // A fixed token cannot be renewed: Auth error, not retried.
    let fixed = SwiftStore::new(SwiftAuth::Token {
        storage_url: storage,
        token: "AUTH_tkexpired".into(),
    });
    let e = fixed.head(&ObjectPath::new(&c, "o")).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Auth);
    assert_eq!(e.attempts(), 1);
    // Wrong key: Auth.
    let bad = SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url,
        user: env.user,
        key: "wrong".into(),
    });
    assert_eq!(
        bad.container_exists(&c).unwrap_err().kind(),
        ErrorKind::Auth
    );
}

/// Swift answers many ranges in one GET (`multipart/byteranges`): the store uses it, so
/// `get_ranges` is never declined here, and the parts are the bytes.
#[test]
fn many_ranges_are_read_by_multi_range_gets() {
    let Some(store) = swift_store() else { return };
    let c = common::unique("ranges");
    store.ensure_container(&c).unwrap();
    let p = ObjectPath::new(&c, "o");
    let d = common::data(300_000, 5);
    store.put(&p, &d, &PutOptions::default()).unwrap();
    let ranges: Vec<std::ops::Range<u64>> =
        (0..40u64).map(|i| i * 7_000..i * 7_000 + 4_096).collect();
    let parts = store
        .get_ranges(&p, &ranges)
        .unwrap()
        .expect("Swift reads many ranges per GET");
    for (r, part) in ranges.iter().zip(parts) {
        assert!(part == d[r.start as usize..r.end as usize], "{r:?}");
    }
    store.delete(&p).unwrap();
}

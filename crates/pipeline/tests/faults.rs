//! Remote trouble, played by a misbehaving proxy of ours (`common/proxy.rs`) between the
//! client and the real test servers: 503s, dropped connections, truncated bodies, slow
//! reads, servers that stall without closing, and tokens that expire mid-transfer (Swift
//! with tempauth and with Keystone). Swift and S3 go through the same proxy. Uploads and
//! downloads through it are exact or cleanly refused; a refused upload leaves no manifest.

mod common;

use cloudimg_pipeline::download::{download, DownloadOptions};
use cloudimg_pipeline::http::HttpConfig;
use cloudimg_pipeline::s3::{S3Config, S3Store};
use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::upload::{LargeKind, UploadOptions};
use cloudimg_pipeline::{ErrorKind, ObjectPath, ObjectStore, RetryPolicy};
use common::proxy::{self, Fault, Proxy, Stats};
use std::time::Duration;

fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

/// A short wait for the next byte, so a stall costs a second, not a minute.
fn short_timeouts() -> HttpConfig {
    HttpConfig {
        io_timeout: Duration::from_secs(1),
        ..Default::default()
    }
}

fn host_of(url: &str) -> String {
    let rest = url.split("://").nth(1).unwrap();
    format!("http://{}", rest.split('/').next().unwrap())
}

/// The test Swift directly, and through a proxy with `fault` (preset token, so only the
/// transfer's own requests go through it).
fn swift_stores(fault: Fault, http: HttpConfig) -> Option<(SwiftStore, SwiftStore, Proxy)> {
    let env = cloudimg_fixtures::env::swift()?;
    let direct = SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url,
        user: env.user,
        key: env.key,
    });
    let (storage, token) = direct.session().unwrap();
    let p = proxy::start(&host_of(&storage), fault, None);
    let path = storage
        .split("://")
        .nth(1)
        .unwrap()
        .split_once('/')
        .unwrap()
        .1;
    let faulty = SwiftStore::with_config(
        SwiftAuth::Token {
            storage_url: format!("{}/{path}", p.url),
            token,
        },
        None,
        http,
        quick_retries(),
    );
    Some((direct, faulty, p))
}

/// The test Swift's S3 API directly, and through a proxy with `fault`.
fn s3_stores(fault: Fault, http: HttpConfig) -> Option<(S3Store, S3Store, Proxy)> {
    let env = cloudimg_fixtures::env::swift()?;
    let cfg = S3Config {
        endpoint: env.s3_endpoint.clone(),
        region: std::env::var("S3_REGION").unwrap_or_else(|_| "us-east-1".into()),
        access_key: env.s3_access_key,
        secret_key: env.s3_secret_key,
    };
    let p = proxy::start(&host_of(&env.s3_endpoint), fault, None);
    let faulty = S3Store::with_config(
        S3Config {
            endpoint: p.url.clone(),
            ..cfg.clone()
        },
        http,
        quick_retries(),
    );
    Some((S3Store::new(cfg), faulty, p))
}

/// Uploads `d` through `faulty` as `kind` and checks what the server holds (read
/// directly) and what a download through the faults reads, byte for byte.
fn round_trip(
    direct: &dyn ObjectStore,
    faulty: &dyn ObjectStore,
    p: &ObjectPath,
    d: &[u8],
    kind: LargeKind,
    segment_size: u64,
) {
    let o = UploadOptions {
        segment_size,
        large: kind,
        jobs: 4,
        ..Default::default()
    };
    let s = common::upload_bytes(faulty, p, d, &o).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    assert_eq!(s.checksums.md5, common::md5_hex(d));
    assert_eq!(common::fetch(direct, p, 2, 1 << 20), d, "{kind:?}");
    assert_eq!(common::fetch(faulty, p, 4, 64_000), d, "{kind:?} via proxy");
}

#[test]
fn swift_exact_through_a_misbehaving_proxy() {
    let Some((direct, faulty, _p)) = swift_stores(Fault::Mixed, Default::default()) else {
        return;
    };
    let c = common::unique("fault");
    direct.ensure_container(&c).unwrap();
    let d = common::data(1_000_003, 70);
    for (kind, seg) in [
        (LargeKind::Dlo, 100_000),
        (LargeKind::Slo, 100_000),
        (LargeKind::Single, 2 << 20),
    ] {
        round_trip(
            &direct,
            &faulty,
            &ObjectPath::new(&c, format!("{kind:?}")),
            &d,
            kind,
            seg,
        );
    }
}

#[test]
fn s3_exact_through_a_misbehaving_proxy() {
    let Some((direct, faulty, p)) = s3_stores(Fault::Mixed, Default::default()) else {
        return;
    };
    let c = common::unique("s3fault");
    direct.ensure_container(&c).unwrap();
    // s3api enforces S3's 5 MiB minimum part size: three parts.
    let d = common::data((11 << 20) + 7, 72);
    round_trip(
        &direct,
        &faulty,
        &ObjectPath::new(&c, "mp"),
        &d,
        LargeKind::Multipart,
        5 << 20,
    );
    round_trip(
        &direct,
        &faulty,
        &ObjectPath::new(&c, "one"),
        &d[..300_000],
        LargeKind::Single,
        5 << 20,
    );
    assert!(p.stats.get(|s| &s.requests) >= 12, "the faults were met");
}

fn refused_cleanly(
    direct: &dyn ObjectStore,
    faulty: &dyn ObjectStore,
    c: &str,
    kind: LargeKind,
    seg: u64,
) {
    let d = common::data(300_000, 71);
    let p = ObjectPath::new(c, "x.vhd");
    let o = UploadOptions {
        segment_size: seg,
        large: kind,
        ..Default::default()
    };
    let e = common::upload_bytes(faulty, &p, &d, &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RetriesExhausted, "{e}");
    assert_eq!(e.status(), Some(503));
    assert_eq!(direct.head(&p).unwrap_err().kind(), ErrorKind::NotFound);

    // A good upload, then a download through persistent 503s: an error, no partial success.
    common::upload_bytes(direct, &p, &d, &o).unwrap();
    let mut out = Vec::new();
    let e = download(faulty, &p, &mut out, &DownloadOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RetriesExhausted);
}

#[test]
fn refused_cleanly_when_faults_persist() {
    if let Some((direct, faulty, _p)) = swift_stores(Fault::Always503, Default::default()) {
        let c = common::unique("fault503");
        direct.ensure_container(&c).unwrap();
        refused_cleanly(&direct, &faulty, &c, LargeKind::Dlo, 100_000);
    }
    if let Some((direct, faulty, _p)) = s3_stores(Fault::Always503, Default::default()) {
        let c = common::unique("s3fault503");
        direct.ensure_container(&c).unwrap();
        refused_cleanly(&direct, &faulty, &c, LargeKind::Single, 5 << 20);
    }
}

/// Every stall was given up on by the client (it closed the connection first), and
/// there was at least one.
fn assert_stalls_abandoned(st: &Stats, what: &str) {
    let stalled = st.get(|s| &s.stalled);
    assert!(stalled >= 1, "{what}: no request stalled");
    // The proxy counts an abandonment when it sees the close: give it a moment.
    for _ in 0..50 {
        if st.get(|s| &s.abandoned) == stalled {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what}: {stalled} stalled, {} abandoned by the client",
        st.get(|s| &s.abandoned)
    );
}

#[test]
fn a_server_that_stalls_is_timed_out_and_retried() {
    let stall = Fault::Stall { every: 3, times: 2 };
    if let Some((direct, faulty, p)) = swift_stores(stall, short_timeouts()) {
        let c = common::unique("stall");
        direct.ensure_container(&c).unwrap();
        let d = common::data(500_001, 73);
        round_trip(
            &direct,
            &faulty,
            &ObjectPath::new(&c, "dlo"),
            &d,
            LargeKind::Dlo,
            100_000,
        );
        assert_stalls_abandoned(&p.stats, "swift");
    }
    if let Some((direct, faulty, p)) = s3_stores(stall, short_timeouts()) {
        let c = common::unique("s3stall");
        direct.ensure_container(&c).unwrap();
        let d = common::data((10 << 20) + 1, 74);
        round_trip(
            &direct,
            &faulty,
            &ObjectPath::new(&c, "mp"),
            &d,
            LargeKind::Multipart,
            5 << 20,
        );
        assert_stalls_abandoned(&p.stats, "s3");
    }
}

/// Uploads through `faulty` while a proxy (`expiring`) answers its 3rd transfer request
/// 401: the token is renewed once (one more login through `logins`) and the object is exact.
fn renews_once(
    direct: &dyn ObjectStore,
    faulty: &dyn ObjectStore,
    expiring: &Stats,
    logins: &Stats,
    c: &str,
) {
    let d = common::data(700_001, 75);
    let path = ObjectPath::new(c, "disk.vhd");
    let o = UploadOptions {
        segment_size: 100_000,
        large: LargeKind::Slo,
        jobs: 2,
        ..Default::default()
    };
    common::upload_bytes(faulty, &path, &d, &o)
        .unwrap_or_else(|e| panic!("upload across an expiry: {e}"));
    assert_eq!(expiring.get(|s| &s.unauthorized), 1);
    assert_eq!(logins.get(|s| &s.logins), 2, "logged in, then renewed once");
    assert_eq!(common::fetch(direct, &path, 2, 1 << 20), d);
}

#[test]
fn a_token_that_expires_mid_transfer_is_renewed_tempauth() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let direct = SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url.clone(),
        user: env.user.clone(),
        key: env.key.clone(),
    });
    let c = common::unique("expire");
    direct.ensure_container(&c).unwrap();
    // Upload: tempauth's answer names the storage URL, rewritten to the proxy's.
    let p = proxy::start(&host_of(&env.auth_url), Fault::ExpireAt(3), None);
    let through = |p: &Proxy| {
        SwiftStore::with_config(
            SwiftAuth::V1 {
                auth_url: env.auth_url.replace(&host_of(&env.auth_url), &p.url),
                user: env.user.clone(),
                key: env.key.clone(),
            },
            None,
            Default::default(),
            quick_retries(),
        )
    };
    renews_once(&direct, &through(&p), &p.stats, &p.stats, &c);
    // Download: the expiry falls on a ranged GET of the bulk path.
    let p = proxy::start(&host_of(&env.auth_url), Fault::ExpireAt(4), None);
    let got = common::fetch(&through(&p), &ObjectPath::new(&c, "disk.vhd"), 1, 100_000);
    assert_eq!(got, common::data(700_001, 75));
    assert_eq!(p.stats.get(|s| &s.unauthorized), 1);
    assert_eq!(p.stats.get(|s| &s.logins), 2);
}

#[test]
fn a_token_that_expires_mid_transfer_is_renewed_keystone() {
    let Some(ks) = cloudimg_fixtures::env::keystone() else {
        return;
    };
    // Two proxies: one before the Keystone-authenticated Swift (which expires the
    // token), one before Keystone whose catalog is rewritten to point at the first.
    let swift = proxy::start(&ks.swift_url, Fault::ExpireAt(3), None);
    let ks_host = host_of(&ks.auth_url);
    let keystone = proxy::start(
        &ks_host,
        Fault::None,
        Some((
            ks.swift_url.trim_end_matches('/').to_string(),
            swift.url.clone(),
        )),
    );
    let auth = |auth_url: String| SwiftAuth::V3 {
        auth_url,
        username: ks.username.clone(),
        password: ks.password.clone(),
        project_name: ks.project_name.clone(),
        user_domain: "Default".into(),
        project_domain: "Default".into(),
        region: None,
    };
    let direct = SwiftStore::new(auth(ks.auth_url.clone()));
    let faulty = SwiftStore::with_config(
        auth(ks.auth_url.replace(&ks_host, &keystone.url)),
        None,
        Default::default(),
        quick_retries(),
    );
    let c = common::unique("ksexpire");
    direct.ensure_container(&c).unwrap();
    renews_once(&direct, &faulty, &swift.stats, &keystone.stats, &c);
}

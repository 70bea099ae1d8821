//! Cross-checks with python-swiftclient against the local test Swift: what we upload,
//! `swift download` returns byte for byte; what `swift upload --segment-size` (DLO and
//! `--use-slo`) uploads, we download byte for byte.

mod common;

use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::upload::{upload, LargeKind, SegmentNaming, Source, UploadOptions};
use cloudimg_pipeline::{ObjectPath, ObjectStore};
use std::process::Command;

fn setup() -> Option<(SwiftStore, cloudimg_fixtures::env::SwiftEnv)> {
    if !cloudimg_fixtures::env::require_tool("swift") {
        return None;
    }
    let env = cloudimg_fixtures::env::swift()?;
    let store = SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url.clone(),
        user: env.user.clone(),
        key: env.key.clone(),
    });
    Some((store, env))
}

fn swift_cmd(env: &cloudimg_fixtures::env::SwiftEnv, args: &[&str]) {
    let out = Command::new("swift")
        .args(args)
        .env("ST_AUTH", &env.auth_url)
        .env("ST_USER", &env.user)
        .env("ST_KEY", &env.key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swift {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn swift_download_reads_what_we_upload() {
    let Some((store, env)) = setup() else { return };
    let c = common::unique("sc-dl");
    store.ensure_container(&c).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = common::data(700_001, 60);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &d).unwrap();
    let cases = [
        ("ci-dlo", LargeKind::Dlo, SegmentNaming::CloudImages),
        ("ci-slo", LargeKind::Slo, SegmentNaming::CloudImages),
        (
            "sc-dlo",
            LargeKind::Dlo,
            SegmentNaming::SwiftClient {
                mtime: "1.000000".into(),
            },
        ),
        (
            "sc-slo",
            LargeKind::Slo,
            SegmentNaming::SwiftClient {
                mtime: "1.000000".into(),
            },
        ),
        ("single", LargeKind::Single, SegmentNaming::CloudImages),
    ];
    for (name, kind, naming) in cases {
        let o = UploadOptions {
            segment_size: 100_000,
            large: kind,
            naming,
            jobs: 3,
            ..Default::default()
        };
        let f = std::fs::File::open(&input).unwrap();
        upload(
            &store,
            &ObjectPath::new(&c, name),
            Source::file(f).unwrap(),
            &o,
        )
        .unwrap();
        let out = dir.path().join(format!("{name}.out"));
        swift_cmd(&env, &["download", &c, name, "-o", out.to_str().unwrap()]);
        assert_eq!(std::fs::read(&out).unwrap(), d, "{name}");
    }
}

#[test]
fn we_read_what_swift_upload_writes() {
    let Some((store, env)) = setup() else { return };
    let c = common::unique("sc-up");
    let dir = tempfile::tempdir().unwrap();
    let d = common::data(650_003, 61);
    let input = dir.path().join("in.bin");
    std::fs::write(&input, &d).unwrap();
    for (name, slo) in [("dlo.bin", false), ("slo.bin", true)] {
        let mut args = vec![
            "upload",
            &c,
            input.to_str().unwrap(),
            "--object-name",
            name,
            "--segment-size",
            "100000",
        ];
        if slo {
            args.push("--use-slo");
        }
        swift_cmd(&env, &args);
        let p = ObjectPath::new(&c, name);
        let plan = cloudimg_pipeline::download::plan(&store, &p).unwrap();
        assert_eq!(plan.kind, if slo { "slo" } else { "dlo" });
        assert_eq!(plan.segments.len(), 7);
        assert_eq!(common::fetch(&store, &p, 3, 40_000), d, "{name}");
        assert_eq!(common::fetch(&store, &p, 2, 1 << 20), d, "{name}");
    }
}

//! What `upload` makes on the way and what it refuses to: local folders (as `rclone
//! copyto`), a Swift container (as python-swiftclient's `upload`), never an S3 bucket
//! (as `aws s3 cp`). `export --to` differs on purpose: the receiving container is one
//! the customer already has, and a missing one fails the task naming it.

use std::path::Path;
use std::process::{Command, Output};

fn cloudimg(args: &[&str], env: &[(&str, &str)], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .unwrap()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn input(dir: &Path) -> Vec<u8> {
    let bytes: Vec<u8> = (0..70_000u32).map(|i| (i * 7 % 253) as u8).collect();
    std::fs::write(dir.join("in.bin"), &bytes).unwrap();
    bytes
}

#[test]
fn local_upload_makes_folders_export_does_not() {
    let t = tempfile::Builder::new()
        .prefix("targets")
        .tempdir()
        .unwrap();
    let d = t.path();
    let bytes = input(d);
    let dest = d.join("a/missing/dir/r.bin");
    ok(&cloudimg(
        &["upload", "in.bin", dest.to_str().unwrap()],
        &[],
        d,
    ));
    assert_eq!(std::fs::read(&dest).unwrap(), bytes);

    // Export into a folder that does not exist: refused, naming the container.
    let vhd = d.join("r.vhd");
    ok(&cloudimg(&["create", "r.vhd", "4M"], &[], d));
    let imp = cloudimg(
        &[
            "import",
            "--from",
            vhd.to_str().unwrap(),
            "--store",
            "store",
        ],
        &[],
        d,
    );
    ok(&imp);
    let task: serde_json::Value = serde_json::from_slice(&imp.stdout).unwrap();
    let id = task["result"]["image_id"].as_str().unwrap();
    let out = cloudimg(
        &[
            "export",
            "--store",
            "store",
            "--image",
            id,
            "--to",
            "nothere/exports",
        ],
        &[],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "cloudimg: export task failed: export exports: the receiving container does not exist"
    );
    assert!(!d.join("nothere").join("exports").exists());
}

#[test]
fn swift_upload_makes_its_container_s3_does_not_make_a_bucket() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let d = t.path();
    let bytes = input(d);
    let swift = [
        ("ST_AUTH", env.auth_url.as_str()),
        ("ST_USER", env.user.as_str()),
        ("ST_KEY", env.key.as_str()),
    ];
    let container = format!("made-{}", uuid_like());
    let url = format!("swift://{container}/r.bin");
    ok(&cloudimg(&["upload", "in.bin", &url], &swift, d));
    ok(&cloudimg(&["download", &url, "back.bin"], &swift, d));
    assert_eq!(std::fs::read(d.join("back.bin")).unwrap(), bytes);

    let s3 = [
        ("S3_ENDPOINT", env.s3_endpoint.as_str()),
        ("S3_ACCESS_KEY", env.s3_access_key.as_str()),
        ("S3_SECRET_KEY", env.s3_secret_key.as_str()),
    ];
    let bucket = format!("nobucket-{}", uuid_like());
    let out = cloudimg(
        &["upload", "in.bin", &format!("s3://{bucket}/r.bin")],
        &s3,
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "cloudimg: upload s3://{bucket}: the bucket does not exist \
             (create it first: aws s3 mb s3://{bucket})"
        )
    );
    // And it was not made behind our back.
    let out = cloudimg(
        &["upload", "in.bin", &format!("s3://{bucket}/r.bin")],
        &s3,
        d,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A name part unique to this run.
fn uuid_like() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}-{}", std::process::id(), t.as_nanos())
}

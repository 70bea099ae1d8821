//! Keystone v3 password authentication, end to end: `cloudimg upload` and `download`
//! with only the `OS_*` variables python-swiftclient reads, against the real Keystone and
//! the Keystone-authenticated Swift proxy that scripts/keystone-up.sh starts. The object
//! is read back by python-swiftclient through Keystone too.

use std::path::Path;
use std::process::{Command, Output};

use cloudimg_fixtures::env::{keystone, require_tool, KeystoneEnv};

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 131 % 253) as u8).collect()
}

/// The binary with Keystone credentials only: every tempauth and preset variable removed,
/// so the v3 path is the one taken.
fn cloudimg(ks: &KeystoneEnv, password: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudimg"));
    for v in [
        "ST_AUTH",
        "ST_USER",
        "ST_KEY",
        "OS_STORAGE_URL",
        "OS_AUTH_TOKEN",
        "OS_REGION_NAME",
    ] {
        c.env_remove(v);
    }
    c.env("OS_AUTH_URL", &ks.auth_url)
        .env("OS_USERNAME", &ks.username)
        .env("OS_PASSWORD", password)
        .env("OS_PROJECT_NAME", &ks.project_name)
        .env("OS_USER_DOMAIN_NAME", "Default")
        .env("OS_PROJECT_DOMAIN_NAME", "Default");
    c
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn container(tag: &str) -> String {
    format!("cloudimg-ks-{tag}-{}", std::process::id())
}

fn swiftclient(ks: &KeystoneEnv, dir: &Path, args: &[&str]) -> Output {
    Command::new("swift")
        .current_dir(dir)
        .args([
            "--auth-version",
            "3",
            "--os-auth-url",
            &ks.auth_url,
            "--os-username",
            &ks.username,
            "--os-password",
            &ks.password,
            "--os-project-name",
            &ks.project_name,
            "--os-user-domain-name",
            "Default",
            "--os-project-domain-name",
            "Default",
        ])
        .args(args)
        .env_remove("ST_AUTH")
        .env_remove("ST_USER")
        .env_remove("ST_KEY")
        .output()
        .unwrap()
}

#[test]
fn upload_and_download_through_keystone_v3() {
    let Some(ks) = keystone() else { return };
    if !require_tool("swift") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let d = data(700_000);
    std::fs::write(&input, &d).unwrap();
    let c = container("up");
    let url = format!("swift://{c}/disk.vhd");

    let out = cloudimg(&ks, &ks.password)
        .args(["upload", "--segment-size", "256K", "--large", "dlo"])
        .args(["--output", "json"])
        .arg(&input)
        .arg(&url)
        .output()
        .unwrap();
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["bytes"], 700_000);
    assert_eq!(v["segments"], 3);

    // Our download, through the catalog's object-store endpoint.
    let back = dir.path().join("back.bin");
    ok(&cloudimg(&ks, &ks.password)
        .args(["download", &url])
        .arg(&back)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&back).unwrap(), d);

    // python-swiftclient, authenticated by the same Keystone, sees the same object in the
    // project's account.
    let out = swiftclient(
        &ks,
        dir.path(),
        &["download", &c, "disk.vhd", "-o", "swift.bin"],
    );
    ok(&out);
    assert_eq!(std::fs::read(dir.path().join("swift.bin")).unwrap(), d);

    let out = swiftclient(&ks, dir.path(), &["delete", &c]);
    ok(&out);
}

#[test]
fn a_wrong_keystone_password_is_an_environment_error() {
    let Some(ks) = keystone() else { return };
    let dir = tempfile::tempdir().unwrap();
    let back = dir.path().join("never.bin");
    let out = cloudimg(&ks, "not-the-password")
        .args(["download", &format!("swift://{}/x", container("bad"))])
        .arg(&back)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("keystone") && err.contains("401"), "{err}");
    assert!(!back.exists(), "a failed download left {}", back.display());
}

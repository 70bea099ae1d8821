//! `cloudimg upload`: local directory store always, Swift when configured; JSON summary,
//! exit codes.

use std::process::Command;

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn cloudimg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
}

#[test]
fn uploads_a_file_as_a_dlo_with_json_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.vhd");
    let d = data(300_000);
    std::fs::write(&input, &d).unwrap();
    let dest = dir.path().join("store").join("images").join("img.vhd");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let out = cloudimg()
        .args([
            "upload",
            "--segment-size",
            "100K",
            "--large",
            "dlo",
            "-j",
            "3",
            "--output",
            "json",
        ])
        .arg(&input)
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "dlo");
    assert_eq!(v["bytes"], 300_000);
    assert_eq!(v["segments"], 3);
    // By default the whole object's MD5 only (segment MD5s are checked regardless).
    assert_eq!(v["digests"], serde_json::json!(["md5"]));
    assert_eq!(v["checksums"]["md5"], oracle("md5sum", &d));
    assert_eq!(v["checksums"]["sha256"], "");
    // Cloud Images naming beside the manifest.
    let seg1 = dest.parent().unwrap().join("img.vhd-00001");
    assert_eq!(std::fs::read(seg1).unwrap(), &d[..102_400]);

    // stdin works too (single PUT below the segment size).
    let mut child = cloudimg()
        .args([
            "upload",
            "--digest",
            "sha256,sha512",
            "--output",
            "json",
            "-",
        ])
        .arg(dest.parent().unwrap().join("small.bin"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&d[..1000]).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "single");
    assert_eq!(v["digests"], serde_json::json!(["md5", "sha256", "sha512"]));
    assert_eq!(v["checksums"]["sha256"], oracle("sha256sum", &d[..1000]));
    assert_eq!(v["checksums"]["sha512"], oracle("sha512sum", &d[..1000]));
}

/// The digest coreutils' `tool` prints for `data`.
fn oracle(tool: &str, data: &[u8]) -> String {
    use std::io::Write;
    let mut c = Command::new(tool)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(data).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..]
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    std::fs::write(&input, b"x").unwrap();
    let out = cloudimg()
        .args(["upload"])
        .arg(&input)
        .arg("ftp://nope/x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = cloudimg()
        .args(["upload", "--large", "multipart"])
        .arg(&input)
        .arg(dir.path().join("c").join("o"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn uploads_to_swift() {
    let Some(env) = cloudimg_fixtures::env::swift() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.vhd");
    let d = data(250_000);
    std::fs::write(&input, &d).unwrap();
    let c = format!("cli-up-{}", std::process::id());
    let url = format!("swift://{c}/img.vhd");
    let out = cloudimg()
        .env("ST_AUTH", &env.auth_url)
        .env("ST_USER", &env.user)
        .env("ST_KEY", &env.key)
        .args([
            "upload",
            "--segment-size",
            "100000",
            "--large",
            "slo",
            "--output",
            "json",
        ])
        .arg(&input)
        .arg(&url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "slo");
    assert_eq!(v["segments"], 3);
    let back = dir.path().join("back.vhd");
    let out = cloudimg()
        .env("ST_AUTH", &env.auth_url)
        .env("ST_USER", &env.user)
        .env("ST_KEY", &env.key)
        .args(["download", &url])
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&back).unwrap(), d);
}

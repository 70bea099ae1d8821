//! `cloudimg download`: round trip through the local store, stdout, and exit code 1 when a
//! segment is missing (no partial output file left behind).

use std::process::Command;

fn cloudimg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
}

fn setup(dir: &std::path::Path) -> (std::path::PathBuf, Vec<u8>) {
    let d: Vec<u8> = (0..250_000).map(|i| (i * 7 % 253) as u8).collect();
    let input = dir.join("in.vhd");
    std::fs::write(&input, &d).unwrap();
    let dest = dir.join("store").join("images").join("img.vhd");
    std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
    let out = cloudimg()
        .args(["upload", "--segment-size", "100000", "--large", "dlo"])
        .arg(&input)
        .arg(&dest)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dest, d)
}

#[test]
fn downloads_to_file_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let (dest, d) = setup(dir.path());
    let back = dir.path().join("back.vhd");
    let out = cloudimg()
        .args(["download", "-j", "2", "--output", "json"])
        .arg(format!("file://{}", dest.display()))
        .arg(&back)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["kind"], "dlo");
    assert_eq!(v["bytes"], 250_000);
    assert_eq!(v["segments_verified"], 3);
    assert_eq!(std::fs::read(&back).unwrap(), d);

    let out = cloudimg()
        .arg("download")
        .arg(&dest)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, d);
}

#[test]
fn missing_segment_exits_1_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let (dest, _) = setup(dir.path());
    std::fs::remove_file(dest.parent().unwrap().join("img.vhd-00002")).unwrap();
    let back = dir.path().join("back.vhd");
    let out = cloudimg()
        .arg("download")
        .arg(&dest)
        .arg(&back)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!back.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".part"))
        .collect();
    assert!(leftovers.is_empty());
}

#[test]
fn missing_object_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("c")).unwrap();
    let out = cloudimg()
        .arg("download")
        .arg(dir.path().join("c").join("nope"))
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

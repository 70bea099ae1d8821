//! `cloudimg unpack`: stdin, exit codes for bad archives and digests, and a
//! target folder left clean after a failure.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn cloudimg(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = c.stdin.take().unwrap();
    if let Some(data) = stdin {
        // A usage error exits before reading stdin: a broken pipe here is that
        // exit, which the caller asserts on.
        if let Err(e) = input.write_all(data) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
        }
    }
    drop(input);
    c.wait_with_output().unwrap()
}

/// A gzipped tar holding a file and a symlink to /etc/passwd, made by GNU tar.
fn tar_with_symlink(dir: &Path) -> Vec<u8> {
    let staging = dir.join("staging");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("a.txt"), b"hello").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", staging.join("link")).unwrap();
    let out = Command::new("tar")
        .arg("-zc")
        .arg("-C")
        .arg(&staging)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn reads_stdin_and_checks_md5() {
    let t = tempfile::tempdir().unwrap();
    let staging = t.path().join("s");
    std::fs::create_dir(&staging).unwrap();
    std::fs::write(staging.join("notes.txt"), b"not a vhd").unwrap();
    let tgz = Command::new("tar")
        .arg("-zc")
        .arg("-C")
        .arg(&staging)
        .arg(".")
        .output()
        .unwrap()
        .stdout;
    let md5 = {
        let out = Command::new("md5sum")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut o = out;
        o.stdin.take().unwrap().write_all(&tgz).unwrap();
        let r = o.wait_with_output().unwrap();
        String::from_utf8(r.stdout).unwrap()[..32].to_string()
    };
    let dir = t.path().join("out");
    let r = cloudimg(
        &[
            "unpack",
            "--expect-md5",
            &md5,
            "--output",
            "json",
            "-",
            s(&dir),
        ],
        Some(&tgz),
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let v: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(v["md5"], md5.as_str());
    assert_eq!(v["members"][0]["archive_name"], "./notes.txt");
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"not a vhd");

    // The wrong MD5: exit 1 and the folder is gone again.
    let dir2 = t.path().join("out2");
    let r = cloudimg(
        &["unpack", "--expect-md5", &"0".repeat(32), "-", s(&dir2)],
        Some(&tgz),
    );
    assert_eq!(r.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&r.stderr).contains("MD5"));
    assert!(!dir2.exists());
    // A malformed MD5 is a usage error.
    let r = cloudimg(
        &["unpack", "--expect-md5", "xyz", "-", s(&dir2)],
        Some(&tgz),
    );
    assert_eq!(r.status.code(), Some(2));
}

#[test]
fn hostile_archives_exit_1_and_leave_nothing() {
    let t = tempfile::tempdir().unwrap();
    let tgz = tar_with_symlink(t.path());
    let dir = t.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let r = cloudimg(&["unpack", "-", s(&dir)], Some(&tgz));
    assert_eq!(r.status.code(), Some(1));
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(
        err.contains("symbolic link") && err.contains("link"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // Truncated: exit 1 too.
    let r = cloudimg(&["unpack", "-", s(&dir)], Some(&tgz[..tgz.len() / 2]));
    assert_eq!(r.status.code(), Some(1));
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
    // A missing input file is an environment problem.
    let r = cloudimg(&["unpack", s(&t.path().join("nope.tgz")), s(&dir)], None);
    assert_eq!(r.status.code(), Some(2));
}

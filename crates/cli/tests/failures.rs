//! The line a user reads when a subcommand fails, for each subcommand's common
//! failures (missing input, missing output folder, wrong format, bad URL, refused
//! connection): said once, naming the path the user gave, with the exit code
//! that says whose problem it is (1 the data, 2 usage or environment).

use cloudimg_fixtures::env::require_tool;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cloudimg");
const NOENT: &str = "No such file or directory (os error 2)";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cloudimg(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(BIN);
    c.args(args).current_dir(dir);
    // Nothing from the caller's environment may point the binary at real services.
    for k in [
        "ST_AUTH",
        "ST_USER",
        "ST_KEY",
        "OS_AUTH_URL",
        "OS_STORAGE_URL",
        "S3_ENDPOINT",
    ] {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    let out = c.output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `args` in `dir` and asserts the one stderr line and the exit code; the line
/// never says one clause twice in a row.
fn fails(dir: &Path, args: &[&str], env: &[(&str, &str)], line: &str, code: i32) -> Run {
    let r = cloudimg(dir, args, env);
    assert_eq!(r.stderr.trim_end(), line, "cloudimg {args:?}");
    assert_eq!(r.code, code, "cloudimg {args:?}: {}", r.stderr);
    let clauses: Vec<&str> = line.split(": ").collect();
    assert!(
        clauses.windows(2).all(|w| w[0] != w[1]),
        "repeated clause: {line}"
    );
    assert!(
        !line.contains("cloudimg-tmp") && !line.contains(".part-") && !line.contains(".partial-")
    );
    r
}

/// A temporary folder holding a small dynamic VHD `r.vhd` (made by `cloudimg create`).
fn setup() -> tempfile::TempDir {
    // Not tempfile's `.tmpXXXX`: a local object's folder is its container, and
    // container names may not start with a dot.
    let t = tempfile::Builder::new()
        .prefix("failures")
        .tempdir()
        .unwrap();
    let r = cloudimg(t.path(), &["create", "r.vhd", "4M"], &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    t
}

#[test]
fn local_file_commands() {
    let t = setup();
    let d = t.path();
    let ds = d.to_str().unwrap();
    fails(
        d,
        &["info", "nothere.vhd"],
        &[],
        &format!("cloudimg: nothere.vhd: open: {NOENT}"),
        2,
    );
    let r = cloudimg(d, &["check", "nothere.vhd"], &[]);
    assert_eq!(r.code, 2);
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        format!("nothere.vhd: error: file: open: {NOENT} [io]")
    );
    fails(
        d,
        &["convert", "-O", "raw", "nothere.vhd", "o.raw"],
        &[],
        &format!("cloudimg: nothere.vhd: open input: {NOENT}"),
        2,
    );
    fails(
        d,
        &["convert", "-O", "raw", "r.vhd", "no/dir/out.raw"],
        &[],
        &format!("cloudimg: no/dir/out.raw: create output: {NOENT}"),
        2,
    );
    fails(
        d,
        &["create", "no/dir/x.vhd", "4M"],
        &[],
        &format!("cloudimg: no/dir/x.vhd: create image: {NOENT}"),
        2,
    );
    fails(
        d,
        &["coalesce", "nothere.vhd", "out.vhd"],
        &[],
        &format!("cloudimg: nothere.vhd: open: {NOENT}"),
        2,
    );
    fails(
        d,
        &["pack", "out.tgz", "nothere.vhd"],
        &[],
        &format!("cloudimg: nothere.vhd: open VHD: {NOENT}"),
        2,
    );
    fails(
        d,
        &["pack", "no/dir/out.tgz", "r.vhd"],
        &[],
        &format!("cloudimg: no/dir/out.tgz: create: {NOENT}"),
        2,
    );
    fails(
        d,
        &["unpack", "nothere.tgz", "dir"],
        &[],
        &format!("cloudimg: nothere.tgz: open: {NOENT}"),
        2,
    );
    fails(
        d,
        &["unpack", "r.vhd", "dir"],
        &[],
        "cloudimg: r.vhd: it is a dynamic VHD, not a tarball; upload or import the VHD itself, \
         or `cloudimg pack` it into a tarball",
        1,
    );
    assert!(!d.join("dir").exists(), "a refused unpack made its folder");
    // Absolute paths stay as given too.
    fails(
        d,
        &["info", &format!("{ds}/nothere.vhd")],
        &[],
        &format!("cloudimg: {ds}/nothere.vhd: open: {NOENT}"),
        2,
    );
}

#[test]
fn wrong_formats_are_named_with_the_command_that_converts() {
    if !require_tool("qemu-img") {
        return;
    }
    let t = setup();
    let d = t.path();
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "disk.qcow2", "64M"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = "disk.qcow2: it is a QCOW2 image (version 3), not a VHD; \
                convert it with: qemu-img convert -O vpc disk.qcow2 disk.vhd";
    fails(
        d,
        &["info", "disk.qcow2"],
        &[],
        &format!("cloudimg: {said}"),
        1,
    );
    let r = cloudimg(d, &["check", "disk.qcow2"], &[]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stdout.lines().next().unwrap(),
        "disk.qcow2: error: format: it is a QCOW2 image (version 3), not a VHD; \
         convert it with: qemu-img convert -O vpc disk.qcow2 disk.vhd [not_vhd]"
    );
    fails(
        d,
        &["convert", "-O", "vpc", "disk.qcow2", "out.vhd"],
        &[],
        &format!("cloudimg: {said}; `-f raw` takes its bytes as a raw disk"),
        1,
    );
    assert!(!d.join("out.vhd").exists());
    let r = fails(
        d,
        &["import", "--from", "disk.qcow2", "--store", "store"],
        &[],
        &format!(
            "cloudimg: import task failed: 396: import file://{}/disk.qcow2: the object is not a \
             valid VHD: it is a QCOW2 image (version 3); Cloud Images imports VHD: convert it \
             with `qemu-img convert -O vpc disk.qcow2 disk.vhd` and import the result",
            d.display()
        ),
        1,
    );
    assert!(r.stdout.contains("\"status\": \"failure\"") || r.stdout.contains("failure"));
}

#[test]
fn object_store_commands() {
    let t = setup();
    let d = t.path();
    let ds = d.to_str().unwrap();
    let bad_scheme =
        "cloudimg: parse url: foo://bar/x: unknown scheme (use swift://, s3://, file:// or a path)";
    fails(d, &["upload", "r.vhd", "foo://bar/x"], &[], bad_scheme, 2);
    fails(d, &["download", "foo://bar/x", "x"], &[], bad_scheme, 2);
    fails(
        d,
        &["upload", "nothere.vhd", "c/x.vhd"],
        &[],
        &format!("cloudimg: nothere.vhd: open: {NOENT}"),
        2,
    );
    fails(
        d,
        &["download", "nope/x.vhd", "x"],
        &[],
        &format!("cloudimg: head file://{ds}/nope/x.vhd: {NOENT}"),
        2,
    );
    fails(
        d,
        &["download", "r.vhd", "no/dir/x"],
        &[],
        &format!("cloudimg: no/dir/x: create: {NOENT}"),
        2,
    );
    fails(
        d,
        &["import", "--from", "nothere.vhd", "--store", "store"],
        &[],
        &format!(
            "cloudimg: import task failed: open source file://{ds}/nothere.vhd: object storage \
             failed: head file://{ds}/nothere.vhd: {NOENT}"
        ),
        2,
    );
    // Nothing listens on port 1: the connection is refused, said once.
    let refused = [
        ("ST_AUTH", "http://127.0.0.1:1/auth/v1.0"),
        ("ST_USER", "a:b"),
        ("ST_KEY", "k"),
    ];
    fails(
        d,
        &["download", "swift://c/x.vhd", "x"],
        &refused,
        "cloudimg: swift auth http://127.0.0.1:1/auth/v1.0: Connection Failed: Connect error: \
         Connection refused (os error 111)",
        2,
    );
}

//! The line a user reads when a subcommand fails, for each subcommand's common
//! failures (missing input, unreadable input, missing output folder, full disk,
//! wrong format, bad URL, refused connection): said once, naming the path the user gave, with the exit code
//! that says whose problem it is (1 the data, 2 usage or environment).

use cloudimg_fixtures::env::require_tool;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_cloudimg");
const NOENT: &str = "No such file or directory (os error 2)";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn cloudimg(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    cloudimg_as(As::Caller, dir, args, env)
}

/// Who runs the binary: the test's own user, or (when the test runs as root, whom
/// mode bits do not stop) the unprivileged `nobody`, so a permission check is real.
#[derive(Clone, Copy)]
enum As {
    Caller,
    Nobody,
}

fn cloudimg_as(who: As, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = match who {
        As::Caller => Command::new(BIN),
        As::Nobody => {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN]);
            c
        }
    };
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
    fails_as(As::Caller, dir, args, env, line, code)
}

fn fails_as(
    who: As,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
    line: &str,
    code: i32,
) -> Run {
    let r = cloudimg_as(who, dir, args, env);
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
        &format!("cloudimg: nothere.vhd: open: {NOENT}"),
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

/// True when the tests run as root (CI does), whom file modes do not stop.
fn is_root() -> bool {
    let out = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

#[test]
fn unreadable_input() {
    let t = setup();
    let d = t.path();
    let who = if is_root() {
        if !require_tool("setpriv") {
            return;
        }
        // nobody must reach the folder to be refused the file in it.
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        As::Nobody
    } else {
        As::Caller
    };
    std::fs::set_permissions(d.join("r.vhd"), std::fs::Permissions::from_mode(0o000)).unwrap();
    let denied = "Permission denied (os error 13)";
    fails_as(
        who,
        d,
        &["info", "r.vhd"],
        &[],
        &format!("cloudimg: r.vhd: open: {denied}"),
        2,
    );
    let r = cloudimg_as(who, d, &["check", "r.vhd"], &[]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        r.stdout.lines().next().unwrap_or_default(),
        format!("r.vhd: error: file: open: {denied} [io]"),
        "{}",
        r.stderr
    );
    fails_as(
        who,
        d,
        &["convert", "-O", "raw", "r.vhd", "o.raw"],
        &[],
        &format!("cloudimg: r.vhd: open input: {denied}"),
        2,
    );
    fails_as(
        who,
        d,
        &["pack", "o.tgz", "r.vhd"],
        &[],
        &format!("cloudimg: r.vhd: open: {denied}"),
        2,
    );
    fails_as(
        who,
        d,
        &["upload", "r.vhd", "c/x.vhd"],
        &[],
        &format!("cloudimg: r.vhd: open: {denied}"),
        2,
    );
    // A folder where a file is expected is refused to root too.
    std::fs::create_dir(d.join("dir.vhd")).unwrap();
    let isdir = "Is a directory (os error 21)";
    for (args, line) in [
        (
            &["convert", "-O", "raw", "dir.vhd", "o.raw"][..],
            format!("cloudimg: dir.vhd: open input: {isdir}"),
        ),
        (
            &["pack", "o.tgz", "dir.vhd"],
            format!("cloudimg: dir.vhd: open: {isdir}"),
        ),
        (
            &["upload", "dir.vhd", "c/x.vhd"],
            format!("cloudimg: dir.vhd: read: {isdir}"),
        ),
    ] {
        fails(d, args, &[], &line, 2);
    }
    let mut left: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["dir.vhd", "r.vhd"],
        "a refused command left output behind"
    );
}

/// A 1 MiB tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts it at `at`, or says why it cannot (not root, no mount rights).
    fn mount(at: &Path) -> Result<Tmpfs, String> {
        std::fs::create_dir(at).unwrap();
        if !is_root() {
            return Err("not root".into());
        }
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        Ok(Tmpfs(at.to_path_buf()))
    }

    /// What is in it: nothing, after a failed command.
    fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Bytes gzip cannot shrink, so every output made of them outgrows the tmpfs.
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

#[test]
fn disk_full() {
    let t = setup();
    let d = t.path();
    std::fs::write(d.join("d.raw"), noise(2 << 20)).unwrap();
    for args in [
        &["convert", "-O", "vpc", "d.raw", "d.vhd"][..],
        &["pack", "d.tgz", "d.vhd"],
    ] {
        let r = cloudimg(d, args, &[]);
        assert_eq!(r.code, 0, "{args:?}: {}", r.stderr);
    }
    let full = match Tmpfs::mount(&d.join("full")) {
        Ok(m) => m,
        Err(why) => {
            let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
            assert!(!ci, "CI runs as root and must mount a tmpfs: {why}");
            eprintln!("skip: cannot mount a tmpfs: {why}");
            return;
        }
    };
    let nospc = "No space left on device (os error 28)";
    for (args, line) in [
        (
            &["convert", "-O", "raw", "d.vhd", "full/o.raw"][..],
            format!("cloudimg: full/o.raw: at offset 0x0: write output: {nospc}"),
        ),
        (
            &["pack", "full/o.tgz", "d.vhd"],
            format!("cloudimg: full/o.tgz: write: {nospc}"),
        ),
        (
            &["download", "d.vhd", "full/x.vhd"],
            format!("cloudimg: full/x.vhd: write: {nospc}"),
        ),
        (
            &["unpack", "d.tgz", "full/u"],
            format!("cloudimg: full/u: member \"0.vhd\": write unpacked file: {nospc}"),
        ),
    ] {
        fails(d, args, &[], &line, 2);
        assert_eq!(full.entries(), Vec::<String>::new(), "{args:?} left files");
    }
}

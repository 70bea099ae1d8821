//! Outputs that are not new regular files. An output that is one of the inputs (by name,
//! symlink or hard link: same device and inode) is refused with exit 2 and the input
//! left intact, for every command whose output can be an input. An output that is a FIFO
//! or a character device is written into, never replaced by a regular file.

use std::io::Read;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cloudimg(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    cloudimg_fixtures::env::workspace_root()
        .join("fixtures")
        .join(name)
}

fn ok(out: &Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `args` (with `OUT` standing for each name of `input`: itself, a symlink, a hard link)
/// exits 2 saying the output is the input, and `input` keeps its bytes.
fn refused_for_every_name(d: &Path, input: &str, args: &[&str]) {
    let before = std::fs::read(d.join(input)).unwrap();
    let sym = format!("{input}.sym");
    let hard = format!("{input}.hard");
    std::os::unix::fs::symlink(d.join(input), d.join(&sym)).unwrap();
    std::fs::hard_link(d.join(input), d.join(&hard)).unwrap();
    for name in [input, sym.as_str(), hard.as_str()] {
        let a: Vec<&str> = args
            .iter()
            .map(|a| if *a == "OUT" { name } else { a })
            .collect();
        let out = cloudimg(d, &a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains("the output is the input file"), "{a:?}: {err}");
        assert!(
            std::fs::read(d.join(input)).unwrap() == before,
            "{a:?}: input changed"
        );
    }
    std::fs::remove_file(d.join(sym)).unwrap();
    std::fs::remove_file(d.join(hard)).unwrap();
}

#[test]
fn pack_convert_and_coalesce_refuse_their_input_as_output() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(fixture("dynamic-qemu.vhd"), d.join("same.vhd")).unwrap();
    refused_for_every_name(d, "same.vhd", &["pack", "OUT", "same.vhd"]);
    refused_for_every_name(
        d,
        "same.vhd",
        &["pack", "--layout", "ova", "OUT", "same.vhd"],
    );
    refused_for_every_name(d, "same.vhd", &["convert", "-O", "raw", "same.vhd", "OUT"]);
    for n in ["base.vhd", "mid.vhd", "leaf.vhd"] {
        std::fs::copy(fixture(&format!("chain/{n}")), d.join(n)).unwrap();
    }
    refused_for_every_name(d, "base.vhd", &["coalesce", "leaf.vhd", "OUT"]);
    refused_for_every_name(d, "base.vhd", &["pack", "--chain", "OUT", "leaf.vhd"]);
}

#[test]
fn download_and_local_upload_refuse_the_object_file_as_the_other_end() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("st/c")).unwrap();
    std::fs::write(d.join("st/c/obj.bin"), vec![5u8; 70_000]).unwrap();
    let url = format!("file://{}", d.join("st/c/obj.bin").display());
    refused_for_every_name(d, "st/c/obj.bin", &["download", &url, "OUT"]);
    refused_for_every_name(d, "st/c/obj.bin", &["upload", "OUT", "st/c/obj.bin"]);
}

#[test]
fn unpack_never_writes_over_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(fixture("dynamic-qemu.vhd"), d.join("disk.vhd")).unwrap();
    ok(&cloudimg(d, &["pack", "pkg.tgz", "disk.vhd"]), "pack");
    let before = std::fs::read(d.join("pkg.tgz")).unwrap();
    // The package sits in the folder under the name of its own member: itself,
    // through a symlink, through a hard link.
    type Place = fn(&Path, &Path) -> std::io::Result<()>;
    let ways: [(&str, Place); 3] = [
        ("itself", |from, to| std::fs::rename(from, to)),
        ("symlink", |from, to| std::os::unix::fs::symlink(from, to)),
        ("hard link", |from, to| std::fs::hard_link(from, to)),
    ];
    for (how, place) in ways {
        let out_dir = d.join("out");
        std::fs::create_dir(&out_dir).unwrap();
        place(&d.join("pkg.tgz"), &out_dir.join("0.vhd")).unwrap();
        let out = cloudimg(d, &["unpack", "out/0.vhd", "out"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{how}: {err}");
        assert!(
            std::fs::read(out_dir.join("0.vhd")).unwrap() == before,
            "{how}: input changed: {err}"
        );
        let mut left: Vec<String> = std::fs::read_dir(&out_dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(left, ["0.vhd"], "{how}: {err}");
        if how == "itself" {
            std::fs::rename(out_dir.join("0.vhd"), d.join("pkg.tgz")).unwrap();
        }
        std::fs::remove_dir_all(&out_dir).unwrap();
    }
    assert!(std::fs::read(d.join("pkg.tgz")).unwrap() == before);
}

/// Reads a FIFO on a thread while `run` writes into it; the bytes read.
fn through_fifo(d: &Path, name: &str, run: impl FnOnce() -> Output) -> Vec<u8> {
    let fifo = d.join(name);
    let st = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(st.success());
    let f2 = fifo.clone();
    let reader = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::fs::File::open(f2)
            .unwrap()
            .read_to_end(&mut v)
            .unwrap();
        v
    });
    let out = run();
    ok(&out, name);
    let got = reader.join().unwrap();
    assert!(
        std::fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "{name} was replaced"
    );
    got
}

#[test]
fn pack_and_download_write_into_a_fifo_and_a_device() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::copy(fixture("dynamic-qemu.vhd"), d.join("disk.vhd")).unwrap();
    ok(
        &cloudimg(d, &["pack", "file.tgz", "disk.vhd"]),
        "pack to a file",
    );
    let want = std::fs::read(d.join("file.tgz")).unwrap();
    let got = through_fifo(d, "pack.fifo", || {
        cloudimg(d, &["pack", "pack.fifo", "disk.vhd"])
    });
    assert!(
        got == want,
        "pack into a FIFO: {} bytes, want {}",
        got.len(),
        want.len()
    );

    std::fs::create_dir_all(d.join("st/c")).unwrap();
    let obj: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(d.join("st/c/obj.bin"), &obj).unwrap();
    let url = format!("file://{}", d.join("st/c/obj.bin").display());
    let got = through_fifo(d, "dl.fifo", || cloudimg(d, &["download", &url, "dl.fifo"]));
    assert!(got == obj, "download into a FIFO");

    // /dev/null as root (whom a rename over it would not stop): still a device after.
    let root = Command::new("id").arg("-u").output().unwrap().stdout == b"0\n";
    if root {
        let null = Path::new("/dev/null");
        ok(
            &cloudimg(d, &["pack", "/dev/null", "disk.vhd"]),
            "pack /dev/null",
        );
        assert!(std::fs::metadata(null)
            .unwrap()
            .file_type()
            .is_char_device());
        ok(
            &cloudimg(d, &["download", &url, "/dev/null"]),
            "download /dev/null",
        );
        assert!(std::fs::metadata(null)
            .unwrap()
            .file_type()
            .is_char_device());
    }
}

//! Imports of objects that are not VHDs fail with 396 and a message naming what the
//! object is (made by the real tools: qemu-img, gzip) and how to make a VHD of it.

mod common;

use cloudimg_fixtures::env::require_tool;
use cloudimg_tasks::import::{self, ImportOptions};
use cloudimg_tasks::{progress, FailureCode, ImageStore, ImportInput, Task, TaskType};
use common::*;
use std::path::Path;
use std::process::Command;

fn run(cmd: &str, args: &[&str], dir: &Path) {
    let out = Command::new(cmd)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Imports `dir/name` and returns the task's message, which must carry 396.
fn import_message(dir: &Path, name: &str) -> String {
    let src = local(&dir.join("src"));
    let images = ImageStore::open(dir.join("store").to_str().unwrap()).unwrap();
    put_file(&*src, "uploads", name, &dir.join(name));
    let mut task = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", name, "my image"),
        "tenant1",
    );
    let err = import::run(
        &mut task,
        &src,
        &images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap_err();
    assert_eq!(err.failure_code(), FailureCode::NotVhd, "{err}");
    assert_eq!(task.failure_code(), Some(FailureCode::NotVhd));
    task.message
}

#[test]
fn foreign_disks_and_compressed_vhds_are_named() {
    if !require_tool("qemu-img") || !require_tool("gzip") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    run(
        "qemu-img",
        &["create", "-q", "-f", "vhdx", "disk.vhdx", "64M"],
        dir,
    );
    run(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", "base.qcow2", "64M"],
        dir,
    );
    let base = dir.join("base.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            base.to_str().unwrap(),
            "-F",
            "qcow2",
            "leaf.qcow2",
        ],
        dir,
    );
    std::fs::copy(fixture("dynamic-qemu.vhd"), dir.join("disk.vhd")).unwrap();
    run("gzip", &["-k", "disk.vhd"], dir);

    let msg = import_message(dir, "disk.vhdx");
    assert!(msg.starts_with("396: "), "{msg}");
    let (_, said) = msg.split_once(": the object is not a valid VHD: ").unwrap();
    let (what, todo) = said.split_once("; ").unwrap();
    assert!(
        what.starts_with("it is a VHDX image (Hyper-V, created by "),
        "{msg}"
    );
    assert_eq!(
        todo,
        "Cloud Images imports VHD: convert it with \
         `qemu-img convert -O vpc disk.vhdx disk.vhd` and import the result"
    );

    let msg = import_message(dir, "leaf.qcow2");
    assert!(
        msg.contains(&format!(
            "it is a QCOW2 image (version 3) that names other files: backing file '{}'",
            base.display()
        )),
        "{msg}"
    );

    let msg = import_message(dir, "disk.vhd.gz");
    assert!(
        msg.ends_with(
            "the object is not a valid VHD: it is gzip-compressed data (of 'disk.vhd'); \
             imports take the VHD itself, uncompressed: decompress it (gunzip -k) and import the .vhd"
        ),
        "{msg}"
    );
}

//! Import and export against the project's local Swift (`bash scripts/swift-up.sh`):
//! import from a DLO uploaded by python-swiftclient, export a chain into a container and
//! read it back with `swift download`, failure codes, and a fault mid-export.
//! Skips (prints why) when Swift is not configured; panics under CI.

mod common;

use cloudimg_fixtures::env::{require_tool, swift, SwiftEnv};
use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::{ObjectPath, ObjectStore};
use cloudimg_tasks::export::{self, ExportOptions};
use cloudimg_tasks::import::{self, ImportOptions};
use cloudimg_tasks::{
    progress, ExportInput, FailureCode, ImageStore, ImportInput, Task, TaskStatus, TaskType,
};
use common::*;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn store(env: &SwiftEnv) -> Arc<dyn ObjectStore> {
    Arc::new(SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url.clone(),
        user: env.user.clone(),
        key: env.key.clone(),
    }))
}

fn swift_cmd(env: &SwiftEnv, dir: &Path) -> Command {
    let mut c = Command::new("swift");
    c.current_dir(dir)
        .env("ST_AUTH", &env.auth_url)
        .env("ST_USER", &env.user)
        .env("ST_KEY", &env.key)
        .env_remove("OS_AUTH_URL")
        .env_remove("OS_STORAGE_URL");
    c
}

fn unique(tag: &str) -> String {
    format!("cimg-{tag}-{}", uuid::Uuid::new_v4().simple())
}

/// Deletes containers (and what is in them) when the test ends, pass or fail.
/// Runs python-swiftclient in `dir` with `args`, which must succeed.
fn swiftclient(env: &SwiftEnv, dir: &Path, args: &[&str]) {
    let out = swift_cmd(env, dir).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "swift {}: {}",
        args[0],
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Cleanup(SwiftEnv, Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for c in &self.1 {
            let _ = swift_cmd(&self.0, Path::new("/"))
                .args(["delete", c])
                .output();
        }
    }
}

fn setup() -> Option<SwiftEnv> {
    let env = swift()?;
    if !require_tool("swift") {
        return None;
    }
    Some(env)
}

/// Imports `uploads`/`name` into an image store in `images_c` (made here), checks the
/// task succeeded, and unpacks the image's chain under `tmp`/unpacked.
fn import_and_unpack(
    s: &Arc<dyn ObjectStore>,
    uploads: &str,
    name: &str,
    images_c: &str,
    tmp: &Path,
) -> (
    ImageStore,
    cloudimg_tasks::imagestore::ImageRecord,
    cloudimg_vhd::Chain,
) {
    s.ensure_container(images_c).unwrap();
    let images = ImageStore::new(s.clone(), images_c, "images/");
    let mut task = Task::new(
        TaskType::Import,
        ImportInput::to_json(uploads, name, "from swift"),
        "tenant1",
    );
    let imported = import::run(
        &mut task,
        s,
        &images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap();
    assert_eq!(task.status, TaskStatus::Success);
    let rec = images.require(&imported.image_id).unwrap();
    let dir = tmp.join("unpacked");
    std::fs::create_dir(&dir).unwrap();
    let stored = open_chain(&unpack_image(&images, &rec, &dir));
    (images, rec, stored)
}

#[test]
fn import_from_a_swiftclient_dlo_and_export_back_through_swift() {
    let Some(env) = setup() else { return };
    let s = store(&env);
    let (uploads, images_c, exports) = (unique("up"), unique("img"), unique("exp"));
    let _clean = Cleanup(
        env.clone(),
        vec![
            uploads.clone(),
            format!("{uploads}_segments"),
            images_c.clone(),
            exports.clone(),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let src = fixture("dynamic-hyperv.vhd");
    std::fs::copy(&src, tmp.path().join("disk.vhd")).unwrap();
    swiftclient(
        &env,
        tmp.path(),
        &["upload", "--segment-size", "65536", &uploads, "disk.vhd"],
    );
    let info = s.head(&ObjectPath::new(&uploads, "disk.vhd")).unwrap();
    assert!(
        matches!(info.manifest, Some(cloudimg_pipeline::Manifest::Dlo { .. })),
        "{info:?}"
    );

    let (images, rec, stored) = import_and_unpack(&s, &uploads, "disk.vhd", &images_c, tmp.path());
    assert_same_disk(&stored, &open_leaf(&src));

    // Export the imported image with small segments, read it back with swift download.
    s.ensure_container(&exports).unwrap();
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, &exports),
        "tenant1",
    );
    let opts = ExportOptions {
        segment_size: 1 << 20,
        ..Default::default()
    };
    let out = export::run(&mut task, &images, &s, &opts, progress::silent()).unwrap();
    assert!(out.segments >= 2);
    let got = tmp.path().join("got");
    std::fs::create_dir(&got).unwrap();
    let name = format!("{}.vhd", rec.id);
    swiftclient(&env, &got, &["download", &exports, &name]);
    let file = got.join(&name);
    assert_eq!(std::fs::metadata(&file).unwrap().len(), out.size);
    assert_same_disk(&open_leaf(&file), &open_leaf(&src));
    if require_tool("qemu-img") {
        // qemu reads our export; the source's own bytes come from our reader (the fixture
        // hides garbage behind partial bitmaps, which qemu's vpc driver does not honour).
        let a = got.join("a.raw");
        let st = Command::new("qemu-img")
            .args(["convert", "-f", "vpc", "-O", "raw"])
            .arg(&file)
            .arg(&a)
            .status()
            .unwrap();
        assert!(st.success());
        let original = open_leaf(&src);
        let mut want = vec![0u8; original.virtual_size() as usize];
        original.read_at(0, &mut want).unwrap();
        assert!(
            std::fs::read(&a).unwrap() == want,
            "qemu-img reads a different disk"
        );
    }
}

#[test]
fn chain_export_into_swift_matches_the_chain_and_faults_leave_nothing() {
    let Some(env) = setup() else { return };
    let s = store(&env);
    let (images_c, exports) = (unique("img"), unique("exp"));
    let _clean = Cleanup(env.clone(), vec![images_c.clone(), exports.clone()]);
    let tmp = tempfile::tempdir().unwrap();
    let Some(pkg) = tar_package(&chain_layers(), tmp.path()) else {
        return;
    };
    s.ensure_container(&images_c).unwrap();
    let images = ImageStore::new(s.clone(), &images_c, "");
    let rec =
        cloudimg_tasks::register::register_package(&images, &pkg, "chain", "tenant1").unwrap();
    s.ensure_container(&exports).unwrap();
    let opts = ExportOptions {
        segment_size: 300_000,
        ..Default::default()
    };

    // A fault at the 4th segment PUT: the task fails, no manifest, segments removed.
    let failing = FailNthPut::wrap(s.clone(), ".vhd-", 4);
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, &exports),
        "tenant1",
    );
    let err = export::run(&mut task, &images, &failing, &opts, progress::silent()).unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(task.status, TaskStatus::Failure);
    let left = cloudimg_pipeline::list_all(&*s, &exports, "").unwrap();
    assert!(left.is_empty(), "left behind: {left:?}");

    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, &exports),
        "tenant1",
    );
    let out = export::run(&mut task, &images, &s, &opts, progress::silent()).unwrap();
    assert_eq!(
        task.result.as_ref().unwrap()["export_location"],
        format!("{exports}/{}.vhd", rec.id)
    );
    let info = s
        .head(&ObjectPath::new(&exports, format!("{}.vhd", rec.id)))
        .unwrap();
    assert_eq!(
        info.manifest,
        Some(cloudimg_pipeline::Manifest::Dlo {
            container: exports.clone(),
            prefix: format!("{}.vhd-", rec.id)
        })
    );
    assert_eq!(info.size, out.size);
    let got = tmp.path().join("got");
    std::fs::create_dir(&got).unwrap();
    let name = format!("{}.vhd", rec.id);
    swiftclient(&env, &got, &["download", &exports, &name]);
    assert_same_disk(
        &open_leaf(&got.join(&name)),
        &open_leaf(&fixture("chain/leaf.vhd")),
    );
}

#[test]
fn rejections_from_swift_objects() {
    let Some(env) = setup() else { return };
    let s = store(&env);
    let (uploads, images_c) = (unique("up"), unique("img"));
    let _clean = Cleanup(env.clone(), vec![uploads.clone(), images_c.clone()]);
    s.ensure_container(&images_c).unwrap();
    let images = ImageStore::new(s.clone(), &images_c, "");
    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.vhd");
    std::fs::write(&junk, vec![7u8; 10_000]).unwrap();
    for (file, opts, code) in [
        (
            fixture("chain/leaf.vhd"),
            ImportOptions::default(),
            FailureCode::HasParent,
        ),
        (junk, ImportOptions::default(), FailureCode::NotVhd),
        (
            fixture("fixed.vhd"),
            ImportOptions {
                max_virtual_size: 4096,
                ..Default::default()
            },
            FailureCode::VirtualSizeTooLarge,
        ),
        (
            fixture("fixed.vhd"),
            ImportOptions {
                max_physical_size: 4096,
                ..Default::default()
            },
            FailureCode::PhysicalSizeTooLarge,
        ),
    ] {
        let name = file.file_name().unwrap().to_str().unwrap().to_string();
        put_file(&*s, &uploads, &name, &file);
        let mut task = Task::new(
            TaskType::Import,
            ImportInput::to_json(&uploads, &name, "x"),
            "tenant1",
        );
        let err = import::run(&mut task, &s, &images, &opts, progress::silent()).unwrap_err();
        assert_eq!(err.failure_code(), code, "{name}: {err}");
        assert_eq!(task.failure_code(), Some(code));
    }
    assert!(cloudimg_pipeline::list_all(&*s, &images_c, "")
        .unwrap()
        .is_empty());
}

/// A fixed disk of 80 MiB (40 blocks, two spans of the parallel zero scan) uploaded by
/// python-swiftclient as a DLO of 3 MiB segments, which cut blocks in the middle: the
/// import allocates exactly the blocks holding data, and the disk is the same.
#[test]
fn a_fixed_source_in_unaligned_segments_keeps_its_disk_and_drops_only_zero_blocks() {
    let Some(env) = setup() else { return };
    let s = store(&env);
    let (uploads, images_c) = (unique("up"), unique("img"));
    let _clean = Cleanup(
        env.clone(),
        vec![
            uploads.clone(),
            format!("{uploads}_segments"),
            images_c.clone(),
        ],
    );
    let tmp = tempfile::tempdir().unwrap();
    let (block, blocks) = (2usize << 20, 40usize);
    // Data in blocks 0 (all of it), 13 (its last byte only, past the segment cut at
    // 27 MiB), 31 (its first byte) and 39; every other block is zero.
    let data_blocks = [0usize, 13, 31, 39];
    let mut disk = vec![0u8; block * blocks];
    disk[..block].fill(0x11);
    disk[14 * block - 1] = 0x22;
    disk[31 * block] = 0x33;
    disk[39 * block + 12345] = 0x44;
    let mut footer = cloudimg_vhd::Footer::new(
        cloudimg_vhd::DiskType::Fixed,
        disk.len() as u64,
        uuid::Uuid::new_v4(),
        0,
    );
    disk.extend_from_slice(&footer.seal());
    let src = tmp.path().join("fixed.vhd");
    std::fs::write(&src, &disk).unwrap();
    swiftclient(
        &env,
        tmp.path(),
        &[
            "upload",
            "--segment-size",
            &(3 << 20).to_string(),
            &uploads,
            "fixed.vhd",
        ],
    );

    let (_, _, stored) = import_and_unpack(&s, &uploads, "fixed.vhd", &images_c, tmp.path());
    assert_same_disk(&stored, &open_leaf(&src));
    let allocated: Vec<usize> = stored
        .leaf()
        .bat()
        .iter()
        .enumerate()
        .filter(|(_, &e)| e != u32::MAX)
        .map(|(b, _)| b)
        .collect();
    assert_eq!(allocated, data_blocks);
}

//! Import and export end to end against local-directory stores: the virtual disk that
//! goes in comes out, every failure code is provoked, a failure mid-export leaves no
//! manifest and no segments, and a re-run of the same task resumes.

mod common;

use cloudimg_pipeline::{ObjectPath, ObjectStore};
use cloudimg_tasks::export::{self, ExportOptions};
use cloudimg_tasks::import::{self, ImportOptions};
use cloudimg_tasks::{
    progress, ErrorKind, ExportInput, FailureCode, ImageStore, ImportInput, Task, TaskStatus,
    TaskType,
};
use common::*;
use std::sync::Arc;

struct Env {
    _dir: tempfile::TempDir,
    src: Arc<dyn ObjectStore>,
    images: ImageStore,
    dest: Arc<dyn ObjectStore>,
    root: std::path::PathBuf,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let src = local(&dir.path().join("src"));
    let images = ImageStore::open(dir.path().join("store").to_str().unwrap()).unwrap();
    let dest = local(&dir.path().join("dest"));
    dest.ensure_container("exports").unwrap();
    Env {
        root: dir.path().to_path_buf(),
        _dir: dir,
        src,
        images,
        dest,
    }
}

fn import_file(
    e: &Env,
    file: &std::path::Path,
    opts: &ImportOptions,
) -> (Task, cloudimg_tasks::Result<import::ImportOutcome>) {
    let name = file.file_name().unwrap().to_str().unwrap();
    put_file(&*e.src, "uploads", name, file);
    let mut task = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", name, "my image"),
        "tenant1",
    );
    let r = import::run(&mut task, &e.src, &e.images, opts, progress::silent());
    (task, r)
}

fn export_image(
    e: &Env,
    id: &str,
    opts: &ExportOptions,
) -> (Task, cloudimg_tasks::Result<export::ExportOutcome>) {
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(id, "exports"),
        "tenant1",
    );
    let r = export::run(&mut task, &e.images, &e.dest, opts, progress::silent());
    (task, r)
}

/// Every object in a local store's container (names).
fn names(store: &dyn ObjectStore, container: &str) -> Vec<String> {
    cloudimg_pipeline::list_all(store, container, "")
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect()
}

#[test]
fn import_then_export_keeps_the_virtual_disk() {
    let e = env();
    for f in [
        "fixed.vhd",
        "dynamic-qemu.vhd",
        "dynamic-vhdutil.vhd",
        "dynamic-hyperv.vhd",
    ] {
        let src = fixture(f);
        let (task, r) = import_file(&e, &src, &ImportOptions::default());
        let out = r.unwrap_or_else(|err| panic!("{f}: {err}"));
        assert_eq!(task.status, TaskStatus::Success);
        assert_eq!(
            task.result.as_ref().unwrap()["image_id"],
            out.image_id.to_string()
        );
        assert!(task.expires_at.is_some());
        let rec = e.images.require(&out.image_id).unwrap();
        assert_eq!(
            (rec.disk_format.as_str(), rec.container_format.as_str()),
            ("vhd", "ovf")
        );
        assert_eq!(rec.options(), "0");
        assert_eq!(rec.owner, "tenant1");
        assert_eq!(rec.os_hash_algo, "sha512");
        let tmp = tempfile::tempdir().unwrap();
        let layers = unpack_image(&e.images, &rec, tmp.path());
        assert_eq!(layers.len(), 1);
        let stored = open_chain(&layers);
        let original = open_leaf(&src);
        assert_same_disk(&stored, &original);
        assert_eq!(rec.virtual_size, original.virtual_size());
        // The stored VHD is dynamic and sparse.
        assert_eq!(stored.leaf().disk_type(), cloudimg_vhd::DiskType::Dynamic);

        let (task, r) = export_image(&e, &rec.id, &ExportOptions::default());
        let out = r.unwrap_or_else(|err| panic!("export {f}: {err}"));
        assert_eq!(
            task.result.as_ref().unwrap()["export_location"],
            format!("exports/{}.vhd", rec.id)
        );
        assert_eq!(out.segments, 1);
        let got = tmp.path().join("exported.vhd");
        get_file(
            &*e.dest,
            &ObjectPath::new("exports", format!("{}.vhd", rec.id)),
            &got,
        );
        let exported = open_leaf(&got);
        assert_eq!(exported.leaf().disk_type(), cloudimg_vhd::DiskType::Dynamic);
        assert_same_disk(&exported, &original);
    }
}

#[test]
fn fixed_import_drops_zero_blocks() {
    let e = env();
    let src = fixture("fixed.vhd");
    let (_, r) = import_file(&e, &src, &ImportOptions::default());
    let rec = e.images.require(&r.unwrap().image_id).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let stored = open_chain(&unpack_image(&e.images, &rec, tmp.path()));
    let original = open_leaf(&src);
    // Every allocated block of the output holds data.
    let img = stored.leaf();
    let bs = img.block_size().unwrap() as u64;
    let mut buf = vec![0u8; bs as usize];
    for (b, &entry) in img.bat().iter().enumerate() {
        if entry == u32::MAX {
            continue;
        }
        let off = b as u64 * bs;
        let n = (original.virtual_size() - off).min(bs) as usize;
        stored.read_at(off, &mut buf[..n]).unwrap();
        assert!(
            buf[..n].iter().any(|&x| x != 0),
            "block {b} allocated but zero"
        );
    }
}

#[test]
fn chain_package_exports_as_one_vhd_in_segments() {
    let e = env();
    let tmp = tempfile::tempdir().unwrap();
    let Some(pkg) = tar_package(&chain_layers(), tmp.path()) else {
        return;
    };
    let rec =
        cloudimg_tasks::register::register_package(&e.images, &pkg, "chain", "tenant1").unwrap();
    assert_eq!(rec.package.layers.len(), 3);
    // Small segments so the DLO has several.
    let opts = ExportOptions {
        segment_size: 100_000,
        ..Default::default()
    };
    let (task, r) = export_image(&e, &rec.id, &opts);
    let out = r.unwrap();
    assert_eq!(task.status, TaskStatus::Success);
    assert!(out.segments > 2, "{} segments", out.segments);
    let listed = names(&*e.dest, "exports");
    let base = format!("{}.vhd", rec.id);
    assert_eq!(listed.len(), out.segments + 1);
    assert_eq!(listed[0], base);
    for (k, n) in listed[1..].iter().enumerate() {
        assert_eq!(*n, format!("{base}-{:05}", k + 1));
    }
    let got = tmp.path().join("exported.vhd");
    get_file(&*e.dest, &ObjectPath::new("exports", &base), &got);
    assert_eq!(std::fs::metadata(&got).unwrap().len(), out.size);
    let exported = open_leaf(&got);
    assert_same_disk(&exported, &open_leaf(&fixture("chain/leaf.vhd")));
    // Export again (same task input): starts over, same content, no stray segments.
    let (_, r) = export_image(&e, &rec.id, &opts);
    let again = r.unwrap();
    assert_eq!(names(&*e.dest, "exports").len(), again.segments + 1);
}

#[test]
fn each_failure_code_is_reported() {
    let e = env();
    let tmp = tempfile::tempdir().unwrap();
    let dynamic = fixture("dynamic-qemu.vhd");
    let patch = |name: &str, f: &dyn Fn(&mut cloudimg_vhd::Footer)| {
        let mut bytes = std::fs::read(&dynamic).unwrap();
        let len = bytes.len();
        let mut footer =
            cloudimg_vhd::Footer::parse(bytes[len - 512..].try_into().unwrap()).unwrap();
        f(&mut footer);
        let raw = footer.seal();
        bytes[len - 512..].copy_from_slice(&raw);
        bytes[..512].copy_from_slice(&raw);
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let junk = tmp.path().join("junk.vhd");
    std::fs::write(&junk, vec![0x5au8; 70_000]).unwrap();
    let cases: Vec<(std::path::PathBuf, ImportOptions, FailureCode)> = vec![
        (junk, ImportOptions::default(), FailureCode::NotVhd),
        (
            fixture("corrupt/truncated.vhd"),
            ImportOptions::default(),
            FailureCode::NotVhd,
        ),
        (
            patch("type5.vhd", &|f| {
                f.disk_type = cloudimg_vhd::DiskType::Other(5)
            }),
            ImportOptions::default(),
            FailureCode::NotFixedOrDynamic,
        ),
        (
            fixture("chain/leaf.vhd"),
            ImportOptions::default(),
            FailureCode::HasParent,
        ),
        (
            patch("nil.vhd", &|f| f.uuid = uuid::Uuid::nil()),
            ImportOptions::default(),
            FailureCode::NullUuid,
        ),
        (
            dynamic.clone(),
            ImportOptions {
                max_virtual_size: 1 << 20,
                ..Default::default()
            },
            FailureCode::VirtualSizeTooLarge,
        ),
        (
            dynamic.clone(),
            ImportOptions {
                max_physical_size: 4096,
                ..Default::default()
            },
            FailureCode::PhysicalSizeTooLarge,
        ),
    ];
    for (file, opts, code) in cases {
        let (task, r) = import_file(&e, &file, &opts);
        let err = r.unwrap_err();
        assert_eq!(err.failure_code(), code, "{}: {err}", file.display());
        assert!(err.kind().is_data_error());
        assert_eq!(task.status, TaskStatus::Failure);
        assert_eq!(task.failure_code(), Some(code), "{}", task.message);
        assert!(
            task.message.starts_with(&code.code().to_string()),
            "{}",
            task.message
        );
        assert!(task.result.is_none());
    }
    // 111: a property other than name.
    put_file(&*e.src, "uploads", "ok.vhd", &dynamic);
    let input = serde_json::json!({"import_from": "uploads/ok.vhd", "import_from_format": "vhd",
        "image_properties": {"name": "x", "os_distro": "ubuntu"}});
    let mut task = Task::new(TaskType::Import, input, "tenant1");
    let err = import::run(
        &mut task,
        &e.src,
        &e.images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap_err();
    assert_eq!(err.failure_code(), FailureCode::Unspecified);
    assert_eq!(task.failure_code(), Some(FailureCode::Unspecified));
    // Missing object: 111, not a data error.
    let mut task = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", "nope.vhd", "x"),
        "t",
    );
    let err = import::run(
        &mut task,
        &e.src,
        &e.images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    // Nothing of the failed imports is in the store.
    assert_eq!(
        names(&**e.images.object_store(), "images"),
        Vec::<String>::new()
    );
}

#[test]
fn export_refusals() {
    let e = env();
    let (_, r) = import_file(&e, &fixture("dynamic-qemu.vhd"), &ImportOptions::default());
    let id = r.unwrap().image_id;
    let mut rec = e.images.require(&id).unwrap();
    // Not the owner.
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, "exports"),
        "someone-else",
    );
    let err = export::run(
        &mut task,
        &e.images,
        &e.dest,
        &ExportOptions::default(),
        progress::silent(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Forbidden);
    assert_eq!(task.failure_code(), Some(FailureCode::Unspecified));
    // Missing container; bad container names.
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, "nocontainer"),
        "tenant1",
    );
    assert_eq!(
        export::run(
            &mut task,
            &e.images,
            &e.dest,
            &ExportOptions::default(),
            progress::silent()
        )
        .unwrap_err()
        .kind(),
        ErrorKind::NotFound
    );
    for bad in ["a.b", "a/b", "a?b"] {
        let mut task = Task::new(
            TaskType::Export,
            ExportInput::to_json(&rec.id, bad),
            "tenant1",
        );
        let err = export::run(
            &mut task,
            &e.images,
            &e.dest,
            &ExportOptions::default(),
            progress::silent(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad}");
    }
    // Public, shared, options != 0.
    for change in 0..3 {
        let mut r2 = rec.clone();
        match change {
            0 => r2.visibility = cloudimg_tasks::Visibility::Public,
            1 => r2.visibility = cloudimg_tasks::Visibility::Shared,
            _ => {
                r2.properties.insert(
                    cloudimg_tasks::imagestore::OPTIONS_PROPERTY.into(),
                    "1".into(),
                );
            }
        }
        e.images.put_record(&r2).unwrap();
        let (_, r) = export_image(&e, &rec.id, &ExportOptions::default());
        assert_eq!(
            r.unwrap_err().kind(),
            ErrorKind::Forbidden,
            "change {change}"
        );
    }
    rec.properties.clear();
    e.images.put_record(&rec).unwrap();
    let (_, r) = export_image(&e, &rec.id, &ExportOptions::default());
    r.unwrap();
    // Unknown image.
    let (_, r) = export_image(
        &e,
        &uuid::Uuid::new_v4().to_string(),
        &ExportOptions::default(),
    );
    assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn rerun_of_an_import_task_resumes() {
    let e = env();
    let src = fixture("dynamic-vhdutil.vhd");
    put_file(&*e.src, "uploads", "a.vhd", &src);
    let mut t1 = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", "a.vhd", "a"),
        "tenant1",
    );
    let first = import::run(
        &mut t1,
        &e.src,
        &e.images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap();
    let mut t2 = Task::with_id(t1.id.clone(), TaskType::Import, t1.input.clone(), "tenant1");
    let again = import::run(
        &mut t2,
        &e.src,
        &e.images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap();
    assert_eq!(first.image_id, again.image_id);
    assert!(again.resumed);
    assert_eq!(e.images.list().unwrap().len(), 1);
    // Debris of a killed run (a package without a record) is cleared by the re-run.
    let mut t3 = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", "a.vhd", "b"),
        "tenant1",
    );
    let id3 = import::image_id_for(&t3);
    let debris = e.images.package_path(&id3);
    e.images
        .object_store()
        .put(&debris, &b"half a package".to_vec(), &Default::default())
        .unwrap();
    let out = import::run(
        &mut t3,
        &e.src,
        &e.images,
        &ImportOptions::default(),
        progress::silent(),
    )
    .unwrap();
    assert_eq!(out.image_id, id3);
    let rec = e.images.require(&id3).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    assert_same_disk(
        &open_chain(&unpack_image(&e.images, &rec, tmp.path())),
        &open_leaf(&src),
    );
    let _ = e.root;
}

#[test]
fn a_fault_mid_export_leaves_no_manifest_and_no_segments() {
    let e = env();
    let tmp = tempfile::tempdir().unwrap();
    let Some(pkg) = tar_package(&chain_layers(), tmp.path()) else {
        return;
    };
    let rec =
        cloudimg_tasks::register::register_package(&e.images, &pkg, "chain", "tenant1").unwrap();
    let opts = ExportOptions {
        segment_size: 65_536,
        upload_jobs: 2,
        ..Default::default()
    };
    for n in [1, 3, 7] {
        let failing = FailNthPut::wrap(e.dest.clone(), ".vhd-", n);
        let mut task = Task::new(
            TaskType::Export,
            ExportInput::to_json(&rec.id, "exports"),
            "tenant1",
        );
        let err =
            export::run(&mut task, &e.images, &failing, &opts, progress::silent()).unwrap_err();
        assert_eq!(task.status, TaskStatus::Failure);
        assert!(err.to_string().contains("injected fault"), "{err}");
        assert!(!err.kind().is_data_error());
        assert_eq!(
            names(&*e.dest, "exports"),
            Vec::<String>::new(),
            "fault at PUT {n} left objects"
        );
    }
    // The same task input then succeeds.
    let (_, r) = export_image(&e, &rec.id, &opts);
    r.unwrap();
}

#[test]
fn a_killed_export_resumes_to_the_same_bytes() {
    let e = env();
    let tmp = tempfile::tempdir().unwrap();
    let Some(pkg) = tar_package(&chain_layers(), tmp.path()) else {
        return;
    };
    let rec =
        cloudimg_tasks::register::register_package(&e.images, &pkg, "chain", "tenant1").unwrap();
    let opts = ExportOptions {
        segment_size: 65_536,
        // One PUT at a time: the kill lands after exactly 3 stored segments.
        upload_jobs: 1,
        ..Default::default()
    };
    let manifest = ObjectPath::new("exports", format!("{}.vhd", rec.id));
    // The reference: an uninterrupted export, read back, then removed.
    let (_, r) = export_image(&e, &rec.id, &opts);
    let whole = r.unwrap();
    assert_eq!(whole.segments_reused, 0);
    let reference = tmp.path().join("reference.vhd");
    get_file(&*e.dest, &manifest, &reference);
    cloudimg_pipeline::upload::remove(
        &*e.dest,
        &manifest,
        &Default::default(),
        cloudimg_pipeline::upload::LargeKind::Dlo,
        None,
    )
    .unwrap();
    assert!(names(&*e.dest, "exports").is_empty());

    // Killed during the 4th segment: its cleanup never reaches the store.
    let killed = FailNthPut::killing(e.dest.clone(), ".vhd-", 4);
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, "exports"),
        "tenant1",
    );
    export::run(&mut task, &e.images, &killed, &opts, progress::silent()).unwrap_err();
    let left = names(&*e.dest, "exports");
    assert_eq!(left.len(), 3, "three segments survive the kill: {left:?}");
    assert!(!left.contains(&manifest.name), "no manifest after a kill");

    // The re-run of the same input reuses them and ends with the same bytes.
    let (task, r) = export_image(&e, &rec.id, &opts);
    let out = r.unwrap();
    assert_eq!(task.status, TaskStatus::Success);
    assert_eq!(out.segments_reused, 3);
    assert_eq!(out.segments, whole.segments);
    let resumed = tmp.path().join("resumed.vhd");
    get_file(&*e.dest, &manifest, &resumed);
    assert_eq!(
        std::fs::read(&resumed).unwrap(),
        std::fs::read(&reference).unwrap(),
        "the resumed export is byte for byte the uninterrupted one"
    );
    assert_eq!(names(&*e.dest, "exports").len(), out.segments + 1);

    // A stored segment whose bytes differ (same size) is sent again, not trusted.
    let seg2 = ObjectPath::new("exports", format!("{}-00002", manifest.name));
    let mut junk = read_all(e.dest.get(&seg2, None).unwrap().reader);
    junk[100] ^= 0xff;
    e.dest
        .put(&seg2, &junk, &cloudimg_pipeline::PutOptions::default())
        .unwrap();
    let (_, r) = export_image(&e, &rec.id, &opts);
    assert_eq!(r.unwrap().segments_reused, out.segments - 1);
    let again = tmp.path().join("again.vhd");
    get_file(&*e.dest, &manifest, &again);
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&reference).unwrap()
    );
}

#[test]
fn a_fault_mid_import_leaves_no_record_and_no_objects() {
    let e = env();
    let src = fixture("dynamic-hyperv.vhd");
    // Tiny segments so the package is a DLO of several.
    let mut opts = ImportOptions::default();
    opts.package.segment_size = 1 << 20;
    let big = tempfile::tempdir().unwrap();
    // A source large enough to need several 1 MiB segments even compressed: random data.
    let raw = big.path().join("disk.raw");
    let mut data = vec![0u8; 6 << 20];
    let mut x = 0x9e3779b97f4a7c15u64;
    for b in data.iter_mut() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    std::fs::write(&raw, &data).unwrap();
    let vhd = big.path().join("random.vhd");
    {
        let mut s = cloudimg_vhd::write::RawFileSource::open(&raw).unwrap();
        let f = std::fs::File::create(&vhd).unwrap();
        cloudimg_vhd::write::write_dynamic_file(&mut s, &f, &Default::default(), &mut |_| {})
            .unwrap();
    }
    let _ = src;
    let images_store = e.images.object_store().clone();
    let failing_images = ImageStore::new(
        FailNthPut::wrap(images_store.clone(), ".tar.gz-", 3),
        "images",
        "",
    );
    put_file(&*e.src, "uploads", "random.vhd", &vhd);
    let mut task = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", "random.vhd", "r"),
        "tenant1",
    );
    let err = import::run(
        &mut task,
        &e.src,
        &failing_images,
        &opts,
        progress::silent(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("injected fault"), "{err}");
    assert_eq!(task.status, TaskStatus::Failure);
    assert_eq!(names(&*images_store, "images"), Vec::<String>::new());
    // A re-run of the same task succeeds and the package is a DLO of several segments.
    let mut again = Task::with_id(
        task.id.clone(),
        TaskType::Import,
        task.input.clone(),
        "tenant1",
    );
    let out = import::run(&mut again, &e.src, &e.images, &opts, progress::silent()).unwrap();
    let rec = e.images.require(&out.image_id).unwrap();
    assert!(
        rec.package.segments.len() >= 3,
        "{} segments",
        rec.package.segments.len()
    );
    let tmp = tempfile::tempdir().unwrap();
    assert_same_disk(
        &open_chain(&unpack_image(&e.images, &rec, tmp.path())),
        &open_leaf(&vhd),
    );
    let (_, r) = export_image(
        &e,
        &rec.id,
        &ExportOptions {
            segment_size: 1_000_000,
            ..Default::default()
        },
    );
    let got = tmp.path().join("x.vhd");
    get_file(
        &*e.dest,
        &ObjectPath::new("exports", format!("{}.vhd", rec.id)),
        &got,
    );
    assert_eq!(r.unwrap().size, std::fs::metadata(&got).unwrap().len());
    assert_same_disk(&open_leaf(&got), &open_leaf(&vhd));
}

#[test]
fn imported_package_is_indexed_and_a_standard_tarball() {
    let e = env();
    let src = fixture("dynamic-qemu.vhd");
    let (_, r) = import_file(&e, &src, &ImportOptions::default());
    let rec = e.images.require(&r.unwrap().image_id).unwrap();
    assert_eq!(rec.package.compression, "gzip-indexed");
    // XenStream (flate2's multi-member reader) reads it and its MD5 is the checksum.
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(unpack_image(&e.images, &rec, tmp.path()).len(), 1);
    if !cloudimg_fixtures::env::require_tool("tar") {
        return;
    }
    let pkg = tmp.path().join("package.tgz");
    get_file(
        &**e.images.object_store(),
        &ObjectPath::new(e.images.container(), &rec.package.object),
        &pkg,
    );
    let out = std::process::Command::new("tar")
        .arg("-tzf")
        .arg(&pkg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0.vhd");
    let x = tmp.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = std::process::Command::new("tar")
        .arg("-xzf")
        .arg(&pkg)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    assert_same_disk(&open_leaf(&x.join("0.vhd")), &open_leaf(&src));
}

/// Export of an indexed package reads it by range from the store: it works with a
/// temporary folder that does not exist (nothing is spooled), never GETs the whole
/// package, and reads about the package's size once at most.
#[test]
fn indexed_export_reads_by_range_without_spooling() {
    let dir = tempfile::tempdir().unwrap();
    let src_store = local(&dir.path().join("src"));
    let counting = CountingGets::wrap(local(&dir.path().join("store")), ".tar.gz");
    counting.inner.ensure_container("images").unwrap();
    let images = ImageStore::new(counting.clone(), "images", "");
    let dest = local(&dir.path().join("dest"));
    dest.ensure_container("exports").unwrap();
    let vhd = sparse_vhd(dir.path(), 24);
    put_file(&*src_store, "uploads", "sparse.vhd", &vhd);
    let mut task = Task::new(
        TaskType::Import,
        ImportInput::to_json("uploads", "sparse.vhd", "sparse"),
        "tenant1",
    );
    // Small package segments: the package is a DLO and members straddle segments.
    let iopts = ImportOptions {
        package: cloudimg_tasks::package::PackageOptions {
            segment_size: 1 << 20,
            ..Default::default()
        },
        ..Default::default()
    };
    let out = import::run(&mut task, &src_store, &images, &iopts, progress::silent()).unwrap();
    let rec = images.require(&out.image_id).unwrap();
    assert_eq!(rec.package.compression, "gzip-indexed");
    assert!(rec.package.segments.len() > 3, "{:?}", rec.package.segments);
    let before = counting.read();
    let opts = ExportOptions {
        segment_size: 3 << 20,
        temp_dir: Some(dir.path().join("no-such-folder")),
        ..Default::default()
    };
    let mut task = Task::new(
        TaskType::Export,
        ExportInput::to_json(&rec.id, "exports"),
        "tenant1",
    );
    let r = export::run(&mut task, &images, &dest, &opts, progress::silent());
    let out = r.unwrap_or_else(|err| panic!("export: {err}"));
    assert!(out.segments > 1);
    let read = counting.read() - before;
    assert_eq!(
        counting
            .whole_gets
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    assert!(
        read <= rec.size + rec.size / 4,
        "read {read} bytes of a {}-byte package",
        rec.size
    );
    let got = dir.path().join("exported.vhd");
    get_file(
        &*dest,
        &ObjectPath::new("exports", format!("{}.vhd", rec.id)),
        &got,
    );
    assert_same_disk(&open_leaf(&got), &open_leaf(&vhd));
}

/// A chain packed as our indexed gzip and registered is exported by range too; the
/// same chain packed by `tar -zc` (legacy) goes through the spool; both equal the oracle.
#[test]
fn indexed_and_legacy_chain_packages_export_the_same_disk() {
    let e = env();
    let tmp = tempfile::tempdir().unwrap();
    let layers = chain_layers();
    let pkg = tmp.path().join("indexed.tgz");
    let inputs = layers
        .iter()
        .enumerate()
        .map(|(i, l)| cloudimg_ova::PackInput {
            name: format!("{i}.vhd"),
            len: std::fs::metadata(l).unwrap().len(),
            data: Box::new(std::fs::File::open(l).unwrap()),
        })
        .collect();
    let popts = cloudimg_ova::PackOptions {
        compression: cloudimg_ova::Compression::Indexed(cloudimg_ova::gzip::GzOptions {
            chunk_size: 64 * 1024,
            ..Default::default()
        }),
        mtime: Some(0),
    };
    cloudimg_ova::pack(std::fs::File::create(&pkg).unwrap(), inputs, &popts).unwrap();
    let rec =
        cloudimg_tasks::register::register_package(&e.images, &pkg, "chain", "tenant1").unwrap();
    assert_eq!(rec.package.compression, "gzip-indexed");
    let opts = ExportOptions {
        segment_size: 100_000,
        temp_dir: Some(tmp.path().join("no-such-folder")),
        ..Default::default()
    };
    let (_, r) = export_image(&e, &rec.id, &opts);
    r.unwrap();
    let got = tmp.path().join("indexed.vhd");
    get_file(
        &*e.dest,
        &ObjectPath::new("exports", format!("{}.vhd", rec.id)),
        &got,
    );
    let oracle = open_leaf(&fixture("chain/leaf.vhd"));
    assert_same_disk(&open_leaf(&got), &oracle);

    let Some(legacy) = tar_package(&layers, tmp.path()) else {
        return;
    };
    let rec =
        cloudimg_tasks::register::register_package(&e.images, &legacy, "chain", "tenant1").unwrap();
    assert_eq!(rec.package.compression, "gzip");
    // The legacy path needs its temporary folder.
    let (_, r) = export_image(&e, &rec.id, &opts);
    assert!(r.is_err());
    let (_, r) = export_image(&e, &rec.id, &ExportOptions::default());
    r.unwrap();
    let got = tmp.path().join("legacy.vhd");
    get_file(
        &*e.dest,
        &ObjectPath::new("exports", format!("{}.vhd", rec.id)),
        &got,
    );
    assert_same_disk(&open_leaf(&got), &oracle);
}

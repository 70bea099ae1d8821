//! `cloudimg import`, `export`, `upload`, `download` and `unpack` processes killed with
//! SIGKILL at named instants (`CLOUDIMG_CRASH_AT`: before the first segment, after it,
//! just before the manifest or the rename that publishes the output, mid-stream): nothing
//! that looks finished is left, a re-run of the same command finishes with the same bytes
//! (oracle: qemu-img's raw image, or the input itself), and the killed run's temporary
//! files are cleaned or reused, never served. Imports, exports, uploads and downloads run
//! against the local store and the test Swift (when configured): there, after the re-run,
//! a container holds the object and exactly its segments.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;
use support::{
    cloudimg, export_args, files, import_args, import_vhd, local_export, ok, raw_of, s, vhd_of,
};

const UPLOAD_POINTS: [&str; 3] = [
    "upload:before-first-segment",
    "upload:after-first-segment",
    "upload:before-manifest",
];

/// Runs `args` with the crash point set; asserts it was killed there.
fn killed_at(point: &str, args: &[&str]) {
    let o: Output = cloudimg()
        .env("CLOUDIMG_CRASH_AT", point)
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        o.status.signal(),
        Some(9),
        "{point}: {:?} {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Bytes that are half random, half text-like, from `seed`.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = 0x2545f4914f6cdd1d ^ seed;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if (i >> 12) % 2 == 0 {
                (x >> 56) as u8
            } else {
                b"0123456789 "[(x % 11) as usize]
            }
        })
        .collect()
}

#[test]
fn killed_imports_rerun_to_one_image_of_the_source() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (vhd, raw) = vhd_of(dir.path(), "src/uploads/disk.vhd", 6, 11);
    for point in UPLOAD_POINTS.iter().chain(&["import:before-record"]) {
        let store = dir.path().join("store");
        let args = import_args(s(&vhd), s(&store));
        killed_at(point, &args);
        let names = files(&store.join("images"));
        assert!(
            !names.iter().any(|n| n.ends_with(".json")),
            "{point}: a killed import left a record: {names:?}"
        );
        // The re-run takes over the dead run's lock, removes its debris, finishes.
        let t = ok(&cloudimg().args(args).output().unwrap());
        let id = t["result"]["image_id"].as_str().unwrap();
        let names = files(&store.join("images"));
        assert_eq!(
            names.iter().filter(|n| n.ends_with(".json")).count(),
            1,
            "{point}: {names:?}"
        );
        // No lock entry and no temporary of the dead run (the re-run's first write into a
        // folder removes those of writers no longer running).
        assert!(
            names
                .iter()
                .all(|n| n.starts_with(id) && !n.contains(".lock") && !n.contains("tmp")),
            "{point}: {names:?}"
        );
        let all = files(&store);
        assert!(
            !all.iter().any(|n| n.contains(".cloudimg-tmp.")),
            "{point}: {all:?}"
        );
        let exports = dir.path().join("out/exports");
        std::fs::create_dir_all(&exports).unwrap();
        ok(&cloudimg()
            .args(["export", "--store", s(&store), "--image", id])
            .args([
                "--to",
                s(&exports),
                "--owner",
                "p1",
                "--segment-size",
                "1048576",
            ])
            .output()
            .unwrap());
        let got = local_export(&exports, &format!("{id}.vhd"), &dir.path().join("x.vhd")).unwrap();
        assert!(raw_of(&got) == raw, "{point}: the image is the source");
        std::fs::remove_dir_all(&store).unwrap();
        std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    }
}

#[test]
fn killed_exports_rerun_to_the_source_disk() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (vhd, raw) = vhd_of(dir.path(), "src/uploads/disk.vhd", 6, 12);
    let store = dir.path().join("store");
    let id = import_vhd(&vhd, &store);
    let exports = dir.path().join("dest/exports");
    let manifest = format!("{id}.vhd");
    for point in UPLOAD_POINTS {
        std::fs::create_dir_all(&exports).unwrap();
        let args = export_args(s(&store), &id, s(&exports));
        killed_at(point, &args);
        assert!(
            !exports.join(&manifest).exists(),
            "{point}: a killed export left its manifest"
        );
        ok(&cloudimg().args(args).output().unwrap());
        let got = local_export(&exports, &manifest, &dir.path().join("x.vhd")).unwrap();
        assert!(raw_of(&got) == raw, "{point}: the export is the source");
        // No lock entry and no temporary (data or sidecar) of the killed run is left.
        let all = files(dir.path());
        assert!(
            !all.iter()
                .any(|n| n.contains(".lock") || n.contains(".cloudimg-tmp")),
            "{point}: {all:?}"
        );
        std::fs::remove_dir_all(dir.path().join("dest")).unwrap();
    }
}

/// Uploads killed at each point, then re-run, to `dest_of(point)`; returns each
/// destination with the uploaded object's bytes as a download reads them.
fn killed_uploads(
    dir: &Path,
    input: &Path,
    dest_of: &dyn Fn(&str) -> String,
) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for point in UPLOAD_POINTS {
        let dest = dest_of(point);
        let args = [
            "upload",
            "--segment-size",
            "1048576",
            "-j",
            "2",
            s(input),
            &dest,
        ];
        killed_at(point, &args);
        // Nothing readable under the name yet.
        let back = dir.join("back.bin");
        let _ = std::fs::remove_file(&back);
        let o = cloudimg()
            .args(["download", &dest, s(&back)])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: a killed upload is readable");
        ok(&cloudimg().args(args).output().unwrap());
        if let Some(obj) = dest.strip_prefix("file://") {
            // The re-run removed the killed run's temporaries (store root: two up).
            let all = files(Path::new(obj).parent().unwrap().parent().unwrap());
            assert!(
                !all.iter().any(|n| n.contains(".cloudimg-tmp")),
                "{point}: {all:?}"
            );
        }
        ok(&cloudimg()
            .args(["download", &dest, s(&back)])
            .output()
            .unwrap());
        out.push((dest, std::fs::read(&back).unwrap()));
    }
    out
}

/// Deletes an uploaded object and its segments.
fn remove(dest: &str) {
    let (store, path) = cloudimg_pipeline::open_url(dest).unwrap();
    let opts = cloudimg_pipeline::upload::UploadOptions::default();
    for kind in [
        cloudimg_pipeline::upload::LargeKind::Slo,
        cloudimg_pipeline::upload::LargeKind::Dlo,
    ] {
        let _ = cloudimg_pipeline::upload::remove(&*store, &path, &opts, kind, None);
    }
}

#[test]
fn killed_uploads_rerun_to_the_same_object() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let d = data(3_500_000, 3);
    std::fs::write(&input, &d).unwrap();
    let dest = format!("file://{}/store/c/obj.bin", dir.path().display());
    std::fs::create_dir_all(dir.path().join("store/c")).unwrap();
    let fresh = |_: &str| {
        remove(&dest); // each point starts from nothing
        dest.clone()
    };
    for (_, got) in killed_uploads(dir.path(), &input, &fresh) {
        assert!(got == d);
    }
}

/// The objects of Swift container `c`: `name`, then its segments `name-00001`, ... whose
/// sizes add up to `size` (the killed run's were reused or removed), and `others`.
fn only_object_and_segments(c: &str, name: &str, size: u64, others: &[&str], point: &str) {
    let all = support::swift_listing(c);
    let segs: Vec<_> = all
        .iter()
        .filter(|(n, _)| n.starts_with(&format!("{name}-")))
        .collect();
    let rest: Vec<_> = all
        .iter()
        .filter(|(n, _)| !n.starts_with(&format!("{name}-")))
        .map(|(n, _)| n.as_str())
        .collect();
    let mut want = [&[name], others].concat();
    want.sort();
    assert_eq!(rest, want, "{point}: {all:?}");
    assert!(segs.len() > 1, "{point}: {all:?}");
    assert_eq!(
        segs.iter().map(|(_, n)| n).sum::<u64>(),
        size,
        "{point}: stray segments: {all:?}"
    );
    for (i, (n, _)) in segs.iter().enumerate() {
        assert_eq!(*n, format!("{name}-{:05}", i + 1), "{point}: {all:?}");
    }
}

#[test]
fn killed_uploads_to_swift_rerun_to_the_same_object() {
    if support::swift_env().is_none() {
        return;
    }
    let gc = support::SwiftCleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let d = data(3_500_000, 7);
    std::fs::write(&input, &d).unwrap();
    let fresh = |_: &str| format!("swift://{}/obj.bin", gc.add(support::unique("kill-up")));
    for (dest, got) in killed_uploads(dir.path(), &input, &fresh) {
        assert!(got == d, "{dest}");
        let c = dest["swift://".len()..].split('/').next().unwrap();
        only_object_and_segments(c, "obj.bin", d.len() as u64, &[], &dest);
    }
}

#[test]
fn killed_imports_into_swift_rerun_to_one_image_of_the_source() {
    if support::swift_env().is_none() || !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let gc = support::SwiftCleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let (vhd, raw) = vhd_of(dir.path(), "src/uploads/disk.vhd", 6, 13);
    for point in UPLOAD_POINTS.iter().chain(&["import:before-record"]) {
        let c = gc.add(support::unique("kill-imp"));
        let store = format!("swift://{c}");
        let args = import_args(s(&vhd), &store);
        killed_at(point, &args);
        let names = support::swift_objects(&c);
        assert!(
            !names.iter().any(|n| n.ends_with(".json")),
            "{point}: a killed import left a record: {names:?}"
        );
        let t = ok(&cloudimg().args(args).output().unwrap());
        let id = t["result"]["image_id"].as_str().unwrap();
        // One record and one package whose segments add up to the recorded size.
        let rec = dir.path().join("rec.json");
        let _ = std::fs::remove_file(&rec);
        ok(&cloudimg()
            .args(["download", &format!("{store}/{id}.json"), s(&rec)])
            .output()
            .unwrap());
        let rec: serde_json::Value = serde_json::from_slice(&std::fs::read(&rec).unwrap()).unwrap();
        let size = rec["size"].as_u64().unwrap();
        let record = format!("{id}.json");
        only_object_and_segments(&c, &format!("{id}.tar.gz"), size, &[&record], point);
        let exports = dir.path().join("out/exports");
        std::fs::create_dir_all(&exports).unwrap();
        ok(&cloudimg()
            .args(export_args(&store, id, s(&exports)))
            .output()
            .unwrap());
        let got = local_export(&exports, &format!("{id}.vhd"), &dir.path().join("x.vhd")).unwrap();
        assert!(raw_of(&got) == raw, "{point}: the image is the source");
        std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    }
}

#[test]
fn killed_exports_into_swift_rerun_to_the_source_disk() {
    if support::swift_env().is_none() || !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let gc = support::SwiftCleanup::default();
    let dir = tempfile::tempdir().unwrap();
    let (vhd, raw) = vhd_of(dir.path(), "src/uploads/disk.vhd", 6, 14);
    let store = dir.path().join("store");
    let id = import_vhd(&vhd, &store);
    let manifest = format!("{id}.vhd");
    for point in UPLOAD_POINTS {
        let to = gc.made(dir.path(), "kill-exp");
        let c = &to["swift://".len()..];
        let args = export_args(s(&store), &id, &to);
        killed_at(point, &args);
        let back = dir.path().join("back.vhd");
        let _ = std::fs::remove_file(&back);
        let o = cloudimg()
            .args(["download", &format!("{to}/{manifest}"), s(&back)])
            .output()
            .unwrap();
        assert!(!o.status.success(), "{point}: a killed export is readable");
        ok(&cloudimg().args(args).output().unwrap());
        ok(&cloudimg()
            .args(["download", &format!("{to}/{manifest}"), s(&back)])
            .output()
            .unwrap());
        assert!(raw_of(&back) == raw, "{point}: the export is the source");
        let size = std::fs::metadata(&back).unwrap().len();
        only_object_and_segments(c, &manifest, size, &["tiny"], point);
        let all = files(&store);
        assert!(
            !all.iter()
                .any(|n| n.contains(".lock") || n.contains(".cloudimg-tmp")),
            "{point}: {all:?}"
        );
    }
}

/// Downloads of `src` (holding `d`) killed at each point, then re-run.
fn killed_downloads(dir: &Path, src: &str, d: &[u8]) {
    for point in ["download:mid-stream", "download:before-publish"] {
        let out_dir = dir.join("out");
        std::fs::create_dir_all(&out_dir).unwrap();
        let out = out_dir.join("disk.bin");
        let args = ["download", "-j", "1", "--piece-size", "1M", src, s(&out)];
        killed_at(point, &args);
        assert!(
            !out.exists(),
            "{point}: a killed download published {out:?}"
        );
        let left = files(&out_dir);
        assert_eq!(left.len(), 1, "{point}: {left:?}");
        assert!(left[0].starts_with("disk.bin.part-"), "{left:?}");
        ok(&cloudimg().args(args).output().unwrap());
        assert!(std::fs::read(&out).unwrap() == d, "{point}: {src}");
        assert_eq!(
            files(&out_dir),
            ["disk.bin"],
            "{point}: the part was removed"
        );
        std::fs::remove_dir_all(&out_dir).unwrap();
    }
}

#[test]
fn killed_downloads_rerun_to_the_same_bytes_and_leave_no_part() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.bin");
    let d = data(3_500_000, 4);
    std::fs::write(&input, &d).unwrap();
    let src = format!("file://{}/store/c/obj.bin", dir.path().display());
    std::fs::create_dir_all(dir.path().join("store/c")).unwrap();
    ok(&cloudimg()
        .args(["upload", "--segment-size", "1048576", s(&input), &src])
        .output()
        .unwrap());
    killed_downloads(dir.path(), &src, &d);
    if support::swift_env().is_some() {
        let gc = support::SwiftCleanup::default();
        let src = format!("swift://{}/obj.bin", gc.add(support::unique("kill-dl")));
        ok(&cloudimg()
            .args(["upload", "--segment-size", "1048576", s(&input), &src])
            .output()
            .unwrap());
        killed_downloads(dir.path(), &src, &d);
    }
}

#[test]
fn killed_unpacks_rerun_to_the_same_files() {
    if !cloudimg_fixtures::env::require_tool("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let (a, b) = (data(2_500_000, 5), data(1_500_000, 6));
    std::fs::write(src.join("a.bin"), &a).unwrap();
    std::fs::write(src.join("b.bin"), &b).unwrap();
    let tgz = dir.path().join("files.tar.gz");
    let st = std::process::Command::new("tar")
        .arg("czf")
        .arg(&tgz)
        .arg("-C")
        .arg(&src)
        .args(["a.bin", "b.bin"])
        .status()
        .unwrap();
    assert!(st.success());
    for point in [
        "unpack:mid-stream",
        "unpack:before-publish",
        "unpack:mid-publish",
    ] {
        let out = dir.path().join("out");
        let args = ["unpack", "--layout", "any", s(&tgz), s(&out)];
        killed_at(point, &args);
        let left = files(&out);
        let published: Vec<_> = left.iter().filter(|n| !n.starts_with('.')).collect();
        match point {
            "unpack:mid-publish" => assert_eq!(published, ["a.bin"], "{left:?}"),
            _ => assert!(published.is_empty(), "{point}: {left:?}"),
        }
        ok(&cloudimg().args(args).output().unwrap());
        assert_eq!(
            files(&out),
            ["a.bin", "b.bin"],
            "{point}: temporaries removed"
        );
        assert!(std::fs::read(out.join("a.bin")).unwrap() == a, "{point}");
        assert!(std::fs::read(out.join("b.bin")).unwrap() == b, "{point}");
        std::fs::remove_dir_all(&out).unwrap();
    }
}

/// A pack killed with its whole package written but not yet under its name leaves no
/// package; the rerun writes it and removes what the killed one left.
#[test]
fn killed_packs_leave_no_package_and_the_rerun_cleans_up() {
    if !cloudimg_fixtures::env::require_tool("qemu-img")
        || !cloudimg_fixtures::env::require_tool("tar")
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (vhd, _) = vhd_of(dir.path(), "disk.vhd", 3, 11);
    let out_dir = dir.path().join("out");
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = out_dir.join("disk.tgz");
    let args = ["pack", s(&out), s(&vhd)];
    killed_at("pack:before-publish", &args);
    let left = files(&out_dir);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].starts_with(".disk.tgz.partial-"), "{left:?}");
    ok(&cloudimg().args(args).output().unwrap());
    assert_eq!(
        files(&out_dir),
        ["disk.tgz"],
        "the killed pack's temporary was removed"
    );
    let listed = std::process::Command::new("tar")
        .arg("tzf")
        .arg(&out)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
}

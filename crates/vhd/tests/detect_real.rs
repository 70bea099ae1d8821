//! The detector on files made by the real tools at test time: qemu-img for the
//! disk formats (sizes checked against `qemu-img info`), gzip, bzip2, xz, zstd
//! and tar for the wrappers, genisoimage for ISO 9660.

use cloudimg_fixtures::env::require_tool;
use cloudimg_vhd::check::check_file;
use cloudimg_vhd::detect::{detect_file, Flow, Format, Hazard, TarKind, VhdKind, VmdkKind};
use cloudimg_vhd::{ErrorKind, Image};
use std::path::Path;
use std::process::Command;

fn run(cmd: &str, args: &[&str], dir: &Path) -> String {
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
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-img info`'s virtual size.
fn qemu_size(dir: &Path, file: &str) -> u64 {
    let json = run("qemu-img", &["info", "--output=json", "-U", file], dir);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["virtual-size"].as_u64().unwrap()
}

fn create(dir: &Path, fmt: &str, file: &str, opts: &[&str]) {
    let mut args = vec!["create", "-q", "-f", fmt];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[file, "64M"]);
    run("qemu-img", &args, dir);
}

#[test]
fn qemu_img_disk_formats() {
    if !require_tool("qemu-img") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let cases: &[(&str, &str, &[&str], Format)] = &[
        ("qcow2", "a.qcow2", &[], Format::Qcow2),
        ("qcow2", "v2.qcow2", &["-o", "compat=0.10"], Format::Qcow2),
        ("qcow", "a.qcow", &[], Format::Qcow),
        ("vhdx", "a.vhdx", &[], Format::Vhdx),
        ("vmdk", "a.vmdk", &[], Format::Vmdk(VmdkKind::Sparse)),
        (
            "vmdk",
            "s.vmdk",
            &["-o", "subformat=streamOptimized"],
            Format::Vmdk(VmdkKind::Sparse),
        ),
        ("vdi", "a.vdi", &[], Format::Vdi),
        ("qed", "a.qed", &[], Format::Qed),
        (
            "vpc",
            "d.vhd",
            &["-o", "subformat=dynamic"],
            Format::Vhd(VhdKind::Dynamic),
        ),
        (
            "vpc",
            "f.vhd",
            &["-o", "subformat=fixed"],
            Format::Vhd(VhdKind::Fixed),
        ),
        ("raw", "a.raw", &[], Format::Raw),
    ];
    for (fmt, file, opts, want) in cases {
        create(dir, fmt, file, opts);
        let d = detect_file(dir.join(file)).unwrap();
        assert_eq!(d.format, *want, "{file}");
        assert!(d.hazards.is_empty(), "{file}: {:?}", d.hazards);
        if !matches!(want, Format::Vhdx | Format::Vhd(_)) {
            // VHDX keeps its size in a metadata region past the head; qemu rounds
            // a VHD's size to its CHS geometry, which the footer keeps too.
            assert_eq!(d.virtual_size, Some(qemu_size(dir, file)), "{file}");
        }
        if let Format::Vhd(_) = want {
            assert_eq!(d.not_vhd("the file", file, Flow::Local), None);
        } else if *want != Format::Raw {
            let stem = file.split('.').next().unwrap();
            // The checker and the opener say the same, about the path given.
            let path = dir.join(file);
            let said = d.not_vhd("it", path.to_str().unwrap(), Flow::Local);
            let report = check_file(&path);
            assert_eq!(report.findings.len(), 1, "{file}");
            assert_eq!(Some(&report.findings[0].message), said.as_ref());
            let e = Image::open(&path).unwrap_err();
            assert_eq!(
                (e.kind(), Some(e.message())),
                (ErrorKind::NotVhd, said.as_deref())
            );
            assert_eq!(
                d.not_vhd("the file", file, Flow::Local).unwrap(),
                format!(
                    "the file is {}, not a VHD; convert it with: qemu-img convert -O vpc {file} {stem}.vhd",
                    d.describe()
                ),
            );
        }
    }
}

#[test]
fn qemu_img_images_that_name_other_files() {
    if !require_tool("qemu-img") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    create(dir, "qcow2", "base.qcow2", &[]);
    let abs = dir.join("base.qcow2");
    let abs = abs.to_str().unwrap();
    // (format, file, options, field, name it holds, a host path)
    type Case<'a> = (&'a str, &'a str, &'a [&'a str], &'a str, &'a str, bool);
    let cases: &[Case] = &[
        (
            "qcow2",
            "rel.qcow2",
            &["-b", "base.qcow2", "-F", "qcow2"],
            "backing file",
            "base.qcow2",
            false,
        ),
        (
            "qcow2",
            "abs.qcow2",
            &["-b", abs, "-F", "qcow2"],
            "backing file",
            abs,
            true,
        ),
        (
            "qcow2",
            "data.qcow2",
            &["-o", "data_file=data.raw"],
            "data file",
            "data.raw",
            false,
        ),
        (
            "qed",
            "child.qed",
            &["-b", abs, "-F", "qcow2"],
            "backing file",
            abs,
            true,
        ),
        (
            "vmdk",
            "flat.vmdk",
            &["-o", "subformat=monolithicFlat"],
            "extent",
            "flat-flat.vmdk",
            false,
        ),
        (
            "vmdk",
            "split.vmdk",
            &["-o", "subformat=twoGbMaxExtentSparse"],
            "extent",
            "split-s001.vmdk",
            false,
        ),
    ];
    for (fmt, file, opts, what, name, host) in cases {
        create(dir, fmt, file, opts);
        let d = detect_file(dir.join(file)).unwrap();
        assert!(
            d.hazards.contains(&Hazard::NamesOtherFile {
                what: what.to_string(),
                name: Some(name.to_string()),
                host_path: *host,
            }),
            "{file}: {:?}",
            d.hazards
        );
        assert!(d.names_other_files());
    }
    let flat = detect_file(dir.join("flat.vmdk")).unwrap();
    assert_eq!(flat.format, Format::Vmdk(VmdkKind::Descriptor));
    assert_eq!(flat.virtual_size, Some(64 << 20));
}

#[test]
fn compressed_and_archived_vhds() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    let mut vhd = vec![0u8; 1 << 20];
    let mut f = cloudimg_vhd::Footer::new(
        cloudimg_vhd::DiskType::Fixed,
        1 << 20,
        uuid::Uuid::from_u128(1),
        0,
    );
    vhd.extend_from_slice(&f.seal());
    std::fs::write(dir.join("disk.vhd"), &vhd).unwrap();
    let cases: &[(&str, &[&str], &str, Format)] = &[
        ("gzip", &["-k", "disk.vhd"], "disk.vhd.gz", Format::Gzip),
        ("bzip2", &["-k", "disk.vhd"], "disk.vhd.bz2", Format::Bzip2),
        ("xz", &["-k", "disk.vhd"], "disk.vhd.xz", Format::Xz),
        (
            "zstd",
            &["-q", "-k", "disk.vhd"],
            "disk.vhd.zst",
            Format::Zstd,
        ),
        (
            "tar",
            &["--format=ustar", "-cf", "u.tar", "disk.vhd"],
            "u.tar",
            Format::Tar(TarKind::Ustar),
        ),
        (
            "tar",
            &["--format=gnu", "-cf", "g.tar", "disk.vhd"],
            "g.tar",
            Format::Tar(TarKind::Gnu),
        ),
    ];
    for (tool, args, file, want) in cases {
        if !require_tool(tool) {
            continue;
        }
        run(tool, args, dir);
        let d = detect_file(dir.join(file)).unwrap();
        assert_eq!(d.format, *want, "{file}");
    }
    if require_tool("gzip") {
        let d = detect_file(dir.join("disk.vhd.gz")).unwrap();
        assert_eq!(d.detail.as_deref(), Some("of 'disk.vhd'"));
        // The opener says what it is instead of "no footer".
        let e = Image::open(dir.join("disk.vhd.gz")).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotVhd);
        assert!(
            e.to_string()
                .contains("is gzip-compressed data (of 'disk.vhd'), not a VHD"),
            "{e}"
        );
    }
    if require_tool("tar") {
        std::fs::write(
            dir.join("vm.ovf"),
            r#"<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"/>"#,
        )
        .unwrap();
        run("tar", &["-cf", "vm.ova", "vm.ovf", "disk.vhd"], dir);
        assert_eq!(detect_file(dir.join("vm.ova")).unwrap().format, Format::Ova);
        assert_eq!(detect_file(dir.join("vm.ovf")).unwrap().format, Format::Ovf);
    }
    if require_tool("genisoimage") {
        std::fs::create_dir(dir.join("cd")).unwrap();
        std::fs::write(dir.join("cd/user-data"), "#cloud-config\n").unwrap();
        run(
            "genisoimage",
            &["-quiet", "-V", "cidata", "-o", "seed.iso", "cd"],
            dir,
        );
        let d = detect_file(dir.join("seed.iso")).unwrap();
        assert_eq!(d.format, Format::Iso9660);
        assert_eq!(d.detail.as_deref(), Some("volume 'cidata'"));
        assert_eq!(
            d.virtual_size,
            Some(std::fs::metadata(dir.join("seed.iso")).unwrap().len())
        );
    }
}

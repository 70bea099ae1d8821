//! Files written by tools we do not control (shared/interop/vhd) open with the
//! facts their README records, and check finds no errors in them.

use cloudimg_fixtures::env::{require_tool, shared_interop};
use cloudimg_vhd::check::{check_chain, check_file, Severity};
use cloudimg_vhd::{Chain, ChainOptions, DiskType, Image, Source};
use std::path::{Path, PathBuf};
use std::process::Command;

fn interop() -> Option<PathBuf> {
    let dir = shared_interop()?.join("vhd");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("skip: {} missing", dir.display());
        None
    }
}

/// Decompresses a qemu-iotests sample into `tmp`.
fn bunzip(src: &Path, tmp: &Path) -> PathBuf {
    let name = src.file_stem().unwrap();
    let out = tmp.join(name);
    let data = Command::new("bzip2").arg("-dc").arg(src).output().unwrap();
    assert!(data.status.success(), "bzip2 -dc {}", src.display());
    std::fs::write(&out, data.stdout).unwrap();
    out
}

struct Fact {
    file: &'static str,
    creator: &'static str,
    disk_type: DiskType,
    size: u64,
    chs: &'static str,
}

const GO_VHD: &[Fact] = &[
    Fact {
        file: "qemu.vhd",
        creator: "qemu",
        disk_type: DiskType::Dynamic,
        size: 41_953_280,
        chs: "964/5/17",
    },
    Fact {
        file: "vbox.vhd",
        creator: "vbox",
        disk_type: DiskType::Dynamic,
        size: 41_943_040,
        chs: "963/5/17",
    },
    Fact {
        file: "xapi.vhd",
        creator: "tap\\0",
        disk_type: DiskType::Dynamic,
        size: 41_943_040,
        chs: "963/5/17",
    },
    Fact {
        file: "win8.vhd",
        creator: "win ",
        disk_type: DiskType::Dynamic,
        size: 41_943_040,
        chs: "963/5/17",
    },
    Fact {
        file: "win8-child.vhd",
        creator: "win ",
        disk_type: DiskType::Differencing,
        size: 41_943_040,
        chs: "963/5/17",
    },
    Fact {
        file: "win8.1-1GB.vhd",
        creator: "win ",
        disk_type: DiskType::Dynamic,
        size: 1_073_741_824,
        chs: "2080/16/63",
    },
];

const IOTESTS: &[Fact] = &[
    Fact {
        file: "virtualpc-dynamic.vhd.bz2",
        creator: "vpc ",
        disk_type: DiskType::Dynamic,
        size: 136_365_211_648,
        chs: "65278/16/255",
    },
    Fact {
        file: "hyperv2012r2-dynamic.vhd.bz2",
        creator: "win ",
        disk_type: DiskType::Dynamic,
        size: 136_365_211_648,
        chs: "65278/16/255",
    },
    Fact {
        file: "d2v-zerofilled.vhd.bz2",
        creator: "d2v\\0",
        disk_type: DiskType::Dynamic,
        size: 263_454_720,
        chs: "65535/16/255",
    },
];

fn assert_fact(img: &Image, f: &Fact) {
    assert_eq!(img.footer().creator(), f.creator, "{}", f.file);
    assert_eq!(img.disk_type(), f.disk_type, "{}", f.file);
    assert_eq!(img.virtual_size(), f.size, "{}", f.file);
    assert_eq!(img.footer().geometry.to_string(), f.chs, "{}", f.file);
    assert!(
        img.warnings().is_empty(),
        "{}: {:?}",
        f.file,
        img.warnings()
    );
}

fn assert_no_errors(path: &Path) {
    let report = check_file(path);
    let errors: Vec<_> = report.errors().collect();
    assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
}

#[test]
fn go_vhd_files_open_with_their_facts() {
    let Some(dir) = interop() else { return };
    for f in GO_VHD {
        let path = dir.join("go-vhd").join(f.file);
        let img = Image::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_fact(&img, f);
        assert_no_errors(&path);
        if f.disk_type == DiskType::Dynamic {
            // Metadata-only samples: every byte reads as zero.
            let chain = Chain::single(img).unwrap();
            let ext: Vec<_> = chain.extents().collect::<Result<_, _>>().unwrap();
            assert!(
                ext.iter().all(|e| e.source == Source::Zero),
                "{}: {ext:?}",
                f.file
            );
            assert_eq!(ext.iter().map(|e| e.len).sum::<u64>(), f.size);
        }
    }
    let win8 = Image::open(dir.join("go-vhd/win8.vhd")).unwrap();
    assert_eq!(
        win8.uuid().to_string(),
        "adb71975-4b5b-0b40-b025-d06dab31b26f"
    );
}

#[test]
fn hyperv_child_resolves_its_parent_beside_it() {
    let Some(dir) = interop() else { return };
    let leaf = dir.join("go-vhd/win8-child.vhd");
    let child = Image::open(&leaf).unwrap();
    assert_eq!(
        child.parent_name().unwrap(),
        "C:\\Users\\sergi\\Downloads\\win8.vhd"
    );
    assert_eq!(
        child.parent_uuid().unwrap().to_string(),
        "adb71975-4b5b-0b40-b025-d06dab31b26f"
    );
    assert_eq!(child.header().unwrap().table_offset, 0x2000);
    let chain = Chain::open(&leaf, &ChainOptions::default()).unwrap();
    assert_eq!(chain.layers().len(), 2);
    assert_eq!(chain.layers()[1].path(), dir.join("go-vhd/win8.vhd"));
    // Confined to its own folder it still resolves (the W2ku path is not followed).
    let confined = ChainOptions {
        confine_to: Some(dir.join("go-vhd")),
        ..Default::default()
    };
    assert_eq!(Chain::open(&leaf, &confined).unwrap().layers().len(), 2);
    let report = check_chain(&leaf, &ChainOptions::default());
    assert!(!report.has_errors(), "{:#?}", report.findings);
    // The child's own blocks read back consistently through the chain.
    let mut buf = vec![0u8; 1 << 20];
    chain.read_at(0, &mut buf).unwrap();
}

#[test]
fn qemu_iotests_samples_open_with_their_facts() {
    let Some(dir) = interop() else { return };
    if !require_tool("bzip2") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for f in IOTESTS {
        let path = bunzip(&dir.join("qemu-iotests").join(f.file), tmp.path());
        let img = Image::open(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_fact(&img, f);
        assert_no_errors(&path);
        let report = check_file(&path);
        let force = report
            .findings
            .iter()
            .any(|x| x.code == "footer_geometry_force_size");
        assert_eq!(force, f.chs == "65535/16/255", "{}", f.file);
        assert!(report
            .findings
            .iter()
            .all(|x| x.severity == Severity::Warning));
    }
}

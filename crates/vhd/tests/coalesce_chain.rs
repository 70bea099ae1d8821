//! Coalescing generator chains (partial bitmaps, every layout, mixed block
//! sizes) out of place and in place; the generator's oracle is the truth.

use cloudimg_fixtures::env::require_tool;
use cloudimg_fixtures::{chain, Generated, LayerSpec, Layout};
use cloudimg_vhd::check::check_file;
use cloudimg_vhd::coalesce::{coalesce_into_parent, coalesce_to, journal_path, InPlaceOptions};
use cloudimg_vhd::convert::{ConvertOptions, Output, OutputFormat};
use cloudimg_vhd::create::{
    create_child, create_dynamic, create_fixed, ChildOptions, LocatorStyle,
};
use cloudimg_vhd::write::FixedOptions;
use cloudimg_vhd::{Chain, ChainOptions, DiskType, ErrorKind, Image};
use std::path::Path;
use std::process::Command;

const SIZE: u64 = 8 << 20;

/// Three layers, base first: the child owns scattered sectors (3 of a block,
/// a run across a block boundary), the leaf overwrites some and adds more.
fn gen(dir: &Path, layout: Layout, bs: [u32; 3]) -> Generated {
    chain(
        dir,
        SIZE,
        7,
        &[
            LayerSpec::new("base.vhd", layout, bs[0])
                .write(0, 300, 1)
                .write(9000, 50, 2),
            LayerSpec::new("mid.vhd", layout, bs[1])
                .write(3, 3, 3)
                .write(120, 4000, 4)
                .write(15000, 9, 5),
            LayerSpec::new("leaf.vhd", layout, bs[2])
                .write(1, 1, 6)
                .write(4090, 20, 7)
                .write(16000, 100, 8),
        ],
    )
    .unwrap()
}

fn read_all(path: &Path) -> Vec<u8> {
    let c = Chain::open(path, &ChainOptions::default()).unwrap();
    let mut v = vec![0u8; c.virtual_size() as usize];
    c.read_at(0, &mut v).unwrap();
    v
}

fn cases() -> Vec<(Layout, [u32; 3])> {
    vec![
        (Layout::HyperV, [2 << 20; 3]),
        (Layout::VhdUtil, [2 << 20; 3]),
        (Layout::HyperV, [64 << 10; 3]),
        (Layout::Qemu, [2 << 20, 64 << 10, 1 << 20]),
    ]
}

#[test]
fn out_of_place_equals_oracle() {
    for (layout, bs) in cases() {
        let dir = tempfile::tempdir().unwrap();
        let g = gen(dir.path(), layout, bs);
        let expect = g.oracle.to_vec();
        for output in [
            OutputFormat::Dynamic(Default::default()),
            OutputFormat::Raw,
            OutputFormat::Fixed(FixedOptions::default()),
        ] {
            let out = dir.path().join("out.img");
            let _ = std::fs::remove_file(&out);
            let opts = ConvertOptions {
                output: output.clone(),
                ..Default::default()
            };
            let r = coalesce_to(g.leaf(), Output::Path(&out), &opts, &mut |_| {}).unwrap();
            assert_eq!(r.layers, 3);
            let got = match output {
                OutputFormat::Raw => std::fs::read(&out).unwrap(),
                _ => {
                    assert!(check_file(&out).is_clean(), "{layout:?} {bs:?}");
                    if require_tool("qemu-img") {
                        let raw = dir.path().join("q.raw");
                        assert!(Command::new("qemu-img")
                            .args(["convert", "-f", "vpc", "-O", "raw"])
                            .arg(&out)
                            .arg(&raw)
                            .status()
                            .unwrap()
                            .success());
                        assert!(
                            std::fs::read(&raw).unwrap() == expect,
                            "qemu {layout:?} {bs:?}"
                        );
                    }
                    read_all(&out)
                }
            };
            assert!(got == expect, "{layout:?} {bs:?} {output:?}");
        }
    }
}

#[test]
fn into_parent_honours_partial_bitmaps() {
    for (layout, bs) in cases() {
        let dir = tempfile::tempdir().unwrap();
        let g = gen(dir.path(), layout, bs);
        let expect = g.oracle.to_vec();
        let parent = g.paths[1].clone();
        let base_before = std::fs::read(&g.paths[2]).unwrap();
        let r = coalesce_into_parent(g.leaf(), &InPlaceOptions::default()).unwrap();
        assert_eq!(
            r.parent.canonicalize().unwrap(),
            parent.canonicalize().unwrap()
        );
        assert!(r.sectors_copied > 0);
        assert!(!journal_path(&parent).exists());
        // The parent is now the leaf of a chain with the same content.
        assert!(read_all(&parent) == expect, "{layout:?} {bs:?}");
        let rep = check_file(&parent);
        assert!(!rep.has_errors(), "{layout:?} {bs:?}: {rep:?}");
        // Nothing else changed.
        assert_eq!(std::fs::read(&g.paths[2]).unwrap(), base_before);
        // Merge the merged parent into the base too: the base alone is the disk.
        coalesce_into_parent(&parent, &InPlaceOptions::default()).unwrap();
        assert!(
            read_all(&g.paths[2]) == expect,
            "{layout:?} {bs:?} into base"
        );
    }
}

#[test]
fn into_fixed_parent() {
    let dir = tempfile::tempdir().unwrap();
    let g = chain(
        dir.path(),
        SIZE,
        3,
        &[
            LayerSpec::new("base.vhd", Layout::HyperV, 2 << 20)
                .fixed()
                .write(0, 100, 1),
            LayerSpec::new("leaf.vhd", Layout::HyperV, 2 << 20)
                .write(50, 3, 2)
                .write(9000, 7, 3),
        ],
    )
    .unwrap();
    let expect = g.oracle.to_vec();
    let len = std::fs::metadata(g.base()).unwrap().len();
    coalesce_into_parent(g.leaf(), &InPlaceOptions::default()).unwrap();
    assert_eq!(std::fs::metadata(g.base()).unwrap().len(), len);
    assert!(read_all(g.base()) == expect);
}

#[test]
fn refuses_a_non_differencing_image_and_a_journaled_parent() {
    let dir = tempfile::tempdir().unwrap();
    let g = gen(dir.path(), Layout::VhdUtil, [2 << 20; 3]);
    let e = coalesce_into_parent(g.base(), &InPlaceOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument);
    std::fs::write(journal_path(&g.paths[1]), b"x").unwrap();
    let e = coalesce_into_parent(g.leaf(), &InPlaceOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Journal);
    assert!(e.to_string().contains("--rollback"), "{e}");
    let e = coalesce_to(
        g.leaf(),
        Output::Path(&dir.path().join("o.vhd")),
        &ConvertOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Journal);
}

#[test]
fn missing_parent_is_a_clear_error_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let g = gen(dir.path(), Layout::HyperV, [2 << 20; 3]);
    std::fs::remove_file(&g.paths[1]).unwrap();
    let out = dir.path().join("o.vhd");
    let e = coalesce_to(
        g.leaf(),
        Output::Path(&out),
        &ConvertOptions::default(),
        &mut |_| {},
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ParentMissing);
    assert!(!out.exists());
}

#[test]
fn create_images_and_children() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let size = (10 << 20) + 512;
    create_dynamic(&d.join("dyn.vhd"), size, 2 << 20, None).unwrap();
    create_fixed(&d.join("fix.vhd"), size, &FixedOptions::default()).unwrap();
    for (base, style) in [
        ("dyn.vhd", LocatorStyle::VhdUtil),
        ("dyn.vhd", LocatorStyle::HyperV),
        ("fix.vhd", LocatorStyle::VhdUtil),
    ] {
        let child = d.join(format!("child-{base}-{style:?}.vhd"));
        create_child(&child, &d.join(base), &ChildOptions { style, uuid: None }).unwrap();
        let c = Chain::open(&child, &ChainOptions::default()).unwrap();
        assert_eq!(c.layers().len(), 2);
        assert_eq!(c.virtual_size(), size);
        assert_eq!(c.leaf().disk_type(), DiskType::Differencing);
        let codes: Vec<_> = c
            .leaf()
            .parent_locators()
            .iter()
            .map(|l| l.code.clone())
            .collect();
        assert_eq!(codes, ["W2ku", "W2ru"]);
        let rep = cloudimg_vhd::check::check_chain(&child, &ChainOptions::default());
        assert!(!rep.has_errors(), "{rep:?}");
        // A grandchild of the child resolves the whole way down.
        let gc = d.join(format!("gc-{base}-{style:?}.vhd"));
        create_child(&gc, &child, &ChildOptions { style, uuid: None }).unwrap();
        assert_eq!(
            Chain::open(&gc, &ChainOptions::default())
                .unwrap()
                .layers()
                .len(),
            3
        );
        if require_tool("vhdiinfo") {
            let out = Command::new("vhdiinfo").arg(&child).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(text.contains("Differential"), "{text}");
            assert!(text.contains(&format!("({size} bytes)")), "{text}");
        }
    }
    for f in ["dyn.vhd", "fix.vhd"] {
        let p = d.join(f);
        assert!(check_file(&p).is_clean());
        assert_eq!(Image::open(&p).unwrap().virtual_size(), size);
        if require_tool("qemu-img") {
            let out = Command::new("qemu-img")
                .args(["info", "-f", "vpc", "--output", "json"])
                .arg(&p)
                .output()
                .unwrap();
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(j["virtual-size"].as_u64(), Some(size));
        }
    }
    assert!(
        create_dynamic(&d.join("dyn.vhd"), size, 2 << 20, None).is_err(),
        "never overwrites"
    );
}

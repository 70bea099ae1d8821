//! Chains written by the independent fixture generator read exactly as its
//! oracle says: bytes, allocation map, and resolution rules.

use cloudimg_fixtures::{self as fx, LayerSpec, Layout, LocatorSpec, LocatorStyle};
use cloudimg_vhd::{Chain, ChainOptions, ChainReader, ErrorKind, Image, Source};
use std::io::Read;
use std::path::Path;

const MIB: u64 = 1 << 20;

fn to_fx(s: Source) -> fx::Source {
    match s {
        Source::Zero => fx::Source::Zero,
        Source::Layer { layer, file_offset } => fx::Source::Layer { layer, file_offset },
    }
}

/// Our extents and bytes equal the oracle's.
fn assert_matches_oracle(g: &fx::Generated, opts: &ChainOptions) {
    let chain = Chain::open(g.leaf(), opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(chain.layers().len(), g.paths.len());
    for (l, p) in chain.layers().iter().zip(&g.paths) {
        assert_eq!(l.path().file_name(), p.file_name());
    }
    assert_eq!(chain.virtual_size(), g.oracle.virtual_size());
    let ours: Vec<fx::Extent> = chain
        .extents()
        .map(|e| {
            let e = e.unwrap();
            fx::Extent {
                offset: e.offset,
                len: e.len,
                source: to_fx(e.source),
            }
        })
        .collect();
    assert_eq!(ours, g.oracle.extents());
    let mut bytes = Vec::new();
    ChainReader::new(&chain).read_to_end(&mut bytes).unwrap();
    assert!(bytes == g.oracle.to_vec(), "bytes differ from the oracle");
    // Unaligned positional reads straddling sectors and blocks.
    let size = chain.virtual_size();
    for (off, len) in [(1u64, 1000usize), (511, 2), (65_535, 70_000), (size - 3, 3)] {
        let mut a = vec![0u8; len];
        chain.read_at(off, &mut a).unwrap();
        let mut b = vec![0u8; len];
        g.oracle.read_at(off, &mut b);
        assert_eq!(a, b, "read at {off}");
    }
}

/// A three-layer chain whose child owns only a few sectors of a block.
fn three(layout: Layout, sizes: [u32; 3]) -> Vec<LayerSpec> {
    vec![
        LayerSpec::new("base.vhd", layout, sizes[0])
            .write(0, 2048, 1)
            .write(9000, 100, 2),
        LayerSpec::new("mid.vhd", layout, sizes[1])
            .write(3, 3, 3)
            .write(4000, 1, 0)
            .write(8999, 50, 4),
        LayerSpec::new("leaf.vhd", layout, sizes[2])
            .write(5, 1, 5)
            .write(2047, 2, 6)
            .write(12_000, 300, 7),
    ]
}

#[test]
fn every_layout_reads_like_the_oracle() {
    for layout in Layout::ALL {
        let tmp = tempfile::tempdir().unwrap();
        let g = fx::chain(tmp.path(), 8 * MIB, 7, &three(layout, [2 << 20; 3])).unwrap();
        assert_matches_oracle(&g, &ChainOptions::default());
    }
}

#[test]
fn layers_with_different_block_sizes() {
    for sizes in [
        [2 << 20, 4096, 1 << 16],
        [512, 2 << 20, 8192],
        [1 << 16, 512, 4 << 20],
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let g = fx::chain(tmp.path(), 8 * MIB, 11, &three(Layout::VhdUtil, sizes)).unwrap();
        assert_matches_oracle(&g, &ChainOptions::default());
    }
}

#[test]
fn fixed_base_and_descending_blocks() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layers = three(Layout::HyperV, [2 << 20; 3]);
    layers[0] = layers[0].clone().fixed();
    layers[2] = layers[2].clone().block_order(fx::BlockOrder::Descending);
    let g = fx::chain(tmp.path(), 8 * MIB, 3, &layers).unwrap();
    assert_matches_oracle(&g, &ChainOptions::default());

    let tmp = tempfile::tempdir().unwrap();
    let g = fx::dynamic(
        tmp.path(),
        5 * MIB,
        4,
        LayerSpec::new("d.vhd", Layout::Qemu, 1 << 16)
            .write(1, 7, 9)
            .write(9000, 9, 1),
    )
    .unwrap();
    assert_matches_oracle(&g, &ChainOptions::default());
    let tmp = tempfile::tempdir().unwrap();
    let g = fx::fixed(
        tmp.path(),
        3 * MIB,
        5,
        LayerSpec::new("f.vhd", Layout::VhdUtil, 0).write(10, 10, 3),
    )
    .unwrap();
    assert_matches_oracle(&g, &ChainOptions::default());
}

#[test]
fn absolute_and_macx_locators_and_explicit_parents() {
    let tmp = tempfile::tempdir().unwrap();
    let mut layers = three(Layout::VhdUtil, [2 << 20; 3]);
    layers[1] = layers[1].clone().locators(LocatorStyle::Absolute);
    layers[2] = layers[2]
        .clone()
        .locators(LocatorStyle::Custom(vec![LocatorSpec {
            code: *b"MacX",
            path: "file://./mid.vhd".into(),
        }]));
    let g = fx::chain(tmp.path(), 8 * MIB, 8, &layers).unwrap();
    assert_matches_oracle(&g, &ChainOptions::default());

    let tmp = tempfile::tempdir().unwrap();
    let mut layers = three(Layout::HyperV, [2 << 20; 3]);
    for l in &mut layers[1..] {
        *l = l.clone().locators(LocatorStyle::None);
    }
    let mut g = fx::chain(tmp.path(), 8 * MIB, 9, &layers).unwrap();
    // Without locators the header's parent name (a Windows path) still finds
    // the parents beside the child...
    assert_matches_oracle(&g, &ChainOptions::default());
    // ...until they are renamed.
    for (i, name) in [(1, "m2.vhd"), (2, "b2.vhd")] {
        let to = tmp.path().join(name);
        std::fs::rename(&g.paths[i], &to).unwrap();
        g.paths[i] = to;
    }
    let err = Chain::open(g.leaf(), &ChainOptions::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParentMissing, "{err}");
    // Explicit parents are matched by UUID, in any order.
    let opts = ChainOptions {
        parents: vec![g.paths[2].clone(), g.paths[1].clone()],
        ..Default::default()
    };
    assert_matches_oracle(&g, &opts);
}

#[test]
fn locators_are_resolved_beside_the_child_not_the_cwd() {
    let tmp = tempfile::tempdir().unwrap();
    let g = fx::chain(
        tmp.path(),
        8 * MIB,
        12,
        &three(Layout::VhdUtil, [2 << 20; 3]),
    )
    .unwrap();
    // Run from elsewhere: the relative locators still find the parents.
    let elsewhere = tempfile::tempdir().unwrap();
    std::env::set_current_dir(elsewhere.path()).unwrap();
    assert_matches_oracle(&g, &ChainOptions::default());
}

#[test]
fn confinement_refuses_locators_pointing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let layers = vec![
        LayerSpec::new("base.vhd", Layout::HyperV, 2 << 20).write(0, 8, 1),
        LayerSpec::new("leaf.vhd", Layout::HyperV, 2 << 20)
            .write(1, 1, 2)
            .locators(LocatorStyle::Custom(vec![LocatorSpec {
                code: *b"W2ru",
                path: "..\\base.vhd".into(),
            }])),
    ];
    let g = fx::chain(root, 2 * MIB, 1, &layers).unwrap();
    let jail = root.join("jail");
    std::fs::create_dir(&jail).unwrap();
    let leaf = jail.join("leaf.vhd");
    std::fs::rename(g.leaf(), &leaf).unwrap();
    // Unconfined, the relative locator reaches the parent one folder up.
    let chain = Chain::open(&leaf, &ChainOptions::default()).unwrap();
    assert_eq!(chain.base().path(), Path::new(&jail.join("../base.vhd")));
    let confined = ChainOptions {
        confine_to: Some(jail.clone()),
        ..Default::default()
    };
    let err = Chain::open(&leaf, &confined).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LocatorRefused, "{err}");
    assert_eq!(err.field_name(), Some("header.parent_locators"));
}

#[test]
fn mismatched_parent_loops_and_depth_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let g = fx::chain(
        tmp.path(),
        8 * MIB,
        13,
        &three(Layout::VhdUtil, [2 << 20; 3]),
    )
    .unwrap();
    let opts = ChainOptions {
        max_depth: 2,
        ..Default::default()
    };
    assert_eq!(
        Chain::open(g.leaf(), &opts).unwrap_err().kind(),
        ErrorKind::ChainLoop
    );
    // The same file twice is a loop; a wrong parent is a mismatch.
    let imgs = vec![
        Image::open(&g.paths[0]).unwrap(),
        Image::open(&g.paths[0]).unwrap(),
    ];
    assert_eq!(
        Chain::from_images(imgs).unwrap_err().kind(),
        ErrorKind::ChainLoop
    );
    let imgs = vec![
        Image::open(&g.paths[0]).unwrap(),
        Image::open(&g.paths[2]).unwrap(),
    ];
    let err = Chain::from_images(imgs).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParentMismatch);
    assert_eq!(err.field_name(), Some("header.parent_unique_id"));
    // A differencing disk alone has no base.
    let err = Chain::single(Image::open(&g.paths[0]).unwrap()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ParentMissing);
    // Reads past the virtual size are refused.
    let chain = Chain::open(g.leaf(), &ChainOptions::default()).unwrap();
    let mut b = [0u8; 2];
    assert_eq!(
        chain.read_at(8 * MIB - 1, &mut b).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

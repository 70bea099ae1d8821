//! Property tests: bit flips, truncations and random bytes in real layouts
//! never panic, hang or allocate without bound; opening either succeeds with
//! consistent metadata or returns a typed error, and reading stays in bounds.

use cloudimg_fixtures::{self as fx, LayerSpec, Layout};
use cloudimg_vhd::check::check_io;
use cloudimg_vhd::{Chain, DiskType, Image, LayerIo, Source};
use proptest::prelude::*;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

/// A small differencing chain (qemu-free, generator-made): (child, parent) bytes.
fn samples() -> &'static (Vec<u8>, Vec<u8>, Vec<u8>) {
    static S: OnceLock<(Vec<u8>, Vec<u8>, Vec<u8>)> = OnceLock::new();
    S.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let g = fx::chain(
            tmp.path(),
            1 << 20,
            3,
            &[
                LayerSpec::new("base.vhd", Layout::VhdUtil, 1 << 16)
                    .write(0, 300, 1)
                    .write(1500, 7, 2),
                LayerSpec::new("leaf.vhd", Layout::HyperV, 1 << 17)
                    .write(3, 3, 3)
                    .write(700, 100, 4),
            ],
        )
        .unwrap();
        let fixed = tempfile::tempdir().unwrap();
        let f = fx::fixed(
            fixed.path(),
            64 << 10,
            1,
            LayerSpec::new("f.vhd", Layout::Qemu, 0).write(1, 5, 5),
        )
        .unwrap();
        (
            std::fs::read(&g.paths[0]).unwrap(),
            std::fs::read(&g.paths[1]).unwrap(),
            std::fs::read(f.leaf()).unwrap(),
        )
    })
}

#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Bytes(usize, Vec<u8>),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        // Metadata lives in the first 16 KiB and the last sector: aim there mostly.
        4 => (0usize..16 << 10, 0u8..8).prop_map(|(o, b)| Damage::Flip(o, b)),
        2 => (0usize..512, 0u8..8).prop_map(|(o, b)| Damage::Flip(usize::MAX - o, b)),
        1 => (any::<usize>(), 0u8..8).prop_map(|(o, b)| Damage::Flip(o, b)),
        2 => (0usize..16 << 10, prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(o, v)| Damage::Bytes(o, v)),
        1 => any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn apply(mut b: Vec<u8>, ds: &[Damage]) -> Vec<u8> {
    for d in ds {
        let n = b.len();
        if n == 0 {
            break;
        }
        match d {
            Damage::Flip(o, bit) => {
                let at = if *o > usize::MAX - 512 {
                    n - 1 - (usize::MAX - o).min(n - 1)
                } else {
                    o % n
                };
                b[at] ^= 1 << bit;
            }
            Damage::Bytes(o, v) => {
                for (i, x) in v.iter().enumerate() {
                    let at = (o + i) % n;
                    b[at] = *x;
                }
            }
            Damage::Truncate(l) => b.truncate(l % (n + 1)),
        }
    }
    b
}

/// Walks the allocation map and reads a bounded prefix; all must stay in bounds.
fn exercise(chain: &Chain) {
    let size = chain.virtual_size();
    let mut covered = 0u64;
    for e in chain.extents().take(200_000) {
        let Ok(e) = e else { return };
        assert_eq!(e.offset, covered, "extents must be contiguous");
        assert!(e.len > 0);
        covered = e.end();
        if let Source::Layer { layer, file_offset } = e.source {
            let l = &chain.layers()[layer];
            assert!(
                file_offset + e.len <= l.file_len(),
                "extent past the layer's end"
            );
        }
    }
    let n = size.min(4 << 20) as usize;
    let mut buf = vec![0u8; n];
    let _ = chain.read_at(0, &mut buf);
}

fn open(name: &str, bytes: Vec<u8>) -> cloudimg_vhd::Result<Image> {
    let io: Arc<[u8]> = bytes.into();
    Image::from_io(PathBuf::from(name), Box::new(io))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn damaged_child_never_panics(ds in prop::collection::vec(damage(), 1..6)) {
        let (child, parent, _) = samples();
        let bytes = apply(child.clone(), &ds);
        let report = check_io(std::path::Path::new("leaf.vhd"), &bytes);
        prop_assert!(report.files.len() == 1);
        match open("leaf.vhd", bytes) {
            Err(e) => {
                // Typed, with context.
                let _ = (e.kind(), e.to_string());
            }
            Ok(img) => {
                prop_assert!(img.bat().len() as u64 <= img.file_len() / 4 + 1);
                if let Some(bs) = img.block_size() {
                    prop_assert!(bs.is_power_of_two());
                }
                let base = open("base.vhd", parent.clone()).unwrap();
                let layers = if img.disk_type() == DiskType::Differencing { vec![img, base] } else { vec![img] };
                if let Ok(chain) = Chain::from_images(layers) {
                    exercise(&chain);
                }
            }
        }
    }

    #[test]
    fn damaged_base_and_fixed_never_panic(ds in prop::collection::vec(damage(), 1..6), which in 0..2usize) {
        let (_, parent, fixed) = samples();
        let src = if which == 0 { parent } else { fixed };
        let bytes = apply(src.clone(), &ds);
        let _ = check_io(std::path::Path::new("x.vhd"), &bytes);
        if let Ok(img) = open("x.vhd", bytes) {
            let _ = img.extents().take(200_000).count();
            if let Ok(chain) = Chain::single(img) {
                exercise(&chain);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4096), cookie in any::<bool>()) {
        let mut bytes = bytes;
        if cookie && bytes.len() >= 512 {
            let n = bytes.len();
            bytes[n - 512..n - 504].copy_from_slice(b"conectix");
        }
        let _ = check_io(std::path::Path::new("r.vhd"), &bytes);
        if let Ok(img) = open("r.vhd", bytes) {
            if let Ok(chain) = Chain::single(img) {
                exercise(&chain);
            }
        }
    }
}

#[test]
fn samples_are_sane() {
    let (child, parent, fixed) = samples();
    let base = open("base.vhd", parent.clone()).unwrap();
    let leaf = open("leaf.vhd", child.clone()).unwrap();
    let chain = Chain::from_images(vec![leaf, base]).unwrap();
    assert_eq!(chain.virtual_size(), 1 << 20);
    assert!(check_io(std::path::Path::new("f"), fixed)
        .findings
        .is_empty());
    let f = open("f.vhd", fixed.clone()).unwrap();
    assert_eq!(LayerIo::len(fixed), f.virtual_size() + 512);
}

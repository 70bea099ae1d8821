//! Writes a benchmark chain: `mkchain DIR VIRTUAL_MIB ALLOCATED_MIB` makes
//! `DIR/base.vhd`, `DIR/mid.vhd`, `DIR/leaf.vhd` (vhd-util layout, 2 MiB blocks) whose
//! writes together cover about ALLOCATED_MIB of the virtual disk, each layer a third,
//! overlapping a little, with pattern data that does not compress.

use cloudimg_fixtures::{chain, LayerSpec, Layout};
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(
        args.get(1)
            .expect("usage: mkchain DIR VIRTUAL_MIB ALLOCATED_MIB"),
    );
    let virt: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(4096);
    let alloc: u64 = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(1024);
    std::fs::create_dir_all(&dir).unwrap();
    let mib = 2048u64; // sectors per MiB
    let third = alloc / 3;
    let layer = |name: &str, start_mib: u64, seed: u8| {
        LayerSpec::new(name, Layout::VhdUtil, 2 << 20).write(
            start_mib * mib,
            (third + 8) * mib,
            seed,
        )
    };
    let specs = [
        layer("base.vhd", 0, 1),
        layer("mid.vhd", third, 2),
        layer("leaf.vhd", 2 * third, 3),
    ];
    let g = chain(&dir, virt << 20, 42, &specs).unwrap();
    for p in &g.paths {
        println!("{}", p.display());
    }
}

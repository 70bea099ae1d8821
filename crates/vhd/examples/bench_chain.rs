//! Writes a 4-deep differencing chain for coalesce measurements:
//! `cargo run --release --example bench_chain -- DIR [VIRTUAL_GIB] [MIB_PER_LAYER]`.
//! Each layer owns `MIB_PER_LAYER` MiB in 2 MiB blocks spread over the disk.

use cloudimg_fixtures::{chain, LayerSpec, Layout};

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("DIR"));
    let gib: u64 = args.next().map_or(2, |s| s.parse().expect("GiB"));
    let mib: u64 = args.next().map_or(256, |s| s.parse().expect("MiB"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let size = gib << 30;
    let blocks = size >> 21;
    let per_layer = mib / 2;
    let layers: Vec<LayerSpec> = (0..4u64)
        .map(|l| {
            let mut s = LayerSpec::new(format!("l{l}.vhd"), Layout::VhdUtil, 2 << 20);
            for k in 0..per_layer {
                // Spread blocks; layers overlap partly; the first sector of each
                // run is left to the parent so bitmaps are partial.
                let b = (k * blocks / per_layer + l * 7) % blocks;
                s = s.write(b * 4096 + 1, 4095, (l + 1) as u8);
            }
            s
        })
        .collect();
    let g = chain(&dir, size, 1, &layers).expect("generate");
    println!("leaf {}", g.leaf().display());
}

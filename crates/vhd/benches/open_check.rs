//! Times open + check + a full allocation-map walk of a 2040 GiB dynamic VHD
//! whose BAT is full size (1,044,480 entries), in two shapes: no block
//! allocated, and every block allocated (bitmaps are holes of a sparse file,
//! so the walk reads a million bitmaps). Not a test: prints timings.
//!
//! `CARGO_TARGET_DIR=/work/targets/vhdread cargo bench -p cloudimg-vhd --bench open_check`

use cloudimg_vhd::check::check_file;
use cloudimg_vhd::format::footer::Footer;
use cloudimg_vhd::format::header::DynamicHeader;
use cloudimg_vhd::{Chain, DiskType, Image, MAX_VIRTUAL_SIZE};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

const BLOCK: u64 = 2 << 20;

fn write_image(path: &Path, allocated: bool) {
    let entries = MAX_VIRTUAL_SIZE / BLOCK;
    let table = 0x600u64;
    let table_bytes = (entries * 4).div_ceil(512) * 512;
    let first_block = table + table_bytes;
    let span = 512 + BLOCK;
    let mut footer = Footer::new(
        DiskType::Dynamic,
        MAX_VIRTUAL_SIZE,
        uuid::Uuid::from_u128(1),
        0,
    );
    let fb = footer.seal();
    let mut header = DynamicHeader::new(table, entries as u32, BLOCK as u32);
    let hb = header.seal();
    let mut bat = Vec::with_capacity(table_bytes as usize);
    for i in 0..entries {
        let e = if allocated {
            ((first_block + i * span) / 512) as u32
        } else {
            u32::MAX
        };
        bat.extend_from_slice(&e.to_be_bytes());
    }
    bat.resize(table_bytes as usize, 0xff);
    let end = if allocated {
        first_block + entries * span
    } else {
        first_block
    };
    let mut f = File::create(path).unwrap();
    f.write_all(&fb).unwrap();
    f.write_all(&hb).unwrap();
    f.write_all_at(&bat, table).unwrap();
    f.set_len(end + 512).unwrap();
    f.write_all_at(&fb, end).unwrap();
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    for allocated in [false, true] {
        let path = dir.path().join(format!("big-{allocated}.vhd"));
        write_image(&path, allocated);
        let t = Instant::now();
        let img = Image::open(&path).unwrap();
        let opened = t.elapsed();
        let report = check_file(&path);
        let checked = t.elapsed();
        assert!(!report.has_errors(), "{:?}", report.findings);
        let chain = Chain::single(img).unwrap();
        let mut n = 0;
        for e in chain.extents() {
            e.unwrap();
            n += 1;
        }
        let walked = t.elapsed();
        println!(
            "2040 GiB dynamic, {} BAT entries {}: open {:?}, open+check {:?}, +extents walk ({n} extents) {:?}",
            chain.layers()[0].bat().len(),
            if allocated { "all allocated" } else { "all unallocated" },
            opened,
            checked,
            walked
        );
    }
}

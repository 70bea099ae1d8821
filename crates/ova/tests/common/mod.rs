//! Small VHDs built byte by byte for the layout tests (independent of the
//! vhd crate): fixed disks with content, empty dynamic and differencing disks.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;

pub const MIB: u64 = 1 << 20;

fn checksum(b: &[u8], at: usize) -> u32 {
    let sum: u32 = b
        .iter()
        .enumerate()
        .filter(|(i, _)| !(at..at + 4).contains(i))
        .fold(0u32, |s, (_, &x)| s.wrapping_add(u32::from(x)));
    !sum
}

/// A 512-byte footer: `disk_type` 2 fixed, 3 dynamic, 4 differencing.
pub fn footer(disk_type: u32, size: u64, uuid: [u8; 16], hidden: bool) -> [u8; 512] {
    let mut f = [0u8; 512];
    f[..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    let data_offset: u64 = if disk_type == 2 { u64::MAX } else { 512 };
    f[16..24].copy_from_slice(&data_offset.to_be_bytes());
    f[28..32].copy_from_slice(b"tap\0");
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    // Geometry is not checked by the package code; any plausible CHS will do.
    f[56..60].copy_from_slice(&[0x04, 0x00, 0x10, 0x3f]);
    f[60..64].copy_from_slice(&disk_type.to_be_bytes());
    f[68..84].copy_from_slice(&uuid);
    f[85] = u8::from(hidden);
    let c = checksum(&f, 64);
    f[64..68].copy_from_slice(&c.to_be_bytes());
    f
}

/// A fixed VHD holding `data` (a multiple of 512 bytes).
pub fn fixed(data: &[u8], uuid: [u8; 16]) -> Vec<u8> {
    let mut v = data.to_vec();
    v.extend_from_slice(&footer(2, data.len() as u64, uuid, false));
    v
}

/// An empty dynamic (`parent` None) or differencing VHD of `size` bytes.
pub fn sparse(size: u64, uuid: [u8; 16], parent: Option<[u8; 16]>, hidden: bool) -> Vec<u8> {
    let block = 2 * MIB;
    let entries = size.div_ceil(block) as u32;
    let bat_bytes = (u64::from(entries) * 4).div_ceil(512) * 512;
    let ty = if parent.is_some() { 4 } else { 3 };
    let f = footer(ty, size, uuid, hidden);
    let mut h = [0u8; 1024];
    h[..8].copy_from_slice(b"cxsparse");
    h[8..16].copy_from_slice(&u64::MAX.to_be_bytes());
    h[16..24].copy_from_slice(&1536u64.to_be_bytes());
    h[24..28].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    h[28..32].copy_from_slice(&entries.to_be_bytes());
    h[32..36].copy_from_slice(&(block as u32).to_be_bytes());
    if let Some(p) = parent {
        h[40..56].copy_from_slice(&p);
    }
    let c = checksum(&h, 36);
    h[36..40].copy_from_slice(&c.to_be_bytes());
    let mut v = f.to_vec();
    v.extend_from_slice(&h);
    v.extend(std::iter::repeat_n(0xffu8, bat_bytes as usize));
    v.extend_from_slice(&f);
    v
}

pub fn uuid(n: u8) -> [u8; 16] {
    [n; 16]
}

/// A three-layer chain, leaf first: differencing, differencing, dynamic base.
pub fn chain3() -> Vec<Vec<u8>> {
    vec![
        sparse(64 * MIB, uuid(1), Some(uuid(2)), false),
        sparse(64 * MIB, uuid(2), Some(uuid(3)), true),
        sparse(64 * MIB, uuid(3), None, true),
    ]
}

/// Pseudo-random but compressible bytes.
pub fn content(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 4096 < 2048 {
                (x >> 24) as u8
            } else {
                b"cloudimg "[i % 9]
            }
        })
        .collect()
}

pub fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, data) in files {
        let mut f = std::fs::File::create(dir.join(name)).unwrap();
        f.write_all(data).unwrap();
    }
}

/// Names in `dir`, sorted.
pub fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

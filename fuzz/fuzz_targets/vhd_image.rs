//! A whole VHD held in memory: the checker, opening, the allocation map and reads
//! of random ranges must never panic, and must agree with each other.
#![no_main]

#[path = "common.rs"]
mod common;

use cloudimg_vhd::{check::check_io, Chain, DiskType, Image};
use libfuzzer_sys::fuzz_target;
use std::path::{Path, PathBuf};

fuzz_target!(|data: &[u8]| {
    let bytes = data.to_vec();
    let report = check_io(Path::new("fuzz.vhd"), &bytes);
    let _ = report.has_errors();
    let Ok(img) = Image::from_io(PathBuf::from("fuzz.vhd"), Box::new(bytes)) else {
        return;
    };
    let _ = img.parent_paths();
    let _ = img.parent_name();
    let _ = cloudimg_vhd::info::Info::from_image(&img);
    let _ = img.allocated_bytes();
    for e in img.extents().take(common::MAX_EXTENTS) {
        if e.is_err() {
            break;
        }
    }
    if img.disk_type() == DiskType::Differencing {
        return;
    }
    let Ok(chain) = Chain::single(img) else {
        return;
    };
    let extents = common::walk_extents(&chain);
    // The seed for the ranges: the bytes right before the footer, which mutate freely.
    let seed = &data[data.len().saturating_sub(528)..data.len().saturating_sub(512)];
    common::read_some(&chain, &extents, seed);
});

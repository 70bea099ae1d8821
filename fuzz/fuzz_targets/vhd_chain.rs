//! A chain of crafted layers, leaf first, separated in the input by `LAYER-->`:
//! linking, the allocation map across layers and reads must never panic.
#![no_main]

#[path = "common.rs"]
mod common;

use cloudimg_vhd::{Chain, Image};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;

const SEP: &[u8] = b"LAYER-->";
const MAX_LAYERS: usize = 5;

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() + 1 < MAX_LAYERS {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let mut layers = Vec::new();
    for (i, part) in split(data).into_iter().enumerate() {
        match Image::from_io(PathBuf::from(format!("{i}.vhd")), Box::new(part.to_vec())) {
            Ok(img) => layers.push(img),
            Err(_) => return,
        }
    }
    let Ok(chain) = Chain::from_images(layers) else {
        return;
    };
    let extents = common::walk_extents(&chain);
    let seed = &data[..data.len().min(16)];
    common::read_some(&chain, &extents, seed);
});

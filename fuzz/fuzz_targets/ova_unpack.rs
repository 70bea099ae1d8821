//! Safe unpack of an untrusted (gzipped) archive in each layout (any, XenServer
//! chain, OVA): never a panic, never a file outside the target folder, and
//! nothing left behind when it fails.
#![no_main]

use cloudimg_ova::{unpack, Layout, Limits, UnpackOptions};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

fn scratch() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base =
            std::env::temp_dir().join(format!("cloudimg-fuzz-unpack-{}", std::process::id()));
        std::fs::create_dir_all(&base).expect("scratch dir");
        base
    })
}

fuzz_target!(|data: &[u8]| {
    let root = scratch();
    let dir = root.join("out");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("out dir");
    let layout = match data.len() % 3 {
        0 => Layout::Any,
        1 => Layout::XenServer,
        _ => Layout::Ova,
    };
    let opts = UnpackOptions {
        limits: Limits {
            max_members: 64,
            max_member_size: 32 << 20,
            max_total_size: 64 << 20,
            max_ratio: 1100,
            ratio_grace: 1 << 20,
        },
        layout,
        sha256: true,
        ..UnpackOptions::default()
    };
    let result = unpack(data, &dir, &opts);
    let created: Vec<_> = std::fs::read_dir(&dir).expect("list").flatten().collect();
    match result {
        Ok(report) => {
            for m in &report.members {
                assert!(
                    !m.name.contains('/') && m.name != ".." && m.name != ".",
                    "flat names only"
                );
                assert!(dir.join(&m.name).is_file(), "reported member exists");
            }
        }
        Err(_) => assert!(
            created.is_empty(),
            "a failed unpack leaves nothing: {created:?}"
        ),
    }
    // Nothing may appear beside the target folder.
    let beside: Vec<_> = std::fs::read_dir(root)
        .expect("list")
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(
        beside,
        vec![std::ffi::OsString::from("out")],
        "nothing written outside the folder"
    );
});

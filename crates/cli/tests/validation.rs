//! Every command that reads image data refuses a VHD whose BAT puts a block over the
//! header and BAT or past the footer and the end of the file (what `check` reports as
//! `bat_overlaps_metadata` / `bat_outside_file`), pack included: exit 1, a line naming the file, `bat`
//! and the entry's offset, and nothing at the destination.

use cloudimg_fixtures::Corruption;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cloudimg(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn fixture(name: &str) -> PathBuf {
    cloudimg_fixtures::env::workspace_root()
        .join("fixtures")
        .join(name)
}

const BAD: [Corruption; 2] = [Corruption::BatEntryInMetadata, Corruption::BatEntryPastEof];

/// Copies `from` to `dir/name` and applies `c`; returns the BAT entry's offset.
fn damaged(from: &Path, dir: &Path, name: &str, c: Corruption) -> u64 {
    let p = dir.join(name);
    std::fs::copy(from, &p).unwrap();
    let applied = cloudimg_fixtures::corrupt(&p, c).unwrap();
    assert!(!applied.readable);
    applied.offset
}

fn refused(out: &Output, file: &str, at: u64, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{what}: {err}");
    assert!(
        err.contains(&format!("{file}: bat at offset {at:#x}: block")),
        "{what}: {err}"
    );
}

/// Entries of `dir` other than `keep`.
fn others(dir: &Path, keep: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    v.sort();
    v
}

#[test]
fn convert_refuses_and_writes_nothing() {
    for c in BAD {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let at = damaged(&fixture("dynamic-qemu.vhd"), d, "bad.vhd", c);
        for fmt in ["raw", "vpc"] {
            let out = cloudimg(d, &["convert", "-O", fmt, "bad.vhd", "out.img"]);
            refused(&out, "bad.vhd", at, &format!("{c:?} convert -O {fmt}"));
            assert_eq!(others(d, &["bad.vhd"]), Vec::<String>::new(), "{c:?}");
        }
        // To stdout: not a byte.
        let out = cloudimg(d, &["convert", "-O", "raw", "bad.vhd", "-"]);
        refused(&out, "bad.vhd", at, &format!("{c:?} convert to stdout"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn coalesce_refuses_a_bad_layer_and_leaves_the_parent_alone() {
    for c in BAD {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for n in ["base.vhd", "mid.vhd"] {
            std::fs::copy(fixture(&format!("chain/{n}")), d.join(n)).unwrap();
        }
        let at = damaged(&fixture("chain/leaf.vhd"), d, "leaf.vhd", c);
        let out = cloudimg(d, &["coalesce", "-O", "raw", "leaf.vhd", "out.img"]);
        refused(&out, "leaf.vhd", at, &format!("{c:?} coalesce"));
        assert_eq!(
            others(d, &["base.vhd", "mid.vhd", "leaf.vhd"]),
            Vec::<String>::new()
        );

        let mid = std::fs::read(d.join("mid.vhd")).unwrap();
        let out = cloudimg(d, &["coalesce", "--into-parent", "leaf.vhd"]);
        refused(
            &out,
            "leaf.vhd",
            at,
            &format!("{c:?} coalesce --into-parent"),
        );
        assert!(
            std::fs::read(d.join("mid.vhd")).unwrap() == mid,
            "{c:?}: parent changed"
        );
        assert_eq!(
            others(d, &["base.vhd", "mid.vhd", "leaf.vhd"]),
            Vec::<String>::new()
        );
    }
}

#[test]
fn pack_refuses_in_every_layout_and_writes_nothing() {
    for c in BAD {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let at = damaged(&fixture("dynamic-qemu.vhd"), d, "bad.vhd", c);
        std::fs::copy(fixture("fixed.vhd"), d.join("good.vhd")).unwrap();
        for layout in ["xenserver", "ova"] {
            // The bad disk alone, and after a good one: nothing is written either way.
            for inputs in [&["bad.vhd"][..], &["good.vhd", "bad.vhd"][..]] {
                let mut args = vec!["pack", "--layout", layout, "pkg.out"];
                args.extend_from_slice(inputs);
                let out = cloudimg(d, &args);
                refused(&out, "bad.vhd", at, &format!("{c:?} {args:?}"));
                assert_eq!(
                    others(d, &["bad.vhd", "good.vhd"]),
                    Vec::<String>::new(),
                    "{c:?} {args:?}"
                );
            }
        }
        let out = cloudimg(d, &["pack", "-", "bad.vhd"]);
        refused(&out, "bad.vhd", at, &format!("{c:?} pack to stdout"));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn import_fails_its_task_and_stores_nothing() {
    for c in BAD {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::create_dir(d.join("uploads")).unwrap();
        let at = damaged(
            &fixture("dynamic-qemu.vhd"),
            &d.join("uploads"),
            "bad.vhd",
            c,
        );
        let out = cloudimg(
            d,
            &[
                "import",
                "--from",
                "uploads/bad.vhd",
                "--store",
                "store",
                "--name",
                "x",
            ],
        );
        assert_eq!(out.status.code(), Some(1), "{c:?}");
        let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(t["status"], "failure");
        let msg = t["message"].as_str().unwrap();
        assert!(msg.starts_with("396"), "{c:?}: {msg}");
        assert!(
            msg.contains("bad.vhd") && msg.contains(&format!("bat at offset {at:#x}")),
            "{c:?}: {msg}"
        );
        let images = d.join("store/images");
        let stored = if images.exists() {
            others(&images, &[])
        } else {
            vec![]
        };
        assert!(stored.is_empty(), "{c:?}: {stored:?}");
    }
}

/// The one thing readers let through: a footer checksum wrong in both copies is read
/// (as qemu-img reads it) with a warning on stderr naming the file, field and offset.
#[test]
fn convert_warns_of_a_footer_checksum_wrong_in_both_copies() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let p = d.join("sum.vhd");
    std::fs::copy(fixture("dynamic-qemu.vhd"), &p).unwrap();
    let applied = cloudimg_fixtures::corrupt(&p, Corruption::BothFooterChecksums).unwrap();
    let out = cloudimg(d, &["convert", "-O", "raw", "sum.vhd", "out.raw"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains(&format!(
            "warning: sum.vhd: footer.checksum at offset {:#x}",
            applied.offset
        )),
        "{err}"
    );
    // `check` still calls it an error.
    let out = cloudimg(d, &["check", "sum.vhd"]);
    assert_eq!(out.status.code(), Some(1));
}

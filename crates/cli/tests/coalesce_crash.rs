//! Crash safety of `cloudimg coalesce --into-parent`: the process is aborted
//! before each of its write points in turn. After every kill the parent is
//! untouched, or fully merged, or refuses with the journal error; then
//! `--rollback` restores its original bytes and `--resume` finishes the merge.

use cloudimg_fixtures::{chain, LayerSpec, Layout};
use cloudimg_vhd::coalesce::journal_path;
use cloudimg_vhd::{Chain, ChainOptions};
use std::path::Path;
use std::process::Command;

fn cloudimg() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
}

fn read_all(path: &Path) -> Vec<u8> {
    let c = Chain::open(path, &ChainOptions::default()).unwrap();
    let mut v = vec![0u8; c.virtual_size() as usize];
    c.read_at(0, &mut v).unwrap();
    v
}

#[test]
fn killed_at_every_write_point() {
    let src = tempfile::tempdir().unwrap();
    // Parent is itself differencing with partial bitmaps; the leaf writes into
    // blocks the parent has (sector runs) and blocks it lacks (appended).
    let g = chain(
        src.path(),
        6 << 20,
        11,
        &[
            LayerSpec::new("base.vhd", Layout::HyperV, 1 << 20).write(0, 2048, 1),
            LayerSpec::new("mid.vhd", Layout::HyperV, 1 << 20)
                .write(5, 3, 2)
                .write(4000, 10, 3),
            LayerSpec::new("leaf.vhd", Layout::HyperV, 1 << 20)
                .write(6, 4, 4)
                .write(4005, 2000, 5)
                .write(11000, 1, 6),
        ],
    )
    .unwrap();
    let expect = g.oracle.to_vec();
    let names = ["base.vhd", "mid.vhd", "leaf.vhd"];
    let original = std::fs::read(src.path().join("mid.vhd")).unwrap();
    let (mut refused, mut untouched) = (0, 0);
    for n in 0u64.. {
        assert!(n < 500, "the merge never completed");
        let work = tempfile::tempdir().unwrap();
        for f in names {
            std::fs::copy(src.path().join(f), work.path().join(f)).unwrap();
        }
        let parent = work.path().join("mid.vhd");
        let leaf = work.path().join("leaf.vhd");
        let st = cloudimg()
            .args([
                "coalesce",
                "--into-parent",
                "--abort-after-writes",
                &n.to_string(),
            ])
            .arg(&leaf)
            .output()
            .unwrap();
        if st.status.success() {
            assert!(!journal_path(&parent).exists());
            assert!(read_all(&parent) == expect, "completed merge is wrong");
            eprintln!("{n} write points: {refused} refused, {untouched} untouched");
            break;
        }
        assert_eq!(
            st.status.code(),
            None,
            "expected an abort at point {n}: {st:?}"
        );
        if journal_path(&parent).exists() {
            refused += 1;
            let out = cloudimg()
                .args(["convert", "-O", "raw"])
                .arg(&parent)
                .arg(work.path().join("x.raw"))
                .output()
                .unwrap();
            assert_eq!(out.status.code(), Some(1), "point {n}");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("--rollback") && err.contains("--resume"),
                "{err}"
            );
            assert!(!work.path().join("x.raw").exists());
            if n % 2 == 0 {
                let rb = cloudimg()
                    .args(["coalesce", "--rollback"])
                    .arg(&parent)
                    .output()
                    .unwrap();
                assert!(rb.status.success(), "{rb:?}");
                assert!(
                    std::fs::read(&parent).unwrap() == original,
                    "rollback at point {n}"
                );
            } else {
                let rs = cloudimg()
                    .args(["coalesce", "--resume"])
                    .arg(&parent)
                    .output()
                    .unwrap();
                assert!(rs.status.success(), "{rs:?}");
                assert!(read_all(&parent) == expect, "resume at point {n}");
            }
            assert!(!journal_path(&parent).exists());
        } else {
            let now = std::fs::read(&parent).unwrap();
            if now == original {
                untouched += 1;
            } else {
                assert!(
                    read_all(&parent) == expect,
                    "point {n}: neither untouched nor merged"
                );
            }
        }
    }
    assert!(
        refused > 5 && untouched > 0,
        "refused {refused}, untouched {untouched}"
    );
}

#[test]
fn convert_cli_round_trip_and_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("in.raw");
    let mut data = vec![0u8; 3 << 20];
    data[100] = 1;
    data[(3 << 20) - 1] = 2;
    std::fs::write(&raw, &data).unwrap();
    let vhd = dir.path().join("o.vhd");
    let st = cloudimg()
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vpc",
            "-o",
            "subformat=dynamic",
        ])
        .arg(&raw)
        .arg(&vhd)
        .status()
        .unwrap();
    assert!(st.success());
    let out = cloudimg()
        .args(["convert", "-O", "raw"])
        .arg(&vhd)
        .arg("-")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(out.stdout == data);
    let bad = cloudimg()
        .args(["convert", "-O", "qcow2"])
        .arg(&vhd)
        .arg(dir.path().join("x"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    // create: a child of the VHD, then coalesce the chain back out.
    let child = dir.path().join("child.vhd");
    assert!(cloudimg()
        .args(["create", "-b"])
        .arg(&vhd)
        .arg(&child)
        .status()
        .unwrap()
        .success());
    let flat = dir.path().join("flat.raw");
    assert!(cloudimg()
        .args(["coalesce", "-O", "raw"])
        .arg(&child)
        .arg(&flat)
        .status()
        .unwrap()
        .success());
    assert!(std::fs::read(&flat).unwrap() == data);
    // Over an existing output, which a detached child process frees: the new
    // bytes under the name, no stale hidden file, and the command's pipes
    // close (`output` reads them to the end, so a child holding them would hang it).
    std::fs::write(&flat, vec![7u8; 5 << 20]).unwrap();
    let over = cloudimg()
        .args(["convert", "-O", "raw"])
        .arg(&vhd)
        .arg(&flat)
        .output()
        .unwrap();
    assert!(over.status.success());
    assert!(std::fs::read(&flat).unwrap() == data);
    let hidden: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name())
        .filter(|n| n.to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    let missing = cloudimg()
        .args(["coalesce"])
        .arg(dir.path().join("nope.vhd"))
        .arg(dir.path().join("y"))
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

//! `cloudimg info` and `cloudimg check` on generated fixtures: output and exit codes.

use cloudimg_fixtures::{self as fx, Corruption, LayerSpec, Layout};
use std::process::Command;

fn cloudimg(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn chain(dir: &std::path::Path) -> fx::Generated {
    fx::chain(
        dir,
        4 << 20,
        2,
        &[
            LayerSpec::new("base.vhd", Layout::VhdUtil, 2 << 20).write(0, 100, 1),
            LayerSpec::new("leaf.vhd", Layout::HyperV, 2 << 20).write(3, 3, 2),
        ],
    )
    .unwrap()
}

#[test]
fn info_json_describes_a_differencing_chain() {
    let tmp = tempfile::tempdir().unwrap();
    let g = chain(tmp.path());
    let leaf = g.leaf().to_str().unwrap();
    let (code, out, err) = cloudimg(&["info", "--output", "json", leaf]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format"], "vhd");
    assert_eq!(v["subformat"], "differencing");
    assert_eq!(v["virtual_size"], 4 << 20);
    assert_eq!(v["block_size"], 2 << 20);
    assert_eq!(v["allocated_bytes"], 2 << 20);
    assert_eq!(v["uuid"], uuid_str(&g.uuids[0]));
    assert_eq!(v["parent_uuid"], uuid_str(&g.uuids[1]));
    assert_eq!(v["creator"]["app"], "win ");
    let chain = v["chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    assert_eq!(chain[1]["uuid"], uuid_str(&g.uuids[1]));
    assert!(!v["parent_locators"].as_array().unwrap().is_empty());

    let (code, out, _) = cloudimg(&["info", leaf]);
    assert_eq!(code, 0);
    assert!(out.contains("subformat: differencing"), "{out}");
    assert!(out.contains("virtual size: 4 MiB (4194304 bytes)"), "{out}");
    assert!(out.contains("backing chain:"), "{out}");
}

fn uuid_str(b: &[u8; 16]) -> String {
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[test]
fn check_exit_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let g = chain(tmp.path());
    let leaf = g.leaf().to_str().unwrap();
    let (code, out, err) = cloudimg(&["check", leaf]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 error(s)"), "{out}");

    // A readable oddity (future timestamp): warning, still exit 0.
    let other = tempfile::tempdir().unwrap();
    let d = fx::dynamic(
        other.path(),
        4 << 20,
        3,
        LayerSpec::new("d.vhd", Layout::Qemu, 2 << 20).write(0, 8, 1),
    )
    .unwrap();
    fx::corrupt(d.leaf(), Corruption::FutureTimestamp).unwrap();
    let (code, out, _) = cloudimg(&["check", d.leaf().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("warning: footer.timestamp"), "{out}");

    // Unsafe: overlapping blocks -> 1, with field and offset in JSON.
    let bad = tempfile::tempdir().unwrap();
    let d = fx::dynamic(
        bad.path(),
        8 << 20,
        4,
        LayerSpec::new("d.vhd", Layout::VhdUtil, 2 << 20)
            .write(0, 8, 1)
            .write(5000, 8, 2),
    )
    .unwrap();
    let applied = fx::corrupt(d.leaf(), Corruption::BatEntriesOverlap).unwrap();
    let (code, out, _) = cloudimg(&["check", "--output", "json", d.leaf().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hit = v["findings"].as_array().unwrap().iter().any(|f| {
        f["severity"] == "error"
            && f["field"] == "bat"
            && f["offset"] == applied.offset
            && f["code"] == "bat_overlap"
    });
    assert!(hit, "{out}");

    // Missing file: 2, even next to a bad one.
    let missing = tmp.path().join("nope.vhd");
    let (code, _, _) = cloudimg(&[
        "check",
        missing.to_str().unwrap(),
        d.leaf().to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    let (code, _, _) = cloudimg(&["info", missing.to_str().unwrap()]);
    assert_eq!(code, 2);
    // Usage error.
    let (code, _, _) = cloudimg(&["check"]);
    assert_eq!(code, 2);
    // Not a VHD: data error.
    let junk = tmp.path().join("junk.vhd");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    assert_eq!(cloudimg(&["info", junk.to_str().unwrap()]).0, 1);
    assert_eq!(cloudimg(&["check", junk.to_str().unwrap()]).0, 1);
}

//! `cloudimg pack`: XenServer chain tarballs (explicit list and --chain),
//! indexed gzip and OVA, read back by GNU tar and by `cloudimg unpack`.

use cloudimg_fixtures::env::require_tool;
use std::path::Path;
use std::process::Command;

fn cloudimg(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = cloudimg(args);
    assert!(
        out.status.success(),
        "cloudimg {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// base (dynamic, with data written by qemu-io when present) <- mid <- leaf.
fn make_chain(dir: &Path) -> Vec<std::path::PathBuf> {
    let base = dir.join("base.vhd");
    let mid = dir.join("mid.vhd");
    let leaf = dir.join("leaf.vhd");
    ok(&["create", "-o", "subformat=dynamic", s(&base), "16M"]);
    ok(&["create", "-b", s(&base), s(&mid)]);
    ok(&["create", "-b", s(&mid), s(&leaf)]);
    vec![leaf, mid, base]
}

#[test]
fn chain_tarball_round_trips_through_gnu_tar_and_unpack() {
    if !require_tool("tar") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let chain = make_chain(t.path());
    let out = t.path().join("image.tgz");
    let json = ok(&[
        "pack",
        "--chain",
        "-j",
        "2",
        "--output",
        "json",
        s(&out),
        s(&chain[0]),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let names: Vec<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["0.vhd", "1.vhd", "2.vhd"]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(v["output_bytes"].as_u64().unwrap(), bytes.len() as u64);
    let md5 = v["md5"].as_str().unwrap().to_string();
    assert_eq!(md5.len(), 32);

    let x = t.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(&out)
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    for (i, p) in chain.iter().enumerate() {
        assert_eq!(
            std::fs::read(x.join(format!("{i}.vhd"))).unwrap(),
            std::fs::read(p).unwrap()
        );
    }

    // unpack checks the chain and the expected MD5.
    let u = t.path().join("u");
    let json = ok(&[
        "unpack",
        "--expect-md5",
        &md5,
        "--output",
        "json",
        s(&out),
        s(&u),
    ]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["chain"].as_array().unwrap().len(), 3);
    for (i, p) in chain.iter().enumerate() {
        assert_eq!(
            std::fs::read(u.join(format!("{i}.vhd"))).unwrap(),
            std::fs::read(p).unwrap()
        );
    }
}

#[test]
fn explicit_list_must_link_up() {
    let t = tempfile::tempdir().unwrap();
    let chain = make_chain(t.path());
    let out = t.path().join("bad.tgz");
    // Leaf then base: the leaf's parent is mid, not base.
    let r = cloudimg(&["pack", s(&out), s(&chain[0]), s(&chain[2])]);
    assert_eq!(
        r.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(!out.exists());
    // A level out of range is a usage error.
    let r = cloudimg(&["pack", "--level", "10", s(&out), s(&chain[2])]);
    assert_eq!(r.status.code(), Some(2));
    // The right order works, indexed too, and stdout streaming gives the same tar.
    ok(&[
        "pack",
        "--indexed",
        s(&out),
        s(&chain[0]),
        s(&chain[1]),
        s(&chain[2]),
    ]);
    let u = t.path().join("u");
    ok(&["unpack", "--layout", "xenserver", s(&out), s(&u)]);
    assert_eq!(
        std::fs::read(u.join("2.vhd")).unwrap(),
        std::fs::read(&chain[2]).unwrap()
    );
    let piped = cloudimg(&["pack", "-", s(&chain[2])]);
    assert!(piped.status.success());
    assert_eq!(&piped.stdout[..2], &[0x1f, 0x8b]);
}

#[test]
fn ova_with_descriptor_and_manifest() {
    if !require_tool("tar") {
        return;
    }
    let t = tempfile::tempdir().unwrap();
    let disk = t.path().join("disk0.vhd");
    ok(&["create", "-o", "subformat=dynamic", s(&disk), "32M"]);
    let out = t.path().join("web.ova");
    ok(&["pack", "--layout", "ova", s(&out), s(&disk)]);
    let list = Command::new("tar").arg("-tf").arg(&out).output().unwrap();
    assert_eq!(
        String::from_utf8(list.stdout).unwrap(),
        "web.ovf\nweb.mf\ndisk0.vhd\n"
    );
    let ovf = Command::new("tar")
        .arg("-xOf")
        .arg(&out)
        .arg("web.ovf")
        .output()
        .unwrap();
    let ovf = String::from_utf8(ovf.stdout).unwrap();
    assert!(
        ovf.contains(&format!("ovf:capacity=\"{}\"", 32 << 20)),
        "{ovf}"
    );
    let u = t.path().join("u");
    let json = ok(&["unpack", "--output", "json", s(&out), s(&u)]);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v["ova_verified"].as_array().unwrap().len(), 2);
    assert_eq!(v["gzip"], false);
}

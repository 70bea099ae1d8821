//! Our archives read by GNU tar, gzip, pigz and Python's tarfile; theirs
//! (`tar -zc --directory=DIR .` as os-xenapi makes them, Python's tarfile)
//! read by us.

mod common;

use cloudimg_fixtures::env::require_tool;
use cloudimg_ova::gzip::GzOptions;
use cloudimg_ova::ovf::{pack_ova, plain_options, OvaDisk, VmSpec};
use cloudimg_ova::xenserver::{pack_chain, Layer, XenStream};
use cloudimg_ova::{unpack, Compression, ErrorKind, Layout, Limits, PackOptions, UnpackOptions};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;
use std::process::Command;

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A chain whose base carries content, so byte comparisons mean something.
fn chain_with_data() -> Vec<Vec<u8>> {
    let mut c = common::chain3();
    c.pop();
    c.push(common::fixed(&common::content(3 << 20, 9), common::uuid(3)));
    c
}

fn pack_to(chain: &[Vec<u8>], compression: Compression) -> Vec<u8> {
    let layers = chain
        .iter()
        .map(|v| Layer {
            len: v.len() as u64,
            data: Box::new(&v[..]),
        })
        .collect();
    let opts = PackOptions {
        compression,
        mtime: Some(1_700_000_000),
    };
    pack_chain(Vec::new(), layers, &opts).unwrap().1
}

fn gz2() -> GzOptions {
    GzOptions {
        jobs: 2,
        chunk_size: 128 * 1024,
        ..GzOptions::default()
    }
}

fn assert_dir_holds(dir: &Path, chain: &[Vec<u8>]) {
    for (i, v) in chain.iter().enumerate() {
        let got = std::fs::read(dir.join(format!("{i}.vhd"))).unwrap();
        assert!(got == *v, "{i}.vhd differs");
    }
}

#[test]
fn gnu_tar_gzip_pigz_and_python_read_our_tarballs() {
    if !require_tool("tar")
        || !require_tool("gzip")
        || !require_tool("pigz")
        || !require_tool("python3")
    {
        return;
    }
    let chain = chain_with_data();
    let plain = pack_to(&chain, Compression::None);
    for compression in [Compression::Gzip(gz2()), Compression::Indexed(gz2())] {
        let t = tempfile::tempdir().unwrap();
        let tgz = t.path().join("image.tgz");
        std::fs::write(&tgz, pack_to(&chain, compression)).unwrap();
        // gzip and pigz see exactly our tar.
        assert!(run(Command::new("gzip").arg("-dc").arg(&tgz)) == plain);
        assert!(run(Command::new("pigz").arg("-dc").arg(&tgz)) == plain);
        run(Command::new("gzip").arg("-t").arg(&tgz));
        // GNU tar extracts the chain.
        let x = t.path().join("x");
        std::fs::create_dir(&x).unwrap();
        run(Command::new("tar").arg("-xzf").arg(&tgz).arg("-C").arg(&x));
        assert_dir_holds(&x, &chain);
        let listing = String::from_utf8(run(Command::new("tar").arg("-tzvf").arg(&tgz))).unwrap();
        assert!(
            listing.contains("0.vhd") && listing.contains("2.vhd"),
            "{listing}"
        );
        // Python's tarfile extracts it too.
        let p = t.path().join("p");
        run(Command::new("python3")
            .arg("-c")
            .arg(
                "import sys, tarfile\n\
             with tarfile.open(sys.argv[1], 'r:gz') as t:\n\
             \x20   assert [m.name for m in t.getmembers()] == ['0.vhd', '1.vhd', '2.vhd']\n\
             \x20   t.extractall(sys.argv[2])\n",
            )
            .arg(&tgz)
            .arg(&p));
        assert_dir_holds(&p, &chain);
    }
}

#[test]
fn os_xenapi_tarballs_open_with_dot_slash_names_in_any_order() {
    if !require_tool("tar") {
        return;
    }
    let chain = chain_with_data();
    let t = tempfile::tempdir().unwrap();
    let staging = t.path().join("staging");
    std::fs::create_dir(&staging).unwrap();
    // Written in reverse so the directory order is unlikely to be 0..n.
    for (i, v) in chain.iter().enumerate().rev() {
        std::fs::write(staging.join(format!("{i}.vhd")), v).unwrap();
    }
    std::fs::write(
        staging.join("swap.vhd"),
        common::sparse(common::MIB * 8, common::uuid(7), None, false),
    )
    .unwrap();
    let tgz = t.path().join("image.tgz");
    run(Command::new("tar")
        .arg("-zcf")
        .arg(&tgz)
        .arg("--directory")
        .arg(&staging)
        .arg("."));
    let listing = String::from_utf8(run(Command::new("tar").arg("-tzf").arg(&tgz))).unwrap();
    assert!(listing.starts_with("./\n"), "{listing}");

    let out = t.path().join("out");
    let archive = std::fs::read(&tgz).unwrap();
    let opts = UnpackOptions {
        layout: Layout::XenServer,
        sha256: true,
        ..UnpackOptions::default()
    };
    let report = unpack(&archive[..], &out, &opts).unwrap();
    assert_dir_holds(&out, &chain);
    let chain_found = report.chain.unwrap();
    assert_eq!(chain_found.len(), 3);
    assert_eq!(chain_found[0].archive_name, "./0.vhd");
    assert_eq!(
        report.stream.md5,
        format!("{:x}", md5::Md5::digest(&archive))
    );
    assert_eq!(
        report.stream.sha256.unwrap(),
        format!("{:x}", Sha256::digest(&archive))
    );
    assert!(out.join("swap.vhd").exists());

    // The streaming reader yields members as they come and checks the chain at the end.
    let mut s = XenStream::new(&archive[..], Limits::default()).unwrap();
    let mut seen = Vec::new();
    while let Some(mut m) = s.next_member().unwrap() {
        let name = m.name().to_string();
        let mut head = [0u8; 100];
        m.read_exact(&mut head).unwrap(); // read a little, leave the rest to the stream
        seen.push(name);
    }
    let (chain_streamed, stats) = s.finish().unwrap();
    assert_eq!(seen.len(), 3);
    assert_eq!(
        chain_streamed.iter().map(|m| m.index).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert_eq!(stats.compressed_bytes, archive.len() as u64);
}

#[test]
fn legacy_names_are_renamed() {
    if !require_tool("tar") {
        return;
    }
    let c = common::chain3();
    for (names, expect_files) in [
        (vec!["snap.vhd", "image.vhd", "base.vhd"], 3),
        (vec!["whatever.vhd"], 1),
    ] {
        let t = tempfile::tempdir().unwrap();
        let staging = t.path().join("s");
        std::fs::create_dir(&staging).unwrap();
        if names.len() == 1 {
            let lone = common::sparse(8 * common::MIB, common::uuid(5), None, false);
            std::fs::write(staging.join(names[0]), lone).unwrap();
        } else {
            for (n, v) in names.iter().zip(&c) {
                std::fs::write(staging.join(n), v).unwrap();
            }
        }
        let tgz = t.path().join("i.tgz");
        run(Command::new("tar")
            .arg("-zcf")
            .arg(&tgz)
            .arg("-C")
            .arg(&staging)
            .arg("."));
        let out = t.path().join("out");
        let opts = UnpackOptions {
            layout: Layout::XenServer,
            ..UnpackOptions::default()
        };
        unpack(std::fs::File::open(&tgz).unwrap(), &out, &opts).unwrap();
        let want: Vec<String> = (0..expect_files).map(|i| format!("{i}.vhd")).collect();
        assert_eq!(common::listing(&out), want);
    }
}

#[test]
fn python_tarfile_archives_open() {
    if !require_tool("python3") {
        return;
    }
    let chain = chain_with_data();
    let t = tempfile::tempdir().unwrap();
    for (i, v) in chain.iter().enumerate() {
        std::fs::write(t.path().join(format!("{i}.vhd")), v).unwrap();
    }
    let tgz = t.path().join("py.tgz");
    // PAX format with a long name member too (written as a pax header by Python).
    let long = "n".repeat(120);
    std::fs::write(t.path().join(&long), b"long name").unwrap();
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, os, tarfile\n\
         d = sys.argv[1]\n\
         with tarfile.open(sys.argv[2], 'w:gz', format=tarfile.PAX_FORMAT) as t:\n\
         \x20   for n in ['1.vhd', '0.vhd', '2.vhd', 'n' * 120]:\n\
         \x20       t.add(os.path.join(d, n), arcname=n)\n",
        )
        .arg(t.path())
        .arg(&tgz));
    let out = t.path().join("out");
    let opts = UnpackOptions {
        layout: Layout::XenServer,
        ..UnpackOptions::default()
    };
    unpack(std::fs::File::open(&tgz).unwrap(), &out, &opts).unwrap();
    assert_dir_holds(&out, &chain);
    assert_eq!(std::fs::read(out.join(&long)).unwrap(), b"long name");
}

#[test]
fn ova_reads_in_tar_and_python_and_checks_its_manifest() {
    if !require_tool("tar") || !require_tool("python3") {
        return;
    }
    let disk = common::fixed(&common::content(1 << 20, 11), common::uuid(11));
    let base = common::sparse(64 * common::MIB, common::uuid(12), None, false);
    let disks = |a: &[u8], b: &[u8]| -> Vec<OvaDisk<'static>> {
        [
            ("disk0.vhd", a.to_vec(), 1u64 << 20),
            ("disk1.vhd", b.to_vec(), 64 * common::MIB),
        ]
        .into_iter()
        .map(|(n, v, cap)| OvaDisk {
            name: n.into(),
            len: v.len() as u64,
            capacity: cap,
            sha256: Sha256::digest(&v).into(),
            data: Box::new(std::io::Cursor::new(v)),
        })
        .collect()
    };
    let vm = VmSpec {
        name: "web-1".into(),
        ..VmSpec::default()
    };
    let (report, ova) = pack_ova(Vec::new(), &vm, disks(&disk, &base), &plain_options()).unwrap();
    assert_eq!(
        report
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .collect::<Vec<_>>(),
        ["web-1.ovf", "web-1.mf", "disk0.vhd", "disk1.vhd"]
    );
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("web-1.ova");
    std::fs::write(&path, &ova).unwrap();
    let listing = String::from_utf8(run(Command::new("tar").arg("-tf").arg(&path))).unwrap();
    assert_eq!(listing, "web-1.ovf\nweb-1.mf\ndisk0.vhd\ndisk1.vhd\n");
    let mf = run(Command::new("tar").arg("-xOf").arg(&path).arg("web-1.mf"));
    let mf = String::from_utf8(mf).unwrap();
    assert!(
        mf.contains(&format!("SHA256(disk0.vhd)= {:x}\n", Sha256::digest(&disk))),
        "{mf}"
    );
    let ovf = String::from_utf8(run(Command::new("tar")
        .arg("-xOf")
        .arg(&path)
        .arg("web-1.ovf")))
    .unwrap();
    assert!(ovf.contains(&format!(
        "ovf:href=\"disk0.vhd\" ovf:id=\"file0\" ovf:size=\"{}\"",
        disk.len()
    )));
    assert!(ovf.contains("ovf:capacity=\"1048576\""));
    // Python parses the descriptor as XML.
    run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, tarfile, xml.etree.ElementTree as ET\n\
         t = tarfile.open(sys.argv[1])\n\
         root = ET.fromstring(t.extractfile('web-1.ovf').read())\n\
         ns = {'o': 'http://schemas.dmtf.org/ovf/envelope/1'}\n\
         disks = root.findall('o:DiskSection/o:Disk', ns)\n\
         assert len(disks) == 2, disks\n",
        )
        .arg(&path));

    let out = t.path().join("out");
    let opts = UnpackOptions {
        layout: Layout::Ova,
        ..UnpackOptions::default()
    };
    let r = unpack(&ova[..], &out, &opts).unwrap();
    let info = r.ova.unwrap();
    assert_eq!(info.verified, ["web-1.ovf", "disk0.vhd", "disk1.vhd"]);
    assert_eq!(std::fs::read(out.join("disk0.vhd")).unwrap(), disk);

    // A disk that does not match its manifest line is refused, leaving nothing.
    let mut bad = disk.clone();
    bad[10] ^= 1;
    let mut d = disks(&bad, &base);
    d[0].sha256 = Sha256::digest(&disk).into();
    let (_, tampered) = pack_ova(Vec::new(), &vm, d, &plain_options()).unwrap();
    let out2 = t.path().join("out2");
    let e = unpack(&tampered[..], &out2, &opts).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChecksumMismatch);
    assert_eq!(e.member_name(), Some("disk0.vhd"));
    assert!(!out2.exists());
}

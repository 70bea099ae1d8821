//! Every compression level, on every engine it maps to (ISA-L, zlib-rs,
//! libdeflate; see `gzip::engine`), writes packages that gzip, pigz, igzip,
//! GNU tar, Python's tarfile and our own reader all read back to the same
//! bytes, in the standard and the indexed form.

mod common;

use cloudimg_fixtures::env::require_tool;
use cloudimg_ova::gzip::GzOptions;
use cloudimg_ova::xenserver::{pack_chain, Layer};
use cloudimg_ova::{unpack, Compression, Layout, PackOptions, UnpackOptions};
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

/// Runs of random bytes and of hex words, 512 KiB each: the indexed form's
/// 1 MiB members hold both, and the random runs are long enough for the
/// stored-block sampling to see them.
fn mixed(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let words: Vec<String> = (0..500).map(|_| format!("{:016x} ", next())).collect();
    let mut v = Vec::with_capacity(n);
    while v.len() < n {
        if (v.len() >> 19) % 2 == 0 {
            v.extend_from_slice(&next().to_le_bytes());
        } else {
            v.extend_from_slice(words[next() as usize % words.len()].as_bytes());
        }
    }
    v.truncate(n);
    v
}

fn chain() -> Vec<Vec<u8>> {
    let mut c = common::chain3();
    c.pop();
    c.push(common::fixed(&mixed(3 << 20), common::uuid(3)));
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

fn assert_dir_holds(dir: &Path, chain: &[Vec<u8>]) {
    for (i, v) in chain.iter().enumerate() {
        let got = std::fs::read(dir.join(format!("{i}.vhd"))).unwrap();
        assert!(got == *v, "{}: {i}.vhd differs", dir.display());
    }
}

#[test]
fn every_level_and_form_reads_back_everywhere() {
    let tools = ["gzip", "pigz", "igzip", "tar", "python3"];
    if !tools.iter().all(|t| require_tool(t)) {
        return;
    }
    let chain = chain();
    let plain = pack_to(&chain, Compression::None);
    let t = tempfile::tempdir().unwrap();
    // One level per engine row of gzip::engine: ISA-L 1, 2, 3; zlib-rs / libdeflate.
    for level in [1, 6, 7, 9] {
        let standard = GzOptions {
            level,
            jobs: 2,
            chunk_size: 128 << 10,
            mtime: 0,
        };
        let indexed = GzOptions {
            chunk_size: 1 << 20,
            ..standard
        };
        for (form, compression) in [
            ("standard", Compression::Gzip(standard)),
            ("indexed", Compression::Indexed(indexed)),
        ] {
            let what = format!("level {level} {form}");
            let tgz = t.path().join(format!("{level}-{form}.tgz"));
            let bytes = pack_to(&chain, compression);
            // Not stored: every level compresses the text runs.
            assert!(
                bytes.len() < plain.len() * 9 / 10,
                "{what}: {}",
                bytes.len()
            );
            std::fs::write(&tgz, &bytes).unwrap();
            for tool in ["gzip", "pigz", "igzip"] {
                // On stdin: igzip 2.30 does not take a `.tgz` name for -t.
                let stdin = std::fs::File::open(&tgz).unwrap();
                run(Command::new(tool).arg("-t").stdin(stdin));
                let out = run(Command::new(tool).arg("-dc").arg(&tgz));
                assert!(out == plain, "{what}: {tool} -dc differs");
            }
            let x = t.path().join(format!("{level}-{form}-tar"));
            std::fs::create_dir(&x).unwrap();
            run(Command::new("tar").arg("-xzf").arg(&tgz).arg("-C").arg(&x));
            assert_dir_holds(&x, &chain);
            let p = t.path().join(format!("{level}-{form}-py"));
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
            let ours = t.path().join(format!("{level}-{form}-ours"));
            let opts = UnpackOptions {
                layout: Layout::XenServer,
                ..UnpackOptions::default()
            };
            let report = unpack(&bytes[..], &ours, &opts).unwrap();
            assert_eq!(report.chain.unwrap().len(), 3, "{what}");
            assert_dir_holds(&ours, &chain);
        }
    }
}

//! Throughput of the parallel gzip writer, side by side with `gzip -6` and
//! `pigz -p N -6` on the same input in the same run.
//!
//! `cargo bench -p cloudimg-ova --bench gzip -- INPUT [JOBS] [LEVEL] [CHUNK_KIB]`
//! Without INPUT it generates a 64 MiB VHD-like mix (half random, half text and
//! zeros) in a temporary file. Prints MB/s and sizes; asserts nothing.

use cloudimg_ova::gzip::{GzOptions, ParGzWriter};
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let tmp;
    let input = match args.first() {
        Some(p) => std::path::PathBuf::from(p),
        None => {
            tmp = tempfile::NamedTempFile::new().expect("temp file");
            std::fs::write(tmp.path(), mix(64 << 20)).expect("write input");
            tmp.path().to_path_buf()
        }
    };
    let jobs: usize = args.get(1).map_or(2, |s| s.parse().expect("jobs"));
    let level: u32 = args.get(2).map_or(6, |s| s.parse().expect("level"));
    let chunk_kib: usize = args.get(3).map_or(256, |s| s.parse().expect("chunk KiB"));
    let len = std::fs::metadata(&input).expect("input").len();
    // Warm the page cache so every contender reads from memory.
    std::io::copy(
        &mut std::fs::File::open(&input).unwrap(),
        &mut std::io::sink(),
    )
    .unwrap();
    println!(
        "input {} ({} MiB), level {level}",
        input.display(),
        len >> 20
    );

    let t = Instant::now();
    let mut f = std::fs::File::open(&input).unwrap();
    let opts = GzOptions {
        level,
        jobs,
        chunk_size: chunk_kib * 1024,
        mtime: 0,
    };
    let mut w = ParGzWriter::new(Counter(0), opts).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).unwrap();
    }
    let out = w.finish().unwrap().0;
    report(
        &format!("cloudimg -j{jobs} chunk {chunk_kib}K"),
        len,
        out,
        t,
    );
    if std::env::var_os("CLOUDIMG_BENCH_ONLY_OURS").is_some() {
        return;
    }

    for (name, cmd, extra) in [
        ("pigz", "pigz", vec![format!("-p{jobs}")]),
        ("gzip", "gzip", vec![]),
    ] {
        let t = Instant::now();
        let child = Command::new(cmd)
            .args(&extra)
            .arg(format!("-{level}"))
            .arg("-c")
            .arg(&input)
            .stdout(Stdio::piped())
            .spawn();
        let Ok(mut child) = child else {
            println!("{name}: not installed");
            continue;
        };
        let out = std::io::copy(&mut child.stdout.take().unwrap(), &mut std::io::sink()).unwrap();
        child.wait().unwrap();
        report(name, len, out, t);
    }

    // Unpack: our unpack of a one-member tar.gz vs `gzip -dc | tar -x`.
    let dir = tempfile::tempdir().unwrap();
    let tgz = dir.path().join("in.tgz");
    {
        let f = std::fs::File::create(&tgz).unwrap();
        let opts = cloudimg_ova::PackOptions {
            compression: cloudimg_ova::Compression::Gzip(GzOptions {
                jobs,
                level,
                ..GzOptions::default()
            }),
            mtime: Some(0),
        };
        let input_file = std::fs::File::open(&input).unwrap();
        let inputs = vec![cloudimg_ova::PackInput {
            name: "0.vhd".into(),
            len,
            data: Box::new(input_file),
        }];
        cloudimg_ova::pack(std::io::BufWriter::new(f), inputs, &opts).unwrap();
    }
    let gz_len = std::fs::metadata(&tgz).unwrap().len();
    let t = Instant::now();
    let out = dir.path().join("ours");
    cloudimg_ova::unpack(
        std::fs::File::open(&tgz).unwrap(),
        &out,
        &cloudimg_ova::UnpackOptions::default(),
    )
    .unwrap();
    report("unpack: cloudimg (tar.gz)", len, gz_len, t);
    let theirs = dir.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    let t = Instant::now();
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' | tar -x -C '{}'",
            tgz.display(),
            theirs.display()
        ))
        .status()
        .unwrap()
        .success();
    assert!(ok);
    report("unpack: gzip -dc | tar -x", len, gz_len, t);
    drop(dir);

    // Indexed multi-member: write, then decompress everything with 1 and with N threads.
    let opts = GzOptions {
        level,
        jobs,
        chunk_size: 1 << 20,
        mtime: 0,
    };
    let mut w = cloudimg_ova::gzip::indexed::IndexedGzWriter::new(Vec::new(), opts).unwrap();
    std::io::copy(&mut std::fs::File::open(&input).unwrap(), &mut w).unwrap();
    let (bytes, _) = w.finish(&[]).unwrap();
    println!(
        "indexed gzip: {} bytes ({:.3}%)",
        bytes.len(),
        bytes.len() as f64 * 100.0 / len as f64
    );
    let mut one = 0.0;
    for threads in [1, jobs] {
        let r = cloudimg_ova::gzip::indexed::IndexedReader::open(
            &bytes[..],
            bytes.len() as u64,
            threads,
        )
        .unwrap();
        let t = Instant::now();
        let n = r.copy_to(std::io::sink()).unwrap();
        let secs = t.elapsed().as_secs_f64();
        if threads == 1 {
            one = secs;
        }
        println!(
            "indexed decompress {threads} thread(s): {:8.1} MB/s  {secs:6.2}s  speedup {:.2}x",
            n as f64 / secs / 1e6,
            one / secs
        );
    }
    let t = Instant::now();
    let mut back = 0u64;
    let mut d = flate2::read::MultiGzDecoder::new(&bytes[..]);
    back += std::io::copy(&mut d, &mut std::io::sink()).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "indexed decompress sequential flate2 MultiGzDecoder: {:8.1} MB/s",
        back as f64 / secs / 1e6
    );
}

fn report(name: &str, len: u64, out: u64, t: Instant) {
    let s = t.elapsed().as_secs_f64();
    println!(
        "{name:28} {:8.1} MB/s  {:6.2}s  out {out} bytes ({:.3}%)",
        len as f64 / s / 1e6,
        s,
        out as f64 * 100.0 / len as f64
    );
}

struct Counter(u64);

impl Write for Counter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0 += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Half random, a quarter log-like text, a quarter zeros with sprinkled sectors.
fn mix(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(n);
    let seg = 1 << 20;
    let mut k = 0;
    while out.len() < n {
        match k % 4 {
            0 | 2 => {
                for _ in 0..seg / 8 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    out.extend_from_slice(&x.to_le_bytes());
                }
            }
            1 => {
                let mut i = 0u64;
                let start = out.len();
                while out.len() - start < seg {
                    let line = format!(
                        "2024-05-01 12:00:{:02} host{} kernel: [{}] eth{}: link up\n",
                        i % 60,
                        i % 17,
                        i * 7919,
                        i % 4
                    );
                    out.extend_from_slice(line.as_bytes());
                    i += 1;
                }
                out.truncate(start + seg);
            }
            _ => {
                let start = out.len();
                out.resize(start + seg, 0);
                for j in (0..seg).step_by(65536) {
                    out[start + j] = (j >> 16) as u8 | 1;
                }
            }
        }
        k += 1;
    }
    out.truncate(n);
    out
}

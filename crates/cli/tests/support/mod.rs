//! What the race and crash tests share: `cloudimg` processes (with the test Swift's
//! credentials when there is one), small source disks made by qemu-img, and the oracle:
//! qemu-img's raw image of a VHD.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A `cloudimg` command, with the test Swift's credentials when it is configured.
pub fn cloudimg() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_cloudimg"));
    c.env("CLOUDIMG_LOG", "warn");
    if let Some(env) = swift_env() {
        c.env("ST_AUTH", &env.auth_url)
            .env("ST_USER", &env.user)
            .env("ST_KEY", &env.key);
    }
    c
}

/// The test Swift, loaded once.
pub fn swift_env() -> Option<&'static cloudimg_fixtures::env::SwiftEnv> {
    static ENV: std::sync::OnceLock<Option<cloudimg_fixtures::env::SwiftEnv>> =
        std::sync::OnceLock::new();
    ENV.get_or_init(cloudimg_fixtures::env::swift).as_ref()
}

/// Exit code 0, or a panic with stderr.
pub fn ok(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Writes `mib` MiB of mixed data (random, text-like, zero 4 KiB runs) as a raw file
/// and as a dynamic VHD made by qemu-img; returns the VHD's path and its disk as
/// qemu-img reads it.
pub fn vhd_of(dir: &Path, name: &str, mib: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let (out, data) = write_vhd(dir, name, mib, seed);
    // qemu-img rounds the size up to whole CHS cylinders: its reading of the VHD, not
    // the bytes written, is the disk.
    let disk = raw_of(&out);
    assert!(disk.starts_with(&data));
    (out, disk)
}

/// The VHD of [`vhd_of`] without reading it back: its path and the data written.
pub fn write_vhd(dir: &Path, name: &str, mib: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let mut data = vec![0u8; mib << 20];
    let mut x: u64 = 0x9e3779b97f4a7c15 ^ seed;
    for (i, chunk) in data.chunks_mut(4096).enumerate() {
        if i % 3 != 2 {
            for b in chunk.iter_mut() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = if i % 3 == 0 {
                    (x >> 56) as u8
                } else {
                    b"abcdefgh "[(x % 9) as usize]
                };
            }
        }
    }
    let out = dir.join(name);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let raw = dir.join(format!("{name}.raw"));
    std::fs::write(&raw, &data).unwrap();
    let st = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "raw", "-O", "vpc"])
        .arg(&raw)
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    std::fs::remove_file(raw).unwrap();
    (out, data)
}

/// The arguments of an import of `from` into `store` (name `d`, owner `p1`) in 1 MiB
/// package segments, so a small image has several.
pub fn import_args<'a>(from: &'a str, store: &'a str) -> [&'a str; 11] {
    [
        "import",
        "--from",
        from,
        "--store",
        store,
        "--name",
        "d",
        "--owner",
        "p1",
        "--package-segment-size",
        "1048576",
    ]
}

/// Imports `vhd` into the local store `store` (name `d`, owner `p1`); returns the image id.
pub fn import_vhd(vhd: &Path, store: &Path) -> String {
    let t = ok(&cloudimg()
        .args(["import", "--from", s(vhd), "--store", s(store)])
        .args(["--name", "d", "--owner", "p1"])
        .output()
        .unwrap());
    t["result"]["image_id"].as_str().unwrap().to_string()
}

/// `cloudimg export` of image `id` in `store` into the local folder `to`, 1 MiB segments.
pub fn export_args<'a>(store: &'a str, id: &'a str, to: &'a str) -> [&'a str; 11] {
    [
        "export",
        "--store",
        store,
        "--image",
        id,
        "--to",
        to,
        "--owner",
        "p1",
        "--segment-size",
        "1048576",
    ]
}

/// The virtual disk of a VHD as qemu-img reads it.
pub fn raw_of(vhd: &Path) -> Vec<u8> {
    let raw = vhd.with_extension("oracle.raw");
    let out = Command::new("qemu-img")
        .args(["convert", "-q", "-f", "vpc", "-O", "raw"])
        .arg(vhd)
        .arg(&raw)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let b = std::fs::read(&raw).unwrap();
    std::fs::remove_file(raw).unwrap();
    b
}

/// The VHD a local export wrote into `container` (a directory): its segments
/// `<name>-00001`, ... concatenated into `out`; `None` without the manifest `<name>`.
pub fn local_export(container: &Path, name: &str, out: &Path) -> Option<PathBuf> {
    if !container.join(name).is_file() {
        return None;
    }
    let mut segs: Vec<PathBuf> = std::fs::read_dir(container)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{name}-")))
        })
        .collect();
    segs.sort();
    let mut all = Vec::new();
    for p in segs {
        all.extend(std::fs::read(p).unwrap());
    }
    std::fs::write(out, all).unwrap();
    Some(out.to_path_buf())
}

/// Every file under `dir`, relative, sorted (hidden ones too).
pub fn files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// A name unique to this process and `tag`, for Swift containers.
pub fn unique(tag: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{tag}-{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 1_000_000
    )
}

/// The names of every object in the test Swift's `container` (empty when there is none).
pub fn swift_objects(container: &str) -> Vec<String> {
    swift_listing(container).into_iter().map(|e| e.0).collect()
}

/// Names and sizes of every object in the test Swift's `container`.
pub fn swift_listing(container: &str) -> Vec<(String, u64)> {
    use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
    let env = swift_env().expect("the test Swift");
    let store = SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url.clone(),
        user: env.user.clone(),
        key: env.key.clone(),
    });
    match cloudimg_pipeline::store::list_all(&store, container, "") {
        Ok(l) => l.into_iter().map(|e| (e.name, e.size)).collect(),
        Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("list {container}: {e}"),
    }
}

/// Deletes test Swift containers (and what is in them) when dropped, pass or fail, with
/// python-swiftclient: the race and crash tests make many small ones.
#[derive(Default)]
pub struct SwiftCleanup(pub std::sync::Mutex<Vec<String>>);

impl SwiftCleanup {
    /// `name`, returned, to be deleted at the end.
    pub fn add(&self, name: String) -> String {
        self.0.lock().unwrap().push(name.clone());
        name
    }
}

impl SwiftCleanup {
    /// A new Swift container named after `prefix`, deleted at the end, made by uploading
    /// a one-byte object `tiny` into it (staged in `dir`): `swift://CONTAINER`.
    pub fn made(&self, dir: &Path, prefix: &str) -> String {
        let to = format!("swift://{}", self.add(unique(prefix)));
        let tiny = dir.join("tiny");
        std::fs::write(&tiny, b"x").unwrap();
        ok(&cloudimg()
            .arg("upload")
            .arg(&tiny)
            .arg(format!("{to}/tiny"))
            .output()
            .unwrap());
        to
    }
}

impl Drop for SwiftCleanup {
    fn drop(&mut self) {
        let Some(env) = swift_env() else {
            return;
        };
        for c in self.0.lock().unwrap().iter() {
            let _ = Command::new("swift")
                .env("ST_AUTH", &env.auth_url)
                .env("ST_USER", &env.user)
                .env("ST_KEY", &env.key)
                .env_remove("OS_AUTH_URL")
                .env_remove("OS_STORAGE_URL")
                .args(["delete", c])
                .output();
        }
    }
}

//! Races between real `cloudimg` processes started at the same moment, many rounds each:
//! two identical imports (one task id, one image id), two exports into one container,
//! an export while its image is deleted. Whatever the interleaving, the store holds one
//! image whose disk equals the source, the container one manifest over segments whose
//! disk equals the source (or nothing that looks finished), and a loser says why.
//! Oracle: qemu-img's raw image of the source and of what was stored or exported.

mod support;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use support::{cloudimg, export_args, files, import_vhd, local_export, ok, raw_of, s, vhd_of};

const ROUNDS: usize = 12;
/// Rounds of the Swift races (each round is a fresh container).
const SWIFT_ROUNDS: usize = 6;

fn spawn(args: &[&str]) -> Child {
    cloudimg()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Both processes' outputs, started together.
fn both(a: &[&str], b: &[&str]) -> [Output; 2] {
    let (x, y) = (spawn(a), spawn(b));
    [x.wait_with_output().unwrap(), y.wait_with_output().unwrap()]
}

/// A run lost the race cleanly: exit 2 and a message that says another run holds it.
fn lost_cleanly(o: &Output) -> bool {
    let err = String::from_utf8_lossy(&o.stderr);
    o.status.code() == Some(2) && err.contains("is in progress in another process")
}

/// Exports image `id` from `store` into `dir/exports`, returns the exported disk.
fn export_disk(dir: &Path, store: &str, id: &str) -> Vec<u8> {
    let exports = dir.join("out/exports");
    std::fs::create_dir_all(&exports).unwrap();
    ok(&cloudimg()
        .args(export_args(store, id, s(&exports)))
        .output()
        .unwrap());
    let vhd = local_export(&exports, &format!("{id}.vhd"), &dir.join("out/x.vhd")).unwrap();
    let raw = raw_of(&vhd);
    std::fs::remove_dir_all(dir.join("out")).unwrap();
    raw
}

/// Two identical imports at once, `rounds` times, into a fresh store each time.
fn identical_imports(from: &str, store_of: &dyn Fn(usize) -> String, rounds: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let mut last = Vec::new();
    let (mut wins, mut losses) = (0, 0);
    for round in 0..rounds {
        let store = store_of(round);
        let args = [
            "import", "--from", from, "--store", &store, "--name", "d", "--owner", "p1", "-j", "1",
        ];
        let outs = both(&args, &args);
        let mut ids = Vec::new();
        for o in &outs {
            if o.status.success() {
                let t: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
                assert_eq!(t["status"], "success");
                ids.push(t["result"]["image_id"].as_str().unwrap().to_string());
                wins += 1;
            } else {
                assert!(
                    lost_cleanly(o),
                    "round {round}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                losses += 1;
            }
        }
        assert!(!ids.is_empty(), "round {round}: neither import finished");
        ids.dedup();
        assert_eq!(ids.len(), 1, "round {round}: one image id");
        let id = &ids[0];
        // One image, no lock left, no package of another id.
        let list = ok(&cloudimg()
            .args(["import", "--from", from, "--store", &store])
            .args(["--name", "d", "--owner", "p1"])
            .output()
            .unwrap());
        assert_eq!(list["result"]["image_id"], id.as_str(), "a re-run finds it");
        if round == 0 || round + 1 == rounds {
            last = export_disk(dir.path(), &store, id);
        }
        let names = match store.strip_prefix("swift://") {
            Some(c) => support::swift_objects(c),
            None => files(&Path::new(&store).join("images")),
        };
        let records: Vec<_> = names.iter().filter(|n| n.ends_with(".json")).collect();
        assert_eq!(records, [&format!("{id}.json")], "round {round}: {names:?}");
        assert!(
            names.iter().all(|n| n.starts_with(id.as_str())),
            "round {round}: {names:?}"
        );
        assert!(
            !names.iter().any(|n| n.contains(".lock")),
            "round {round}: {names:?}"
        );
    }
    eprintln!("{rounds} rounds: {wins} runs finished, {losses} refused as in progress");
    last
}

#[test]
fn two_identical_imports_at_once_make_one_image() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (vhd, raw) = vhd_of(dir.path(), "src/uploads/disk.vhd", 4, 1);
    let root = dir.path().to_path_buf();
    let disk = identical_imports(
        s(&vhd),
        &|round| s(&root.join(format!("store-{round}"))).to_string(),
        ROUNDS,
    );
    assert!(disk == raw, "the stored image's disk equals the source");
}

#[test]
fn two_identical_imports_at_once_on_swift_make_one_image() {
    if support::swift_env().is_none() || !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (vhd, raw) = vhd_of(dir.path(), "disk.vhd", 4, 2);
    let gc = support::SwiftCleanup::default();
    let src = gc.add(support::unique("race-src"));
    let from = format!("swift://{src}/disk.vhd");
    ok(&cloudimg()
        .arg("upload")
        .arg(&vhd)
        .arg(&from)
        .output()
        .unwrap());
    let tag = support::unique("race-img");
    let disk = identical_imports(
        &from,
        &|round| format!("swift://{}", gc.add(format!("{tag}-{round}"))),
        SWIFT_ROUNDS,
    );
    assert!(disk == raw, "the stored image's disk equals the source");
    // No round left a lock entry behind.
    for round in 0..SWIFT_ROUNDS {
        let names = support::swift_objects(&format!("{tag}-{round}"));
        assert!(
            !names.iter().any(|n| n.contains(".lock")),
            "round {round}: {names:?}"
        );
    }
}

/// A store holding one imported image of `mib` MiB; returns (store, image id, disk).
fn imported(dir: &Path, mib: usize) -> (String, String, Vec<u8>) {
    let (vhd, raw) = vhd_of(dir, "src/uploads/disk.vhd", mib, 3);
    let store = dir.join("store");
    let id = import_vhd(&vhd, &store);
    (s(&store).to_string(), id, raw)
}

#[test]
fn two_exports_into_one_container_at_once_leave_one_export() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, id, raw) = imported(dir.path(), 6);
    let exports = dir.path().join("dest/exports");
    let manifest = format!("{id}.vhd");
    let (mut wins, mut losses) = (0, 0);
    for round in 0..ROUNDS {
        std::fs::create_dir_all(&exports).unwrap();
        let args = export_args(&store, &id, s(&exports));
        for o in both(&args, &args) {
            if o.status.success() {
                wins += 1;
            } else {
                assert!(
                    lost_cleanly(&o),
                    "round {round}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                losses += 1;
            }
        }
        let vhd = local_export(&exports, &manifest, &dir.path().join("x.vhd"))
            .unwrap_or_else(|| panic!("round {round}: no manifest"));
        assert!(
            raw_of(&vhd) == raw,
            "round {round}: the export is the source"
        );
        assert!(
            !files(Path::new(&store)).iter().any(|n| n.contains(".lock")),
            "round {round}: a lock was left"
        );
        // Every other round starts from an empty container, the others over the last.
        if round % 2 == 1 {
            std::fs::remove_dir_all(dir.path().join("dest")).unwrap();
        }
    }
    assert!(wins >= ROUNDS, "at least one export per round finished");
    eprintln!("{ROUNDS} rounds: {wins} exports finished, {losses} refused as in progress");
}

#[test]
fn two_exports_into_one_swift_container_at_once_leave_one_export() {
    if support::swift_env().is_none() || !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, id, raw) = imported(dir.path(), 6);
    let gc = support::SwiftCleanup::default();
    for round in 0..SWIFT_ROUNDS {
        let to = gc.made(dir.path(), "race-exp");
        let args = export_args(&store, &id, &to);
        let outs = both(&args, &args);
        for o in &outs {
            assert!(
                o.status.success() || lost_cleanly(o),
                "round {round}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        assert!(outs.iter().any(|o| o.status.success()));
        let back = dir.path().join("back.vhd");
        let _ = std::fs::remove_file(&back);
        ok(&cloudimg()
            .arg("download")
            .arg(format!("{to}/{id}.vhd"))
            .arg(&back)
            .output()
            .unwrap());
        assert!(
            raw_of(&back) == raw,
            "round {round}: the export is the source"
        );
        assert!(
            !files(Path::new(&store)).iter().any(|n| n.contains(".lock")),
            "round {round}: a lock was left"
        );
    }
}

#[test]
fn an_export_while_its_image_is_deleted_is_whole_or_absent() {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (store, id, raw) = imported(dir.path(), 6);
    // Each round starts from a copy of the store (times kept, so nothing is re-hashed).
    let pristine = dir.path().join("pristine");
    assert!(std::process::Command::new("cp")
        .args(["-a", &store, s(&pristine)])
        .status()
        .unwrap()
        .success());
    let exports = dir.path().join("dest/exports");
    let manifest = format!("{id}.vhd");
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let (mut whole, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        std::fs::create_dir_all(&exports).unwrap();
        let child = spawn(&[&export_args(&store, &id, s(&exports))[..], &["-j", "1"]].concat());
        // The delete lands at a different moment of the export each round.
        std::thread::sleep(std::time::Duration::from_millis(25 * round as u64));
        let images = cloudimg_tasks::ImageStore::open(&store).unwrap();
        images.delete(&uuid).unwrap();
        let o = child.wait_with_output().unwrap();
        if o.status.success() {
            let vhd = local_export(&exports, &manifest, &dir.path().join("x.vhd"))
                .unwrap_or_else(|| panic!("round {round}: success without a manifest"));
            assert!(
                raw_of(&vhd) == raw,
                "round {round}: the export is the source"
            );
            whole += 1;
        } else {
            let err = String::from_utf8_lossy(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "round {round}: {err}");
            assert!(
                err.contains("no such image")
                    || err.contains("not found")
                    || err.contains("No such file"),
                "round {round}: {err}"
            );
            let left: Vec<_> = files(&exports)
                .into_iter()
                .filter(|n| n.starts_with(&manifest))
                .collect();
            assert!(
                left.is_empty(),
                "round {round}: a failed export left {left:?}"
            );
            refused += 1;
        }
        std::fs::remove_dir_all(dir.path().join("dest")).unwrap();
        std::fs::remove_dir_all(&store).unwrap();
        assert!(std::process::Command::new("cp")
            .args(["-a", s(&pristine), &store])
            .status()
            .unwrap()
            .success());
    }
    eprintln!("{ROUNDS} rounds: {whole} exports whole, {refused} refused");
}

/// The virtual disk of the chain ending at `path`, read in this process.
fn chain_disk(path: &Path) -> Vec<u8> {
    let c = cloudimg_vhd::Chain::open(path, &cloudimg_vhd::ChainOptions::default()).unwrap();
    let mut v = vec![0u8; c.virtual_size() as usize];
    c.read_at(0, &mut v).unwrap();
    v
}

#[test]
fn a_reader_of_the_parent_during_an_in_place_coalesce_sees_one_state() {
    use cloudimg_fixtures::{chain, LayerSpec, Layout};
    let src = tempfile::tempdir().unwrap();
    // A 32 MiB chain whose leaf rewrites blocks the parent has and adds ones it lacks.
    let g = chain(
        src.path(),
        32 << 20,
        7,
        &[
            LayerSpec::new("base.vhd", Layout::HyperV, 2 << 20).write(0, 30000, 1),
            LayerSpec::new("mid.vhd", Layout::HyperV, 2 << 20)
                .write(100, 20000, 2)
                .write(40000, 8000, 3),
            LayerSpec::new("leaf.vhd", Layout::HyperV, 2 << 20)
                .write(50, 24000, 4)
                .write(45000, 15000, 5),
        ],
    )
    .unwrap();
    let merged = g.oracle.to_vec();
    let before = chain_disk(&src.path().join("mid.vhd"));
    assert!(before != merged);
    let (mut old, mut new, mut refused, mut merges) = (0, 0, 0, 0);
    for round in 0..ROUNDS {
        let work = tempfile::tempdir().unwrap();
        for f in ["base.vhd", "mid.vhd", "leaf.vhd"] {
            std::fs::copy(src.path().join(f), work.path().join(f)).unwrap();
        }
        let (parent, leaf) = (work.path().join("mid.vhd"), work.path().join("leaf.vhd"));
        let out = work.path().join("mid.raw");
        let coalesce = ["coalesce", "--into-parent", s(&leaf)];
        let convert = ["convert", "-O", "raw", s(&parent), s(&out)];
        // Alternate who starts first.
        let [c, r] = if round % 2 == 0 {
            both(&coalesce, &convert)
        } else {
            let [r, c] = both(&convert, &coalesce);
            [c, r]
        };
        let busy = |o: &Output| {
            let err = String::from_utf8_lossy(&o.stderr);
            o.status.code() == Some(2) && err.contains("in use")
        };
        if c.status.success() {
            merges += 1;
            assert!(
                chain_disk(&parent) == merged,
                "round {round}: merged parent"
            );
        } else {
            assert!(
                busy(&c),
                "round {round}: {}",
                String::from_utf8_lossy(&c.stderr)
            );
            assert!(
                chain_disk(&parent) == before,
                "round {round}: parent untouched"
            );
        }
        if r.status.success() {
            let got = std::fs::read(&out).unwrap();
            if got == before {
                old += 1;
            } else {
                assert!(got == merged, "round {round}: the reader saw a torn parent");
                new += 1;
            }
        } else {
            assert!(
                busy(&r),
                "round {round}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            refused += 1;
        }
    }
    eprintln!(
        "{ROUNDS} rounds: {merges} merges; reader saw old {old}, new {new}, refused {refused}"
    );
}

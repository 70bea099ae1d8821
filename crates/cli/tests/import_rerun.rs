//! `cloudimg import` run twice with the same arguments is one task: the task id derives
//! from the request, the second run returns the first run's image, and a re-run after an
//! interrupted run (package objects without a record) leaves one image and no debris.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cloudimg(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudimg"))
        .args(args)
        .output()
        .unwrap()
}

fn task(out: &Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn the_same_import_twice_is_one_task_and_one_image() {
    let dir = tempfile::tempdir().unwrap();
    let uploads = dir.path().join("src/uploads");
    std::fs::create_dir_all(&uploads).unwrap();
    let fixture = cloudimg_fixtures::env::workspace_root().join("fixtures/dynamic-vhdutil.vhd");
    std::fs::copy(fixture, uploads.join("disk.vhd")).unwrap();
    let store = dir.path().join("store");
    let from = uploads.join("disk.vhd");
    let args = [
        "import",
        "--from",
        from.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
        "--name",
        "d",
        "--owner",
        "p1",
    ];
    let first = task(&cloudimg(&args));
    let image = first["result"]["image_id"].as_str().unwrap().to_string();
    let after_first = files(&store);
    assert!(after_first
        .iter()
        .any(|p| p.ends_with(format!("{image}.json"))));

    let second = task(&cloudimg(&args));
    assert_eq!(second["id"], first["id"], "same request, same task id");
    assert_eq!(second["result"]["image_id"], first["result"]["image_id"]);
    assert_eq!(files(&store), after_first, "no second image, nothing new");

    // An interrupted run: the package is there, the record (written last) is not.
    let record = after_first
        .iter()
        .find(|p| p.ends_with(format!("{image}.json")))
        .unwrap();
    std::fs::remove_file(store.join(record)).unwrap();
    let third = task(&cloudimg(&args));
    assert_eq!(third["result"]["image_id"], first["result"]["image_id"]);
    let after = files(&store);
    assert_eq!(after.len(), after_first.len(), "{after:?}");
    assert!(after
        .iter()
        .all(|p| p.to_str().unwrap().contains(&image) || !p.to_str().unwrap().contains(".tar.gz")));

    // Another name is another request: a second image.
    let mut other = args;
    other[6] = "e";
    let fourth = task(&cloudimg(&other));
    assert_ne!(fourth["id"], first["id"]);
    assert_ne!(fourth["result"]["image_id"], first["result"]["image_id"]);
}

//! The local store publishes an object durably, in this order: the temporary file's data
//! synced, the temporary renamed to the object's name, then the folder synced (without
//! the last step an acknowledged object can vanish after a power loss). Shown on a real
//! `cloudimg upload` to a local folder, traced by strace.

use cloudimg_fixtures::env::require_tool;
use std::process::Command;

#[test]
fn upload_to_a_folder_syncs_the_file_renames_then_syncs_the_folder() {
    if !require_tool("strace") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().canonicalize().unwrap();
    std::fs::write(d.join("in.bin"), vec![7u8; 100_000]).unwrap();
    let dest = d.join("store/c/obj.bin");
    let trace = d.join("trace.txt");
    let out = Command::new("strace")
        .args(["-f", "-y", "-qq", "-o"])
        .arg(&trace)
        .args(["-e", "trace=fsync,fdatasync,rename,renameat,renameat2"])
        .arg(env!("CARGO_BIN_EXE_cloudimg"))
        .args(["upload", "in.bin"])
        .arg(&dest)
        .current_dir(&d)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(&dest).unwrap(), vec![7u8; 100_000]);
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let folder = dest.parent().unwrap().display().to_string();
    let name = dest.display().to_string();
    // The rename that publishes the object: `rename*(".../.cloudimg-tmp.*", ".../obj.bin")`.
    let renamed = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains(&format!("\"{name}\"")))
        .unwrap_or_else(|| panic!("no rename onto {name} in\n{text}"));
    let tmp_name = lines[renamed]
        .split('"')
        .find(|s| s.contains(".cloudimg-tmp."))
        .unwrap_or_else(|| panic!("rename not from a temporary: {}", lines[renamed]))
        .to_string();
    let synced_file = lines[..renamed].iter().any(|l| {
        (l.contains("fsync(") || l.contains("fdatasync(")) && l.contains(&format!("<{tmp_name}>"))
    });
    assert!(
        synced_file,
        "{tmp_name} not synced before its rename:\n{text}"
    );
    let synced_folder = lines[renamed + 1..]
        .iter()
        .any(|l| l.contains("fsync(") && l.contains(&format!("<{folder}>")));
    assert!(
        synced_folder,
        "{folder} not synced after the rename:\n{text}"
    );
}

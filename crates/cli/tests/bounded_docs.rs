//! Documents are bounded before they are parsed: `import --task-json` of a 300 MB
//! document (sparse, so the test costs no disk) is refused with exit 2 naming the bound,
//! and the process never holds the document (peak RSS far below its size).

use cloudimg_fixtures::env::require_tool;
use std::io::Write;
use std::process::Command;

#[test]
fn a_huge_task_document_is_refused_before_it_is_read() {
    let tmp = tempfile::tempdir().unwrap();
    let doc = tmp.path().join("task.json");
    let mut f = std::fs::File::create(&doc).unwrap();
    f.write_all(
        br#"{"type":"import","input":{"import_from":"c/o.vhd","image_properties":{"name":""#,
    )
    .unwrap();
    f.set_len(300 << 20).unwrap();
    drop(f);
    let bin = env!("CARGO_BIN_EXE_cloudimg");
    let store = tmp.path().join("store");
    let args = [
        "import".as_ref(),
        "--from".as_ref(),
        tmp.path().as_os_str(),
        "--store".as_ref(),
        store.as_os_str(),
        "--task-json".as_ref(),
        doc.as_os_str(),
    ];
    let timed = require_tool("/usr/bin/time");
    let out = if timed {
        Command::new("/usr/bin/time")
            .args(["-f", "maxrss_kib=%M", bin])
            .args(args)
            .output()
            .unwrap()
    } else {
        Command::new(bin).args(args).output().unwrap()
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("task.json") && err.contains("MAX_TASK_JSON"),
        "{err}"
    );
    if timed {
        let rss: u64 = err
            .lines()
            .find_map(|l| l.strip_prefix("maxrss_kib="))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(rss < 64 << 10, "peak RSS {rss} KiB for a refused document");
    }
}

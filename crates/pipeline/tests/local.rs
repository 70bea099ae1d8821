//! The shared suite against the local directory backend, plus local-only checks.

mod common;

use cloudimg_pipeline::download::{download, DownloadOptions};
use cloudimg_pipeline::local::LocalStore;
use cloudimg_pipeline::upload::{upload, LargeKind, Source, UploadOptions};
use cloudimg_pipeline::{ErrorKind, ObjectPath, ObjectStore};

#[test]
fn local_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    common::run_suite(&store, "c", 64 * 1024);
}

#[test]
fn corrupted_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.ensure_container("c").unwrap();
    let d = common::data(300_000, 7);
    for kind in [LargeKind::Dlo, LargeKind::Slo] {
        let name = format!("x{kind:?}.vhd");
        let p = ObjectPath::new("c", &name);
        let o = UploadOptions {
            segment_size: 100_000,
            large: kind,
            ..Default::default()
        };
        upload(
            &store,
            &p,
            Source::stream(std::io::Cursor::new(d.clone())),
            &o,
        )
        .unwrap();
        // Flip bytes behind the store's back, keeping size and sidecar.
        let f = dir.path().join("c").join(format!("{name}-00002"));
        let mut bytes = std::fs::read(&f).unwrap();
        bytes[5] ^= 0xff;
        let mtime = std::fs::metadata(&f).unwrap().modified().unwrap();
        std::fs::write(&f, &bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(&f)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
        let mut out = Vec::new();
        let e = download(&store, &p, &mut out, &DownloadOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Integrity, "{kind:?}: {e}");
        assert!(e.kind().is_data_error());
    }
}

#[test]
fn plain_paths_and_urls() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out").join("img.vhd");
    let (store, path) = cloudimg_pipeline::open_url(target.to_str().unwrap()).unwrap();
    store.ensure_container(&path.container).unwrap();
    let d = common::data(5000, 3);
    upload(
        &*store,
        &path,
        Source::stream(std::io::Cursor::new(d.clone())),
        &UploadOptions::default(),
    )
    .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), d);
    let (store2, path2) =
        cloudimg_pipeline::open_url(&format!("file://{}", target.display())).unwrap();
    assert_eq!(common::fetch(&*store2, &path2, 2, 1000), d);
}

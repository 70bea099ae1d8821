//! The shared suite against the local directory backend, plus local-only checks.

mod common;

use cloudimg_pipeline::download::{download, DownloadOptions};
use cloudimg_pipeline::hash::{Digests, MultiHasher};
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
fn digests_not_chosen_are_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.ensure_container("c").unwrap();
    let d = common::data(300_000, 3);
    let mut all = MultiHasher::new();
    all.update(&d);
    let want = all.finish();
    let file = dir.path().join("in.bin");
    std::fs::write(&file, &d).unwrap();
    // One PUT from memory, one PUT from a file, and a segmented stream: each path
    // hashes what it is told to and nothing else.
    let cases = [
        (LargeKind::Single, false),
        (LargeKind::Single, true),
        (LargeKind::Dlo, false),
    ];
    for (i, (large, from_file)) in cases.into_iter().enumerate() {
        let p = ObjectPath::new("c", format!("d{i}"));
        let o = UploadOptions {
            segment_size: 100_000,
            large,
            digests: Digests::GLANCE,
            ..Default::default()
        };
        let src = if from_file {
            Source::file(std::fs::File::open(&file).unwrap()).unwrap()
        } else {
            Source::stream(std::io::Cursor::new(d.clone()))
        };
        let got = upload(&store, &p, src, &o).unwrap().checksums;
        assert_eq!(got.md5, want.md5, "case {i}");
        assert_eq!(got.sha512, want.sha512, "case {i}");
        assert_eq!(got.sha256, "", "case {i}");
    }
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
        common::upload_bytes(&store, &p, &d, &o).unwrap();
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
    common::upload_bytes(&*store, &path, &d, &UploadOptions::default()).unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), d);
    let (store2, path2) =
        cloudimg_pipeline::open_url(&format!("file://{}", target.display())).unwrap();
    assert_eq!(common::fetch(&*store2, &path2, 2, 1000), d);
}

/// A positional source that counts the bytes it produces.
struct Counted {
    data: Vec<u8>,
    produced: std::sync::atomic::AtomicU64,
}

impl cloudimg_pipeline::upload::ReadRange for Counted {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_range(
        &self,
        offset: u64,
        len: u64,
    ) -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
        self.produced
            .fetch_add(len, std::sync::atomic::Ordering::SeqCst);
        Ok(Box::new(
            &self.data[offset as usize..(offset + len) as usize],
        ))
    }
}

#[test]
fn a_positional_source_is_produced_once_while_sent_and_resumes() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.ensure_container("c").unwrap();
    let d = common::data(450_000, 7);
    let src = Arc::new(Counted {
        data: d.clone(),
        produced: Default::default(),
    });
    let p = ObjectPath::new("c", "view.vhd");
    let o = UploadOptions {
        segment_size: 100_000,
        jobs: 3,
        large: LargeKind::Dlo,
        digests: Digests::NONE,
        // Far below a segment: a positional source is never buffered.
        max_buffer: 1024,
        ..Default::default()
    };
    let s = upload(&store, &p, Source::ranges(src.clone()), &o).unwrap();
    assert_eq!(s.bytes, d.len() as u64);
    assert_eq!(s.segments, 5);
    assert_eq!(s.segment_list.len(), 5);
    assert_eq!(s.checksums.md5, "", "no whole-object digest was asked for");
    assert_eq!(src.produced.load(Ordering::SeqCst), d.len() as u64);
    assert_eq!(common::fetch(&store, &p, 2, 64 << 10), d);

    // Re-run: every stored segment is regenerated once to hash it, and none is sent.
    src.produced.store(0, Ordering::SeqCst);
    let s = upload(&store, &p, Source::ranges(src.clone()), &o).unwrap();
    assert_eq!(s.segments_skipped, 5);
    assert_eq!(src.produced.load(Ordering::SeqCst), d.len() as u64);

    // With a whole-object digest the bytes are hashed in order, and the MD5 is right.
    let o = UploadOptions {
        digests: Digests::MD5,
        resume: false,
        ..o
    };
    src.produced.store(0, Ordering::SeqCst);
    let s = upload(&store, &p, Source::ranges(src.clone()), &o).unwrap();
    assert_eq!(s.checksums.md5, common::md5_hex(&d));
    assert_eq!(src.produced.load(Ordering::SeqCst), 2 * d.len() as u64);
    assert_eq!(common::fetch(&store, &p, 2, 64 << 10), d);

    // Removal takes the manifest and every segment.
    let n = cloudimg_pipeline::upload::remove(&store, &p, &o, LargeKind::Dlo, None).unwrap();
    assert_eq!(n, 6);
    assert!(cloudimg_pipeline::list_all(&store, "c", "")
        .unwrap()
        .is_empty());
}

/// Every object under `c` read back from its file: its bytes' MD5 must be the ETag the
/// store reports by `head` and in the listing, also to a fresh store over the same folder.
fn assert_etags_are_md5s_of_the_bytes(root: &std::path::Path, c: &str) -> usize {
    let fresh = LocalStore::new(root).unwrap();
    let listed = cloudimg_pipeline::list_all(&fresh, c, "").unwrap();
    for e in &listed {
        let p = ObjectPath::new(c, &e.name);
        let info = fresh.head(&p).unwrap();
        if info.manifest.is_some() {
            continue;
        }
        let bytes = std::fs::read(root.join(c).join(&e.name)).unwrap();
        let md5 = common::md5_hex(&bytes);
        assert_eq!(e.etag, md5, "listed ETag of {}", e.name);
        assert_eq!(
            info.etag.as_deref(),
            Some(md5.as_str()),
            "head of {}",
            e.name
        );
        assert_eq!(e.size, bytes.len() as u64, "{}", e.name);
    }
    listed.len()
}

#[test]
fn a_stored_etag_is_the_md5_of_the_bytes_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.ensure_container("c").unwrap();
    // Segments that are no multiple of 64 bytes put the two MD5 lanes out of step.
    let d = common::data(1_000_003, 11);
    let file = dir.path().join("in.bin");
    std::fs::write(&file, &d).unwrap();
    let cases = [
        ("single", LargeKind::Single, false),
        ("auto-small", LargeKind::Auto, false),
        ("dlo", LargeKind::Dlo, false),
        ("slo", LargeKind::Slo, false),
        ("dlo-file", LargeKind::Dlo, true),
    ];
    for (name, large, from_file) in cases {
        let p = ObjectPath::new("c", name);
        let o = UploadOptions {
            segment_size: if large == LargeKind::Auto {
                2_000_000
            } else {
                300_007
            },
            jobs: 2,
            large,
            digests: Digests::GLANCE,
            ..Default::default()
        };
        let src = if from_file {
            Source::file(std::fs::File::open(&file).unwrap()).unwrap()
        } else {
            Source::stream(std::io::Cursor::new(d.clone()))
        };
        let s = upload(&store, &p, src, &o).unwrap();
        assert_eq!(s.checksums.md5, common::md5_hex(&d), "{name}");
        assert_eq!(common::fetch(&store, &p, 2, 100_000), d, "{name}");
    }
    // 3 single objects + 2 manifests + 3 x 4 segments.
    assert_eq!(assert_etags_are_md5s_of_the_bytes(dir.path(), "c"), 17);
}

/// A positional source whose bytes differ from the second reading of a range on: it
/// changed between being hashed and being sent.
struct Changing {
    data: Vec<u8>,
    reads: std::sync::atomic::AtomicU64,
}

impl cloudimg_pipeline::upload::ReadRange for Changing {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_range(
        &self,
        offset: u64,
        len: u64,
    ) -> std::io::Result<Box<dyn std::io::Read + Send + '_>> {
        let mut b = self.data[offset as usize..(offset + len) as usize].to_vec();
        if self.reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            b[0] ^= 0xff;
        }
        Ok(Box::new(std::io::Cursor::new(b)))
    }
}

#[test]
fn a_range_that_changed_after_it_was_hashed_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.ensure_container("c").unwrap();
    let src = std::sync::Arc::new(Changing {
        data: common::data(250_000, 5),
        reads: Default::default(),
    });
    let o = UploadOptions {
        segment_size: 100_000,
        jobs: 1,
        large: LargeKind::Dlo,
        digests: Digests::MD5,
        // Below a segment: the range is hashed, then read again to be sent.
        max_buffer: 1024,
        remove_on_error: true,
        ..Default::default()
    };
    let p = ObjectPath::new("c", "changing");
    let e = upload(&store, &p, Source::ranges(src), &o).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(
        store.head(&p).is_err(),
        "no manifest after a refused segment"
    );
}

#[test]
fn head_unhashed_leaves_out_only_an_etag_that_would_cost_a_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path()).unwrap();
    store.ensure_container("c").unwrap();
    let d = common::data(70_000, 9);
    // Dropped into the folder by someone else: no sidecar, the ETag is a read away.
    std::fs::write(dir.path().join("c").join("dropped"), &d).unwrap();
    let dropped = ObjectPath::new("c", "dropped");
    let full = store.head(&dropped).unwrap();
    assert_eq!(full.etag.as_deref(), Some(common::md5_hex(&d).as_str()));
    let cheap = store.head_unhashed(&dropped).unwrap();
    assert_eq!(
        (cheap.size, cheap.etag, cheap.manifest),
        (70_000, None, None)
    );
    // Written by the store: the ETag it recorded comes along; a large object keeps its
    // manifest, size and ETag.
    for (name, large) in [("plain", LargeKind::Single), ("dlo", LargeKind::Dlo)] {
        let p = ObjectPath::new("c", name);
        let o = UploadOptions {
            segment_size: 30_000,
            large,
            ..Default::default()
        };
        common::upload_bytes(&store, &p, &d, &o).unwrap();
        assert_eq!(
            store.head_unhashed(&p).unwrap(),
            store.head(&p).unwrap(),
            "{name}"
        );
    }
}

//! The shared validation (`cloudimg_vhd::check::validate_io`, run by every `Image` open) on
//! the task paths: an import or an export of a VHD whose BAT puts a block over the metadata
//! or past the data area fails with a data error naming the file, `bat` and the offset,
//! and nothing reaches the image store or the receiving container.

mod common;

use cloudimg_fixtures::Corruption;
use cloudimg_pipeline::ObjectStore;
use cloudimg_tasks::export::{self, ExportOptions};
use cloudimg_tasks::import::{self, ImportOptions};
use cloudimg_tasks::{
    progress, ExportInput, FailureCode, ImageStore, ImportInput, Task, TaskStatus, TaskType,
};
use common::*;
use std::path::{Path, PathBuf};

/// A copy of the qemu-img-made dynamic fixture with `c` applied; the BAT entry's offset.
fn damaged(dir: &Path, c: Corruption) -> (PathBuf, u64) {
    let p = dir.join(format!("{c:?}.vhd"));
    std::fs::copy(fixture("dynamic-qemu.vhd"), &p).unwrap();
    let applied = cloudimg_fixtures::corrupt(&p, c).unwrap();
    assert!(!applied.readable);
    (p, applied.offset)
}

const BAD: [Corruption; 2] = [Corruption::BatEntryInMetadata, Corruption::BatEntryPastEof];

fn names(store: &dyn ObjectStore, container: &str) -> Vec<String> {
    cloudimg_pipeline::list_all(store, container, "")
        .map(|v| v.into_iter().map(|e| e.name).collect())
        .unwrap_or_default()
}

#[test]
fn import_refuses_a_bat_over_metadata_or_past_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let src = local(&tmp.path().join("src"));
    let images = ImageStore::open(tmp.path().join("store").to_str().unwrap()).unwrap();
    for c in BAD {
        let (file, at) = damaged(tmp.path(), c);
        let name = file.file_name().unwrap().to_str().unwrap();
        put_file(&*src, "uploads", name, &file);
        let mut task = Task::new(
            TaskType::Import,
            ImportInput::to_json("uploads", name, "bad"),
            "tenant1",
        );
        let err = import::run(
            &mut task,
            &src,
            &images,
            &ImportOptions::default(),
            progress::silent(),
        )
        .unwrap_err();
        assert!(err.kind().is_data_error(), "{c:?}: {err}");
        assert_eq!(err.failure_code(), FailureCode::NotVhd, "{c:?}: {err}");
        assert_eq!(task.status, TaskStatus::Failure);
        assert!(
            task.message.contains(name) && task.message.contains(&format!("bat at offset {at:#x}")),
            "{c:?}: {}",
            task.message
        );
        assert!(task.result.is_none());
        assert_eq!(
            names(&**images.object_store(), "images"),
            Vec::<String>::new()
        );
    }
}

#[test]
fn export_refuses_a_package_holding_a_bat_over_metadata_or_past_the_end() {
    let tmp = tempfile::tempdir().unwrap();
    let images = ImageStore::open(tmp.path().join("store").to_str().unwrap()).unwrap();
    let dest = local(&tmp.path().join("dest"));
    dest.ensure_container("exports").unwrap();
    for c in BAD {
        let (file, at) = damaged(tmp.path(), c);
        // A package made by hand: the import would refuse the file.
        let pkg = tmp.path().join(format!("{c:?}.tgz"));
        let inputs = vec![cloudimg_ova::PackInput {
            name: "0.vhd".into(),
            len: std::fs::metadata(&file).unwrap().len(),
            data: Box::new(std::fs::File::open(&file).unwrap()),
        }];
        let popts = cloudimg_ova::PackOptions {
            compression: cloudimg_ova::Compression::Indexed(Default::default()),
            mtime: Some(0),
        };
        cloudimg_ova::pack(std::fs::File::create(&pkg).unwrap(), inputs, &popts).unwrap();
        let rec =
            cloudimg_tasks::register::register_package(&images, &pkg, "bad", "tenant1").unwrap();
        let mut task = Task::new(
            TaskType::Export,
            ExportInput::to_json(&rec.id, "exports"),
            "tenant1",
        );
        let err = export::run(
            &mut task,
            &images,
            &dest,
            &ExportOptions::default(),
            progress::silent(),
        )
        .unwrap_err();
        assert!(err.kind().is_data_error(), "{c:?}: {err}");
        assert_eq!(task.status, TaskStatus::Failure);
        assert!(
            task.message.contains("0.vhd")
                && task.message.contains(&format!("bat at offset {at:#x}")),
            "{c:?}: {}",
            task.message
        );
        assert_eq!(names(&*dest, "exports"), Vec::<String>::new(), "{c:?}");
    }
}

//! Adding an existing XenServer package (a gzipped tarball of a chain, as nova or
//! `tar -zc --directory=DIR .` writes it) to the image store as a new image, the way an
//! image created from a hypervisor snapshot arrives in Glance.
//!
//! The file is read once to check it (members, chain links, gzip integrity) and hash it,
//! then uploaded (as segments above one segment size) and verified; the record is
//! written last. A package that is our indexed gzip (e.g. `cloudimg pack` with an index)
//! is recorded as such, so export reads it by range.

use crate::error::{Error, ErrorKind, Result};
use crate::imagestore::{ImageRecord, ImageStore, NewImage, PackageInfo, SegmentInfo};
use cloudimg_ova::xenserver::XenStream;
use cloudimg_pipeline::hash::Digests;
use cloudimg_pipeline::upload::{self, LargeKind, Source, UploadOptions};
use std::fs::File;
use std::path::Path;
use uuid::Uuid;

/// Segment size used for packages added from a file.
const SEGMENT: u64 = 256 << 20;

/// Adds the package at `file` as a new private image named `name` owned by `owner`.
pub fn register_package(
    images: &ImageStore,
    file: &Path,
    name: &str,
    owner: &str,
) -> Result<ImageRecord> {
    let shown = file.display().to_string();
    let f = File::open(file).map_err(|e| Error::io("open package", &shown, e))?;
    let size = f
        .metadata()
        .map_err(|e| Error::io("open package", &shown, e))?
        .len();
    let limits = cloudimg_ova::Limits {
        max_ratio: 2000,
        ..Default::default()
    };
    let mut xs = XenStream::new(std::io::BufReader::new(f), limits)
        .map_err(|e| Error::package("read package", &shown, e))?;
    while xs
        .next_member()
        .map_err(|e| Error::package("read package", &shown, e))?
        .is_some()
    {}
    let (chain, stats) = xs
        .finish()
        .map_err(|e| Error::package("read package", &shown, e))?;
    let leaf = chain
        .first()
        .ok_or_else(|| Error::new(ErrorKind::Corrupt, "read package", &shown, "no VHD"))?;
    let virtual_size = leaf.vhd.current_size;
    let layers: Vec<String> = chain.iter().map(|m| m.archive_name.clone()).collect();
    // XenStream hashed the same bytes; its MD5 is the package checksum (the upload
    // hashes them again: a mismatch means the file changed in between).
    let md5 = stats.md5.clone();

    let img = NewImage {
        id: Uuid::new_v4(),
        name: name.to_string(),
        owner: owner.to_string(),
        virtual_size,
    };
    let path = images.package_path(&img.id);
    let store = images.object_store().clone();
    let f = File::open(file).map_err(|e| Error::io("open package", &shown, e))?;
    let source = Source::file(f).map_err(|e| Error::store("upload package", &shown, e))?;
    let opts = UploadOptions {
        segment_size: SEGMENT,
        jobs: 2,
        large: if size <= SEGMENT {
            LargeKind::Single
        } else {
            LargeKind::Dlo
        },
        resume: false,
        remove_on_error: true,
        // Segments are sent by positional reads of the file, never buffered.
        max_buffer: 1 << 20,
        content_type: Some("application/gzip".into()),
        // The record keeps MD5 and SHA-512 (checksum, os_hash_value).
        digests: Digests::GLANCE,
        ..UploadOptions::default()
    };
    let result = upload::upload(&*store, &path, source, &opts)
        .map_err(|e| Error::store("upload package", store.url(&path), e))
        .and_then(|summary| {
            if summary.checksums.md5 != md5 || summary.bytes != size {
                return Err(Error::new(
                    ErrorKind::Corrupt,
                    "upload package",
                    &shown,
                    "the file changed while it was being added",
                ));
            }
            let segments = summary
                .segment_list
                .into_iter()
                .map(|s| SegmentInfo {
                    name: s.path.name,
                    size: s.size,
                    etag: s.etag,
                })
                .collect();
            Ok((segments, summary.checksums.sha512))
        });
    let (segments, sha512) = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = crate::imagestore::remove_object(&*store, &path);
            return Err(e);
        }
    };
    let file = File::open(file).map_err(|e| Error::io("open package", &shown, e))?;
    let info = PackageInfo {
        object: path.name.clone(),
        segments,
        compression: compression_of(&file, size, &layers).into(),
        layers,
    };
    let rec = images.new_record(&img, info, size, md5, sha512);
    images.put_record(&rec)?;
    Ok(rec)
}

/// `gzip-indexed` when the file is our indexed gzip naming every layer (export then reads
/// it by range), `gzip` otherwise.
fn compression_of(file: &File, size: u64, layers: &[String]) -> &'static str {
    match cloudimg_ova::gzip::indexed::IndexedReader::open(file, size, 1) {
        Ok(r) if layers.iter().all(|l| r.index().range(l).is_some()) => crate::package::INDEXED,
        _ => "gzip",
    }
}

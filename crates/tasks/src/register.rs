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
use crate::segments::{self, Uploader};
use cloudimg_ova::xenserver::XenStream;
use cloudimg_pipeline::{FileRange, PutOptions};
use sha2::{Digest, Sha512};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;
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
    // XenStream hashed the same bytes; its MD5 is the package checksum.
    let md5 = stats.md5.clone();
    let sha512 = sha512_of(file)?;

    let img = NewImage {
        id: Uuid::new_v4(),
        name: name.to_string(),
        owner: owner.to_string(),
        virtual_size,
    };
    let path = images.package_path(&img.id);
    let store = images.object_store().clone();
    let file = Arc::new(File::open(file).map_err(|e| Error::io("open package", &shown, e))?);
    let result = (|| -> Result<Vec<SegmentInfo>> {
        if size <= SEGMENT {
            let body = FileRange {
                file: file.clone(),
                offset: 0,
                len: size,
            };
            let opts = PutOptions {
                md5: Some(md5.clone()),
                ..Default::default()
            };
            store
                .put(&path, &body, &opts)
                .map_err(|e| Error::store("upload package", store.url(&path), e))?;
            return Ok(Vec::new());
        }
        let mut up = Uploader::new(store.clone(), &path.container, &path.name, 2, 2);
        let mut off = 0;
        while off < size {
            let len = SEGMENT.min(size - off);
            up.submit(Box::new(FileRange {
                file: file.clone(),
                offset: off,
                len,
            }))?;
            off += len;
        }
        let written = up.finish()?;
        let prefix = format!("{}-", path.name);
        segments::verify_listing(&*store, &path.container, &prefix, &written)?;
        store
            .put_dlo_manifest(&path, &path.container, &prefix)
            .map_err(|e| Error::store("write package manifest", store.url(&path), e))?;
        Ok(written
            .into_iter()
            .map(|w| SegmentInfo {
                name: w.name,
                size: w.size,
                etag: w.etag,
            })
            .collect())
    })();
    let segments = match result {
        Ok(s) => s,
        Err(e) => {
            let _ = segments::delete_prefix(&*store, &path.container, &path.name);
            return Err(e);
        }
    };
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

fn sha512_of(file: &Path) -> Result<String> {
    let shown = file.display().to_string();
    let mut f = File::open(file).map_err(|e| Error::io("hash package", &shown, e))?;
    let mut h = Sha512::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io("hash package", &shown, e))?;
    Ok(hex::encode(h.finalize()))
}

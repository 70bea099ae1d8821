//! The export task: an image -> one dynamic VHD as a DLO `<uuid>.vhd` over segments
//! `<uuid>.vhd-00001`, ... in the receiving container.
//!
//! 1. Checks: the input (container name without `/`, `?`, `.`), the image exists, the
//!    caller owns it, it is neither public nor shared, `com.rackspace__1__options` is
//!    "0", the container exists.
//! 2. The layers are opened. An indexed package (what import writes) is read by byte
//!    range straight from the store ([`crate::indexedpkg`]): its index, then only the
//!    gzip members the coalescing reads, no spooling. A legacy single-stream package
//!    (e.g. `tar -zc` from a hypervisor) is read front to back (its MD5 checked against
//!    the record) and its layers are spooled to a temporary folder, removed on every
//!    path.
//! 3. The chain is planned as one dynamic VHD from its layers' BATs (metadata only:
//!    what any layer allocates is allocated in the output; no sector bitmap is read)
//!    and handed to `cloudimg_pipeline`'s upload as a positional source
//!    ([`crate::outvhd::ViewRanges`]) with no whole-object digest: each segment is a range
//!    of that VHD regenerated on demand while it is sent, hashed by the store as it goes.
//!    Reading the layers (an indexed package's next members are fetched in the
//!    background), coalescing, hashing and several segment uploads overlap, and nothing
//!    holds a segment in memory or writes a copy of the output.
//! 4. The upload verifies the segment listing (names, sizes, ETags), then writes the DLO
//!    manifest, last, and checks what it serves. A failure removes the segments: no
//!    manifest, nothing left.
//!
//! A re-run resumes. The output is a function of the image alone (its UUID derived from
//! the image id, its timestamp from the image's creation time), so a run killed before
//! it could clean up leaves segments that hold exactly the bytes the re-run produces: the
//! re-run removes an existing manifest `<uuid>.vhd` first (so nothing serves a mix of two
//! runs); the upload's resume regenerates each segment whose stored namesake has the
//! right size, skips it when its MD5 equals the stored ETag, uploads the rest, removes
//! segments past the end, and writes the manifest.

use crate::error::{Error, ErrorKind, Result};
use crate::imagestore::{ImageRecord, ImageStore, Visibility};
use crate::indexedpkg::{IndexedPackage, RangeSource};
use crate::objectio::{ObjectIo, Piece};
use crate::outvhd::{OutputView, ViewRanges};
use crate::progress::{Phase, Progress, ProgressFn};
use crate::task::{ExportInput, Task};
use cloudimg_ova::xenserver::XenStream;
use cloudimg_pipeline::hash::Digests;
use cloudimg_pipeline::upload::UploadSummary;
use cloudimg_pipeline::upload::{self as pipeline_upload, LargeKind, Source, UploadOptions};
use cloudimg_pipeline::{ObjectPath, ObjectStore};
use cloudimg_vhd::write::{DynamicLayout, DynamicOptions};
use cloudimg_vhd::{Chain, Image};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

/// Cloud Images' export segment size.
pub const DEFAULT_SEGMENT_SIZE: u64 = 1_048_576_000;

/// Namespace of the UUIDs of exported VHDs (derived from image ids).
const EXPORT_UUID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f7564_696d_4700_8000_6578706f7274);

/// Export settings.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// Bytes per segment.
    pub segment_size: u64,
    /// Segment uploads in flight.
    pub upload_jobs: usize,
    /// Where legacy packages are spooled (the system temporary folder by default).
    pub temp_dir: Option<PathBuf>,
    /// Reuse segments an interrupted run of the same export left (same size and MD5).
    pub resume: bool,
}

impl Default for ExportOptions {
    fn default() -> Self {
        ExportOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            upload_jobs: 2,
            temp_dir: None,
            resume: true,
        }
    }
}

/// What a successful export made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportOutcome {
    /// `<container>/<uuid>.vhd`.
    pub export_location: String,
    /// Bytes of the VHD.
    pub size: u64,
    /// Segments making up the export.
    pub segments: usize,
    /// Segments an interrupted earlier run had stored and this run reused.
    pub segments_reused: usize,
}

/// Runs an export task to its end: `task` goes through processing to success (result
/// `{"export_location": ...}`) or failure. `dest` is the store holding the receiving
/// container.
pub fn run(
    task: &mut Task,
    images: &ImageStore,
    dest: &Arc<dyn ObjectStore>,
    opts: &ExportOptions,
    progress: ProgressFn<'_>,
) -> Result<ExportOutcome> {
    task.start();
    match export(task, images, dest, opts, progress) {
        Ok(out) => {
            task.succeed(serde_json::json!({"export_location": out.export_location}));
            Ok(out)
        }
        Err(e) => {
            task.fail(&e);
            Err(e)
        }
    }
}

/// Checks that `owner` may export `rec`.
pub fn check_exportable(rec: &ImageRecord, owner: &str) -> Result<()> {
    let forbid = |why: String| {
        Err(Error::new(
            ErrorKind::Forbidden,
            "export",
            rec.id.clone(),
            why,
        ))
    };
    if rec.owner != owner {
        return forbid(format!("image belongs to {}, not {owner}", rec.owner));
    }
    match rec.visibility {
        Visibility::Public | Visibility::Shared | Visibility::Community => {
            return forbid(format!("{:?} images cannot be exported", rec.visibility).to_lowercase())
        }
        Visibility::Private => {}
    }
    if rec.options() != "0" {
        return forbid(format!(
            "{} is {:?}; only \"0\" may be exported",
            crate::imagestore::OPTIONS_PROPERTY,
            rec.options()
        ));
    }
    if rec.status != "active" {
        return forbid(format!("image status is {}", rec.status));
    }
    Ok(())
}

fn export(
    task: &Task,
    images: &ImageStore,
    dest: &Arc<dyn ObjectStore>,
    opts: &ExportOptions,
    progress: ProgressFn<'_>,
) -> Result<ExportOutcome> {
    let input = ExportInput::parse(&task.input)?;
    if opts.segment_size == 0 || opts.segment_size > 5 << 30 {
        return Err(Error::input("segment size must be 1 byte to 5 GiB"));
    }
    progress(Progress {
        phase: Phase::Checking,
        done: 0,
        total: 0,
    });
    let rec = images.require(&input.image_uuid)?;
    check_exportable(&rec, &task.owner)?;
    // One export into this container at a time: a second would remove the manifest the
    // first verifies, or clean up segments the first is about to serve.
    let dest_url = dest.url(&ObjectPath::new(&input.container, ""));
    let _lock = images.lock_export(&input.image_uuid, &dest_url)?;
    let exists = dest
        .container_exists(&input.container)
        .map_err(|e| Error::store("check container", &input.container, e))?;
    if !exists {
        return Err(Error::new(
            ErrorKind::NotFound,
            "export",
            &input.container,
            "the receiving container does not exist",
        ));
    }
    let indexed = rec.package.compression == crate::package::INDEXED;
    let tmp = match &opts.temp_dir {
        _ if indexed => Ok(None),
        Some(d) => tempfile::Builder::new()
            .prefix("cloudimg-export-")
            .tempdir_in(d)
            .map(Some),
        None => tempfile::Builder::new()
            .prefix("cloudimg-export-")
            .tempdir()
            .map(Some),
    }
    .map_err(|e| Error::io("create temporary folder", "", e))?;
    let chain = Arc::new(match &tmp {
        Some(dir) => spool_chain(images, &rec, dir.path(), progress)?,
        None => open_indexed_chain(images, &rec)?,
    });
    let name = format!("{}.vhd", input.image_uuid);
    let url = dest.url(&ObjectPath::new(&input.container, &name));
    // Same image, same bytes: what lets a re-run resume from an interrupted one.
    let uuid = Uuid::new_v5(&EXPORT_UUID_NAMESPACE, input.image_uuid.as_bytes());
    let layout = plan_from_bats(&chain, uuid).map_err(|e| Error::vhd("plan export", &url, e))?;
    let timestamp = vhd_time(&rec.created_at);
    let view = Arc::new(
        OutputView::new(layout, chain.clone())
            .map(|v| v.with_timestamp(timestamp))
            .map_err(|e| Error::io("plan export", &url, e))?,
    );
    // The manifest goes first: during the run nothing may serve a mix of two runs.
    match dest.delete(&ObjectPath::new(&input.container, &name)) {
        Ok(()) => {}
        Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::store("delete old manifest", &url, e)),
    }
    let path = ObjectPath::new(&input.container, &name);
    let result = upload(dest, &path, &view, opts, progress);
    drop(tmp);
    match result {
        Ok(n) => {
            progress(Progress {
                phase: Phase::Verifying,
                done: 0,
                total: 0,
            });
            Ok(ExportOutcome {
                export_location: format!("{}/{name}", input.container),
                size: view.len(),
                segments: n.segments as usize,
                segments_reused: n.segments_skipped as usize,
            })
        }
        Err(e) => {
            // Nothing may serve a failed export: remove any manifest and the segments.
            let _ = crate::imagestore::remove_object(&**dest, &path);
            Err(e)
        }
    }
}

/// Uploads the view as the DLO `path` through the pipeline's upload (segments produced
/// while sent, listing verified, manifest last), reporting progress while it runs.
fn upload(
    dest: &Arc<dyn ObjectStore>,
    path: &ObjectPath,
    view: &Arc<OutputView>,
    opts: &ExportOptions,
    progress: ProgressFn<'_>,
) -> Result<UploadSummary> {
    let total = view.len();
    let uopts = UploadOptions {
        segment_size: opts.segment_size,
        jobs: opts.upload_jobs.max(1),
        large: LargeKind::Dlo,
        resume: opts.resume,
        // The caller removes the manifest too.
        remove_on_error: false,
        // Nothing records a whole-export digest: segments are hashed only while sent.
        digests: Digests::NONE,
        ..UploadOptions::default()
    };
    let (store, path) = (dest.clone(), path.clone());
    let source = Source::ranges(Arc::new(ViewRanges(view.clone())));
    let worker = std::thread::spawn(move || {
        pipeline_upload::upload(&*store, &path, source, &uopts)
            .map_err(|e| Error::store("upload segments", store.url(&path), e))
    });
    while !worker.is_finished() {
        progress(Progress {
            phase: Phase::Transferring,
            done: view.produced().min(total),
            total,
        });
        std::thread::sleep(Duration::from_millis(100));
    }
    let written = worker.join().map_err(|_| {
        Error::new(
            ErrorKind::Io,
            "upload segments",
            dest.url(&ObjectPath::new("", "")),
            "upload thread panicked",
        )
    })??;
    progress(Progress {
        phase: Phase::Transferring,
        done: total,
        total,
    });
    Ok(written)
}

/// The output layout from the layers' BATs alone: an output block is allocated when any
/// layer allocates a block overlapping it (a fixed layer allocates everything). No
/// sector bitmap is read: planning through the chain's extents would read every
/// bitmap of every layer, which for a package read by range means fetching and
/// decoding about the whole package once more before the data pass (measured: 129 GETs
/// instead of ~70 for a 512 MiB chain). A block allocated with an empty bitmap comes
/// out as an allocated block of zeros: the same disk.
fn plan_from_bats(chain: &Chain, uuid: Uuid) -> cloudimg_vhd::Result<DynamicLayout> {
    let size = chain.virtual_size();
    let obs = u64::from(DynamicOptions::default().block_size);
    let entries = size.div_ceil(obs);
    let mut blocks: Vec<u32> = Vec::new();
    for img in chain.layers() {
        let Some(lbs) = img.block_size().map(u64::from) else {
            blocks.extend(0..entries as u32);
            continue;
        };
        for i in 0..img.bat().len() as u32 {
            if img.block_bitmap_offset(i).is_none() {
                continue;
            }
            let start = u64::from(i) * lbs;
            let end = (start + lbs).min(size);
            if start >= end {
                continue;
            }
            blocks.extend((start / obs) as u32..end.div_ceil(obs).min(entries) as u32);
        }
    }
    DynamicLayout::new(size, obs as u32, blocks, Some(uuid))
}

/// The VHD timestamp (seconds since 2000-01-01 UTC) of an ISO 8601 time; 0 when it does
/// not parse (the output stays a function of the record either way).
fn vhd_time(iso: &str) -> u32 {
    const VHD_EPOCH: u64 = 946_684_800;
    crate::time::parse_iso8601(iso)
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u32::try_from(d.as_secs().saturating_sub(VHD_EPOCH)).unwrap_or(u32::MAX))
        .unwrap_or(0)
}

/// The package's bytes as pieces: the plain object, or the segments the record lists.
fn package_pieces(images: &ImageStore, rec: &ImageRecord) -> (String, Vec<Piece>) {
    let pkg = ObjectPath::new(images.container(), &rec.package.object);
    let url = images.url(&pkg);
    let pieces = if rec.package.segments.is_empty() {
        vec![Piece {
            path: pkg.clone(),
            start: 0,
            len: rec.size,
        }]
    } else {
        let mut start = 0;
        rec.package
            .segments
            .iter()
            .map(|s| {
                let p = Piece {
                    path: ObjectPath::new(images.container(), &s.name),
                    start,
                    len: s.size,
                };
                start += s.size;
                p
            })
            .collect()
    };
    (url, pieces)
}

/// Opens the layers of an indexed package as range-read layers; returns the chain
/// (leaf first, as the record lists the layers).
fn open_indexed_chain(images: &ImageStore, rec: &ImageRecord) -> Result<Chain> {
    let (url, pieces) = package_pieces(images, rec);
    let src = RangeSource::new(images.object_store().clone(), url.clone(), pieces);
    if src.len() != rec.size {
        return Err(Error::new(
            ErrorKind::Corrupt,
            "read package",
            &url,
            "segments do not add up to the recorded size",
        ));
    }
    let pkg = Arc::new(IndexedPackage::open(src)?);
    if rec.package.layers.is_empty() {
        return Err(Error::new(
            ErrorKind::Corrupt,
            "read package",
            &url,
            "the record lists no layers",
        ));
    }
    let mut layers = Vec::new();
    for name in &rec.package.layers {
        let io = pkg.member(name)?;
        let shown = format!("{url}#{name}");
        let img = Image::from_io(PathBuf::from(&shown), Box::new(io))
            .map_err(|e| crate::import::from_vhd("open layer", &shown, e))?;
        layers.push(img);
    }
    Chain::from_images(layers).map_err(|e| crate::import::from_vhd("open chain", &url, e))
}

/// Reads the image's package once, checking its MD5 against the record, and writes
/// its layers into `dir`; returns the chain (leaf first).
fn spool_chain(
    images: &ImageStore,
    rec: &ImageRecord,
    dir: &std::path::Path,
    progress: ProgressFn<'_>,
) -> Result<Chain> {
    let store = images.object_store().clone();
    let (url, pieces) = package_pieces(images, rec);
    let io = Arc::new(ObjectIo::from_pieces(store, url.clone(), pieces));
    if cloudimg_vhd::LayerIo::len(&*io) != rec.size {
        return Err(Error::new(
            ErrorKind::Corrupt,
            "read package",
            &url,
            "segments do not add up to the recorded size",
        ));
    }
    let limits = cloudimg_ova::Limits {
        // Our own packages: sparse dynamic disks compress far beyond the bomb ratio.
        max_ratio: 2000,
        ..cloudimg_ova::Limits::default()
    };
    let mut xs = XenStream::new(io.stream(), limits).map_err(|e| map_pkg(&url, e))?;
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    let mut done = 0u64;
    while let Some(mut m) = xs.next_member().map_err(|e| map_pkg(&url, e))? {
        let path = dir.join(format!("layer-{}.vhd", files.len()));
        let mut f = std::fs::File::create(&path)
            .map_err(|e| Error::io("spool layer", path.display().to_string(), e))?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = std::io::Read::read(&mut m, &mut buf)
                .map_err(|e| crate::error::from_io("read package", &url, e))?;
            if n == 0 {
                break;
            }
            f.write_all(&buf[..n])
                .map_err(|e| Error::io("spool layer", path.display().to_string(), e))?;
            done += n as u64;
            progress(Progress {
                phase: Phase::Spooling,
                done,
                total: 0,
            });
        }
        files.push((m.archive_name().to_string(), path));
    }
    let (members, stats) = xs.finish().map_err(|e| map_pkg(&url, e))?;
    if stats.md5 != rec.checksum {
        return Err(Error::new(
            ErrorKind::Corrupt,
            "read package",
            &url,
            format!(
                "MD5 {} differs from the record's checksum {}",
                stats.md5, rec.checksum
            ),
        ));
    }
    let mut layers = Vec::new();
    for m in &members {
        let (_, path) = files
            .iter()
            .find(|(n, _)| *n == m.archive_name)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::Corrupt,
                    "read package",
                    &url,
                    format!("{} was not read", m.archive_name),
                )
            })?;
        layers.push(Image::open(path).map_err(|e| Error::vhd("open layer", &m.archive_name, e))?);
    }
    Chain::from_images(layers).map_err(|e| Error::vhd("open chain", &url, e))
}

fn map_pkg(url: &str, e: cloudimg_ova::Error) -> Error {
    crate::error::from_package("read package", url, e)
}

//! The import task: an object in the user's container -> a validated image in the store.
//!
//! 1. Before any data moves: the object's size against the physical limit (609), then
//!    ranged reads of the footer (tail, or the head copy) for the cookie (396), the disk
//!    type (523: only fixed and dynamic; 721: differencing), the UUID (614) and the
//!    virtual size (413); then the dynamic header and BAT (anything unreadable: 396).
//! 2. The allocation plan of the output dynamic VHD, which a front-to-back writer needs
//!    before its first byte: from the BAT for a dynamic source (blocks it allocates stay
//!    allocated, no data read), or, for a fixed source, from a first pass over the data
//!    (ranged GETs in parallel, [`crate::zeroscan`]) that finds all-zero blocks, which
//!    are left unallocated.
//! 3. One streaming pass: source (ranged GETs, read ahead on a thread) -> dynamic VHD
//!    writer -> tar member `0.vhd` -> parallel gzip -> MD5/SHA512 -> segment uploads.
//! 4. Verify the package (segment listing, sizes, ETags, total), then write the record.
//!
//! The image id is derived from the task id, so a re-run of the same task finds what an
//! earlier run left: a record means the import already succeeded (the run returns it);
//! objects without a record are debris and are removed before starting over. Two runs at
//! once are one too many: the image's import lock lets one in and fails the other
//! ([`crate::ErrorKind::InProgress`]) before it reads or writes anything.

use crate::codes::FailureCode;
use crate::error::{Error, ErrorKind, Result};
use crate::imagestore::{ImageStore, NewImage};
use crate::objectio::ObjectIo;
use crate::package::{PackageOptions, PackageWriter};
use crate::progress::{Phase, Progress, ProgressFn};
use crate::task::{ImportInput, Task, TaskStatus};
use cloudimg_pipeline::{ObjectPath, ObjectStore};
use cloudimg_vhd::format::footer::FOOTER_SIZE;
use cloudimg_vhd::write::{ChainSource, DynamicLayout, DynamicOptions};
use cloudimg_vhd::{Chain, DiskType, Footer, Image, LayerIo};
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// Default largest virtual size accepted (160 GiB, Cloud Images' import limit).
pub const DEFAULT_MAX_VIRTUAL: u64 = 160 << 30;
/// Default largest object accepted: the virtual limit plus VHD metadata (a fixed disk
/// of the largest virtual size is that plus a footer; a dynamic one adds a BAT and
/// bitmaps).
pub const DEFAULT_MAX_PHYSICAL: u64 = (160 << 30) + (160 << 20);

/// GETs at once in the zero scan of a fixed source (see [`crate::zeroscan`]).
const SCAN_JOBS: usize = 4;

/// Namespace of image ids derived from task ids.
const IMAGE_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6c6f7564_696d_4700_8000_696d706f7274);

/// Import settings.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Largest virtual size (413 above it).
    pub max_virtual_size: u64,
    /// Largest source object (609 above it).
    pub max_physical_size: u64,
    /// How the package is written.
    pub package: PackageOptions,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            max_virtual_size: DEFAULT_MAX_VIRTUAL,
            max_physical_size: DEFAULT_MAX_PHYSICAL,
            package: PackageOptions::default(),
        }
    }
}

/// What a successful import made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The new image.
    pub image_id: Uuid,
    /// True when an earlier run of the same task had already finished it.
    pub resumed: bool,
}

/// The image id an import task creates.
pub fn image_id_for(task: &Task) -> Uuid {
    Uuid::new_v5(
        &IMAGE_ID_NAMESPACE,
        format!("import:{}", task.id).as_bytes(),
    )
}

/// Runs an import task to its end: `task` goes through processing to success (result
/// `{"image_id": ...}`) or failure (message with the failure code). `source` is the store
/// holding the task's `import_from` container. Returns the error too, for callers that
/// need more than the task JSON.
pub fn run(
    task: &mut Task,
    source: &Arc<dyn ObjectStore>,
    images: &ImageStore,
    opts: &ImportOptions,
    progress: ProgressFn<'_>,
) -> Result<ImportOutcome> {
    task.start();
    match import(task, source, images, opts, progress) {
        Ok(out) => {
            task.succeed(serde_json::json!({"image_id": out.image_id.to_string()}));
            Ok(out)
        }
        Err(e) => {
            task.fail(&e);
            Err(e)
        }
    }
}

fn import(
    task: &Task,
    source: &Arc<dyn ObjectStore>,
    images: &ImageStore,
    opts: &ImportOptions,
    progress: ProgressFn<'_>,
) -> Result<ImportOutcome> {
    debug_assert_eq!(task.status, TaskStatus::Processing);
    let input = ImportInput::parse(&task.input)?;
    let id = image_id_for(task);
    // One run of this task at a time: another would remove this one's package as debris.
    let _lock = images.lock_import(&id)?;
    if let Some(rec) = images.get(&id)? {
        return if rec.owner == task.owner && rec.name == input.name {
            Ok(ImportOutcome {
                image_id: id,
                resumed: true,
            })
        } else {
            Err(Error::new(
                ErrorKind::InvalidInput,
                "import",
                id.to_string(),
                "an image with this task's id exists with other properties",
            ))
        };
    }
    progress(Progress {
        phase: Phase::Checking,
        done: 0,
        total: 0,
    });
    let src_path = ObjectPath::new(&input.container, &input.object);
    let io = Arc::new(ObjectIo::open(source.clone(), &src_path)?);
    let checked = check_source(&io, opts)?;
    images.remove_debris(&id)?;
    let result = transfer(
        &io,
        checked,
        images,
        id,
        &input,
        &task.owner,
        opts,
        progress,
    );
    if result.is_err() {
        // Nothing of a failed import may stay: no record was written; drop the package.
        let pkg = images.package_path(&id);
        let _ = crate::imagestore::remove_object(&**images.object_store(), &pkg);
    }
    result.map(|()| ImportOutcome {
        image_id: id,
        resumed: false,
    })
}

/// The source after the checks: opened as a VHD.
pub struct CheckedSource {
    image: Image,
}

impl CheckedSource {
    /// The opened image.
    pub fn image(&self) -> &Image {
        &self.image
    }
}

/// Runs every import check on `io` with metadata reads only, returning the opened image
/// or the rejection with its Cloud Images code.
pub fn check_source(io: &Arc<ObjectIo>, opts: &ImportOptions) -> Result<CheckedSource> {
    let url = io.url().to_string();
    let len = io.len();
    if len > opts.max_physical_size {
        return Err(Error::rejected(
            FailureCode::PhysicalSizeTooLarge,
            &url,
            format!(
                "the object is {len} bytes; the limit is {}",
                opts.max_physical_size
            ),
        ));
    }
    if len < FOOTER_SIZE as u64 {
        return Err(not_vhd(
            io,
            &url,
            format!("{len} bytes is too short for a VHD footer"),
        ));
    }
    let Some(footer) = read_footer(io, len)? else {
        return Err(not_vhd(
            io,
            &url,
            "no 'conectix' footer at the end or the start".into(),
        ));
    };
    match footer.disk_type {
        DiskType::Fixed | DiskType::Dynamic => {}
        DiskType::Differencing => {
            return Err(Error::rejected(
                FailureCode::HasParent,
                &url,
                "it is a differencing disk; coalesce it with its parents first",
            ))
        }
        DiskType::Other(t) => {
            return Err(Error::rejected(
                FailureCode::NotFixedOrDynamic,
                &url,
                format!("disk type {t}"),
            ))
        }
    }
    if footer.uuid.is_nil() {
        return Err(Error::rejected(
            FailureCode::NullUuid,
            &url,
            "set a unique id (e.g. with vhd-util set -f uuid)",
        ));
    }
    if footer.current_size > opts.max_virtual_size {
        return Err(Error::rejected(
            FailureCode::VirtualSizeTooLarge,
            &url,
            format!(
                "virtual size {} bytes; the limit is {}",
                footer.current_size, opts.max_virtual_size
            ),
        ));
    }
    let image = Image::from_io(PathBuf::from(&url), Box::new(io.clone()))
        .map_err(|e| reject_vhd(&url, e))?;
    // The footer the reader settled on may differ from our quick look (a damaged tail
    // with a good head copy): check the codes again on what will be read.
    if image.virtual_size() > opts.max_virtual_size {
        return Err(Error::rejected(
            FailureCode::VirtualSizeTooLarge,
            &url,
            format!("virtual size {}", image.virtual_size()),
        ));
    }
    match image.disk_type() {
        DiskType::Fixed | DiskType::Dynamic => {}
        DiskType::Differencing => {
            return Err(Error::rejected(
                FailureCode::HasParent,
                &url,
                "differencing disk",
            ))
        }
        DiskType::Other(t) => {
            return Err(Error::rejected(
                FailureCode::NotFixedOrDynamic,
                &url,
                format!("disk type {t}"),
            ))
        }
    }
    if image.uuid().is_nil() {
        return Err(Error::rejected(FailureCode::NullUuid, &url, "null UUID"));
    }
    if image.disk_type() == DiskType::Fixed
        && image.file_len() < image.virtual_size() + FOOTER_SIZE as u64
    {
        return Err(Error::rejected(
            FailureCode::NotVhd,
            &url,
            format!(
                "a fixed disk of {} bytes needs {} bytes, the object has {}",
                image.virtual_size(),
                image.virtual_size() + 512,
                image.file_len()
            ),
        ));
    }
    Ok(CheckedSource { image })
}

/// 396 for an object with no VHD footer, saying what it is instead (QCOW2, VHDX,
/// gzip, ...) and how to make a VHD of it; `plain` when the detector cannot tell.
fn not_vhd(io: &ObjectIo, url: &str, plain: String) -> Error {
    use cloudimg_vhd::detect::{detect_io, Flow};
    let said = detect_io(io)
        .ok()
        .and_then(|d| d.not_vhd("it", url, Flow::Import));
    Error::rejected(FailureCode::NotVhd, url, said.unwrap_or(plain))
}

/// The tail footer, or the head copy of a sparse disk when the tail has no cookie.
fn read_footer(io: &ObjectIo, len: u64) -> Result<Option<Footer>> {
    let mut b = [0u8; FOOTER_SIZE];
    io.read_range(&mut b, len - FOOTER_SIZE as u64)?;
    if let Some(f) = Footer::parse(&b) {
        return Ok(Some(f));
    }
    io.read_range(&mut b, 0)?;
    Ok(Footer::parse(&b).filter(|f| f.disk_type.is_sparse()))
}

/// A VHD that fails to open is not a valid VHD (396), unless reading itself failed.
fn reject_vhd(url: &str, e: cloudimg_vhd::Error) -> Error {
    if e.kind() == cloudimg_vhd::ErrorKind::Io {
        return from_vhd("read source", url, e);
    }
    Error::rejected(FailureCode::NotVhd, url, e.to_string())
}

/// Maps a VHD error raised while moving data: an object-store or task error carried
/// inside keeps its kind; anything else about the data is a corrupt source (396).
pub(crate) fn from_vhd(op: &'static str, url: &str, e: cloudimg_vhd::Error) -> Error {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(s) = src {
        if let Some(ours) = s.downcast_ref::<Error>() {
            return Error::new(ours.kind(), op, url, ours.to_string());
        }
        if let Some(p) = s.downcast_ref::<cloudimg_pipeline::Error>() {
            let kind = if p.kind() == cloudimg_pipeline::ErrorKind::NotFound {
                ErrorKind::NotFound
            } else {
                ErrorKind::Store
            };
            return Error::new(kind, op, url, p.to_string());
        }
        src = s.source();
    }
    if e.kind().is_data_error() {
        Error::rejected(FailureCode::NotVhd, url, e.to_string())
    } else {
        Error::vhd(op, url, e)
    }
}

#[allow(clippy::too_many_arguments)]
fn transfer(
    io: &Arc<ObjectIo>,
    checked: CheckedSource,
    images: &ImageStore,
    id: Uuid,
    input: &ImportInput,
    owner: &str,
    opts: &ImportOptions,
    progress: ProgressFn<'_>,
) -> Result<()> {
    let url = io.url().to_string();
    let fixed = checked.image.disk_type() == DiskType::Fixed;
    let chain = Chain::single(checked.image).map_err(|e| reject_vhd(&url, e))?;
    let size = chain.virtual_size();
    let dopts = DynamicOptions {
        // A dynamic source's BAT is the plan; a fixed one is scanned for zero blocks.
        keep_zero_blocks: !fixed,
        ..DynamicOptions::default()
    };
    let layout = if fixed {
        progress(Progress {
            phase: Phase::Scanning,
            done: 0,
            total: size,
        });
        let report = |done| {
            progress(Progress {
                phase: Phase::Scanning,
                done,
                total: size,
            })
        };
        let blocks =
            crate::zeroscan::nonzero_blocks(io, size, dopts.block_size, SCAN_JOBS, &report)?;
        DynamicLayout::new(size, dopts.block_size, blocks, dopts.uuid)
    } else {
        DynamicLayout::plan(&mut ChainSource::new(&chain), &dopts)
    }
    .map_err(|e| from_vhd("plan", &url, e))?;
    let pkg_path = images.package_path(&id);
    let mut writer = PackageWriter::new(
        images.object_store().clone(),
        pkg_path,
        "0.vhd",
        layout.total_len(),
        &opts.package,
    )?;
    progress(Progress {
        phase: Phase::Transferring,
        done: 0,
        total: size,
    });
    let mut src = ChainSource::new(&chain);
    layout
        .write_to(&mut src, &mut writer, &mut |done| {
            progress(Progress {
                phase: Phase::Transferring,
                done,
                total: size,
            })
        })
        .map_err(|e| from_vhd("convert", &url, e))?;
    progress(Progress {
        phase: Phase::Verifying,
        done: 0,
        total: 0,
    });
    let written = writer.finish()?;
    let img = NewImage {
        id,
        name: input.name.clone(),
        owner: owner.to_string(),
        virtual_size: layout.virtual_size(),
    };
    let rec = images.new_record(
        &img,
        written.info,
        written.size,
        written.md5,
        written.sha512,
    );
    cloudimg_pipeline::crashpoint::hit("import:before-record");
    images.put_record(&rec)
}

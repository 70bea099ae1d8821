//! Converting between raw images and VHDs (fixed or dynamic), a differencing
//! input's whole chain included.
//!
//! Output to a path goes to a temporary name in the same folder, is fsynced and
//! renamed over the target only when complete; on any failure the temporary
//! file is removed, so nothing that looks complete is left behind. An older
//! file at the target is swapped out and freed off the caller's path (see
//! [`crate::replace`]). Output that
//! is not a regular file (a pipe, stdout, `/dev/null`, a block device) is
//! written front to back: a dynamic VHD then plans its blocks first (see
//! [`crate::write`] for that trade-off).

use crate::chain::{Chain, ChainOptions, ChainWarning};
use crate::journaled::refuse_if_journaled;
use crate::replace::{OldOutput, Replaced};
use crate::write::{
    self, ChainSource, DiskSource, DynamicLayout, DynamicOptions, FixedOptions, Progress,
    RawFileSource, Sink,
};
use crate::{Error, ErrorKind, Result};
use serde::Serialize;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    Raw,
    Vhd,
}

/// What to write.
#[derive(Debug, Clone)]
pub enum OutputFormat {
    Raw,
    Dynamic(DynamicOptions),
    Fixed(FixedOptions),
}

/// Options of [`convert`].
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// The input's format; probed (a VHD footer at the end or start) when `None`.
    pub input: Option<InputFormat>,
    pub output: OutputFormat,
    /// How a differencing input's ancestors are found.
    pub chain: ChainOptions,
    /// Fsync a file output before renaming it into place.
    pub sync: bool,
    /// Who frees the file an output path held before.
    pub replaced: Replaced,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            input: None,
            output: OutputFormat::Dynamic(DynamicOptions::default()),
            chain: ChainOptions::default(),
            sync: true,
            replaced: Replaced::default(),
        }
    }
}

/// Where the output goes.
pub enum Output<'a> {
    /// A path: a regular file is written under a temporary name and renamed;
    /// anything else (a device) is written in place, front to back.
    Path(&'a Path),
    /// A stream such as stdout, written front to back.
    Stream(&'a mut dyn Write),
}

/// What a conversion did.
#[derive(Debug, Clone, Serialize)]
pub struct ConvertReport {
    pub input_format: InputFormat,
    /// Layers read (1 for raw, fixed and dynamic inputs).
    pub layers: usize,
    pub virtual_size: u64,
    pub bytes_written: u64,
    /// Blocks allocated in a dynamic output.
    pub allocated_blocks: Option<u64>,
    /// What was odd about the input but did not stop it being read (a footer whose
    /// checksum is wrong in both copies, ...): the caller shows them, as `info` does.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<ChainWarning>,
}

/// Tells a VHD (footer cookie at the end, or at the start when the tail copy is
/// damaged) from a raw image, and refuses what is neither: another disk format,
/// a compressed stream or an archive would otherwise be copied as a raw disk.
pub fn probe(path: &Path) -> Result<InputFormat> {
    use crate::detect::{detect_file, Flow, Format};
    let d = detect_file(path).map_err(|e| Error::io("open input", e).path(path))?;
    match d.format {
        Format::Vhd(_) => Ok(InputFormat::Vhd),
        Format::Raw | Format::Empty | Format::Text | Format::Iso9660 => Ok(InputFormat::Raw),
        _ => {
            let said = d
                .not_vhd("it", &path.display().to_string(), Flow::Local)
                .unwrap_or_else(|| d.describe());
            Err(Error::new(
                ErrorKind::NotVhd,
                format!("{said}; `-f raw` takes its bytes as a raw disk"),
            )
            .path(path))
        }
    }
}

/// An opened input that can hand out front-to-back sources (twice when a
/// stream output must plan first).
enum Input {
    Raw(PathBuf),
    Chain(Chain),
}

impl Input {
    fn open(path: &Path, opts: &ConvertOptions) -> Result<(Input, InputFormat)> {
        let format = match opts.input {
            Some(f) => f,
            None => probe(path)?,
        };
        Ok(match format {
            InputFormat::Raw => (Input::Raw(path.to_path_buf()), format),
            InputFormat::Vhd => {
                // Checked under the layers' shared locks (in `Image::open` and below), never
                // before: a running in-place coalesce also has a journal, and a reader that
                // races it must be told "in use", not "interrupted".
                let chain = Chain::open(path, &opts.chain)?;
                for l in chain.layers() {
                    refuse_if_journaled(l.path())?;
                }
                (Input::Chain(chain), format)
            }
        })
    }

    fn source(&self) -> Result<Box<dyn DiskSource + '_>> {
        Ok(match self {
            Input::Raw(p) => Box::new(RawFileSource::open(p)?),
            Input::Chain(c) => Box::new(ChainSource::new(c)),
        })
    }

    fn layers(&self) -> Vec<PathBuf> {
        match self {
            Input::Raw(p) => vec![p.clone()],
            Input::Chain(c) => c.layers().iter().map(|l| l.path().to_path_buf()).collect(),
        }
    }
}

/// Converts `input` into `out` as `opts` says.
pub fn convert(
    input: &Path,
    out: Output<'_>,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<ConvertReport> {
    let (inp, input_format) = Input::open(input, opts)?;
    let (layers, warnings) = match &inp {
        Input::Chain(c) => (c.layers().len(), c.warnings().to_vec()),
        Input::Raw(_) => (1, Vec::new()),
    };
    let virtual_size = inp.source()?.virtual_size();
    let (bytes_written, allocated_blocks) = match out {
        Output::Stream(w) => write_stream(&inp, w, opts, progress)?,
        Output::Path(p) => write_path(&inp, p, opts, progress)?,
    };
    Ok(ConvertReport {
        input_format,
        layers,
        virtual_size,
        bytes_written,
        allocated_blocks,
        warnings,
    })
}

fn write_stream(
    inp: &Input,
    w: &mut dyn Write,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<(u64, Option<u64>)> {
    Ok(match &opts.output {
        OutputFormat::Raw => {
            let mut sink = Sink::stream(w);
            write::write_raw(&mut *inp.source()?, &mut sink, progress)?;
            (sink.finish()?, None)
        }
        OutputFormat::Fixed(f) => (
            write::write_fixed(&mut *inp.source()?, Sink::stream(w), f, progress)?,
            None,
        ),
        OutputFormat::Dynamic(d) => {
            let layout = DynamicLayout::plan(&mut *inp.source()?, d)?;
            let n = layout.write_to(&mut *inp.source()?, w, progress)?;
            (n, Some(layout.allocated_blocks().len() as u64))
        }
    })
}

fn write_path(
    inp: &Input,
    target: &Path,
    opts: &ConvertOptions,
    progress: Progress<'_>,
) -> Result<(u64, Option<u64>)> {
    let layers = inp.layers();
    crate::outpath::refuse_output_among_inputs(target, layers.iter().map(PathBuf::as_path))?;
    // Devices and pipes are written in place, front to back.
    if let Some(mut f) = crate::outpath::open_special(target)
        .map_err(|e| Error::io("open output", e).path(target))?
    {
        return write_stream(inp, &mut f, opts, progress).map_err(|e| e.path(target));
    }
    let tmp = temp_name(target);
    let old = OldOutput::open(target);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(|e| Error::io("create output", e).path(target))?;
    let result = (|| -> Result<(u64, Option<u64>)> {
        // An output fsynced at the end goes to disk while it is written.
        let sink = || {
            if opts.sync {
                Sink::file_flushed_behind(&file)
            } else {
                Sink::file(&file)
            }
        };
        let r = match &opts.output {
            OutputFormat::Raw => {
                let mut sink = sink()?;
                write::write_raw(&mut *inp.source()?, &mut sink, progress)?;
                (sink.finish()?, None)
            }
            OutputFormat::Fixed(f) => (
                write::write_fixed(&mut *inp.source()?, sink()?, f, progress)?,
                None,
            ),
            OutputFormat::Dynamic(d) => {
                let layout = write::write_dynamic_file_with(
                    &mut *inp.source()?,
                    &file,
                    d,
                    opts.sync,
                    progress,
                )?;
                (
                    layout.total_len(),
                    Some(layout.allocated_blocks().len() as u64),
                )
            }
        };
        if opts.sync {
            file.sync_all().map_err(|e| Error::io("fsync output", e))?;
        }
        old.install(&tmp, target, opts.replaced)
            .map_err(|e| Error::io("rename output into place", e))?;
        Ok(r)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(|e| e.path(target))
}

/// `.NAME.cloudimg-tmp.PID` beside `target`: hidden, and never mistaken for it.
fn temp_name(target: &Path) -> PathBuf {
    let name = target.file_name().unwrap_or_default().to_string_lossy();
    target.with_file_name(format!(".{name}.cloudimg-tmp.{}", std::process::id()))
}

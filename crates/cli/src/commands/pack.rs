//! `cloudimg pack`: VHDs into a gzipped tarball in the XenServer chain layout
//! (`0.vhd` leaf .. `N-1.vhd` base), or into a standard OVA.
//!
//! The output is written under a temporary name beside OUT and renamed when
//! complete, so a failed pack leaves no half tarball (OUT `-` streams to stdout; a
//! device or FIFO is written into). OUT must not be one of the inputs.

use crate::output::{print_json, OutputFormat};
use crate::progress;
use crate::sink::{Failure, Watched};
use anyhow::{bail, Context};
use cloudimg_ova::gzip::{GzOptions, DEFAULT_LEVEL};
use cloudimg_ova::ovf::{pack_ova, OvaDisk, VmSpec};
use cloudimg_ova::vhdmeta::summarize_file;
use cloudimg_ova::xenserver::{check_chain, pack_chain, ChainMember, Layer};
use cloudimg_ova::{Compression, PackOptions, PackReport};
use cloudimg_vhd::outpath;
use indicatif::ProgressBar;
use serde::Serialize;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Package layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PackLayout {
    /// Gzipped tar of the chain as 0.vhd (leaf) .. N-1.vhd (base), as XenServer/nova use.
    Xenserver,
    /// Standard OVA: .ovf descriptor, .mf manifest, disks (plain tar unless --gzip).
    Ova,
}

#[derive(clap::Args)]
pub struct Args {
    /// Package layout.
    #[arg(long, value_enum, default_value_t = PackLayout::Xenserver)]
    layout: PackLayout,
    /// Take one leaf VHD and bring its parents along (xenserver layout).
    #[arg(long)]
    chain: bool,
    /// Compression threads (default: all cores).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Gzip level 1-9: 1 fastest, 9 smallest, 6 the default.
    ///
    /// With ISA-L built in (`cloudimg --version` says): 1-3 run ISA-L level 1
    /// (the least CPU); 4-6 ISA-L level 2; 7 ISA-L level 3 (about 1.5x the CPU
    /// of 6, 0.3-1.6 % smaller); 8 zlib-rs (libdeflate for --indexed) at
    /// zlib's 6, the size of gzip -6 (on machine code about 10 % smaller than
    /// ISA-L's, for 10-20x the CPU); 9 the same engines at 9. Without ISA-L
    /// every level is zlib's. Figures: BENCHMARKS.md.
    #[arg(long, default_value_t = DEFAULT_LEVEL, value_parser = clap::value_parser!(u32).range(1..=9))]
    level: u32,
    /// Indexed multi-member gzip (still plain gzip to every reader; ours can seek).
    #[arg(long)]
    indexed: bool,
    /// Gzip the OVA too (an OVA is a plain tar by default).
    #[arg(long)]
    gzip: bool,
    /// Input bytes per compression job, in KiB.
    #[arg(long, value_name = "KIB")]
    chunk_kib: Option<usize>,
    /// Virtual machine name in the OVF descriptor (default: OUT's stem).
    #[arg(long)]
    name: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// The package to write (`-` for stdout).
    out: PathBuf,
    /// The VHDs: the chain leaf first (or with --chain, the leaf alone); for an OVA, the disks.
    #[arg(required = true)]
    vhds: Vec<PathBuf>,
}

#[derive(Serialize)]
struct Summary<'a> {
    layout: &'static str,
    output: String,
    compression: &'static str,
    members: Vec<Member>,
    tar_bytes: u64,
    output_bytes: u64,
    md5: &'a str,
    sha256: &'a str,
}

#[derive(Serialize)]
struct Member {
    name: String,
    size: u64,
    data_offset: u64,
    source: String,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let jobs = args.jobs.unwrap_or_else(cloudimg_ova::gzip::default_jobs);
    let default_chunk = if args.indexed { 1024 } else { 256 };
    let gz = GzOptions {
        level: args.level,
        jobs,
        chunk_size: args.chunk_kib.unwrap_or(default_chunk) * 1024,
        mtime: 0,
    };
    gz.validate()?;
    let compression = match (args.layout, args.indexed, args.gzip) {
        (_, true, _) => Compression::Indexed(gz),
        (PackLayout::Ova, false, false) => Compression::None,
        _ => Compression::Gzip(gz),
    };
    let opts = PackOptions {
        compression,
        mtime: None,
    };
    // Every source is opened as an image, which applies `check`'s rules, before a byte is
    // written (`summarize_file` reads only the footer and header), and stays open under its
    // shared lock while it is packed, so an in-place coalesce cannot start writing under
    // the package.
    let held = match args.layout {
        PackLayout::Xenserver => chain_layers(&args)?,
        PackLayout::Ova => {
            if args.chain {
                bail!("--chain applies to the xenserver layout; an OVA holds standalone disks (coalesce first)");
            }
            open_each(&args.vhds)?
        }
    };
    let sources: Vec<PathBuf> = held.iter().map(|i| i.path().to_path_buf()).collect();
    if args.layout == PackLayout::Xenserver {
        check_links(&sources)?;
    }
    let mut total = 0;
    for p in &sources {
        total += std::fs::metadata(p)
            .with_context(|| format!("{}: stat", p.display()))?
            .len();
    }
    let to_stdout = args.out.as_os_str() == "-";
    if !to_stdout {
        outpath::refuse_output_among_inputs(&args.out, sources.iter().map(PathBuf::as_path))?;
    }
    // A device or FIFO is written into, never replaced by a regular file.
    let special = if to_stdout {
        None
    } else {
        outpath::open_special(&args.out).with_context(|| format!("{}: open", args.out.display()))?
    };
    let bar = progress::bytes(total, "pack");
    let (report, written) = if to_stdout {
        let out = io::BufWriter::with_capacity(1 << 20, io::stdout().lock());
        (
            write_package(&args, &sources, out, &opts, &bar)?,
            "-".to_string(),
        )
    } else if let Some(file) = special {
        let failure = Failure::default();
        let out = io::BufWriter::with_capacity(1 << 20, Watched(file, failure.clone()));
        let report = write_package(&args, &sources, out, &opts, &bar)
            .map_err(|e| failure.explain(&args.out, e))?;
        (report, args.out.display().to_string())
    } else {
        let temp = temp_name(&args.out);
        let file =
            File::create(&temp).with_context(|| format!("{}: create", args.out.display()))?;
        let mut guard = RemoveOnDrop(Some(temp.clone()));
        let failure = Failure::default();
        let out = io::BufWriter::with_capacity(1 << 20, Watched(file, failure.clone()));
        let report = write_package(&args, &sources, out, &opts, &bar)
            .map_err(|e| failure.explain(&args.out, e))?;
        cloudimg_pipeline::crashpoint::hit("pack:before-publish");
        std::fs::rename(&temp, &args.out)
            .with_context(|| format!("{}: rename into place", args.out.display()))?;
        guard.0 = None;
        (report, args.out.display().to_string())
    };
    bar.finish_and_clear();
    let summary = Summary {
        layout: match args.layout {
            PackLayout::Xenserver => "xenserver",
            PackLayout::Ova => "ova",
        },
        output: written,
        compression: match compression {
            Compression::None => "none",
            Compression::Gzip(_) => "gzip",
            Compression::Indexed(_) => "indexed-gzip",
        },
        members: report
            .entries
            .iter()
            .map(|e| Member {
                name: e.name.clone(),
                size: e.size,
                data_offset: e.data_offset,
                source: source_of(&e.name, &sources),
            })
            .collect(),
        tar_bytes: report.tar_bytes,
        output_bytes: report.output_bytes,
        md5: &report.md5,
        sha256: &report.sha256,
    };
    match args.output {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Human => {
            // With the package on stdout, the summary goes to stderr.
            let mut w: Box<dyn Write> = if to_stdout {
                Box::new(io::stderr())
            } else {
                Box::new(io::stdout())
            };
            for m in &summary.members {
                writeln!(w, "{:12} {:>16} bytes  <- {}", m.name, m.size, m.source)?;
            }
            writeln!(
                w,
                "{}: {} bytes ({} {} bytes), md5 {}, sha256 {}",
                summary.output,
                summary.output_bytes,
                summary.compression,
                summary.tar_bytes,
                summary.md5,
                summary.sha256
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn source_of(name: &str, sources: &[PathBuf]) -> String {
    if let Some(i) = cloudimg_ova::names::chain_index(name) {
        if let Some(p) = sources.get(i) {
            return p.display().to_string();
        }
    }
    sources
        .iter()
        .find(|p| p.file_name().is_some_and(|f| f == name))
        .map_or_else(|| "(generated)".into(), |p| p.display().to_string())
}

/// The chain's images, leaf first: the arguments, or the layers `--chain` finds.
fn chain_layers(args: &Args) -> anyhow::Result<Vec<cloudimg_vhd::Image>> {
    if !args.chain {
        return open_each(&args.vhds);
    }
    if args.vhds.len() != 1 {
        bail!("--chain takes the leaf VHD alone");
    }
    let chain = cloudimg_vhd::Chain::open(&args.vhds[0], &cloudimg_vhd::ChainOptions::default())?;
    Ok(chain.into_layers())
}

fn open_each(paths: &[PathBuf]) -> anyhow::Result<Vec<cloudimg_vhd::Image>> {
    Ok(paths
        .iter()
        .map(cloudimg_vhd::Image::open)
        .collect::<Result<_, _>>()?)
}

/// Checks that the chain files link up before anything is written.
fn check_links(paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut members = Vec::new();
    for (index, p) in paths.iter().enumerate() {
        let vhd = summarize_file(p)?;
        members.push(ChainMember {
            archive_name: p.display().to_string(),
            index,
            size: std::fs::metadata(p)?.len(),
            vhd,
        });
    }
    check_chain(&mut members)?;
    Ok(())
}

fn write_package<W: Write>(
    args: &Args,
    sources: &[PathBuf],
    out: W,
    opts: &PackOptions,
    bar: &ProgressBar,
) -> anyhow::Result<PackReport> {
    let mut files = Vec::new();
    for p in sources {
        let f = File::open(p).with_context(|| format!("{}: open", p.display()))?;
        let len = f.metadata()?.len();
        files.push((p, f, len));
    }
    let report = match args.layout {
        PackLayout::Xenserver => {
            let layers = files
                .into_iter()
                .map(|(_, f, len)| Layer {
                    len,
                    data: Box::new(Counted(f, bar.clone())),
                })
                .collect();
            pack_chain(out, layers, opts)?.0
        }
        PackLayout::Ova => {
            let mut disks = Vec::new();
            let mut names: Vec<String> = Vec::new();
            for (p, f, len) in files {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .context("disk path has no file name")?;
                if names.contains(&name) {
                    bail!("two disks are named {name}");
                }
                names.push(name.clone());
                let vhd = summarize_file(p)?;
                if vhd.is_differencing() {
                    bail!(
                        "{}: a differencing disk cannot go in an OVA alone (coalesce it first)",
                        p.display()
                    );
                }
                let sha256 = cloudimg_ova::ovf::sha256_of(&f)
                    .with_context(|| format!("{}: hash", p.display()))?;
                disks.push(OvaDisk {
                    name,
                    len,
                    capacity: vhd.current_size,
                    sha256,
                    data: Box::new(Counted(File::open(p)?, bar.clone())),
                });
            }
            let vm = VmSpec {
                name: args.name.clone().unwrap_or_else(|| {
                    args.out
                        .file_stem()
                        .map_or_else(|| "vm".into(), |s| s.to_string_lossy().into_owned())
                }),
                ..VmSpec::default()
            };
            pack_ova(out, &vm, disks, opts)?.0
        }
    };
    Ok(report)
}

/// Advances the progress bar as the input is read.
struct Counted<R>(R, ProgressBar);

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        self.1.inc(n as u64);
        Ok(n)
    }
}

/// `.OUT.partial-<writer>` beside `out`, after removing the ones that killed packs into
/// `out` left (their writer, a [`cloudimg_liveness::tag`], no longer runs).
fn temp_name(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let stem = format!(".{name}.partial-");
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    cloudimg_liveness::remove_left_by_dead(dir, |n| n.strip_prefix(&stem));
    out.with_file_name(format!("{stem}{}", cloudimg_liveness::tag()))
}

struct RemoveOnDrop(Option<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

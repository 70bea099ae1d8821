//! `cloudimg unpack`: safely unpack a (gzipped) tarball of VHDs, checking the
//! layout (XenServer chain or OVA manifest) and, when given, the MD5/SHA256
//! of the compressed stream. A failed unpack leaves nothing behind. An
//! indexed package (`pack --indexed`) is decompressed on `--jobs` threads.

use crate::output::{print_json, OutputFormat};
use crate::progress;
use anyhow::Context;
use cloudimg_ova::{unpack, Expected, Layout, Limits, UnpackOptions};
use serde::Serialize;
use std::io::{self, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// What the archive must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum UnpackLayout {
    /// OVA when the first member is a .ovf, XenServer chain when there are .vhd members.
    Auto,
    /// Any flat set of regular files.
    Any,
    /// 0.vhd .. N-1.vhd (legacy names renamed), parents linked by UUID.
    Xenserver,
    /// Descriptor first, manifest digests checked.
    Ova,
}

#[derive(clap::Args)]
pub struct Args {
    /// MD5 the compressed stream must have (hex).
    #[arg(long, value_name = "HEX")]
    expect_md5: Option<String>,
    /// SHA256 the compressed stream must have (hex).
    #[arg(long, value_name = "HEX")]
    expect_sha256: Option<String>,
    /// What the archive must be.
    #[arg(long, value_enum, default_value_t = UnpackLayout::Auto)]
    layout: UnpackLayout,
    /// Most decompressed bytes per compressed byte (past the first 256 MiB).
    #[arg(long, value_name = "N")]
    max_ratio: Option<u64>,
    /// Largest member, in bytes.
    #[arg(long, value_name = "BYTES")]
    max_member_size: Option<u64>,
    /// Most members.
    #[arg(long, value_name = "N")]
    max_members: Option<usize>,
    /// Decompression threads for an indexed package (`pack --indexed`);
    /// other gzip streams decompress on one (default: all cores).
    #[arg(short = 'j', long = "jobs", value_name = "N")]
    jobs: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// The tarball (`-` for stdin).
    input: PathBuf,
    /// The folder to unpack into (created when missing).
    dir: PathBuf,
}

#[derive(Serialize)]
struct Summary {
    input: String,
    dir: String,
    gzip: bool,
    /// An indexed package decompressed on several threads.
    parallel_decode: bool,
    compressed_bytes: u64,
    uncompressed_bytes: u64,
    md5: String,
    sha256: Option<String>,
    members: Vec<Member>,
    chain: Option<Vec<ChainLink>>,
    ova_verified: Option<Vec<String>>,
}

#[derive(Serialize)]
struct Member {
    archive_name: String,
    name: String,
    size: u64,
}

#[derive(Serialize)]
struct ChainLink {
    index: usize,
    archive_name: String,
    uuid: String,
    parent_uuid: Option<String>,
    virtual_size: u64,
}

/// A file that is no tarball (a VHD, a QCOW2, an xz stream) is named for what it
/// is rather than reported as a bad tar header.
fn refuse_non_archive(input: &std::path::Path) -> anyhow::Result<()> {
    use cloudimg_vhd::detect::{detect_file, Format};
    let d = detect_file(input).with_context(|| format!("{}: read", input.display()))?;
    if matches!(d.format, Format::Tar(_) | Format::Ova | Format::Gzip) {
        return Ok(());
    }
    let hint = match d.format {
        Format::Vhd(_) => "; upload or import the VHD itself, or `cloudimg pack` it into a tarball",
        f if f.is_compressed() => "; unpack takes tar or gzipped tar: decompress it first",
        _ => "",
    };
    Err(cloudimg_ova::Error::new(
        cloudimg_ova::ErrorKind::Unsupported,
        format!("it is {}, not a tarball{hint}", d.describe()),
    )
    .path(input)
    .into())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let expected = Expected::from_hex(args.expect_md5.as_deref(), args.expect_sha256.as_deref())?;
    let mut limits = Limits::default();
    if let Some(r) = args.max_ratio {
        limits.max_ratio = r;
    }
    if let Some(s) = args.max_member_size {
        limits.max_member_size = s;
    }
    if let Some(n) = args.max_members {
        limits.max_members = n;
    }
    let from_stdin = args.input.as_os_str() == "-";
    let (source, len): (Box<dyn Read + Send>, Option<u64>) = if from_stdin {
        (Box::new(io::stdin()), None)
    } else {
        let f = std::fs::File::open(&args.input)
            .with_context(|| format!("{}: open", args.input.display()))?;
        refuse_non_archive(&args.input)?;
        let len = f.metadata().ok().map(|m| m.len());
        (Box::new(f), len)
    };
    let bar = match len {
        Some(n) => progress::bytes(n, "unpack"),
        None => progress::bytes(0, "unpack"),
    };
    let tick = bar.clone();
    let opts = UnpackOptions {
        limits,
        expected,
        layout: match args.layout {
            UnpackLayout::Auto => Layout::Auto,
            UnpackLayout::Any => Layout::Any,
            UnpackLayout::Xenserver => Layout::XenServer,
            UnpackLayout::Ova => Layout::Ova,
        },
        sha256: true,
        progress: Some(Arc::new(move |n| tick.set_position(n))),
        jobs: args.jobs.unwrap_or(0),
        crash_hook: Some(cloudimg_pipeline::crashpoint::hit),
    };
    let report = unpack(source, &args.dir, &opts);
    bar.finish_and_clear();
    let report = report.map_err(|e| e.path(&args.input))?;
    let summary = Summary {
        input: args.input.display().to_string(),
        dir: args.dir.display().to_string(),
        gzip: report.stream.gzip,
        parallel_decode: report.stream.parallel,
        compressed_bytes: report.stream.compressed_bytes,
        uncompressed_bytes: report.stream.uncompressed_bytes,
        md5: report.stream.md5.clone(),
        sha256: report.stream.sha256.clone(),
        members: report
            .members
            .iter()
            .map(|m| Member {
                archive_name: m.archive_name.clone(),
                name: m.name.clone(),
                size: m.size,
            })
            .collect(),
        chain: report.chain.as_ref().map(|c| {
            c.iter()
                .map(|m| ChainLink {
                    index: m.index,
                    archive_name: m.archive_name.clone(),
                    uuid: m.vhd.uuid.to_string(),
                    parent_uuid: m.vhd.parent_uuid.map(|u| u.to_string()),
                    virtual_size: m.vhd.current_size,
                })
                .collect()
        }),
        ova_verified: report.ova.as_ref().map(|o| o.verified.clone()),
    };
    match args.output {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Human => {
            for m in &summary.members {
                println!(
                    "{:12} {:>16} bytes  (from {})",
                    m.name, m.size, m.archive_name
                );
            }
            if let Some(c) = &summary.chain {
                println!("chain of {} VHD(s) checked: parents link by UUID", c.len());
            }
            if let Some(v) = &summary.ova_verified {
                println!("OVA manifest checked for {} file(s)", v.len());
            }
            println!(
                "{} -> {}: {} compressed bytes, {} unpacked, md5 {}",
                summary.input,
                summary.dir,
                summary.compressed_bytes,
                summary.uncompressed_bytes,
                summary.md5
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `cloudimg upload`: a file or stdin to object storage, as one object or a large object
//! (Swift DLO/SLO, S3 multipart), with parallel segment PUTs, per-segment MD5 checks and a
//! summary (bytes, segments, digests, throughput). Missing local folders and Swift
//! containers are made; a missing S3 bucket is an error.
//!
//! Digests: every segment's MD5 is checked against the server's ETag, and the whole
//! object's MD5 comes with the in-order read, so that is the default; SHA-256 and SHA-512
//! of the whole object are a serial pass each and are asked for with `--digest`, as for
//! `download`. The summary lists which were computed.

use crate::output::{print_json, OutputFormat};
use anyhow::Context;
use cloudimg_pipeline::hash::Digests;
use cloudimg_pipeline::upload::{upload, LargeKind, SegmentNaming, Source, UploadOptions};
use cloudimg_pipeline::url::Location;
use cloudimg_pipeline::ObjectStore;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Large {
    Auto,
    Single,
    Dlo,
    Slo,
    Multipart,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Naming {
    /// `<object>-00001`, ... beside the object (Cloud Images exports).
    CloudImages,
    /// `<container>_segments/<object>/<mtime>/<size>/<segsize>/<index>` (python-swiftclient).
    Swiftclient,
}

#[derive(clap::Args)]
pub struct Args {
    /// Segment (part) size: bytes, or with a K/M/G suffix (binary).
    #[arg(long, value_parser = parse_size, default_value = "64M")]
    segment_size: u64,
    /// Large-object form; auto: one PUT up to the segment size, then SLO/multipart/DLO.
    #[arg(long, value_enum, default_value_t = Large::Auto)]
    large: Large,
    /// Container for segments.
    #[arg(long, value_name = "C")]
    segment_container: Option<String>,
    /// Segment naming.
    #[arg(long, value_enum, default_value_t = Naming::CloudImages)]
    naming: Naming,
    /// Parallel segment uploads. Memory: a file costs a few 8 MiB chunks whatever the
    /// segment size (each segment is hashed, then sent from the file); a stream (stdin)
    /// about (jobs + 1) x segment size of buffers.
    #[arg(short = 'j', long, default_value_t = cloudimg_pipeline::upload::DEFAULT_JOBS)]
    jobs: usize,
    /// Whole-object digests to compute: comma-separated md5, sha256, sha512, all or none
    /// (segment MD5s are always checked against the server's ETags).
    #[arg(long, value_parser = Digests::parse, default_value = "md5")]
    digest: Digests,
    /// Re-send every segment instead of skipping those already stored.
    #[arg(long)]
    no_resume: bool,
    /// Delete the uploaded segments when the upload fails (default: keep them to resume).
    #[arg(long)]
    remove_on_error: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// Input file, or `-` for stdin.
    input: PathBuf,
    /// Destination: swift://container/object, s3://bucket/key, file:///path or a path.
    url: String,
}

pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("bad size {s:?} (a positive number with optional K/M/G)"))
}

/// Makes what a user expects an upload to make: the folders of a local path (as
/// `rclone copyto` does) and a missing Swift container (as python-swiftclient's
/// `upload` does). An S3 bucket is made on purpose, not by a copy (as with
/// `aws s3 cp`): a missing one is an error naming it.
fn make_container(loc: &Location, store: &dyn ObjectStore) -> anyhow::Result<()> {
    let container = &loc.path().container;
    if store.container_exists(container)? {
        return Ok(());
    }
    match loc {
        Location::Local { .. } | Location::Swift(_) => Ok(store.ensure_container(container)?),
        Location::S3(_) => Err(cloudimg_pipeline::Error::new(
            cloudimg_pipeline::ErrorKind::NotFound,
            "upload",
            format!("s3://{container}"),
            format!("the bucket does not exist (create it first: aws s3 mb s3://{container})"),
        )
        .into()),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let loc = Location::parse(&args.url)?;
    if let Some(local) = loc.local_file() {
        // The object's file is the input (or a link to it): publishing would replace it.
        if args.input.as_os_str() != "-" {
            cloudimg_vhd::outpath::refuse_output_among_inputs(&local, [args.input.as_path()])?;
        }
    }
    let (source, size, mtime) = if args.input.as_os_str() == "-" {
        (Source::stream(std::io::stdin()), None, None)
    } else {
        let f = std::fs::File::open(&args.input)
            .with_context(|| format!("{}: open", args.input.display()))?;
        let md = f.metadata()?;
        // A folder opens but cannot be read: say so (the system's words) before
        // any container is made.
        #[cfg(unix)]
        if md.is_dir() {
            std::os::unix::fs::FileExt::read_at(&f, &mut [0u8; 1], 0)
                .with_context(|| format!("{}: read", args.input.display()))?;
        }
        let mtime = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| format!("{}.{:06}", d.as_secs(), d.subsec_micros()));
        let size = md.is_file().then_some(md.len());
        (Source::file(f)?, size, mtime)
    };
    let store = loc.open()?;
    let path = loc.path().clone();
    make_container(&loc, &*store)?;
    let naming = match args.naming {
        Naming::CloudImages => SegmentNaming::CloudImages,
        Naming::Swiftclient => SegmentNaming::SwiftClient {
            mtime: mtime.unwrap_or_else(|| "0.000000".into()),
        },
    };
    let bar = crate::progress::bytes(size.unwrap_or(0), "upload");
    let b2 = bar.clone();
    let opts = UploadOptions {
        segment_size: args.segment_size,
        jobs: args.jobs,
        large: match args.large {
            Large::Auto => LargeKind::Auto,
            Large::Single => LargeKind::Single,
            Large::Dlo => LargeKind::Dlo,
            Large::Slo => LargeKind::Slo,
            Large::Multipart => LargeKind::Multipart,
        },
        segment_container: args.segment_container,
        naming,
        resume: !args.no_resume,
        remove_on_error: args.remove_on_error,
        progress: Some(Arc::new(move |n| b2.inc(n))),
        digests: args.digest,
        ..Default::default()
    };
    let summary = upload(&*store, &path, source, &opts);
    bar.finish_and_clear();
    let summary = summary.map_err(|e| match args.input.as_os_str() == "-" {
        true => e.into(),
        false => crate::sink::at_path(e.into(), "upload", "input", &args.input, "read"),
    })?;
    match args.output {
        OutputFormat::Json => print_json(&summary)?,
        OutputFormat::Human => {
            println!(
                "uploaded {} ({}, {} bytes, {} segments, {} skipped) in {:.2}s, {:.1} MiB/s",
                summary.url,
                summary.kind,
                summary.bytes,
                summary.segments,
                summary.segments_skipped,
                summary.duration_secs,
                summary.throughput_mib_s
            );
            let c = &summary.checksums;
            for (name, v) in [
                ("md5", &c.md5),
                ("sha256", &c.sha256),
                ("sha512", &c.sha512),
            ] {
                if !v.is_empty() {
                    println!("{name:<6} {v}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

//! `cloudimg download`: an object or large object (DLO, SLO, multipart, including those
//! python-swiftclient writes) to a file or stdout, segments fetched in parallel and each
//! checked; a missing or short segment fails instead of producing a truncated file.

use crate::output::{print_json, OutputFormat};
use anyhow::Context;
use cloudimg_pipeline::download::{download, DownloadOptions};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(clap::Args)]
pub struct Args {
    /// Parallel GETs.
    #[arg(short = 'j', long, default_value_t = cloudimg_pipeline::download::DEFAULT_JOBS)]
    jobs: usize,
    /// Largest single GET (bytes, or with K/M/G).
    #[arg(long, value_parser = super::upload::parse_size, default_value = "32M")]
    piece_size: u64,
    /// Output format (the summary goes to stderr when the data goes to stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// Source: swift://container/object, s3://bucket/key, file:///path or a path.
    url: String,
    /// Output file, or `-` for stdout.
    output_file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (store, path) = cloudimg_pipeline::open_url(&args.url)?;
    let size = store.head(&path).map(|i| i.size).unwrap_or(0);
    let bar = crate::progress::bytes(size, "download");
    let b2 = bar.clone();
    let opts = DownloadOptions {
        jobs: args.jobs,
        piece_size: args.piece_size,
        progress: Some(Arc::new(move |n| b2.inc(n))),
    };
    let to_stdout = args.output_file.as_os_str() == "-";
    let summary = if to_stdout {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        let s = download(&*store, &path, &mut w, &opts);
        w.flush()?;
        s
    } else {
        // Write beside the target and rename, so a failed download leaves no partial file.
        let target = &args.output_file;
        let mut part = target.as_os_str().to_owned();
        part.push(format!(".part-{}", std::process::id()));
        let part = PathBuf::from(part);
        let f =
            std::fs::File::create(&part).with_context(|| format!("create {}", part.display()))?;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
        let s = download(&*store, &path, &mut w, &opts);
        let flushed = w.flush();
        match (&s, flushed) {
            (Ok(_), Ok(())) => std::fs::rename(&part, target)
                .with_context(|| format!("rename to {}", target.display()))?,
            (_, Err(e)) => {
                let _ = std::fs::remove_file(&part);
                return Err(e).context(format!("write {}", part.display()));
            }
            (Err(_), _) => {
                let _ = std::fs::remove_file(&part);
            }
        }
        s
    };
    bar.finish_and_clear();
    let summary = summary?;
    match (args.output, to_stdout) {
        (OutputFormat::Json, false) => print_json(&summary)?,
        (OutputFormat::Json, true) => eprintln!("{}", serde_json::to_string_pretty(&summary)?),
        (OutputFormat::Human, _) => eprintln!(
            "downloaded {} ({}, {} bytes, {} segments, {} verified) in {:.2}s, {:.1} MiB/s\nmd5    {}\nsha256 {}",
            summary.url,
            summary.kind,
            summary.bytes,
            summary.segments,
            summary.segments_verified,
            summary.duration_secs,
            summary.throughput_mib_s,
            summary.checksums.md5,
            summary.checksums.sha256
        ),
    }
    Ok(ExitCode::SUCCESS)
}

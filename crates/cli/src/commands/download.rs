//! `cloudimg download`: an object or large object (DLO, SLO, multipart, including those
//! python-swiftclient writes) to a file or stdout, segments fetched in parallel and each
//! checked; a missing or short segment fails instead of producing a truncated file.
//! Segment MD5s are always checked where known; whole-object digests only on request
//! (`--digest`, or implied by `--expect-md5`/`--expect-sha256`), since each is a serial
//! pass over every byte.

use crate::output::{print_json, OutputFormat};
use anyhow::Context;
use cloudimg_pipeline::download::{download, download_to_file, Digests, DownloadOptions};
use cloudimg_vhd::outpath;
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
    /// Whole-object digests to compute: comma-separated md5, sha256, sha512 (or all).
    #[arg(long, value_parser = Digests::parse, default_value = "none")]
    digest: Digests,
    /// Fail (and keep no output file) unless the object's MD5 is this (hex).
    #[arg(long, value_name = "HEX")]
    expect_md5: Option<String>,
    /// Fail (and keep no output file) unless the object's SHA-256 is this (hex).
    #[arg(long, value_name = "HEX")]
    expect_sha256: Option<String>,
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
    let mut digests = args.digest;
    digests.md5 |= args.expect_md5.is_some();
    digests.sha256 |= args.expect_sha256.is_some();
    let opts = DownloadOptions {
        jobs: args.jobs,
        piece_size: args.piece_size,
        digests,
        progress: Some(Arc::new(move |n| b2.inc(n))),
    };
    // An expected digest that differs makes the download fail like any integrity error.
    let expect = |s: cloudimg_pipeline::Result<cloudimg_pipeline::download::DownloadSummary>|
     -> anyhow::Result<cloudimg_pipeline::download::DownloadSummary> {
        let s = s?;
        for (name, want, got) in [
            ("MD5", &args.expect_md5, &s.checksums.md5),
            ("SHA-256", &args.expect_sha256, &s.checksums.sha256),
        ] {
            if let Some(w) = want {
                if !w.trim().eq_ignore_ascii_case(got) {
                    return Err(cloudimg_pipeline::Error::new(
                        cloudimg_pipeline::ErrorKind::Integrity,
                        "download",
                        &s.url,
                        format!("{name} is {got}, expected {}", w.trim()),
                    )
                    .into());
                }
            }
        }
        Ok(s)
    };
    let to_stdout = args.output_file.as_os_str() == "-";
    if !to_stdout {
        // A local object downloaded onto its own file would truncate what is being read.
        if let Some(local) = cloudimg_pipeline::url::Location::parse(&args.url)?.local_file() {
            outpath::refuse_output_among_inputs(&args.output_file, [local.as_path()])?;
        }
    }
    // A device or FIFO is written into in order, never replaced by a regular file.
    let special = if to_stdout {
        None
    } else {
        outpath::open_special(&args.output_file)
            .with_context(|| format!("{}: open", args.output_file.display()))?
    };
    let summary = if to_stdout {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        let s = expect(download(&*store, &path, &mut w, &opts));
        w.flush()?;
        s
    } else if let Some(file) = special {
        let target = &args.output_file;
        let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
        let s = expect(download(&*store, &path, &mut w, &opts))
            .map_err(|e| crate::sink::at_path(e, "download", "output", target, "write"));
        w.flush()
            .with_context(|| format!("{}: write", target.display()))?;
        s
    } else {
        // Write beside the target and rename, so a failed download leaves no partial file.
        let target = &args.output_file;
        remove_stray_parts(target);
        let mut part = target.as_os_str().to_owned();
        part.push(format!(".part-{}", cloudimg_liveness::tag()));
        let part = PathBuf::from(part);
        let f = std::fs::File::create(&part)
            .with_context(|| format!("{}: create", target.display()))?;
        // Workers write their segments at their offsets: no reordering, no extra copy.
        let s = expect(download_to_file(&*store, &path, &f, &opts))
            .map_err(|e| crate::sink::at_path(e, "download", "output", target, "write"));
        // Positional writes report their errors themselves: nothing is buffered here.
        drop(f);
        if s.is_ok() {
            cloudimg_pipeline::crashpoint::hit("download:before-publish");
        }
        match &s {
            Ok(_) => std::fs::rename(&part, target)
                .with_context(|| format!("rename to {}", target.display()))?,
            Err(_) => {
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
        (OutputFormat::Human, _) => {
            eprintln!(
                "downloaded {} ({}, {} bytes, {} segments, {} verified) in {:.2}s, {:.1} MiB/s",
                summary.url,
                summary.kind,
                summary.bytes,
                summary.segments,
                summary.segments_verified,
                summary.duration_secs,
                summary.throughput_mib_s,
            );
            for (name, v) in [
                ("md5   ", &summary.checksums.md5),
                ("sha256", &summary.checksums.sha256),
                ("sha512", &summary.checksums.sha512),
            ] {
                if !v.is_empty() {
                    eprintln!("{name} {v}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Removes the temporary files `OUT.part-<writer>` that killed downloads into `target`
/// left (their writer, a [`cloudimg_liveness::tag`], no longer runs); a running
/// download's is left alone.
fn remove_stray_parts(target: &std::path::Path) {
    let (Some(dir), Some(name)) = (target.parent(), target.file_name()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    let stem = format!("{}.part-", name.to_string_lossy());
    cloudimg_liveness::remove_left_by_dead(dir, |n| n.strip_prefix(&stem));
}

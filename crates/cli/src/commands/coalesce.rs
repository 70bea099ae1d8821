//! `cloudimg coalesce`: a chain into one new image (`LEAF OUT`), or a child
//! merged into its parent in place (`--into-parent CHILD`), crash safe through
//! a journal; `--rollback PARENT` / `--resume PARENT` resolve an interrupted one.

use super::convert::{input_format, output_format, parse_options, report, run_convert, ChainArgs};
use crate::output::{print_json, OutputFormat};
use anyhow::bail;
use cloudimg_vhd::coalesce::{self, InPlaceOptions};
use cloudimg_vhd::convert::ConvertOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Merge CHILD into its immediate parent in place.
    #[arg(long, conflicts_with_all = ["rollback", "resume"])]
    into_parent: bool,
    /// Undo an interrupted in-place merge into PARENT from its journal.
    #[arg(long, conflicts_with = "resume")]
    rollback: bool,
    /// Finish an interrupted in-place merge into PARENT (rollback, then merge again).
    #[arg(long)]
    resume: bool,
    /// Output format when writing a new image: vhd (default), vpc or raw.
    #[arg(short = 'O', value_name = "FMT", default_value = "vhd")]
    output_format: String,
    /// Output options: subformat=dynamic|fixed, block_size=N, round_to_mib=on, keep_zero_blocks=on.
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    #[command(flatten)]
    chain: ChainArgs,
    /// Do not fsync the output before renaming it into place.
    #[arg(long)]
    no_sync: bool,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// Test hook: abort the process after this many writes of an in-place operation.
    #[arg(long, hide = true)]
    abort_after_writes: Option<u64>,
    /// The leaf (or CHILD with --into-parent, PARENT with --rollback/--resume).
    image: PathBuf,
    /// The output image (`-` for stdout) when coalescing out of place.
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let in_place = args.into_parent || args.rollback || args.resume;
    if in_place {
        if args.out.is_some() {
            bail!("--into-parent, --rollback and --resume take one image and no OUT");
        }
        let opts = InPlaceOptions {
            chain: args.chain.options(),
            abort_after_writes: args.abort_after_writes,
        };
        if args.rollback {
            let info = coalesce::rollback(&args.image, &opts)?;
            match args.output {
                OutputFormat::Json => print_json(&serde_json::json!({
                    "rolled_back": args.image,
                    "original_len": info.original_len,
                    "child": info.child,
                }))?,
                OutputFormat::Human => println!(
                    "restored {} to its {} bytes before merging {}",
                    args.image.display(),
                    info.original_len,
                    info.child.display()
                ),
            }
            return Ok(ExitCode::SUCCESS);
        }
        let r = if args.resume {
            coalesce::resume(&args.image, &opts)?
        } else {
            coalesce::coalesce_into_parent(&args.image, &opts)?
        };
        match args.output {
            OutputFormat::Json => print_json(&r)?,
            OutputFormat::Human => println!(
                "merged {} into {}: {} sectors, {} blocks updated, {} blocks appended",
                r.child.display(),
                r.parent.display(),
                r.sectors_copied,
                r.blocks_updated,
                r.blocks_allocated
            ),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(out) = args.out else {
        bail!("coalesce LEAF OUT needs an output path (or --into-parent CHILD)");
    };
    let o = parse_options(&args.options)?;
    let opts = ConvertOptions {
        input: input_format(Some("vhd"))?,
        output: output_format(&args.output_format, &o)?,
        chain: args.chain.options(),
        sync: !args.no_sync,
        // The command exits right after: a child process frees the old output.
        replaced: cloudimg_vhd::replace::Replaced::Process,
    };
    let r = run_convert(&args.image, &out, &opts)?;
    report(&r, &out, args.output)?;
    Ok(ExitCode::SUCCESS)
}

//! `cloudimg convert`: raw <-> VHD (fixed or dynamic) with qemu-img's spelling
//! (`-f`, `-O`, `-o subformat=...,block_size=...`; `vpc` means VHD). A
//! differencing input converts its whole chain. `OUT` may be `-` for stdout.

use crate::output::{print_json, OutputFormat};
use crate::progress;
use anyhow::{bail, Context};
use cloudimg_vhd::convert::{
    convert, ConvertOptions, ConvertReport, InputFormat, Output, OutputFormat as Fmt,
};
use cloudimg_vhd::write::{DynamicOptions, FixedOptions};
use cloudimg_vhd::ChainOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Input format: raw, vhd or vpc (probed when absent).
    #[arg(short = 'f', value_name = "FMT")]
    input_format: Option<String>,
    /// Output format: raw, vhd or vpc.
    #[arg(short = 'O', value_name = "FMT", default_value = "raw")]
    output_format: String,
    /// Output options: subformat=dynamic|fixed, block_size=N, round_to_mib=on,
    /// keep_zero_blocks=on (comma separated, repeatable).
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    #[command(flatten)]
    chain: ChainArgs,
    /// Do not fsync the output before renaming it into place.
    #[arg(long)]
    no_sync: bool,
    /// Report format (the report goes to stderr when OUT is stdout).
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// Input image.
    input: PathBuf,
    /// Output path, or `-` for stdout.
    out: PathBuf,
}

/// How parents of a differencing input are found.
#[derive(clap::Args, Debug, Clone)]
pub struct ChainArgs {
    /// A parent to use (matched by UUID) before looking at locators; repeatable.
    #[arg(long = "parent", value_name = "PATH")]
    pub parents: Vec<PathBuf>,
    /// Refuse parent locators that resolve outside this directory.
    #[arg(long, value_name = "DIR")]
    pub confine: Option<PathBuf>,
}

impl ChainArgs {
    pub fn options(&self) -> ChainOptions {
        ChainOptions {
            confine_to: self.confine.clone(),
            parents: self.parents.clone(),
            ..ChainOptions::default()
        }
    }
}

/// `-o` options shared by convert, coalesce and create.
#[derive(Debug, Default, Clone)]
pub struct OutOptions {
    pub fixed: bool,
    pub block_size: Option<u32>,
    pub round_to_mib: bool,
    pub keep_zero_blocks: bool,
}

/// Parses `-o` values: `key=value` pairs separated by commas.
pub fn parse_options(opts: &[String]) -> anyhow::Result<OutOptions> {
    let mut o = OutOptions::default();
    for item in opts
        .iter()
        .flat_map(|s| s.split(','))
        .filter(|s| !s.is_empty())
    {
        let (k, v) = item.split_once('=').unwrap_or((item, "on"));
        match k {
            "subformat" => {
                o.fixed = match v {
                    "fixed" => true,
                    "dynamic" => false,
                    _ => bail!("subformat must be dynamic or fixed, not {v:?}"),
                }
            }
            "block_size" => {
                let n = parse_size(v)?;
                o.block_size = Some(u32::try_from(n).context("block_size too large")?);
            }
            "round_to_mib" => o.round_to_mib = parse_bool(k, v)?,
            "keep_zero_blocks" => o.keep_zero_blocks = parse_bool(k, v)?,
            _ => bail!("unknown option {k:?} (known: subformat, block_size, round_to_mib, keep_zero_blocks)"),
        }
    }
    Ok(o)
}

fn parse_bool(k: &str, v: &str) -> anyhow::Result<bool> {
    match v {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => bail!("{k} must be on or off, not {v:?}"),
    }
}

/// `1048576`, `512K`, `2M`, `10G`, `1T` (binary units, optional `iB`/`B`).
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (num, mult) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m' | 'M') => (&t[..t.len() - 1], 1 << 20),
        Some('g' | 'G') => (&t[..t.len() - 1], 1 << 30),
        Some('t' | 'T') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: u64 = num.parse().with_context(|| format!("bad size {s:?}"))?;
    n.checked_mul(mult)
        .with_context(|| format!("size {s:?} too large"))
}

/// Output format from `-O` and `-o`.
pub fn output_format(name: &str, o: &OutOptions) -> anyhow::Result<Fmt> {
    Ok(match name {
        "raw" => Fmt::Raw,
        "vhd" | "vpc" if o.fixed => Fmt::Fixed(FixedOptions {
            round_to_mib: o.round_to_mib,
            uuid: None,
        }),
        "vhd" | "vpc" => {
            let mut d = DynamicOptions {
                keep_zero_blocks: o.keep_zero_blocks,
                ..DynamicOptions::default()
            };
            if let Some(bs) = o.block_size {
                d.block_size = bs;
            }
            Fmt::Dynamic(d)
        }
        _ => bail!("output format must be raw, vhd or vpc, not {name:?}"),
    })
}

pub fn input_format(name: Option<&str>) -> anyhow::Result<Option<InputFormat>> {
    Ok(match name {
        None => None,
        Some("raw") => Some(InputFormat::Raw),
        Some("vhd" | "vpc") => Some(InputFormat::Vhd),
        Some(other) => bail!("input format must be raw, vhd or vpc, not {other:?}"),
    })
}

/// Runs a conversion to a path or stdout, with a progress bar on a terminal.
pub fn run_convert(
    input: &Path,
    out: &Path,
    opts: &ConvertOptions,
) -> anyhow::Result<ConvertReport> {
    // The virtual size, for the bar's length; the conversion itself reports errors.
    let total = cloudimg_vhd::Image::open(input)
        .map(|i| i.virtual_size())
        .or_else(|_| std::fs::metadata(input).map(|m| m.len()))
        .unwrap_or(0);
    let bar = progress::bytes(total, "converting");
    let mut tick = |done: u64| bar.set_position(done);
    let report = if out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        let r = convert(input, Output::Stream(&mut lock), opts, &mut tick);
        lock.flush().ok();
        r
    } else {
        convert(input, Output::Path(out), opts, &mut tick)
    };
    bar.finish_and_clear();
    let report = report?;
    // Said as `info` and qemu-img say them: the data was read, but the file is odd.
    for w in &report.warnings {
        eprintln!("warning: {}: {}", w.path.display(), w.warning);
    }
    Ok(report)
}

/// Prints the report as asked; to stderr when stdout carries the image.
pub fn report(r: &ConvertReport, out: &Path, format: OutputFormat) -> anyhow::Result<()> {
    let to_stdout = out.as_os_str() == "-";
    match format {
        OutputFormat::Json if !to_stdout => print_json(r)?,
        OutputFormat::Json => eprintln!("{}", serde_json::to_string_pretty(r)?),
        OutputFormat::Human if !to_stdout => println!(
            "wrote {} bytes ({} virtual, {} layer(s) read){}",
            r.bytes_written,
            r.virtual_size,
            r.layers,
            r.allocated_blocks
                .map(|b| format!(", {b} blocks allocated"))
                .unwrap_or_default()
        ),
        OutputFormat::Human => {}
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let o = parse_options(&args.options)?;
    let opts = ConvertOptions {
        input: input_format(args.input_format.as_deref())?,
        output: output_format(&args.output_format, &o)?,
        chain: args.chain.options(),
        sync: !args.no_sync,
        // The command exits right after: a child process frees the old output.
        replaced: cloudimg_vhd::replace::Replaced::Process,
    };
    let r = run_convert(&args.input, &args.out, &opts)?;
    report(&r, &args.out, args.output)?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_options() {
        assert_eq!(parse_size("2M").unwrap(), 2 << 20);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert!(parse_size("x").is_err());
        let o = parse_options(&["subformat=fixed,round_to_mib=on".into()]).unwrap();
        assert!(o.fixed && o.round_to_mib);
        assert!(parse_options(&["bogus=1".into()]).is_err());
    }
}

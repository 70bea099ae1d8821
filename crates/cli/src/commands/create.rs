//! `cloudimg create`: an empty fixed or dynamic VHD, or (`-b PARENT`) an empty
//! differencing child with relative and absolute parent locators.

use super::convert::{parse_options, parse_size};
use anyhow::bail;
use cloudimg_vhd::create::{
    create_child, create_dynamic, create_fixed, ChildOptions, LocatorStyle,
};
use cloudimg_vhd::write::FixedOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Style {
    VhdUtil,
    HyperV,
}

#[derive(clap::Args)]
pub struct Args {
    /// Options: subformat=dynamic|fixed, block_size=N, round_to_mib=on.
    #[arg(short = 'o', value_name = "OPTIONS")]
    options: Vec<String>,
    /// Make a differencing child of this parent (size and block size come from it).
    #[arg(short = 'b', long = "backing", value_name = "PARENT")]
    parent: Option<PathBuf>,
    /// How the child's parent locators are laid out.
    #[arg(long, value_enum, default_value = "vhd-util")]
    locator_style: Style,
    /// The new image (must not exist).
    file: PathBuf,
    /// Virtual size (bytes, or with K/M/G/T), except with -b.
    size: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let o = parse_options(&args.options)?;
    if let Some(parent) = &args.parent {
        if args.size.is_some() || o.fixed {
            bail!("a differencing child takes its size from the parent and is never fixed");
        }
        let style = match args.locator_style {
            Style::VhdUtil => LocatorStyle::VhdUtil,
            Style::HyperV => LocatorStyle::HyperV,
        };
        create_child(&args.file, parent, &ChildOptions { style, uuid: None })?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(size) = args.size.as_deref() else {
        bail!("a size is needed (or -b PARENT for a differencing child)");
    };
    let size = parse_size(size)?;
    if o.fixed {
        create_fixed(
            &args.file,
            size,
            &FixedOptions {
                round_to_mib: o.round_to_mib,
                uuid: None,
            },
        )?;
    } else {
        create_dynamic(
            &args.file,
            size,
            o.block_size
                .unwrap_or(cloudimg_vhd::format::header::DEFAULT_BLOCK_SIZE),
            None,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

//! `cloudimg`: a thin command line over the cloudimg libraries.
//!
//! Exit codes: 0 success, 1 the image or data is bad, 2 usage or environment.

mod alloc;
mod commands;
mod exit;
mod output;
mod progress;
mod render;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "cloudimg",
    version,
    about = "Move VHD disk images in and out of a cloud image service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a VHD is: format, sizes, geometry, UUIDs, parent chain.
    Info(commands::info::Args),
    /// Validate VHDs at least as strictly as `vhd-util check`.
    Check(commands::check::Args),
    /// Convert between raw and VHD (fixed or dynamic), qemu-img's spelling.
    Convert(commands::convert::Args),
    /// Coalesce a differencing chain into one image, or a child into its parent.
    Coalesce(commands::coalesce::Args),
    /// Create an empty fixed or dynamic VHD, or a differencing child.
    Create(commands::create::Args),
    /// Package VHDs into a gzipped tarball (XenServer chain layout or OVA).
    Pack(commands::pack::Args),
    /// Safely unpack a (gzipped) tarball of VHDs.
    Unpack(commands::unpack::Args),
    /// Upload a file or stdin to object storage (large objects as needed).
    Upload(commands::upload::Args),
    /// Download an object (or large object) to a file or stdout.
    Download(commands::download::Args),
    /// Run a Glance-style import task into an image store.
    Import(commands::import::Args),
    /// Run a Glance-style export task out of an image store.
    Export(commands::export::Args),
    /// Serve the Cloud Images v2 API (Glance v2) on a catalog database and an image store.
    Serve(commands::serve::Args),
}

fn main() -> ExitCode {
    alloc::limit_arenas();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => commands::info::run(a),
        Command::Check(a) => commands::check::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Coalesce(a) => commands::coalesce::run(a),
        Command::Create(a) => commands::create::run(a),
        Command::Pack(a) => commands::pack::run(a),
        Command::Unpack(a) => commands::unpack::run(a),
        Command::Upload(a) => commands::upload::run(a),
        Command::Download(a) => commands::download::run(a),
        Command::Import(a) => commands::import::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Serve(a) => commands::serve::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cloudimg: {}", render::chain(&err));
            exit::code_for(&err)
        }
    }
}

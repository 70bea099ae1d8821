//! `cloudimg`: a thin command line over the cloudimg libraries.
//!
//! Exit codes: 0 success, 1 the image or data is bad, 2 usage or environment.

mod alloc;
mod commands;
mod exit;
mod output;
mod progress;
mod render;
mod sink;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// The version line: the commit, and the deflate engine built in (ISA-L or not).
static VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} (commit {}; {})",
        env!("CARGO_PKG_VERSION"),
        env!("CLOUDIMG_COMMIT"),
        cloudimg_ova::gzip::ENGINE
    )
});

#[derive(Parser)]
#[command(
    name = "cloudimg",
    version = VERSION.as_str(),
    about = "Move VHD disk images in and out of a cloud image service"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show what a VHD is: format, sizes, geometry, UUIDs, parent chain.
    #[command(
        after_help = "Examples:\n  cloudimg info disk.vhd\n  cloudimg info --output json --parent base.vhd child.vhd\n\nA QCOW2, VHDX, VMDK or compressed file is named as such, with the command that converts it."
    )]
    Info(commands::info::Args),
    /// Validate VHDs at least as strictly as `vhd-util check`.
    #[command(
        after_help = "Examples:\n  cloudimg check disk.vhd\n  cloudimg check --confine /srv/images /srv/images/leaf.vhd"
    )]
    Check(commands::check::Args),
    /// Convert between raw and VHD (fixed or dynamic), qemu-img's spelling.
    #[command(
        after_help = "Examples:\n  cloudimg convert -O vpc disk.raw disk.vhd\n  cloudimg convert -O vpc -o subformat=fixed dynamic.vhd fixed.vhd\n\nOther disk formats (QCOW2, VHDX, VMDK, VDI): qemu-img convert -O vpc disk.qcow2 disk.vhd"
    )]
    Convert(commands::convert::Args),
    /// Coalesce a differencing chain into one image, or a child into its parent.
    #[command(
        after_help = "Examples:\n  cloudimg coalesce leaf.vhd flat.vhd\n  cloudimg coalesce --into-parent child.vhd"
    )]
    Coalesce(commands::coalesce::Args),
    /// Create an empty fixed or dynamic VHD, or a differencing child.
    #[command(
        after_help = "Examples:\n  cloudimg create disk.vhd 10G\n  cloudimg create -b base.vhd child.vhd"
    )]
    Create(commands::create::Args),
    /// Package VHDs into a gzipped tarball (XenServer chain layout or OVA).
    #[command(
        after_help = "Examples:\n  cloudimg pack image.tgz leaf.vhd base.vhd\n  cloudimg pack --layout ova vm.ova disk.vhd"
    )]
    Pack(commands::pack::Args),
    /// Safely unpack a (gzipped) tarball of VHDs.
    #[command(
        after_help = "Examples:\n  cloudimg unpack image.tgz ./image\n  cloudimg unpack --expect-md5 0cc175b9c0f1b6a831c399e269772661 - ./image"
    )]
    Unpack(commands::unpack::Args),
    /// Upload a file or stdin to object storage (large objects as needed).
    #[command(
        after_help = "Examples:\n  cloudimg upload disk.vhd swift://uploads/disk.vhd\n  cloudimg upload disk.vhd /srv/store/uploads/disk.vhd\n\nSwift and S3 credentials come from ST_AUTH/ST_USER/ST_KEY (or OS_* for Keystone) and\nS3_ENDPOINT/S3_ACCESS_KEY/S3_SECRET_KEY. Missing local folders and Swift containers are made."
    )]
    Upload(commands::upload::Args),
    /// Download an object (or large object) to a file or stdout.
    #[command(
        after_help = "Examples:\n  cloudimg download swift://exports/web01.vhd web01.vhd\n  cloudimg download --digest md5 s3://exports/web01.vhd web01.vhd"
    )]
    Download(commands::download::Args),
    /// Run a Glance-style import task into an image store.
    #[command(
        after_help = "Examples:\n  cloudimg import --from swift://uploads/disk.vhd --store swift://images --name web01\n  cloudimg import --from /srv/store/uploads/disk.vhd --store /srv/images\n\nImport takes a fixed or dynamic VHD; a failure carries its Cloud Images code (396: not a VHD)."
    )]
    Import(commands::import::Args),
    /// Run a Glance-style export task out of an image store.
    #[command(
        after_help = "Examples:\n  cloudimg export --store swift://images --image 8a5e0c2e-4f5b-4d5e-9a8e-1c2b3d4e5f60 --to swift://exports"
    )]
    Export(commands::export::Args),
    /// Serve the Cloud Images v2 API (Glance v2) on a catalog database and an image store.
    Serve(commands::serve::Args),
    /// Run Glance tasks (import, export) from the catalog, beside any number of others.
    Worker(commands::worker::Args),
    /// Operators' view of the task queue: list, show and cancel every project's tasks.
    Tasks(commands::tasks::Args),
}

/// The example lines of a subcommand's `after_help`.
#[cfg(test)]
fn examples(help: &str) -> Vec<Vec<String>> {
    help.lines()
        .filter_map(|l| l.trim().strip_prefix("cloudimg "))
        .map(|l| {
            std::iter::once("cloudimg".to_string())
                .chain(l.split_whitespace().map(str::to_string))
                .collect()
        })
        .collect()
}

fn main() -> ExitCode {
    alloc::init();
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
        Command::Worker(a) => commands::worker::run(a),
        Command::Tasks(a) => commands::tasks::run(a),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cloudimg: {}", render::chain(&err));
            exit::code_for(&err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_subcommand_has_examples_that_parse() {
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            let help = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            let ex = examples(&help);
            assert!(!ex.is_empty(), "{} has no examples", sub.get_name());
            for args in ex {
                assert_eq!(args[1], sub.get_name(), "{args:?}");
                if let Err(e) = Cli::try_parse_from(&args) {
                    panic!("{args:?} does not parse: {e}");
                }
            }
        }
    }

    #[test]
    fn version_names_the_commit() {
        let v = Cli::command().render_version();
        assert!(
            v.starts_with(&format!("cloudimg {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{v}"
        );
        assert!(v.contains(cloudimg_ova::gzip::ENGINE), "{v}");
    }
}

//! `cloudimg info`: what a VHD is (format, sizes, geometry, UUIDs, creator,
//! parent locators) and, for a differencing disk, the chain it resolves to.
//!
//! Exits 0 when the file opens, even if its chain does not resolve (the chain
//! error is shown); `check` is the command that judges.

use crate::output::{print_json, OutputFormat};
use cloudimg_vhd::info::{info, Info};
use cloudimg_vhd::ChainOptions;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    output: OutputFormat,
    /// A parent to use (matched by UUID) before looking at locators; repeatable.
    #[arg(long = "parent", value_name = "PATH")]
    parents: Vec<PathBuf>,
    /// Refuse parent locators that resolve outside this directory.
    #[arg(long, value_name = "DIR")]
    confine: Option<PathBuf>,
    /// The VHD file.
    file: PathBuf,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = ChainOptions {
        confine_to: args.confine,
        parents: args.parents,
        ..ChainOptions::default()
    };
    let info = info(&args.file, &opts)?;
    match args.output {
        OutputFormat::Json => print_json(&info)?,
        OutputFormat::Human => print!("{}", human(&info)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `40 MiB (41943040 bytes)`, the way qemu-img shows sizes.
fn size(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    let short = if u == 0 {
        format!("{n} B")
    } else if v.fract() == 0.0 {
        format!("{v} {}", UNITS[u])
    } else {
        format!("{v:.3} {}", UNITS[u])
    };
    format!("{short} ({n} bytes)")
}

fn human(i: &Info) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "image: {}", i.path.display());
    let _ = writeln!(s, "file format: {}", i.format);
    let _ = writeln!(s, "subformat: {}", i.subformat);
    let _ = writeln!(s, "virtual size: {}", size(i.virtual_size));
    let _ = writeln!(s, "file size: {}", size(i.file_size));
    let _ = writeln!(s, "allocated: {}", size(i.allocated_bytes));
    let _ = writeln!(
        s,
        "geometry: {} (CHS size {})",
        i.geometry,
        size(i.chs_size)
    );
    if i.original_size != i.virtual_size {
        let _ = writeln!(s, "original size: {}", size(i.original_size));
    }
    if let Some(bs) = i.block_size {
        let _ = writeln!(s, "block size: {}", size(u64::from(bs)));
    }
    let _ = writeln!(s, "uuid: {}", i.uuid);
    let _ = writeln!(
        s,
        "creator: {} {} ({})",
        i.creator.app, i.creator.version, i.creator.os
    );
    let _ = writeln!(s, "timestamp: {}", i.timestamp);
    if i.saved_state {
        let _ = writeln!(s, "saved state: yes");
    }
    if i.footer_copy != "tail" {
        let _ = writeln!(s, "footer copy used: {}", i.footer_copy);
    }
    if let Some(p) = i.parent_uuid {
        let _ = writeln!(s, "parent uuid: {p}");
    }
    if let Some(n) = &i.parent_name {
        let _ = writeln!(s, "parent name: {n}");
    }
    if let Some(t) = &i.parent_timestamp {
        let _ = writeln!(s, "parent timestamp: {t}");
    }
    if !i.parent_locators.is_empty() {
        let _ = writeln!(s, "parent locators:");
        for l in &i.parent_locators {
            let _ = writeln!(
                s,
                "    {} at {:#x} ({} of {} bytes): {}",
                l.code,
                l.offset,
                l.data_length,
                l.data_space,
                l.path.as_deref().unwrap_or("(no path)")
            );
        }
    }
    if let Some(chain) = &i.chain {
        let _ = writeln!(s, "backing chain:");
        for (n, c) in chain.iter().enumerate() {
            let _ = writeln!(s, "    {n}: {} ({})", c.path.display(), c.uuid);
        }
    }
    if let Some(e) = &i.chain_error {
        let _ = writeln!(s, "backing chain: unresolved: {e}");
    }
    for w in &i.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_like_qemu_img() {
        assert_eq!(super::size(41_943_040), "40 MiB (41943040 bytes)");
        assert_eq!(super::size(512), "512 B (512 bytes)");
        assert_eq!(super::size(1536), "1.500 KiB (1536 bytes)");
    }
}

//! `cloudimg check`: validate VHDs (and their chains) at least as strictly as
//! `vhd-util check`, listing every finding with its file, field and offset.
//!
//! Exit 0 when clean or only warnings, 1 when any error was found, 2 when a
//! file could not be read at all (missing, unreadable).

use crate::exit;
use crate::output::{print_json, OutputFormat};
use cloudimg_vhd::check::{check_chain, Report, Severity};
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
    /// The VHD files; a differencing disk is checked with its whole chain.
    #[arg(required = true)]
    files: Vec<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let opts = ChainOptions {
        confine_to: args.confine,
        parents: args.parents,
        ..ChainOptions::default()
    };
    let mut report = Report::default();
    for f in &args.files {
        report.merge(check_chain(f, &opts));
    }
    match args.output {
        OutputFormat::Json => print_json(&report)?,
        OutputFormat::Human => print!("{}", human(&report)),
    }
    let io_failed = report.findings.iter().any(|f| f.code == "io");
    Ok(if io_failed {
        ExitCode::from(exit::ENV)
    } else if report.has_errors() {
        ExitCode::from(exit::DATA)
    } else {
        ExitCode::SUCCESS
    })
}

fn human(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    // A chain finding (a loop, too many layers) may name a file that was not checked on
    // its own: it is listed after the files checked, never dropped.
    let mut paths: Vec<&PathBuf> = r.files.iter().collect();
    for f in &r.findings {
        if !paths.contains(&&f.path) {
            paths.push(&f.path);
        }
    }
    for file in paths {
        let mine: Vec<_> = r.findings.iter().filter(|f| &f.path == file).collect();
        if mine.is_empty() {
            let _ = writeln!(s, "{}: ok", file.display());
        }
        for f in mine {
            let sev = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let at = f.offset.map(|o| format!(" at {o:#x}")).unwrap_or_default();
            let _ = writeln!(
                s,
                "{}: {sev}: {}{at}: {} [{}]",
                file.display(),
                f.field,
                f.message,
                f.code
            );
        }
    }
    let errors = r.errors().count();
    let warnings = r.warnings().count();
    let _ = writeln!(
        s,
        "{} file(s) checked: {errors} error(s), {warnings} warning(s)",
        r.files.len()
    );
    s
}

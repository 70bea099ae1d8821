//! `cloudimg download` (not built yet).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Arguments, once the command exists.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    rest: Vec<String>,
}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("'download' is not implemented yet")
}

//! Output format selection shared by the subcommands.

use clap::ValueEnum;

/// `--output human|json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum OutputFormat {
    #[default]
    Human,
    Json,
}

/// Prints a value as pretty JSON on stdout.
#[allow(dead_code)]
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

//! One module per subcommand: its clap arguments and its `run`.
pub mod info;
pub mod check;
pub mod convert;
pub mod coalesce;
pub mod create;
pub mod pack;
pub mod unpack;
pub mod upload;
pub mod download;
pub mod import;
pub mod export;

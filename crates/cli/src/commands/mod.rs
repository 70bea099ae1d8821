//! One module per subcommand: its clap arguments and its `run`.
pub mod check;
pub mod coalesce;
pub mod convert;
pub mod create;
pub mod download;
pub mod export;
pub mod import;
pub mod info;
pub mod pack;
pub mod serve;
mod taskcli;
pub mod tasks;
pub mod unpack;
pub mod upload;
pub mod worker;

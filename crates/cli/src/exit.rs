//! Maps errors to the documented exit codes: 1 when the data is bad, 2 for
//! usage and environment problems.

use std::process::ExitCode;

/// Exit code 1: the image or data is bad.
pub const DATA: u8 = 1;
/// Exit code 2: usage or environment.
pub const ENV: u8 = 2;

/// Walks the error chain for a library error that knows whether it is about
/// the data; anything unclassified is an environment problem.
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<cloudimg_vhd::Error>() {
            return ExitCode::from(if e.kind().is_data_error() { DATA } else { ENV });
        }
        if let Some(e) = cause.downcast_ref::<cloudimg_pipeline::Error>() {
            return ExitCode::from(if e.kind().is_data_error() { DATA } else { ENV });
        }
        if let Some(e) = cause.downcast_ref::<cloudimg_tasks::Error>() {
            return ExitCode::from(if e.kind().is_data_error() { DATA } else { ENV });
        }
        if let Some(e) = cause.downcast_ref::<cloudimg_ova::Error>() {
            return ExitCode::from(if e.kind().is_data_error() { DATA } else { ENV });
        }
    }
    ExitCode::from(ENV)
}

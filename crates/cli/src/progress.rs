//! Progress bars on a terminal, silence in scripts.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// A byte-count progress bar drawn on stderr only when stderr is a terminal.
#[allow(dead_code)]
pub fn bytes(len: u64, message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .expect("static template")
        .progress_chars("=> "),
    );
    bar.set_message(message.to_string());
    bar
}

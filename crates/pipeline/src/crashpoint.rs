//! Named crash points, for the crash tests: when the environment variable
//! `CLOUDIMG_CRASH_AT` names a point, the process kills itself with SIGKILL when it reaches
//! it, exactly as `kill -9` would at that moment (no destructor, no cleanup, no flush).
//! Tests use it to stop real processes at the instants that matter (before the first
//! segment, after one, just before the manifest) instead of racing a timer. Unset, a
//! point costs one comparison.
//!
//! Points: `upload:before-first-segment`, `upload:after-first-segment`,
//! `upload:before-manifest` (every upload: the CLI's, the API's image data, import
//! packages and exports), `import:before-record` (the package is stored, its record
//! is not), `download:mid-stream` (a chunk of the object is in the temporary file),
//! `download:before-publish` (all of it is, not yet under its name),
//! `pack:before-publish` (the whole package is in its temporary file), and, through
//! `cloudimg_ova::unpack::UnpackOptions::crash_hook`, `unpack:mid-stream`,
//! `unpack:before-publish` and `unpack:mid-publish` (one file placed, the others not).

use std::sync::OnceLock;

/// The variable naming the point to crash at.
pub const VAR: &str = "CLOUDIMG_CRASH_AT";

/// Kills the process with SIGKILL if `point` is the one `CLOUDIMG_CRASH_AT` names.
pub fn hit(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(VAR).ok().filter(|v| !v.is_empty()));
    if at.as_deref() == Some(point) {
        log::warn!("{VAR}={point}: killing this process (a crash test)");
        // SAFETY: kill(2) on our own pid with SIGKILL has no memory effects; the process
        // ends here.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
        // SIGKILL is not deliverable late; never run on past a crash point.
        std::process::abort();
    }
}

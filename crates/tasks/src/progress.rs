//! Progress reports of a running task: which phase, and bytes done out of a total.
//!
//! A callback rather than a channel so the CLI can draw a bar and a worker can update a
//! task row without this crate knowing either. It is called from the thread driving the
//! data path, often (every block), so it must be cheap.

/// The phase a task is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Reading metadata and checking the input (no data moved yet).
    Checking,
    /// Import of a fixed disk: scanning the source for zero blocks before writing.
    Scanning,
    /// Reading a stored package into temporary layers (legacy packages on export).
    Spooling,
    /// Moving the data: converting, compressing and uploading.
    Transferring,
    /// Re-listing what was written and comparing sizes and checksums.
    Verifying,
}

impl Phase {
    /// Short name for messages and progress bars.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Checking => "checking",
            Phase::Scanning => "scanning",
            Phase::Spooling => "spooling",
            Phase::Transferring => "transferring",
            Phase::Verifying => "verifying",
        }
    }
}

/// One progress report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Current phase.
    pub phase: Phase,
    /// Units done in this phase (bytes of the virtual disk or of the package).
    pub done: u64,
    /// Units in this phase (0 when unknown).
    pub total: u64,
}

/// The callback a task reports to.
pub type ProgressFn<'a> = &'a (dyn Fn(Progress) + Sync);

/// A callback that ignores every report.
pub fn silent() -> &'static (dyn Fn(Progress) + Sync) {
    &|_| {}
}

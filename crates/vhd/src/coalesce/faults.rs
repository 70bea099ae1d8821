//! Fault injection for the crash-safety tests: abort the process (no unwinding,
//! no cleanup, like a kill) right before the (N+1)-th write of an in-place
//! operation.

use crate::Result;
use std::cell::Cell;

/// Counts write points; with a limit, aborts the process past it.
#[derive(Debug, Default)]
pub struct Faults {
    abort_after: Option<u64>,
    done: Cell<u64>,
}

impl Faults {
    /// No fault injection.
    pub fn none() -> Faults {
        Faults::default()
    }

    /// Abort right before write point number `n + 1` (so `n` writes happen).
    pub fn abort_after(n: u64) -> Faults {
        Faults {
            abort_after: Some(n),
            done: Cell::new(0),
        }
    }

    /// Write points passed so far.
    pub fn count(&self) -> u64 {
        self.done.get()
    }

    /// Called before every write, truncate, fsync, rename or removal.
    pub(crate) fn point(&self) -> Result<()> {
        if self.abort_after.is_some_and(|n| self.done.get() >= n) {
            std::process::abort();
        }
        self.done.set(self.done.get() + 1);
        Ok(())
    }
}

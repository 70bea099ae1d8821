//! Advisory locks between the readers of a local VHD file and an in-place coalesce that
//! writes it. Every [`crate::Image::open`] holds a shared `flock` on its file for as long
//! as the image is open; an in-place coalesce converts its own shared lock on the parent
//! to an exclusive one before its first write. Whichever comes second gets a clear error
//! (never a wait, never a read of half-merged bytes). File systems without `flock`
//! (some network mounts) are not locked.

use crate::{Error, ErrorKind, Result};
use std::fs::File;
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// Takes a shared lock on `file` (a VHD being opened for reading).
pub(crate) fn shared(file: &File, path: &Path) -> Result<()> {
    lock(file, libc::LOCK_SH).map_err(|()| {
        Error::new(
            ErrorKind::Io,
            "in use: an in-place coalesce is writing it; read it when the merge is done",
        )
        .path(path)
    })
}

/// Turns this process's shared lock on `file` into an exclusive one (the parent of an
/// in-place coalesce, before its first write).
pub(crate) fn exclusive(file: &File, path: &Path) -> Result<()> {
    lock(file, libc::LOCK_EX).map_err(|()| {
        Error::new(
            ErrorKind::Io,
            "in use: another process has it open (a reader, or another coalesce); \
             merge into it when it is done",
        )
        .path(path)
    })
}

/// Drops whatever lock this open file description holds. Closing our descriptor is not
/// enough: a child process another thread is spawning holds a copy of every descriptor
/// between its fork and its exec, and a `flock` lives until the last copy closes, so the
/// lock would outlive the image by that window and a reader (or a merge) right after
/// us would be told the file is in use.
pub(crate) fn release(file: &File) {
    // SAFETY: flock(2) on a descriptor this `File` owns; no memory is passed.
    unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
}

/// `Err(())` only when another process holds a conflicting lock.
fn lock(file: &File, op: libc::c_int) -> std::result::Result<(), ()> {
    // SAFETY: flock(2) on a descriptor this `File` owns; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(());
    }
    // Anything but a conflict (ENOLCK, EOPNOTSUPP on some mounts) leaves it unlocked.
    match std::io::Error::last_os_error().raw_os_error() {
        Some(libc::EWOULDBLOCK) => Err(()),
        _ => Ok(()),
    }
}

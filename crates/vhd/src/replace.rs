//! Putting a finished output under its final name over an older file, without
//! making the caller wait for the older file to be freed.
//!
//! Freeing a large file is slow: its cached pages are dropped one by one and
//! its blocks freed, and on a filesystem mounted with `discard` every freed
//! extent waits for the disk (measured on this project's VMs: 0.1 s for a
//! dense 1 GiB file, 0.5-0.7 s for a sparse raw image of 128 extents). A plain
//! `rename` over the old file does all of that inside the call, and ext4 also
//! starts writeback of the whole new file there (`auto_da_alloc`), which an
//! unsynced output does not want.
//!
//! So an old file is handled in three steps:
//! 1. before writing, it is opened (the open handle keeps its inode alive
//!    after its last name goes) and its clean cached pages are dropped, so the
//!    new output's pages can reuse that memory instead of fresh pages;
//! 2. after writing, the new file and the old one swap names atomically
//!    (`RENAME_EXCHANGE`, no writeback started) and the old one's new name,
//!    the temporary one, is removed: the final name never stops holding a
//!    complete file;
//! 3. the old file is freed when the handle is closed, which [`Replaced`]
//!    places on a background thread or in a detached child process.

use std::fs::File;
use std::io;
use std::path::Path;

/// Who frees the file an output replaces, after the new one is in place.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Replaced {
    /// The caller, before the conversion returns.
    Wait,
    /// A background thread of this process (a long-lived process: the work
    /// overlaps what it does next).
    #[default]
    Thread,
    /// A detached child process that outlives this one (a command about to
    /// exit: a thread would hold the exit up, as a process only ends when
    /// all its threads have).
    Process,
}

/// The file a new output is about to replace.
#[derive(Debug)]
pub(crate) struct OldOutput {
    file: Option<File>,
}

impl OldOutput {
    /// Opens the regular file at `target`, if there is one we can open, and
    /// drops its clean cached pages (its content stays as it is on disk).
    pub(crate) fn open(target: &Path) -> OldOutput {
        let file = File::open(target)
            .ok()
            .filter(|f| f.metadata().is_ok_and(|m| m.is_file()));
        #[cfg(target_os = "linux")]
        if let Some(f) = &file {
            use std::os::unix::io::AsRawFd;
            // SAFETY: advice on a descriptor we own; it affects caching only.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
        OldOutput { file }
    }

    /// Puts `tmp` (complete, synced if wanted) at `target`, then has the old
    /// file freed as `how` says.
    pub(crate) fn install(self, tmp: &Path, target: &Path, how: Replaced) -> io::Result<()> {
        if self.file.is_some() && exchange(tmp, target)? {
            // `tmp` now names the old file: its last name. A failure here
            // leaves a hidden stale file, not a wrong output.
            let _ = std::fs::remove_file(tmp);
        } else {
            std::fs::rename(tmp, target)?;
        }
        if let Some(f) = self.file {
            release(f, how);
        }
        Ok(())
    }
}

/// Swaps the names `a` and `b` atomically; `Ok(false)` when this system or
/// filesystem cannot (or `b` is gone), so the caller renames instead.
fn exchange(a: &Path, b: &Path) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::ffi::CString;
        use std::os::unix::ffi::OsStrExt;
        let ca = CString::new(a.as_os_str().as_bytes()).map_err(io::Error::other)?;
        let cb = CString::new(b.as_os_str().as_bytes()).map_err(io::Error::other)?;
        // SAFETY: two NUL-terminated paths that outlive the call.
        let r = unsafe {
            libc::syscall(
                libc::SYS_renameat2,
                libc::AT_FDCWD,
                ca.as_ptr(),
                libc::AT_FDCWD,
                cb.as_ptr(),
                libc::RENAME_EXCHANGE,
            )
        };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINVAL | libc::ENOSYS | libc::ENOTSUP | libc::ENOENT) => Ok(false),
            _ => Err(e),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (a, b);
        Ok(false)
    }
}

/// Closes the last handle of an unlinked file as `how` says.
fn release(file: File, how: Replaced) {
    match how {
        Replaced::Wait => drop(file),
        Replaced::Thread => {
            let spawned = std::thread::Builder::new()
                .name("cloudimg-free".into())
                .spawn(move || drop(file));
            // Without a thread the handle was dropped with the closure: freed here.
            let _ = spawned;
        }
        Replaced::Process => release_in_child(file),
    }
}

/// Hands the last handle of `file` to a grandchild process, which closes it
/// once this process has closed its own (at the latest, when it exits): the
/// freeing then happens in the grandchild, reparented to init, while this
/// process goes on. The children only make async-signal-safe calls.
#[cfg(target_os = "linux")]
fn release_in_child(file: File) {
    use std::os::unix::io::AsRawFd;
    let fd = file.as_raw_fd();
    let mut pipe = [0 as libc::c_int; 2];
    // SAFETY: a fresh pipe; the array has room for both ends.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        return drop(file);
    }
    let [rd, wr] = pipe;
    // SAFETY: between fork and _exit the children call only async-signal-safe
    // functions (fork, close_range, close, read, _exit) on values set before
    // the fork; the parent waits for the first child, which exits at once.
    unsafe {
        let child = libc::fork();
        if child == 0 {
            if libc::fork() != 0 {
                libc::_exit(0);
            }
            // Keep only the file and the pipe's read end: holding this
            // process's stdout open would keep a reader of it waiting.
            let (lo, hi) = (fd.min(rd) as u32, fd.max(rd) as u32);
            let close_range = |a: u32, b: u32| {
                if a <= b {
                    libc::syscall(libc::SYS_close_range, a, b, 0u32);
                }
            };
            if lo > 0 {
                close_range(0, lo - 1);
            }
            close_range(lo + 1, hi.saturating_sub(1));
            close_range(hi + 1, u32::MAX);
            // EOF once the parent closed its end (it closes the file first).
            let mut b = 0u8;
            while libc::read(rd, (&mut b as *mut u8).cast(), 1) > 0 {}
            libc::close(fd);
            libc::_exit(0);
        }
        libc::close(rd);
        if child > 0 {
            libc::waitpid(child, std::ptr::null_mut(), 0);
        }
        drop(file);
        libc::close(wr);
    }
}

#[cfg(not(target_os = "linux"))]
fn release_in_child(file: File) {
    drop(file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_an_old_file_and_keeps_it_until_then() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out");
        let tmp = dir.path().join(".out.tmp");
        for how in [Replaced::Wait, Replaced::Thread, Replaced::Process] {
            std::fs::write(&target, b"old").unwrap();
            let old = OldOutput::open(&target);
            // The old file stays readable under its name until the swap.
            assert_eq!(std::fs::read(&target).unwrap(), b"old");
            std::fs::write(&tmp, b"new").unwrap();
            old.install(&tmp, &target, how).unwrap();
            assert_eq!(std::fs::read(&target).unwrap(), b"new", "{how:?}");
            assert!(!tmp.exists(), "{how:?}: the old file is still named");
        }
        // No old file: a plain rename.
        std::fs::remove_file(&target).unwrap();
        std::fs::write(&tmp, b"first").unwrap();
        OldOutput::open(&target)
            .install(&tmp, &target, Replaced::Process)
            .unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
    }
}

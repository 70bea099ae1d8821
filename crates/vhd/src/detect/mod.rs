//! What a file is, from its first bytes and its last sector: the one place that
//! knows the magic numbers of the disk, archive and compression formats people
//! hand us instead of a VHD, and which of them name other files.
//!
//! [`detect`] is pure: give it up to [`HEAD_LEN`] bytes from the start, the last
//! 512 bytes and the size, and it reads nothing else, so a web handler can call
//! it on the first chunk of an upload and an import on two ranged reads. The
//! safety findings ([`Hazard`]) follow oslo.utils' `format_inspector` after
//! CVE-2024-32498: an image that makes its reader open another file (a QCOW2
//! backing or data file, VMDK extents, a VHD parent) is how a host's files leak
//! into a guest, so a service must refuse it whatever the declared format.
//! [`Detected::not_vhd`] words the error for users: what the data is and the
//! command that makes a VHD of it.

mod advice;
mod archive;
mod bytes;
mod disk;
mod verdict;

use crate::io::{FileIo, LayerIo};
use std::io;
use std::path::Path;

pub use advice::Flow;
pub use verdict::{Detected, Format, Hazard, TarKind, VhdKind, VmdkKind};

/// How many leading bytes [`detect`] looks at; more are ignored, fewer only
/// hide what lies past them (an ISO 9660 volume descriptor sits at 32 KiB).
pub const HEAD_LEN: usize = 64 * 1024;
/// How many trailing bytes [`detect`] looks at: one VHD footer.
pub const TAIL_LEN: usize = 512;

/// Names what `head` (the first bytes, up to [`HEAD_LEN`] used), `tail` (the
/// last bytes, up to [`TAIL_LEN`] used) and `size` (the whole length) are.
/// Never panics and never allocates more than the names it decodes.
pub fn detect(head: &[u8], tail: &[u8], size: u64) -> Detected {
    let head = &head[..head.len().min(HEAD_LEN)];
    let tail = &tail[tail.len().saturating_sub(TAIL_LEN)..];
    if size == 0 {
        return Detected::new(Format::Empty, 0);
    }
    // The footer first: a fixed VHD's first sector is the guest's, and may hold
    // anything, including another format's magic.
    if let Some(d) = disk::vhd(head, tail, size) {
        return d;
    }
    disk::by_magic(head, size)
        .or_else(|| archive::by_magic(head, size))
        .unwrap_or_else(|| disk::raw_or_text(head, size))
}

/// Reads the first [`HEAD_LEN`] and last [`TAIL_LEN`] bytes of `io` (two reads,
/// or one for a small file) and detects what it holds.
pub fn detect_io(io: &dyn LayerIo) -> io::Result<Detected> {
    let size = io.len();
    let head_len = size.min(HEAD_LEN as u64) as usize;
    let mut head = vec![0u8; head_len];
    io.read_exact_at(&mut head, 0)?;
    let tail_len = size.min(TAIL_LEN as u64) as usize;
    let tail = if size == head_len as u64 {
        head[head_len - tail_len..].to_vec()
    } else {
        let mut t = vec![0u8; tail_len];
        io.read_exact_at(&mut t, size - tail_len as u64)?;
        t
    };
    Ok(detect(&head, &tail, size))
}

/// [`detect_io`] on the file at `path`.
pub fn detect_file(path: impl AsRef<Path>) -> io::Result<Detected> {
    detect_io(&FileIo::open(path)?)
}

#[cfg(test)]
mod tests;

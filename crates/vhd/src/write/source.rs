//! Where a writer's virtual disk comes from: a raw file, memory, or a VHD chain.

use super::MappedRange;
use crate::{Error, ErrorKind, Result};
use std::fs::File;
use std::path::{Path, PathBuf};

/// A virtual disk read in increasing offset order.
///
/// Writers call [`next_data`](DiskSource::next_data) and
/// [`read_at`](DiskSource::read_at) with non-decreasing offsets, which lets a
/// source keep a cursor over its allocation map instead of looking every range
/// up again.
pub trait DiskSource {
    /// Size of the virtual disk in bytes.
    fn virtual_size(&self) -> u64;

    /// The first range at or after `from` that may hold data, as `(start, end)`,
    /// from metadata only; `None` when only zeros remain. A range may be
    /// reported larger than the data it holds, never smaller.
    fn next_data(&mut self, from: u64) -> Result<Option<(u64, u64)>>;

    /// Reads the virtual bytes at `offset`; unallocated parts read as zeros.
    /// `offset + buf.len()` never exceeds [`virtual_size`](DiskSource::virtual_size).
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// The first part of the virtual bytes `[offset, offset + len)` without a
    /// copy: zeros known from metadata, or data that one file holds unchanged,
    /// mapped so a writer copies it once, straight from the page cache. `None`
    /// means "read the whole range with [`read_at`](DiskSource::read_at)".
    /// Same ordering rule as `read_at`.
    fn direct_at(&mut self, offset: u64, len: usize) -> Result<Option<Direct>> {
        let _ = (offset, len);
        Ok(None)
    }

    /// True when the range `[start, end)` may hold data (metadata only).
    fn may_have_data(&mut self, start: u64, end: u64) -> Result<bool> {
        Ok(self.next_data(start)?.is_some_and(|(s, _)| s < end))
    }
}

/// What [`DiskSource::direct_at`] found at the start of a range.
pub enum Direct {
    /// The next bytes (at least one), mapped from the file that holds them.
    Map(MappedRange),
    /// The next `n` bytes (`n` > 0) read as zeros.
    Zeros(u64),
    /// The next `n` bytes (`n` > 0) must be read with
    /// [`read_at`](DiskSource::read_at).
    Read(u64),
}

impl Direct {
    /// Bytes covered.
    pub fn len(&self) -> u64 {
        match self {
            Direct::Map(m) => m.as_slice().len() as u64,
            Direct::Zeros(n) | Direct::Read(n) => *n,
        }
    }

    /// Never true for a value a source returns.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A raw disk image in a file. Holes of a sparse file are found with
/// `SEEK_DATA`/`SEEK_HOLE`, so they are never read.
#[derive(Debug)]
pub struct RawFileSource {
    file: File,
    path: PathBuf,
    size: u64,
    /// The last data range found, reused while calls stay inside it.
    cached: Option<(u64, u64)>,
}

impl RawFileSource {
    /// Opens a raw image; its virtual size is the file length.
    pub fn open(path: impl AsRef<Path>) -> Result<RawFileSource> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| Error::io("open raw image", e).path(path))?;
        RawFileSource::new(file, path)
    }

    /// Wraps an open file (or block device) read as a raw image.
    pub fn new(file: File, path: impl AsRef<Path>) -> Result<RawFileSource> {
        let path = path.as_ref();
        let meta = file
            .metadata()
            .map_err(|e| Error::io("stat raw image", e).path(path))?;
        let size = if meta.is_file() {
            meta.len()
        } else {
            // Block devices report length 0 in metadata; seeking to the end works.
            use std::io::{Seek, SeekFrom};
            let mut f = &file;
            f.seek(SeekFrom::End(0))
                .map_err(|e| Error::io("size raw image", e).path(path))?
        };
        Ok(RawFileSource {
            file,
            path: path.to_path_buf(),
            size,
            cached: None,
        })
    }

    #[cfg(target_os = "linux")]
    fn seek(&self, from: u64, whence: libc::c_int) -> Option<u64> {
        use std::os::unix::io::AsRawFd;
        let off = libc::off_t::try_from(from).ok()?;
        // SAFETY: lseek on a descriptor we own; it only moves the file position,
        // which nothing else in this type uses (reads are positional).
        let r = unsafe { libc::lseek(self.file.as_raw_fd(), off, whence) };
        u64::try_from(r).ok()
    }
}

impl DiskSource for RawFileSource {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn next_data(&mut self, from: u64) -> Result<Option<(u64, u64)>> {
        if from >= self.size {
            return Ok(None);
        }
        if let Some((s, e)) = self.cached {
            if from >= s && from < e {
                return Ok(Some((from, e)));
            }
        }
        #[cfg(target_os = "linux")]
        {
            // ENXIO (no data after `from`) and filesystems without hole support
            // both land here; the latter reports everything as data.
            let Some(start) = self.seek(from, libc::SEEK_DATA) else {
                let err = std::io::Error::last_os_error();
                if err.raw_os_error() == Some(libc::ENXIO) {
                    return Ok(None);
                }
                self.cached = Some((from, self.size));
                return Ok(self.cached);
            };
            if start >= self.size {
                return Ok(None);
            }
            let end = self
                .seek(start, libc::SEEK_HOLE)
                .unwrap_or(self.size)
                .min(self.size);
            self.cached = Some((start, end.max(start + 1)));
            Ok(self.cached)
        }
        #[cfg(not(target_os = "linux"))]
        {
            Ok(Some((from, self.size)))
        }
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        use std::os::unix::fs::FileExt;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io("read raw image", e).path(&self.path).at(offset))
    }
}

/// A virtual disk held in memory, with explicit data ranges (for tests and
/// small images).
#[derive(Debug, Clone)]
pub struct MemorySource {
    bytes: Vec<u8>,
    /// Sorted, non-overlapping ranges that may hold data; `None` means all.
    ranges: Option<Vec<(u64, u64)>>,
}

impl MemorySource {
    /// Every byte counts as allocated.
    pub fn new(bytes: Vec<u8>) -> MemorySource {
        MemorySource {
            bytes,
            ranges: None,
        }
    }

    /// Only `ranges` count as allocated; bytes outside them must be zero.
    pub fn with_ranges(bytes: Vec<u8>, mut ranges: Vec<(u64, u64)>) -> MemorySource {
        ranges.sort_unstable();
        MemorySource {
            bytes,
            ranges: Some(ranges),
        }
    }
}

impl DiskSource for MemorySource {
    fn virtual_size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn next_data(&mut self, from: u64) -> Result<Option<(u64, u64)>> {
        let size = self.virtual_size();
        if from >= size {
            return Ok(None);
        }
        Ok(match &self.ranges {
            None => Some((from, size)),
            Some(r) => r
                .iter()
                .find(|&&(_, e)| e > from)
                .map(|&(s, e)| (s.max(from), e.min(size))),
        })
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let start = usize::try_from(offset).ok();
        let range = start.and_then(|s| Some(s..s.checked_add(buf.len())?));
        match range.and_then(|r| self.bytes.get(r)) {
            Some(src) => {
                buf.copy_from_slice(src);
                Ok(())
            }
            None => Err(
                Error::new(ErrorKind::InvalidArgument, "read past the end of the disk").at(offset),
            ),
        }
    }
}

//! Read-only memory maps of a byte range of a layer file, so a writer can hand
//! the page cache's own pages to `write` instead of copying them into a buffer
//! first.
//!
//! Why: converting a VHD to raw is bound by copies. With `pread` + `pwrite`
//! every byte is copied twice (page cache -> buffer -> page cache); writing
//! straight from a mapping copies it once. Measured on ext4 (kernel 6.18,
//! 171 MiB of data, in the page cache): 60 ms of CPU for read + write against
//! 47 ms for write from a mapping and 55 ms for `copy_file_range` (which, on a
//! filesystem without reflinks, splices 64 KiB at a time and gives no chance
//! to find zero pages, which must stay holes).
//!
//! A mapping is only made inside the file's length as it was at open time.
//! Like every reader that maps files, a process whose input is truncated by
//! someone else while being read would get `SIGBUS`; layers must not change
//! while they are read (see [`crate::io::FileIo`]), as for every other reader
//! of the crate.

use std::fs::File;
use std::io;

/// A read-only, private view of `len` bytes of a file, unmapped on drop.
pub struct MappedRange {
    base: *mut libc::c_void,
    map_len: usize,
    /// Bytes between the page-aligned start of the mapping and the range.
    skip: usize,
    len: usize,
}

// SAFETY: the mapping is read-only and owned by this value alone; the memory
// stays valid until drop, whichever thread drops it.
unsafe impl Send for MappedRange {}

impl MappedRange {
    /// Maps `len` (> 0) bytes of `file` at `offset`, with page tables filled up
    /// front (`MAP_POPULATE`): the thread that maps takes the page faults, not
    /// the one that later writes the bytes out.
    #[cfg(target_os = "linux")]
    pub fn map(file: &File, offset: u64, len: usize) -> io::Result<MappedRange> {
        use std::os::unix::io::AsRawFd;
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "empty map"));
        }
        let page = page_size();
        let skip = (offset % page as u64) as usize;
        let start = offset - skip as u64;
        let map_len = len
            .checked_add(skip)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "map too large"))?;
        let at = libc::off_t::try_from(start)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "offset too large"))?;
        // SAFETY: a fresh read-only private mapping of a descriptor we hold; the
        // kernel picks the address, and the result is checked before use.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                file.as_raw_fd(),
                at,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(MappedRange {
            base,
            map_len,
            skip,
            len,
        })
    }

    #[cfg(not(target_os = "linux"))]
    pub fn map(_file: &File, _offset: u64, _len: usize) -> io::Result<MappedRange> {
        Err(io::Error::new(io::ErrorKind::Unsupported, "no maps here"))
    }

    /// The mapped bytes.
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `base + skip .. + len` lies inside the live mapping made in
        // `map`, which is readable and never written while it exists.
        unsafe { std::slice::from_raw_parts((self.base as *const u8).add(self.skip), self.len) }
    }
}

impl Drop for MappedRange {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly the mapping made in `map`; no slice of it
        // outlives `self` (as_slice borrows self).
        unsafe {
            libc::munmap(self.base, self.map_len);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(p).ok().filter(|&p| p > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_unaligned_ranges() {
        use std::io::Write;
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        f.write_all(&data).unwrap();
        for (off, len) in [
            (0usize, 20_000usize),
            (1, 5),
            (4095, 2),
            (4096, 10_000),
            (513, 19_000),
        ] {
            let m = MappedRange::map(&f, off as u64, len).unwrap();
            assert_eq!(m.as_slice(), &data[off..off + len]);
        }
        assert!(MappedRange::map(&f, 0, 0).is_err());
    }
}

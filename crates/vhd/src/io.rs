//! Positional reads of one layer, wherever its bytes live.
//!
//! A layer can be a local file (read with `pread`, so many readers can share one
//! handle without seeking), a byte range of an object in a store, or memory. The
//! rest of the crate only ever asks for exact ranges, and every range is checked
//! against [`LayerIo::len`] before it is asked for, so an implementation may
//! treat a read past the end as an error.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::Arc;

/// Random-access, read-only bytes of one VHD file.
pub trait LayerIo: Send + Sync {
    /// Fills `buf` from `offset`; a short read is an `UnexpectedEof` error.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Size of the layer in bytes.
    fn len(&self) -> u64;

    /// True when the layer holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The local file holding the bytes, when there is one: lets a copy map it
    /// instead of reading it through a buffer.
    fn as_file(&self) -> Option<&File> {
        None
    }
}

/// A local file read with positional reads. The length is taken once at open:
/// a layer must not change while it is being read.
#[derive(Debug)]
pub struct FileIo {
    file: File,
    len: u64,
}

impl FileIo {
    /// Opens `path` read-only.
    pub fn open(path: impl AsRef<Path>) -> io::Result<FileIo> {
        FileIo::new(File::open(path)?)
    }

    /// Wraps an open file.
    pub fn new(file: File) -> io::Result<FileIo> {
        let meta = file.metadata()?;
        // A folder opens like a file but has no bytes to read; saying so here beats a
        // read error at a footer offset computed from the folder's size.
        if meta.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::EISDIR));
        }
        let len = meta.len();
        Ok(FileIo { file, len })
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }
}

impl Drop for FileIo {
    fn drop(&mut self) {
        // An image's shared lock, or a merge's exclusive one (see `filelock`), ends here.
        crate::filelock::release(&self.file);
    }
}

impl LayerIo for FileIo {
    #[cfg(unix)]
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset)
    }

    #[cfg(windows)]
    fn read_exact_at(&self, mut buf: &mut [u8], mut offset: u64) -> io::Result<()> {
        use std::os::windows::fs::FileExt;
        while !buf.is_empty() {
            match self.file.seek_read(buf, offset) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    buf = &mut buf[n..];
                    offset += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }

    fn as_file(&self) -> Option<&File> {
        Some(&self.file)
    }
}

/// Copies `[offset, offset + buf.len())` out of `bytes`, or fails with
/// `UnexpectedEof` when the range does not fit.
fn read_slice(bytes: &[u8], buf: &mut [u8], offset: u64) -> io::Result<()> {
    let start =
        usize::try_from(offset).map_err(|_| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    let end = start
        .checked_add(buf.len())
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
    buf.copy_from_slice(&bytes[start..end]);
    Ok(())
}

impl LayerIo for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_slice(self, buf, offset)
    }

    fn len(&self) -> u64 {
        self.as_slice().len() as u64
    }
}

impl LayerIo for Arc<[u8]> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_slice(self, buf, offset)
    }

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl LayerIo for &'static [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        read_slice(self, buf, offset)
    }

    fn len(&self) -> u64 {
        <[u8]>::len(self) as u64
    }
}

impl<T: LayerIo + ?Sized> LayerIo for Box<T> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn len(&self) -> u64 {
        (**self).len()
    }
    fn as_file(&self) -> Option<&File> {
        (**self).as_file()
    }
}

impl<T: LayerIo + ?Sized> LayerIo for Arc<T> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }

    fn len(&self) -> u64 {
        (**self).len()
    }
    fn as_file(&self) -> Option<&File> {
        (**self).as_file()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_reads_are_bounded() {
        let v: Vec<u8> = (0..10).collect();
        let mut b = [0u8; 4];
        v.read_exact_at(&mut b, 6).unwrap();
        assert_eq!(b, [6, 7, 8, 9]);
        let e = v.read_exact_at(&mut b, 7).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(v.read_exact_at(&mut b, u64::MAX).is_err());
        let a: Arc<[u8]> = v.into();
        assert_eq!(LayerIo::len(&a), 10);
    }

    #[test]
    fn file_reads_are_positional() {
        use std::io::Write;
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"hello world").unwrap();
        let io = FileIo::open(f.path()).unwrap();
        let mut b = [0u8; 5];
        io.read_exact_at(&mut b, 6).unwrap();
        assert_eq!(&b, b"world");
        assert_eq!(io.len(), 11);
        assert!(io.read_exact_at(&mut b, 8).is_err());
    }
}

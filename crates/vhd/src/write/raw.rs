//! Raw output: the virtual disk's bytes, holes where the source has none.

use super::sink::with_write_behind;
use super::{Direct, DiskSource, Progress, Sink, WINDOW};
use crate::Result;

/// Bytes read at once when writing a file on a second thread: large reads and
/// writes, few hand-offs.
const FILE_PIECE: usize = 2 << 20;

/// Copies the whole virtual disk of `source` into `sink`. Unallocated ranges are
/// never read; they and long zero runs inside data become holes in a file and
/// zeros in a stream. Returns the bytes emitted (the virtual size).
pub fn write_raw(
    source: &mut dyn DiskSource,
    sink: &mut Sink<'_>,
    progress: Progress<'_>,
) -> Result<u64> {
    copy_data(source, sink, progress)?;
    Ok(source.virtual_size())
}

/// Emits the virtual disk into `sink` without finishing it (the fixed writer
/// appends its footer after).
pub(crate) fn copy_data(
    source: &mut dyn DiskSource,
    sink: &mut Sink<'_>,
    progress: Progress<'_>,
) -> Result<()> {
    if let Sink::File {
        file,
        pos,
        flush_behind,
    } = sink
    {
        let size = source.virtual_size();
        let start = *pos;
        copy_to_file(source, file, start, *flush_behind, progress)?;
        *pos = start + size;
        return Ok(());
    }
    let size = source.virtual_size();
    let mut buf = vec![0u8; WINDOW];
    let mut pos = 0u64;
    while pos < size {
        let Some((start, end)) = source.next_data(pos)? else {
            sink.zeros(size - pos)?;
            break;
        };
        let start = start.max(pos).min(size);
        if start > pos {
            sink.zeros(start - pos)?;
            pos = start;
        }
        let end = end.min(size).max(pos);
        while pos < end {
            // Windows end on WINDOW boundaries so holes line up with pages.
            let boundary = (pos / WINDOW as u64 + 1) * WINDOW as u64;
            let stop = end.min(boundary);
            pos += match source.direct_at(pos, (stop - pos) as usize)? {
                Some(Direct::Map(m)) => {
                    sink.write_sparse(m.as_slice())?;
                    m.as_slice().len() as u64
                }
                Some(Direct::Zeros(k)) => {
                    sink.zeros(k)?;
                    k
                }
                Some(Direct::Read(k)) => {
                    let n = k as usize;
                    source.read_at(pos, &mut buf[..n])?;
                    sink.write_sparse(&buf[..n])?;
                    k
                }
                None => {
                    let n = (stop - pos) as usize;
                    source.read_at(pos, &mut buf[..n])?;
                    sink.write_sparse(&buf[..n])?;
                    n as u64
                }
            };
            progress(pos);
        }
    }
    progress(size);
    Ok(())
}

/// [`copy_data`] into a file at `base`: data ranges are read here and written
/// (zero runs left as holes) on a second thread; unallocated ranges are skipped.
fn copy_to_file(
    source: &mut dyn DiskSource,
    file: &std::fs::File,
    base: u64,
    flush_behind: bool,
    progress: Progress<'_>,
) -> Result<()> {
    let size = source.virtual_size();
    with_write_behind(file, FILE_PIECE, flush_behind, |wb| {
        let mut pos = 0u64;
        while pos < size {
            let Some((start, end)) = source.next_data(pos)? else {
                break;
            };
            pos = start.max(pos).min(size);
            let end = end.min(size).max(pos);
            while pos < end {
                // Pieces end on FILE_PIECE boundaries so holes line up with pages.
                let boundary = (pos / FILE_PIECE as u64 + 1) * FILE_PIECE as u64;
                let stop = end.min(boundary);
                // Data one file holds as is goes out straight from its map;
                // the rest through a buffer.
                pos += match source.direct_at(pos, (stop - pos) as usize)? {
                    Some(Direct::Map(m)) => {
                        let n = m.as_slice().len() as u64;
                        wb.write_mapped(base + pos, None, m)?;
                        n
                    }
                    Some(Direct::Zeros(k)) => k,
                    Some(Direct::Read(k)) => {
                        let n = k as usize;
                        let mut buf = wb.buffer()?;
                        source.read_at(pos, &mut buf[..n])?;
                        wb.write(base + pos, buf, 0, n)?;
                        k
                    }
                    None => {
                        let n = (stop - pos) as usize;
                        let mut buf = wb.buffer()?;
                        source.read_at(pos, &mut buf[..n])?;
                        wb.write(base + pos, buf, 0, n)?;
                        n as u64
                    }
                };
                progress(pos);
            }
        }
        Ok(())
    })?;
    progress(size);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Chain, ChainOptions};
    use crate::write::chain_source::tests::sample_chain;
    use crate::write::ChainSource;
    use std::os::unix::fs::FileExt;

    /// True when `[lo, hi)` of `f` is one hole.
    fn is_hole(f: &std::fs::File, lo: u64, hi: u64) -> bool {
        use std::os::unix::io::AsRawFd;
        // SAFETY: lseek on a descriptor we own.
        let data = unsafe { libc::lseek(f.as_raw_fd(), lo as libc::off_t, libc::SEEK_DATA) };
        data < 0 || data as u64 >= hi
    }

    #[test]
    fn chain_to_raw_file_and_stream_equal_the_disk_and_stay_sparse() {
        const MIB: u64 = 1 << 20;
        let dir = tempfile::tempdir().unwrap();
        let g = sample_chain(dir.path());
        let expect = g.oracle.to_vec();
        let chain = Chain::open(g.leaf(), &ChainOptions::default()).unwrap();

        let f = tempfile::tempfile().unwrap();
        let mut sink = Sink::file(&f).unwrap();
        let mut last = 0;
        write_raw(&mut ChainSource::new(&chain), &mut sink, &mut |p| last = p).unwrap();
        assert_eq!(sink.finish().unwrap(), expect.len() as u64);
        assert_eq!(last, expect.len() as u64);
        let mut back = vec![0u8; expect.len()];
        f.read_exact_at(&mut back, 0).unwrap();
        assert!(back == expect, "file output differs from the disk");
        // Zero data (punched or written), unallocated blocks: holes. Data: not.
        for (lo, hi) in [(2, 3), (8, 10), (12, 14), (14, 16)] {
            assert!(is_hole(&f, lo * MIB, hi * MIB), "{lo}..{hi} MiB allocated");
        }
        for (lo, hi) in [(0, 2), (3, 4), (6, 8), (10, 12)] {
            assert!(!is_hole(&f, lo * MIB, hi * MIB), "{lo}..{hi} MiB is a hole");
        }

        let mut v = Vec::new();
        let mut sink = Sink::stream(&mut v);
        write_raw(&mut ChainSource::new(&chain), &mut sink, &mut |_| {}).unwrap();
        sink.finish().unwrap();
        assert!(v == expect, "stream output differs from the disk");
    }
}

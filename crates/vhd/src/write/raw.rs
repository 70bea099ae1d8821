//! Raw output: the virtual disk's bytes, holes where the source has none.

use super::sink::with_write_behind;
use super::{DiskSource, Progress, Sink, WINDOW};
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
    if let Sink::File { file, pos } = sink {
        let size = source.virtual_size();
        let start = *pos;
        copy_to_file(source, file, start, progress)?;
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
            let n = (end.min(boundary) - pos) as usize;
            source.read_at(pos, &mut buf[..n])?;
            sink.write_sparse(&buf[..n])?;
            pos += n as u64;
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
    progress: Progress<'_>,
) -> Result<()> {
    let size = source.virtual_size();
    with_write_behind(file, FILE_PIECE, |wb| {
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
                let n = (end.min(boundary) - pos) as usize;
                let mut buf = wb.buffer()?;
                source.read_at(pos, &mut buf[..n])?;
                wb.write(base + pos, buf, 0, n)?;
                pos += n as u64;
                progress(pos);
            }
        }
        Ok(())
    })?;
    progress(size);
    Ok(())
}

//! Compressing one chunk: raw deflate with an optional 32 KiB dictionary,
//! ending in a sync flush (so chunks concatenate into one deflate stream, as
//! pigz does) or in the final block. The compressor is kept per worker thread
//! because creating one costs more than compressing a small chunk. Levels that
//! [`super::engine`] maps onto ISA-L go there; the others to zlib-rs.

use flate2::{Compress, Compression, FlushCompress, Status};
use std::cell::RefCell;
use std::io;

/// The deflate window: the most a back-reference can reach.
pub const WINDOW: usize = 32 * 1024;

thread_local! {
    static COMPRESSOR: RefCell<Option<(u32, Compress)>> = const { RefCell::new(None) };
}

/// How a chunk's deflate data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Byte-aligned empty stored block: more deflate data follows.
    Sync,
    /// The final block: the deflate stream ends here.
    Finish,
}

/// Raw-deflates `data` at `level`, priming the window with `dict`.
pub fn compress_chunk(level: u32, dict: &[u8], data: &[u8], end: End) -> io::Result<Vec<u8>> {
    #[cfg(all(feature = "isal", target_arch = "x86_64"))]
    if let Some(l) = super::engine::isal_level(level) {
        let mut out = Vec::new();
        super::isal::deflate(l, dict, data, end == End::Finish, &mut out)?;
        return Ok(out);
    }
    let level = super::engine::fallback_level(level);
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let comp = match slot.as_mut() {
            Some((l, c)) if *l == level => {
                c.reset();
                c
            }
            _ => {
                *slot = Some((level, Compress::new(Compression::new(level), false)));
                &mut slot.as_mut().expect("just set").1
            }
        };
        if !dict.is_empty() {
            comp.set_dictionary(dict).map_err(io::Error::other)?;
        }
        // deflateBound-ish: stored blocks cost 5 bytes per 16 KiB plus a little.
        let mut out = Vec::with_capacity(data.len() + data.len() / 2048 + 128);
        let flush = match end {
            End::Sync => FlushCompress::Sync,
            End::Finish => FlushCompress::Finish,
        };
        let start_in = comp.total_in();
        loop {
            let consumed = (comp.total_in() - start_in) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity() / 4 + 1024);
            }
            let status = comp
                .compress_vec(&data[consumed..], &mut out, flush)
                .map_err(io::Error::other)?;
            let consumed = (comp.total_in() - start_in) as usize;
            let done = match (end, status) {
                (End::Finish, Status::StreamEnd) => true,
                (End::Finish, _) => false,
                // A flush is complete once all input is in and output space was left over.
                (End::Sync, _) => consumed == data.len() && out.len() < out.capacity(),
            };
            if done {
                return Ok(out);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn chunks_with_dictionaries_concatenate() {
        let data: Vec<u8> = (0..300_000u32)
            .map(|i| (i % 251) as u8 ^ (i / 7000) as u8)
            .collect();
        let (a, b) = data.split_at(100_000);
        let mut stream = compress_chunk(6, &[], a, End::Sync).unwrap();
        stream.extend(compress_chunk(6, &a[a.len() - WINDOW..], b, End::Finish).unwrap());
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&stream[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }
}

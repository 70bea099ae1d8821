//! Whole-buffer deflate for the indexed form's members, with libdeflate.
//!
//! Indexed members are independent buffers of known size (no dictionary,
//! no streaming), which is the case libdeflate is built for: it compresses
//! and inflates a member in one call. The compressor and decompressor are
//! kept per thread because allocating one costs more than a small member.
//!
//! Measured (2 shared cores, 256 MiB chain, level 6): `pack --indexed` 1.5x
//! faster than with zlib-rs and 0.2% smaller. libdeflate's level-6 output
//! takes longer to inflate than zlib's (more, shorter matches), and on that
//! output libdeflate inflates faster than zlib-rs does.
//!
//! Inflating goes through `libdeflate_deflate_decompress_ex` directly (the
//! `libdeflater` wrapper does not report input consumed), so the caller can
//! check the deflate data ends exactly where the member's trailer starts.

use libdeflate_sys::{
    libdeflate_alloc_decompressor, libdeflate_decompressor, libdeflate_deflate_decompress_ex,
    libdeflate_free_decompressor, libdeflate_result_LIBDEFLATE_BAD_DATA,
    libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE, libdeflate_result_LIBDEFLATE_SUCCESS,
};
use libdeflater::{CompressionLvl, Compressor};
use std::cell::RefCell;
use std::io;
use std::ptr::NonNull;

thread_local! {
    static COMPRESSOR: RefCell<Option<(u32, Compressor)>> = const { RefCell::new(None) };
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Appends `data` raw-deflated at `level` (1-12) to `out`; returns the
/// deflate bytes written.
pub(crate) fn deflate_append(level: u32, data: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let comp = match slot.as_mut() {
            Some((l, c)) if *l == level => c,
            _ => {
                let lvl = i32::try_from(level)
                    .ok()
                    .and_then(|l| CompressionLvl::new(l).ok())
                    .ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            format!("compression level {level} is not 0-12"),
                        )
                    })?;
                *slot = Some((level, Compressor::new(lvl)));
                &mut slot.as_mut().expect("just set").1
            }
        };
        let start = out.len();
        // The bound is exact for incompressible data (stored blocks), so
        // compressing cannot run out of room.
        out.resize(start + comp.deflate_compress_bound(data.len()), 0);
        match comp.deflate_compress(data, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                Ok(n)
            }
            Err(e) => {
                out.truncate(start);
                Err(io::Error::other(e))
            }
        }
    })
}

/// Why a raw deflate stream did not inflate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// Not valid deflate data (or truncated).
    BadData,
    /// It inflates to more than the room given.
    TooLong,
}

/// Inflates raw deflate `data` into `out` (cleared first), producing at most
/// `max_out` bytes; returns the input bytes the deflate stream used.
///
/// Memory stays bounded by `max_out`: data that would inflate to more
/// fails with [`InflateError::TooLong`] instead of growing the buffer.
pub(crate) fn inflate_into(
    data: &[u8],
    max_out: usize,
    out: &mut Vec<u8>,
) -> Result<usize, InflateError> {
    out.clear();
    out.reserve(max_out);
    DECOMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        let d = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(Decompressor::new()),
        };
        let (mut used_in, mut used_out) = (0usize, 0usize);
        // SAFETY: `data` is readable for its length; `out` has room for
        // `max_out` bytes (reserved above); libdeflate writes only within
        // `out_nbytes_avail` and reports how many bytes it wrote, all of
        // them initialised, so `set_len` covers initialised bytes only.
        let ret = unsafe {
            let r = libdeflate_deflate_decompress_ex(
                d.0.as_ptr(),
                data.as_ptr().cast(),
                data.len(),
                out.as_mut_ptr().cast(),
                max_out,
                &mut used_in,
                &mut used_out,
            );
            if r == libdeflate_result_LIBDEFLATE_SUCCESS {
                out.set_len(used_out.min(max_out));
            }
            r
        };
        #[allow(non_upper_case_globals)]
        match ret {
            libdeflate_result_LIBDEFLATE_SUCCESS => Ok(used_in),
            libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Err(InflateError::TooLong),
            libdeflate_result_LIBDEFLATE_BAD_DATA => Err(InflateError::BadData),
            // SHORT_OUTPUT only comes without `actual_out_nbytes_ret`; any
            // other code is treated as bad data rather than a panic.
            _ => Err(InflateError::BadData),
        }
    })
}

/// An owned libdeflate decompressor.
struct Decompressor(NonNull<libdeflate_decompressor>);

impl Decompressor {
    fn new() -> Decompressor {
        // SAFETY: plain allocation; a null result (out of memory) is handled.
        let p = unsafe { libdeflate_alloc_decompressor() };
        Decompressor(NonNull::new(p).unwrap_or_else(|| {
            std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 32 << 10]>())
        }))
    }
}

impl Drop for Decompressor {
    fn drop(&mut self) {
        // SAFETY: allocated by libdeflate_alloc_decompressor, freed once.
        unsafe { libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 7) ^ (i >> 9)) as u8 % 97).collect()
    }

    #[test]
    fn round_trips_and_flate2_reads_it() {
        let data = sample(300_000);
        for level in [1, 6, 9] {
            let mut out = b"head".to_vec();
            let n = deflate_append(level, &data, &mut out).unwrap();
            assert_eq!(out.len(), 4 + n);
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&out[4..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
            let mut again = Vec::new();
            assert_eq!(inflate_into(&out[4..], data.len(), &mut again), Ok(n));
            assert_eq!(again, data);
        }
    }

    #[test]
    fn reports_input_used_and_bounds_output() {
        let data = sample(50_000);
        let mut d = Vec::new();
        let n = deflate_append(6, &data, &mut d).unwrap();
        d.extend_from_slice(b"junk");
        let mut out = Vec::new();
        assert_eq!(inflate_into(&d, data.len(), &mut out), Ok(n));
        assert_eq!(
            inflate_into(&d, data.len() - 1, &mut out),
            Err(InflateError::TooLong)
        );
        assert_eq!(
            inflate_into(&d[..n / 2], data.len(), &mut out),
            Err(InflateError::BadData)
        );
        assert_eq!(
            inflate_into(b"\xff\xff\xff", 10, &mut out),
            Err(InflateError::BadData)
        );
    }
}

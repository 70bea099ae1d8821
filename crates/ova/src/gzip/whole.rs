//! Whole-buffer deflate for the indexed form's members, with libdeflate
//! (or ISA-L, for the levels [`super::engine`] maps onto it; the sampling
//! below happens first either way).
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
//! Data that does not compress (already compressed files, encrypted disks)
//! costs a slow level the most and gains nothing: deflate ends up writing
//! stored blocks after a full lazy-matching pass. So before a level above 1
//! runs on a member of [`SAMPLE_MIN`] bytes or more, [`SAMPLES`] slices spread
//! across it are compressed at level 1; when none of them saves 1/64 of its
//! bytes, the member is written as stored blocks (level 0), which is what
//! deflate writes for such data anyway. Measured on the incompressible 1 GiB
//! import benchmark: level 6 spent 65% of the import's CPU in
//! `deflate_compress_lazy`, and level 1 was hardly cheaper (57% in
//! `deflate_compress_fastest`), so stored it is. The output stays valid
//! deflate of about the same size; what is lost is the compression of
//! members whose every sample is incompressible but which compress
//! elsewhere.
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

/// Members shorter than this are compressed at the level asked, unsampled.
const SAMPLE_MIN: usize = 256 << 10;
/// Slices tried at level 1 before a slower level runs.
const SAMPLES: usize = 8;
/// Bytes per slice.
const SAMPLE_LEN: usize = 4 << 10;

/// Per-thread compressors: the level asked for, level 1 (for the samples) and
/// level 0 (stored blocks, for what the samples say does not compress).
#[derive(Default)]
struct Compressors {
    asked: Option<(u32, Compressor)>,
    fast: Option<Compressor>,
    stored: Option<Compressor>,
    scratch: Vec<u8>,
}

thread_local! {
    static COMPRESSORS: RefCell<Compressors> = RefCell::new(Compressors::default());
    static DECOMPRESSOR: RefCell<Option<Decompressor>> = const { RefCell::new(None) };
}

/// Appends `data` raw-deflated at `level` (1-12) to `out`; returns the
/// deflate bytes written. Above level 1, data whose samples do not compress
/// is written as stored blocks (see the module docs).
pub(crate) fn deflate_append(level: u32, data: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
    #[cfg_attr(
        not(all(feature = "isal", target_arch = "x86_64")),
        allow(unused_variables)
    )]
    let isal = super::engine::isal_level(level);
    let level = super::engine::fallback_level(level);
    COMPRESSORS.with(|cell| {
        let c = &mut *cell.borrow_mut();
        if !matches!(&c.asked, Some((l, _)) if *l == level) {
            let lvl = i32::try_from(level)
                .ok()
                .and_then(|l| CompressionLvl::new(l).ok())
                .ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::InvalidInput,
                        format!("compression level {level} is not 0-12"),
                    )
                })?;
            c.asked = Some((level, Compressor::new(lvl)));
        }
        let fast = c
            .fast
            .get_or_insert_with(|| Compressor::new(CompressionLvl::new(1).expect("level 1")));
        let stored = level > 1 && incompressible(fast, &mut c.scratch, data);
        let comp = if stored {
            c.stored
                .get_or_insert_with(|| Compressor::new(CompressionLvl::new(0).expect("level 0")))
        } else {
            &mut c.asked.as_mut().expect("just set").1
        };
        #[cfg(all(feature = "isal", target_arch = "x86_64"))]
        if let (Some(l), false) = (isal, stored) {
            return super::isal::deflate(l, &[], data, true, out);
        }
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

/// True when `data` is long enough to sample and no sample, compressed by
/// `fast`, saves 1/64 of its bytes. Stops at the first sample that does,
/// so compressible data pays for one small level-1 call.
fn incompressible(fast: &mut Compressor, scratch: &mut Vec<u8>, data: &[u8]) -> bool {
    if data.len() < SAMPLE_MIN {
        return false;
    }
    scratch.resize(fast.deflate_compress_bound(SAMPLE_LEN), 0);
    let stride = (data.len() - SAMPLE_LEN) / (SAMPLES - 1);
    (0..SAMPLES).all(|k| {
        let slice = &data[k * stride..k * stride + SAMPLE_LEN];
        match fast.deflate_compress(slice, scratch) {
            Ok(n) => n * 64 >= SAMPLE_LEN * 63,
            Err(_) => false,
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

    /// xorshift bytes: nothing for deflate to find.
    fn noise(n: usize, mut x: u64) -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn incompressible_members_are_sampled_and_kept_whole() {
        let mut fast = Compressor::new(CompressionLvl::new(1).expect("level 1"));
        let mut scratch = Vec::new();
        let rand = noise(1 << 20, 7);
        assert!(incompressible(&mut fast, &mut scratch, &rand));
        // Too short to sample, and compressible data, go to the level asked.
        assert!(!incompressible(
            &mut fast,
            &mut scratch,
            &rand[..SAMPLE_MIN - 1]
        ));
        assert!(!incompressible(&mut fast, &mut scratch, &sample(1 << 20)));
        // One compressible slice among the samples is enough to keep the level.
        let mut mixed = rand.clone();
        let stride = (mixed.len() - SAMPLE_LEN) / (SAMPLES - 1);
        mixed[3 * stride..3 * stride + SAMPLE_LEN].fill(0);
        assert!(!incompressible(&mut fast, &mut scratch, &mixed));
        // Either way the member round-trips, and noise costs at most stored blocks.
        for data in [&rand, &mixed] {
            let mut out = Vec::new();
            let n = deflate_append(6, data, &mut out).unwrap();
            assert!(n <= data.len() + data.len() / 1000 + 64, "{n}");
            let mut back = Vec::new();
            assert_eq!(inflate_into(&out, data.len(), &mut back), Ok(n));
            assert_eq!(&back, data);
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

//! Raw deflate with ISA-L (igzip), through the `isal-sys` bindings (ISA-L
//! built from source and linked statically, so the binary needs no shared
//! library at run time).
//!
//! One stream per thread, reset for every call: the stream state is 80 KiB
//! and the level buffer up to 340 KiB, more than compressing a small chunk
//! costs to set up. Each call writes one self-contained piece of a deflate
//! stream: primed with an optional 32 KiB dictionary, ending in a sync flush
//! (an empty stored block, byte aligned, so pieces concatenate pigz-style)
//! or in the final block.

use isal_sys::igzip_lib as sys;
use std::cell::RefCell;
use std::io;

struct Stream {
    zs: Box<sys::isal_zstream>,
    level: u32,
    level_buf: Vec<u8>,
}

thread_local! {
    static STREAM: RefCell<Option<Stream>> = const { RefCell::new(None) };
}

impl Stream {
    fn new(level: u32) -> io::Result<Stream> {
        let buf_len = match level {
            0 => 0,
            1 => sys::ISAL_DEF_LVL1_DEFAULT,
            2 => sys::ISAL_DEF_LVL2_DEFAULT,
            3 => sys::ISAL_DEF_LVL3_DEFAULT,
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("ISA-L level {level} is not 0-3"),
                ))
            }
        };
        let layout = std::alloc::Layout::new::<sys::isal_zstream>();
        // SAFETY: every field of isal_zstream is an integer, a raw pointer or
        // an array of those, for which all-zero bytes are a valid value;
        // isal_deflate_init then sets the fields it needs. The allocation has
        // the type's layout, so Box may own and free it. (Allocated zeroed on
        // the heap: the struct is 80 KiB.)
        let mut zs: Box<sys::isal_zstream> = unsafe {
            let p = std::alloc::alloc_zeroed(layout).cast::<sys::isal_zstream>();
            if p.is_null() {
                std::alloc::handle_alloc_error(layout);
            }
            Box::from_raw(p)
        };
        // SAFETY: `zs` is a valid, exclusively owned stream.
        unsafe { sys::isal_deflate_init(&mut *zs) };
        Ok(Stream {
            zs,
            level,
            level_buf: vec![0; buf_len as usize],
        })
    }
}

/// Appends `data` raw-deflated at ISA-L `level` (0-3) to `out`, with `dict`
/// (its last 32 KiB) as the history; ends in a sync flush, or with `finish`
/// in the final block. Returns the bytes appended.
pub(crate) fn deflate(
    level: u32,
    dict: &[u8],
    data: &[u8],
    finish: bool,
    out: &mut Vec<u8>,
) -> io::Result<usize> {
    let avail_in = u32::try_from(data.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "chunk over 4 GiB"))?;
    // ISA-L's own history size (the deflate window): it would ignore more.
    let dict = &dict[dict.len().saturating_sub(sys::IGZIP_HIST_SIZE as usize)..];
    STREAM.with(|cell| {
        let mut slot = cell.borrow_mut();
        if !matches!(&*slot, Some(s) if s.level == level) {
            *slot = Some(Stream::new(level)?);
        }
        let s = slot.as_mut().expect("just set");
        let zs = &mut *s.zs;
        // SAFETY: `zs` was initialised by isal_deflate_init; reset keeps the
        // settings below, which are written again anyway.
        unsafe { sys::isal_deflate_reset(zs) };
        zs.level = level;
        zs.level_buf = if s.level_buf.is_empty() {
            std::ptr::null_mut()
        } else {
            s.level_buf.as_mut_ptr()
        };
        zs.level_buf_size = s.level_buf.len() as u32;
        zs.gzip_flag = sys::IGZIP_DEFLATE as u16;
        zs.hist_bits = 0;
        zs.end_of_stream = u16::from(finish);
        zs.flush = if finish {
            sys::NO_FLUSH
        } else {
            sys::SYNC_FLUSH
        } as u16;
        if !dict.is_empty() {
            // SAFETY: ISA-L copies the dictionary into its history and does
            // not write through the pointer (the C prototype is not const).
            let r = unsafe {
                sys::isal_deflate_set_dict(zs, dict.as_ptr().cast_mut(), dict.len() as u32)
            };
            if r != sys::COMP_OK as i32 {
                return Err(io::Error::other(format!(
                    "ISA-L refused the dictionary (code {r})"
                )));
            }
        }
        zs.next_in = data.as_ptr().cast_mut();
        zs.avail_in = avail_in;
        let start = out.len();
        // Stored blocks bound the output: 5 bytes per 64 KiB, plus the flush.
        out.reserve(data.len() + data.len() / 8192 + 256);
        loop {
            let len = out.len();
            let room = (out.capacity() - len).min(u32::MAX as usize);
            // SAFETY: `next_out` points at `room` bytes of spare capacity of
            // `out`; ISA-L writes at most `avail_out` bytes there and reports
            // how many through `avail_out`, so `set_len` covers written bytes
            // only. `next_in` stays within `data`, which outlives the call.
            let r = unsafe {
                zs.next_out = out.as_mut_ptr().add(len);
                zs.avail_out = room as u32;
                let r = sys::isal_deflate(zs);
                out.set_len(len + room - zs.avail_out as usize);
                r
            };
            if r != sys::COMP_OK as i32 {
                out.truncate(start);
                return Err(io::Error::other(format!("ISA-L deflate failed (code {r})")));
            }
            let done = if finish {
                zs.internal_state.state == sys::isal_zstate_state_ZSTATE_END
            } else {
                // All input taken and room left over: the flush is complete.
                zs.avail_in == 0 && zs.avail_out > 0
            };
            if done {
                return Ok(out.len() - start);
            }
            out.reserve(out.capacity() / 4 + 4096);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        let mut x: u32 = 1;
        (0..n)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if (i / 40_000) % 2 == 0 {
                    (x >> 24) as u8
                } else {
                    b"0123456789abcdef "[(x >> 20) as usize % 4 + i % 13]
                }
            })
            .collect()
    }

    #[test]
    fn pieces_with_dictionaries_concatenate_at_every_level() {
        let data = sample(400_000);
        for level in 0..=3 {
            let mut stream = Vec::new();
            let cuts = [0, 1, 70_000, 70_000, 200_000, data.len()];
            for w in cuts.windows(2) {
                let dict = &data[..w[0]];
                let last = w[1] == data.len();
                deflate(level, dict, &data[w[0]..w[1]], last, &mut stream).unwrap();
            }
            let mut back = Vec::new();
            flate2::read::DeflateDecoder::new(&stream[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data, "level {level}");
        }
    }

    #[test]
    fn output_grows_past_the_first_guess() {
        // Fixed Huffman codes (level 0) on random bytes expand them: the
        // buffer has to grow beyond the reserve.
        let data: Vec<u8> = sample(80_000)[..40_000].to_vec();
        let mut out = Vec::new();
        let n = deflate(0, &[], &data, true, &mut out).unwrap();
        assert_eq!(n, out.len());
        let mut back = Vec::new();
        flate2::read::DeflateDecoder::new(&out[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn rejects_levels_past_three() {
        let e = deflate(4, &[], b"x", true, &mut Vec::new()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}

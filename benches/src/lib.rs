//! Inputs for the benchmarks: VHD-like data and synthetic sparse images whose
//! metadata is real but whose data is computed on demand, so a 1M-entry BAT (a
//! 2 TiB disk) costs a few MiB of memory.

use cloudimg_vhd::format::footer::Footer;
use cloudimg_vhd::format::header::{DynamicHeader, BAT_UNUSED};
use cloudimg_vhd::{DiskType, LayerIo};
use std::io;
use uuid::Uuid;

/// What every data sector of a synthetic image holds.
pub const DATA_BYTE: u8 = 0x5A;

/// One step of splitmix64: a fixed, fast pseudo-random sequence.
pub fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// `len` bytes that compress like a disk image: in 64 KiB runs, a third random, a
/// third text-like, a third zeros.
pub fn disk_like(len: usize) -> Vec<u8> {
    const RUN: usize = 64 * 1024;
    const WORDS: [&[u8]; 8] = [
        b"kernel ",
        b"module ",
        b"/usr/lib/",
        b"libc.so.6 ",
        b"GLIBC_2.2.5 ",
        b"\n",
        b"init ",
        b"0x0000 ",
    ];
    let mut out = Vec::with_capacity(len);
    let mut st = 0x5EED_u64;
    let mut run = 0usize;
    while out.len() < len {
        let n = RUN.min(len - out.len());
        match run % 3 {
            0 => {
                let start = out.len();
                out.resize(start + n, 0);
                for chunk in out[start..].chunks_mut(8) {
                    let v = splitmix64(&mut st).to_le_bytes();
                    chunk.copy_from_slice(&v[..chunk.len()]);
                }
            }
            1 => {
                let end = out.len() + n;
                while out.len() < end {
                    let w = WORDS[(splitmix64(&mut st) % WORDS.len() as u64) as usize];
                    let take = w.len().min(end - out.len());
                    out.extend_from_slice(&w[..take]);
                }
            }
            _ => out.resize(out.len() + n, 0),
        }
        run += 1;
    }
    out
}

/// A dynamic VHD whose footer, header and BAT are real bytes and whose blocks are
/// computed: every bitmap reads as `bitmap_byte`, data as a constant.
pub struct SyntheticVhd {
    meta: Vec<u8>,
    bitmap_end: u64,
    len: u64,
    bitmap_len: u64,
    block_size: u64,
    bitmap_byte: u8,
    first_block: u64,
}

impl SyntheticVhd {
    /// `entries` BAT entries of `block_size` bytes; every `every`-th block is
    /// allocated (0: none), blocks laid out in order after the BAT.
    pub fn new(entries: u32, block_size: u32, every: u32, bitmap_byte: u8) -> SyntheticVhd {
        let size = u64::from(entries) * u64::from(block_size);
        let table_offset = 512 + 1024;
        let bat_bytes = (u64::from(entries) * 4).div_ceil(512) * 512;
        let sectors_per_block = u64::from(block_size) / 512;
        let bitmap_len = sectors_per_block.div_ceil(8).div_ceil(512) * 512;
        let first_block = table_offset + bat_bytes;
        let mut meta = Vec::with_capacity(first_block as usize);
        let uuid = Uuid::from_u128(0x0c10_d1a6_0000_4000_8000_0000_0000_0001);
        let mut footer = Footer::new(DiskType::Dynamic, size, uuid, 0);
        footer.data_offset = 512;
        let footer = footer.seal();
        meta.extend_from_slice(&footer);
        let mut header = DynamicHeader::new(table_offset, entries, block_size);
        meta.extend_from_slice(&header.seal());
        let mut next = first_block / 512;
        let mut allocated = 0u64;
        for i in 0..entries {
            let e = if every != 0 && i % every == 0 {
                let e = next as u32;
                next += (bitmap_len + u64::from(block_size)) / 512;
                allocated += 1;
                e
            } else {
                BAT_UNUSED
            };
            meta.extend_from_slice(&e.to_be_bytes());
        }
        meta.resize(first_block as usize, 0xFF);
        let data_end = first_block + allocated * (bitmap_len + u64::from(block_size));
        let len = data_end + 512;
        // meta ends with the trailing footer's copy, served for [data_end, len).
        let mut me = SyntheticVhd {
            meta,
            bitmap_end: data_end,
            len,
            bitmap_len,
            block_size: u64::from(block_size),
            bitmap_byte,
            first_block,
        };
        me.meta.extend_from_slice(&footer);
        me
    }

    /// Bytes of the whole file.
    pub fn file_len(&self) -> u64 {
        self.len
    }
}

impl LayerIo for SyntheticVhd {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.len)
            .ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        let mut pos = offset;
        let mut out = buf;
        while !out.is_empty() {
            let n = if pos < self.first_block {
                let n = out.len().min((self.first_block - pos) as usize);
                out[..n].copy_from_slice(&self.meta[pos as usize..pos as usize + n]);
                n
            } else if pos >= self.bitmap_end {
                let at = self.first_block as usize + (pos - self.bitmap_end) as usize;
                let n = out.len();
                out.copy_from_slice(&self.meta[at..at + n]);
                n
            } else {
                let stride = self.bitmap_len + self.block_size;
                let within = (pos - self.first_block) % stride;
                let (left, fill) = if within < self.bitmap_len {
                    (self.bitmap_len - within, self.bitmap_byte)
                } else {
                    (stride - within, DATA_BYTE)
                };
                let n = out.len().min(left as usize);
                out[..n].fill(fill);
                n
            };
            out = &mut out[n..];
            pos += n as u64;
        }
        Ok(())
    }

    fn len(&self) -> u64 {
        self.len
    }
}

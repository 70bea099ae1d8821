//! Reading the virtual disk of a chain: positional reads and a streaming
//! `Read + Seek` adapter, both built on the allocation map.
//!
//! Bitmaps are honoured sector by sector: a sector whose bit is clear in a
//! child is read from the parent, and one clear everywhere reads as zeros.
//! Reads never leave a layer's file: an extent pointing past the end is a
//! `Truncated` error, not a short read.

use crate::alloc::Source;
use crate::chain::Chain;
use crate::{Error, ErrorKind, Result};
use std::borrow::Borrow;
use std::io::{self, Read, Seek, SeekFrom};

impl Chain {
    /// Fills `buf` with the virtual disk's bytes from `offset`. Reading past
    /// the virtual size is an `InvalidArgument` error.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.virtual_size())
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    format!(
                        "read of {} bytes at {offset} goes past the virtual size {}",
                        buf.len(),
                        self.virtual_size()
                    ),
                )
            })?;
        for ext in self.extents_in(offset..end) {
            let ext = ext?;
            let lo = (ext.offset - offset) as usize;
            let dst = &mut buf[lo..lo + ext.len as usize];
            match ext.source {
                Source::Zero => dst.fill(0),
                Source::Layer { layer, file_offset } => {
                    self.layers()[layer].read_raw(dst, file_offset)?;
                }
            }
        }
        Ok(())
    }
}

/// A reader over a chain's virtual disk, owning or borrowing the chain.
pub struct ChainReader<C: Borrow<Chain> = Chain> {
    chain: C,
    pos: u64,
}

impl<C: Borrow<Chain>> ChainReader<C> {
    pub fn new(chain: C) -> Self {
        ChainReader { chain, pos: 0 }
    }

    pub fn chain(&self) -> &Chain {
        self.chain.borrow()
    }

    pub fn into_inner(self) -> C {
        self.chain
    }

    pub fn virtual_size(&self) -> u64 {
        self.chain().virtual_size()
    }

    /// Positional read; see [`Chain::read_at`].
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.chain().read_at(offset, buf)
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match e.kind() {
        ErrorKind::Truncated => io::ErrorKind::UnexpectedEof,
        ErrorKind::InvalidArgument => io::ErrorKind::InvalidInput,
        ErrorKind::Io => io::ErrorKind::Other,
        _ => io::ErrorKind::InvalidData,
    };
    io::Error::new(kind, e)
}

impl<C: Borrow<Chain>> Read for ChainReader<C> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = ChainReader::virtual_size(self).saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        let chain: &Chain = self.chain.borrow();
        chain.read_at(self.pos, &mut buf[..n]).map_err(to_io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<C: Borrow<Chain>> Seek for ChainReader<C> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => ChainReader::virtual_size(self).checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use crate::alloc::{Extent, Source};
    use crate::chain::Chain;
    use crate::format::footer::Footer;
    use crate::image::tests::{open, tiny};
    use crate::DiskType;
    use uuid::Uuid;

    #[test]
    fn opens_and_maps_a_partial_block() {
        let img = open(tiny(DiskType::Dynamic)).unwrap();
        let ext: Vec<Extent> = img.extents().map(|e| e.unwrap()).collect();
        assert_eq!(
            ext,
            vec![
                Extent {
                    offset: 0,
                    len: 4096,
                    source: Source::Zero
                },
                Extent {
                    offset: 4096,
                    len: 1536,
                    source: Source::Layer {
                        layer: 0,
                        file_offset: 0xa00
                    }
                },
                Extent {
                    offset: 5632,
                    len: 16384 - 5632,
                    source: Source::Zero
                },
            ]
        );
        let chain = Chain::single(img).unwrap();
        let mut buf = vec![1u8; 16 << 10];
        chain.read_at(0, &mut buf).unwrap();
        assert!(buf[..4096].iter().all(|&b| b == 0));
        assert!(buf[4096..5632].iter().all(|&b| b == 0xab));
        assert!(
            buf[5632..].iter().all(|&b| b == 0),
            "clear bits read as zeros"
        );
    }

    #[test]
    fn differencing_layers_fall_through_clear_bits() {
        let child = open(tiny(DiskType::Differencing)).unwrap();
        let mut pb = tiny(DiskType::Dynamic);
        // Parent: uuid 9, block 1 fully present with 0xcd.
        let mut f = Footer::new(DiskType::Dynamic, 16 << 10, Uuid::from_u128(9), 0);
        let footer = f.seal();
        pb[..512].copy_from_slice(&footer);
        let n = pb.len();
        pb[n - 512..].copy_from_slice(&footer);
        pb[0x800] = 0xff;
        pb[0xa00..0xa00 + 4096].fill(0xcd);
        let parent = open(pb).unwrap();
        let chain = Chain::from_images(vec![child, parent]).unwrap();
        let ext: Vec<Extent> = chain.extents().map(|e| e.unwrap()).collect();
        assert_eq!(
            ext[1],
            Extent {
                offset: 4096,
                len: 1536,
                source: Source::Layer {
                    layer: 0,
                    file_offset: 0xa00
                }
            }
        );
        assert_eq!(
            ext[2],
            Extent {
                offset: 5632,
                len: 4096 - 1536,
                source: Source::Layer {
                    layer: 1,
                    file_offset: 0xa00 + 1536
                }
            }
        );
        let mut buf = vec![0u8; 8192];
        chain.read_at(4096, &mut buf).unwrap();
        assert!(buf[..1536].iter().all(|&b| b == 0xab));
        assert!(buf[1536..4096].iter().all(|&b| b == 0xcd));
        assert!(buf[4096..].iter().all(|&b| b == 0));
    }
}

//! The exported VHD as a random-access view: any byte range of the dynamic VHD a
//! [`DynamicLayout`] describes, computed on demand from the chain.
//!
//! Export uploads segments of 1,048,576,000 bytes; holding one in memory or on disk is
//! what the task must not do, and a failed PUT must be retried from the segment's first
//! byte. A segment body is therefore a range of this view: reading it regenerates the
//! bytes (metadata from the layout, block data read from the chain's layers), as often as
//! needed, on a thread that reads ahead of the upload. [`ViewRanges`] hands the view to
//! `cloudimg_pipeline`'s upload as a positional source.

use crate::chanread::ChannelReader;
use cloudimg_pipeline::upload::ReadRange;
use cloudimg_vhd::format::header::bitmap_size;
use cloudimg_vhd::write::DynamicLayout;
use cloudimg_vhd::{Chain, Footer};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

const FOOTER: u64 = 512;
const TABLE_OFFSET: u64 = 512 + 1024;
/// Bytes produced per read-ahead chunk, and chunks queued ahead of the upload.
const CHUNK: usize = 1 << 20;
const DEPTH: usize = 4;

/// The output VHD of a layout over a chain.
pub struct OutputView {
    layout: DynamicLayout,
    chain: Arc<Chain>,
    footer: [u8; 512],
    header: [u8; 1024],
    bat: Vec<u8>,
    data_start: u64,
    stride: u64,
    bitmap_len: u64,
    total: u64,
    produced: AtomicU64,
}

impl OutputView {
    /// The view of `layout` filled from `chain`. Fails if the layout's own length
    /// disagrees with the arithmetic here (a changed on-disk layout must not go unnoticed).
    pub fn new(layout: DynamicLayout, chain: Arc<Chain>) -> io::Result<OutputView> {
        let bs = layout.block_size();
        let entries = u64::from(layout.entries());
        let bat_bytes = (entries * 4).next_multiple_of(512);
        let data_start = TABLE_OFFSET + bat_bytes;
        let bitmap_len = bitmap_size(bs);
        let stride = bitmap_len + u64::from(bs);
        let blocks = layout.allocated_blocks();
        let total = data_start + blocks.len() as u64 * stride + FOOTER;
        if total != layout.total_len() {
            return Err(io::Error::other(format!(
                "layout length {} differs from the computed {total}",
                layout.total_len()
            )));
        }
        let mut bat = vec![0xffu8; bat_bytes as usize];
        for (k, &b) in blocks.iter().enumerate() {
            let sector = (data_start + k as u64 * stride) / 512;
            let sector =
                u32::try_from(sector).map_err(|_| io::Error::other("BAT entry overflow"))?;
            let at = b as usize * 4;
            bat[at..at + 4].copy_from_slice(&sector.to_be_bytes());
        }
        Ok(OutputView {
            footer: layout.footer(),
            header: layout.header(),
            layout,
            chain,
            bat,
            data_start,
            stride,
            bitmap_len,
            total,
            produced: AtomicU64::new(0),
        })
    }

    /// The same view with the footer's timestamp (seconds since 2000-01-01 UTC) set to
    /// `timestamp` instead of the time of planning, so that two views of one chain are
    /// byte for byte equal (what lets an export resume).
    pub fn with_timestamp(mut self, timestamp: u32) -> OutputView {
        if let Some(mut f) = Footer::parse(&self.footer) {
            f.timestamp = timestamp;
            self.footer = f.seal();
        }
        self
    }

    /// Length of the VHD.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// True for an empty view (never: a VHD has at least its metadata).
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The layout.
    pub fn layout(&self) -> &DynamicLayout {
        &self.layout
    }

    /// Bytes produced so far by all readers (for progress; retries count again).
    pub fn produced(&self) -> u64 {
        self.produced.load(Ordering::Relaxed)
    }

    /// Fills `buf` with the VHD's bytes at `offset`.
    pub fn read_at(&self, mut offset: u64, mut buf: &mut [u8]) -> io::Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.total)
        {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past the end of the output",
            ));
        }
        while !buf.is_empty() {
            let n = self.piece(offset, buf)?;
            buf = &mut buf[n..];
            offset += n as u64;
        }
        Ok(())
    }

    /// Fills the start of `buf` from one region; returns how many bytes.
    fn piece(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let copy = |src: &[u8], at: u64, buf: &mut [u8]| {
            let n = buf.len().min(src.len() - at as usize);
            buf[..n].copy_from_slice(&src[at as usize..at as usize + n]);
            n
        };
        if offset < FOOTER {
            return Ok(copy(&self.footer, offset, buf));
        }
        if offset < TABLE_OFFSET {
            return Ok(copy(&self.header, offset - FOOTER, buf));
        }
        if offset < self.data_start {
            return Ok(copy(&self.bat, offset - TABLE_OFFSET, buf));
        }
        let tail = self.total - FOOTER;
        if offset >= tail {
            return Ok(copy(&self.footer, offset - tail, buf));
        }
        let k = (offset - self.data_start) / self.stride;
        let within = (offset - self.data_start) % self.stride;
        if within < self.bitmap_len {
            let n = buf.len().min((self.bitmap_len - within) as usize);
            let sectors = u64::from(self.layout.block_size()) / 512;
            for (i, b) in buf[..n].iter_mut().enumerate() {
                let byte = within + i as u64;
                *b = bitmap_byte(byte, sectors);
            }
            return Ok(n);
        }
        let bs = u64::from(self.layout.block_size());
        let in_block = within - self.bitmap_len;
        let n = buf.len().min((bs - in_block) as usize);
        let block = u64::from(self.layout.allocated_blocks()[k as usize]);
        let v = block * bs + in_block;
        let size = self.chain.virtual_size();
        let inside = size.saturating_sub(v).min(n as u64) as usize;
        if inside > 0 {
            self.chain
                .read_at(v, &mut buf[..inside])
                .map_err(io::Error::other)?;
        }
        buf[inside..n].fill(0);
        Ok(n)
    }
}

/// Byte `i` of a bitmap with the first `sectors` bits set.
fn bitmap_byte(i: u64, sectors: u64) -> u8 {
    let first = i * 8;
    if first + 8 <= sectors {
        0xff
    } else if first >= sectors {
        0
    } else {
        0xffu8 << (8 - (sectors - first))
    }
}

/// The view as the upload's positional source: each range read regenerates its bytes.
pub struct ViewRanges(pub Arc<OutputView>);

impl ReadRange for ViewRanges {
    fn len(&self) -> u64 {
        self.0.len()
    }

    fn read_range(&self, offset: u64, len: u64) -> io::Result<Box<dyn Read + Send + '_>> {
        let (tx, rx) = sync_channel(DEPTH);
        let (view, mut pos, end) = (self.0.clone(), offset, offset + len);
        std::thread::spawn(move || {
            while pos < end {
                let mut chunk = vec![0u8; (CHUNK as u64).min(end - pos) as usize];
                let r = view.read_at(pos, &mut chunk).map(|_| chunk);
                let stop = r.is_err();
                if let Ok(c) = &r {
                    view.produced.fetch_add(c.len() as u64, Ordering::Relaxed);
                    pos += c.len() as u64;
                }
                if tx.send(r).is_err() || stop {
                    return;
                }
            }
        });
        Ok(Box::new(ChannelReader::new(rx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitmap_bytes() {
        assert_eq!(bitmap_byte(0, 4096), 0xff);
        assert_eq!(bitmap_byte(511, 4096), 0xff);
        assert_eq!(bitmap_byte(512, 4096), 0);
        assert_eq!(bitmap_byte(0, 3), 0xe0);
        assert_eq!(bitmap_byte(1, 3), 0);
    }
}

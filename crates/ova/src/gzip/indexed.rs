//! Indexed multi-member gzip, BGZF-like: every chunk is its own gzip member
//! (no shared dictionary, so members decompress independently), each
//! member's header carries its size in an extra subfield `CI`, and an index
//! follows in empty members (subfield `CX`) closed by a fixed-size trailer
//! member (subfield `CT`) that points at it.
//!
//! Every member decompresses to its chunk and the index members to nothing,
//! so `gunzip`, `tar -xz`, pigz, Python and flate2 all see exactly the
//! original bytes. Our reader reads the trailer, then the index, and can
//! decompress any byte range from the covering members only, in parallel,
//! through a positional byte source (a file, or a range-read object).

use super::header::{self, find_extra};
use super::inflating::Inflating;
use super::member::MAX_CHUNK;
pub use super::member::{inflate_member, ID_MEMBER};
use super::ordered::Ordered;
use super::whole::deflate_append;
use super::GzOptions;
use crate::error::{Error, ErrorKind, Result};
use std::io::{self, Write};

/// Subfield of an index member: a piece of the serialised index.
pub const ID_INDEX: [u8; 2] = *b"CX";
/// Subfield of the trailer member: `[index offset u64][index bytes u64]`.
pub const ID_TRAILER: [u8; 2] = *b"CT";
/// Bytes of the trailer member: header 10, XLEN 2, subfield 4+16, empty deflate 2, trailer 8.
pub const TRAILER_LEN: u64 = 42;
/// Index bytes per index member (an extra field holds at most 65535 bytes).
const INDEX_PIECE: usize = 65_000;
const MAGIC: &[u8; 8] = b"CIMGIDX1";
/// An empty raw deflate stream: one final fixed-Huffman block with only end-of-block.
const EMPTY_DEFLATE: [u8; 2] = [0x03, 0x00];

/// One data member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block {
    /// Offset of its first byte in the uncompressed stream.
    pub uncompressed_offset: u64,
    /// Offset of the member in the compressed stream.
    pub compressed_offset: u64,
    pub compressed_len: u32,
    pub uncompressed_len: u32,
}

/// A named byte range of the uncompressed stream (a tar member's data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRange {
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

/// The index: every block, and the named ranges.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Index {
    pub uncompressed_len: u64,
    pub blocks: Vec<Block>,
    pub names: Vec<NamedRange>,
}

impl Index {
    /// The named range `name` (a tar member's data), if present.
    pub fn range(&self, name: &str) -> Option<&NamedRange> {
        self.names
            .iter()
            .find(|r| r.name == name || r.name.trim_start_matches("./") == name)
    }

    /// Compressed bytes of the data members.
    pub fn compressed_len(&self) -> u64 {
        self.blocks
            .last()
            .map_or(0, |b| b.compressed_offset + u64::from(b.compressed_len))
    }

    /// Serialises the index (little-endian, CRC32 at the end), for the
    /// trailer or a separate object.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32 + self.blocks.len() * 24 + self.names.len() * 40);
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&self.uncompressed_len.to_le_bytes());
        b.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        for k in &self.blocks {
            b.extend_from_slice(&k.uncompressed_offset.to_le_bytes());
            b.extend_from_slice(&k.compressed_offset.to_le_bytes());
            b.extend_from_slice(&k.compressed_len.to_le_bytes());
            b.extend_from_slice(&k.uncompressed_len.to_le_bytes());
        }
        b.extend_from_slice(&(self.names.len() as u64).to_le_bytes());
        for n in &self.names {
            let name = &n.name.as_bytes()[..n.name.len().min(u16::MAX as usize)];
            b.extend_from_slice(&(name.len() as u16).to_le_bytes());
            b.extend_from_slice(name);
            b.extend_from_slice(&n.offset.to_le_bytes());
            b.extend_from_slice(&n.len.to_le_bytes());
        }
        let crc = crc32fast::hash(&b);
        b.extend_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks an index: CRC, block continuity, ranges inside the stream.
    pub fn from_bytes(b: &[u8]) -> Result<Index> {
        let bad = |why: &str| Error::new(ErrorKind::Corrupt, format!("gzip index: {why}"));
        if b.len() < 8 + 8 + 8 + 8 + 4 || &b[..8] != MAGIC {
            return Err(bad("no index magic"));
        }
        let (body, crc) = b.split_at(b.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4")) {
            return Err(bad("CRC mismatch"));
        }
        let mut r = Cursor { b: body, at: 8 };
        let uncompressed_len = r.u64()?;
        let nblocks = r.u64()?;
        if nblocks > (body.len() / 24) as u64 {
            return Err(bad("block count larger than the index"));
        }
        let mut blocks = Vec::with_capacity(nblocks as usize);
        let (mut uo, mut co) = (0u64, 0u64);
        for _ in 0..nblocks {
            let k = Block {
                uncompressed_offset: r.u64()?,
                compressed_offset: r.u64()?,
                compressed_len: r.u32()?,
                uncompressed_len: r.u32()?,
            };
            if k.uncompressed_offset != uo || k.compressed_offset != co {
                return Err(bad("blocks are not contiguous"));
            }
            uo += u64::from(k.uncompressed_len);
            co += u64::from(k.compressed_len);
            blocks.push(k);
        }
        if uo != uncompressed_len {
            return Err(bad("blocks do not add up to the stream length"));
        }
        let nnames = r.u64()?;
        if nnames > body.len() as u64 {
            return Err(bad("name count larger than the index"));
        }
        let mut names = Vec::new();
        for _ in 0..nnames {
            let len = usize::from(r.u16()?);
            let name =
                String::from_utf8(r.take(len)?.to_vec()).map_err(|_| bad("name not UTF-8"))?;
            let offset = r.u64()?;
            let len = r.u64()?;
            if offset
                .checked_add(len)
                .is_none_or(|end| end > uncompressed_len)
            {
                return Err(bad("named range outside the stream"));
            }
            names.push(NamedRange { name, offset, len });
        }
        Ok(Index {
            uncompressed_len,
            blocks,
            names,
        })
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or_else(|| Error::new(ErrorKind::Corrupt, "gzip index: ends early"))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
}

type MemberResult = io::Result<(Vec<u8>, u32, Vec<u8>)>;

/// Writes the indexed form; call [`IndexedGzWriter::finish`] with the named ranges.
pub struct IndexedGzWriter<W: Write> {
    inner: W,
    opts: GzOptions,
    buf: Vec<u8>,
    queue: Ordered<MemberResult>,
    index: Index,
    compressed: u64,
    failed: bool,
}

impl<W: Write> IndexedGzWriter<W> {
    pub fn new(inner: W, opts: GzOptions) -> Result<Self> {
        opts.validate()?;
        if opts.chunk_size > MAX_CHUNK {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "indexed chunks are at most 64 MiB",
            ));
        }
        let queue = Ordered::new(opts.jobs, 2 * opts.jobs)
            .map_err(|e| Error::io("start compression threads", e))?;
        Ok(IndexedGzWriter {
            inner,
            opts,
            buf: Vec::with_capacity(opts.chunk_size),
            queue,
            index: Index::default(),
            compressed: 0,
            failed: false,
        })
    }

    /// Writes the last member, the index and the trailer; returns the sink and the index.
    pub fn finish(mut self, names: &[NamedRange]) -> Result<(W, Index)> {
        self.finish_inner(names)
            .map_err(|e| Error::io("finish indexed gzip", e))?;
        Ok((self.inner, self.index))
    }

    fn finish_inner(&mut self, names: &[NamedRange]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("indexed gzip writer failed earlier"));
        }
        if !self.buf.is_empty() {
            self.submit()?;
        }
        while !self.queue.is_empty() {
            self.drain_one(true)?;
        }
        self.index.names = names.to_vec();
        let index_offset = self.compressed;
        let bytes = self.index.to_bytes();
        for piece in bytes.chunks(INDEX_PIECE) {
            let member = empty_member(self.opts.level, ID_INDEX, piece);
            self.put(&member)?;
        }
        let mut t = Vec::with_capacity(16);
        t.extend_from_slice(&index_offset.to_le_bytes());
        t.extend_from_slice(&(self.compressed - index_offset).to_le_bytes());
        let trailer = empty_member(self.opts.level, ID_TRAILER, &t);
        debug_assert_eq!(trailer.len() as u64, TRAILER_LEN);
        self.put(&trailer)?;
        self.inner.flush()
    }

    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner
            .write_all(bytes)
            .inspect_err(|_| self.failed = true)?;
        self.compressed += bytes.len() as u64;
        Ok(())
    }

    fn submit(&mut self) -> io::Result<()> {
        while self.queue.is_full() {
            self.drain_one(true)?;
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(self.opts.chunk_size));
        let level = self.opts.level;
        self.queue.submit(move || {
            let m = data_member(level, &data)?;
            Ok((m, data.len() as u32, data))
        });
        while self.drain_one(false)? {}
        Ok(())
    }

    fn drain_one(&mut self, wait: bool) -> io::Result<bool> {
        let Some(res) = self.queue.next(wait) else {
            return Ok(false);
        };
        let (member, ulen, _data) = res
            .map_err(|_| io::Error::other("compression worker panicked"))
            .and_then(|r| r)
            .inspect_err(|_| self.failed = true)?;
        self.index.blocks.push(Block {
            uncompressed_offset: self.index.uncompressed_len,
            compressed_offset: self.compressed,
            compressed_len: member.len() as u32,
            uncompressed_len: ulen,
        });
        self.index.uncompressed_len += u64::from(ulen);
        self.put(&member)?;
        Ok(true)
    }
}

impl<W: Write> Write for IndexedGzWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.failed {
            return Err(io::Error::other("indexed gzip writer failed earlier"));
        }
        let room = self.opts.chunk_size - self.buf.len();
        let n = room.min(data.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == self.opts.chunk_size {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        while self.drain_one(false)? {}
        self.inner.flush()
    }
}

/// A data member holding `data`: header with `CI`, the deflate data
/// (libdeflate, straight after the header, so nothing is copied), CRC32 and
/// ISIZE. The same bytes a streaming deflate would frame; only the deflate
/// encoder differs, so every gzip reader and older cloudimg read it.
fn data_member(level: u32, data: &[u8]) -> io::Result<Vec<u8>> {
    let ulen = u32::try_from(data.len()).map_err(|_| io::Error::other("chunk over 4 GiB"))?;
    // The member length is patched in once the deflate data is known.
    let mut extra = [0u8; 8];
    extra[4..].copy_from_slice(&ulen.to_le_bytes());
    let mut m = header::with_extra(level, 0, ID_MEMBER, &extra);
    let at = m.len() - 8;
    deflate_append(level, data, &mut m)?;
    m.extend_from_slice(&header::trailer(crc32fast::hash(data), data.len() as u64));
    let member_len = u32::try_from(m.len()).map_err(|_| io::Error::other("member over 4 GiB"))?;
    m[at..at + 4].copy_from_slice(&member_len.to_le_bytes());
    Ok(m)
}

/// A gzip member with no content whose header carries subfield `id`.
fn empty_member(level: u32, id: [u8; 2], data: &[u8]) -> Vec<u8> {
    let mut m = header::with_extra(level, 0, id, data);
    m.extend_from_slice(&EMPTY_DEFLATE);
    m.extend_from_slice(&header::trailer(0, 0));
    m
}

/// Positional reads from a byte source: a file, memory, or an object read by range.
pub trait ReadAt: Send + Sync {
    /// Fills `buf` from `offset`, failing when the source is shorter.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
}

#[cfg(unix)]
impl ReadAt for std::fs::File {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, offset)
    }
}

impl ReadAt for [u8] {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let start = usize::try_from(offset).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let end = start.checked_add(buf.len()).filter(|&e| e <= self.len());
        let end = end.ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(&self[start..end]);
        Ok(())
    }
}

impl ReadAt for Vec<u8> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.as_slice().read_exact_at(buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for std::sync::Arc<T> {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        (**self).read_exact_at(buf, offset)
    }
}

/// Reads an indexed gzip by range, decompressing members in parallel.
///
/// Threads are started per call ([`IndexedReader::copy_to`],
/// [`IndexedReader::read_range`]) and end with it: no pool sits idle (or
/// spins, as rayon's idle workers do) between calls.
pub struct IndexedReader<S: ReadAt> {
    src: S,
    index: Index,
    jobs: usize,
}

impl<S: ReadAt> IndexedReader<S> {
    /// Opens a stream of `len` bytes: reads the trailer and the index.
    pub fn open(src: S, len: u64, jobs: usize) -> Result<Self> {
        if len < TRAILER_LEN {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "too short for an indexed gzip",
            ));
        }
        let mut t = [0u8; TRAILER_LEN as usize];
        let at = len - TRAILER_LEN;
        src.read_exact_at(&mut t, at)
            .map_err(|e| Error::io("read gzip index trailer", e).at(at))?;
        let not_indexed = || {
            Error::new(
                ErrorKind::Unsupported,
                "not an indexed gzip (no CT trailer member)",
            )
            .at(at)
        };
        let p = find_extra(&t, ID_TRAILER)
            .filter(|p| p.len() == 16)
            .ok_or_else(not_indexed)?;
        let index_offset = u64::from_le_bytes(p[..8].try_into().expect("8"));
        let index_len = u64::from_le_bytes(p[8..].try_into().expect("8"));
        if index_offset.checked_add(index_len) != Some(at) || index_len > 1 << 30 {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "gzip index trailer points outside the stream",
            )
            .at(at));
        }
        let mut members = vec![0u8; index_len as usize];
        src.read_exact_at(&mut members, index_offset)
            .map_err(|e| Error::io("read gzip index", e).at(index_offset))?;
        let mut bytes = Vec::new();
        let mut rest = &members[..];
        while !rest.is_empty() {
            let piece = find_extra(rest, ID_INDEX).ok_or_else(|| {
                Error::new(ErrorKind::Corrupt, "gzip index member without CX subfield")
                    .at(index_offset)
            })?;
            bytes.extend_from_slice(piece);
            let mlen = 10 + 2 + 4 + piece.len() + EMPTY_DEFLATE.len() + 8;
            rest = rest.get(mlen..).unwrap_or(&[]);
        }
        let index = Index::from_bytes(&bytes)?;
        if index.compressed_len() != index_offset {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "gzip index does not end where the data ends",
            ));
        }
        Self::with_index(src, index, jobs)
    }

    /// Uses an index kept elsewhere (a separate object).
    pub fn with_index(src: S, index: Index, jobs: usize) -> Result<Self> {
        if jobs > 256 {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                format!("{jobs} decompression jobs is not 1-256"),
            ));
        }
        Ok(IndexedReader {
            src,
            index,
            jobs: jobs.max(1),
        })
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Fills `buf` with the uncompressed bytes at `offset`, reading only the
    /// covering members.
    pub fn read_range(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.index.uncompressed_len)
            .ok_or_else(|| {
                Error::new(
                    ErrorKind::InvalidArgument,
                    "range beyond the end of the stream",
                )
                .at(offset)
            })?;
        if buf.is_empty() {
            return Ok(());
        }
        let blocks = &self.index.blocks;
        let first = blocks
            .partition_point(|b| b.uncompressed_offset + u64::from(b.uncompressed_len) <= offset);
        let last = blocks.partition_point(|b| b.uncompressed_offset < end);
        let mut put = |data: &[u8], b: &Block| {
            let lo = offset.max(b.uncompressed_offset);
            let hi = end.min(b.uncompressed_offset + u64::from(b.uncompressed_len));
            let src =
                &data[(lo - b.uncompressed_offset) as usize..(hi - b.uncompressed_offset) as usize];
            buf[(lo - offset) as usize..(hi - offset) as usize].copy_from_slice(src);
        };
        self.each_block(&blocks[first..last], |data, b| {
            put(data, b);
            Ok(())
        })
    }

    /// Decompresses everything in order into `out` on the reader's threads;
    /// returns the byte count.
    ///
    /// Pipelined rather than batched: the calling thread reads member after
    /// member and writes results in order while the workers inflate the next
    /// few, so no worker waits at a batch boundary. With one job everything
    /// runs on the calling thread.
    pub fn copy_to<W: Write>(&self, mut out: W) -> Result<u64> {
        let mut written = 0u64;
        self.each_block(&self.index.blocks, |data, _| {
            out.write_all(data)
                .map_err(|e| Error::io("write decompressed data", e))?;
            written += data.len() as u64;
            Ok(())
        })?;
        Ok(written)
    }

    /// Inflates `blocks` (consecutive) on the reader's threads and hands
    /// each one's data to `put`, in order. The calling thread reads the
    /// members and inflates too while it waits; a few members are in flight.
    fn each_block(
        &self,
        blocks: &[Block],
        mut put: impl FnMut(&[u8], &Block) -> Result<()>,
    ) -> Result<()> {
        let mut inflating = Inflating::new(self.jobs)?;
        let mut done = 0;
        let mut out = |inflating: &mut Inflating, done: &mut usize| -> Result<()> {
            let data = inflating.next().expect("a member in flight")?;
            put(&data, &blocks[*done])?;
            *done += 1;
            inflating.recycle(data);
            Ok(())
        };
        for b in blocks {
            while !inflating.has_room(b.uncompressed_len) {
                out(&mut inflating, &mut done)?;
            }
            let mut member = inflating.input_buffer();
            member.resize(b.compressed_len as usize, 0);
            if let Err(e) = self.src.read_exact_at(&mut member, b.compressed_offset) {
                // The members before this one still go out first, in order.
                while done < blocks.len() && inflating.has_pending() {
                    out(&mut inflating, &mut done)?;
                }
                return Err(Error::io("read compressed member", e).at(b.compressed_offset));
            }
            inflating.submit(
                member,
                b.uncompressed_len,
                b.compressed_offset,
                b.uncompressed_offset,
            );
        }
        while inflating.has_pending() {
            out(&mut inflating, &mut done)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn sample(n: usize) -> Vec<u8> {
        (0..n).map(|i| ((i * 31) ^ (i >> 11)) as u8).collect()
    }

    fn write(data: &[u8], chunk: usize) -> (Vec<u8>, Index) {
        let opts = GzOptions {
            chunk_size: chunk,
            jobs: 2,
            ..GzOptions::default()
        };
        let mut w = IndexedGzWriter::new(Vec::new(), opts).unwrap();
        w.write_all(data).unwrap();
        let names = [NamedRange {
            name: "0.vhd".into(),
            offset: 100,
            len: 1000,
        }];
        let names = if data.len() >= 1100 { &names[..] } else { &[] };
        w.finish(names).unwrap()
    }

    #[test]
    fn plain_gunzip_sees_the_original() {
        let data = sample(1_000_000);
        let (gz, index) = write(&data, 64 * 1024);
        assert_eq!(index.blocks.len(), 16);
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn reads_any_range_and_the_index() {
        let data = sample(700_000);
        let (gz, index) = write(&data, 64 * 1024);
        let r = IndexedReader::open(&gz[..], gz.len() as u64, 2).unwrap();
        assert_eq!(r.index(), &index);
        assert_eq!(r.index().range("0.vhd").unwrap().len, 1000);
        for (off, len) in [
            (0, 10),
            (65_530, 20),
            (1, 699_999),
            (699_999, 1),
            (300_000, 0),
        ] {
            let mut buf = vec![0u8; len];
            r.read_range(off as u64, &mut buf).unwrap();
            assert_eq!(buf, &data[off..off + len]);
        }
        let mut all = Vec::new();
        assert_eq!(r.copy_to(&mut all).unwrap(), 700_000);
        assert_eq!(all, data);
        let mut buf = [0u8; 2];
        assert!(r.read_range(699_999, &mut buf).is_err());
    }

    #[test]
    fn index_round_trips_and_rejects_damage() {
        let (_, index) = write(&sample(200_000), 64 * 1024);
        let mut b = index.to_bytes();
        assert_eq!(Index::from_bytes(&b).unwrap(), index);
        b[20] ^= 1;
        assert_eq!(
            Index::from_bytes(&b).unwrap_err().kind(),
            ErrorKind::Corrupt
        );
    }

    #[test]
    fn empty_stream() {
        let (gz, index) = write(&[], 64 * 1024);
        assert!(index.blocks.is_empty());
        let mut back = Vec::new();
        flate2::read::MultiGzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
        IndexedReader::open(&gz[..], gz.len() as u64, 1).unwrap();
    }
}

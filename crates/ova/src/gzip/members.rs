//! Front-to-back parallel decompression of an indexed multi-member gzip
//! ([`super::indexed`]) read from any stream: a pipe, stdin, a file.
//!
//! Each data member's header says how long the member is (subfield `CI`), so
//! the reading thread can cut the stream into whole members without
//! inflating anything, hand them to worker threads, and give the output back
//! in order. At most a few members per worker (and a bounded number of
//! bytes) are in flight, so memory stays small whatever the stream's size.
//!
//! Every member is checked as it is inflated: the sizes in `CI`, that the
//! deflate data ends exactly at the trailer, the CRC32 and ISIZE. An error
//! names the member's offset in the compressed stream.
//!
//! The first member without a `CI` subfield (the index members at the end, or
//! anything another tool appended) hands the rest of the stream to an
//! ordinary sequential multi-member gzip decoder, so any valid gzip decodes to
//! what `gzip -dc` gives.

use super::header::{find_extra, FEXTRA, MAGIC};
use super::inflating::Inflating;
use super::member::{ID_MEMBER, MAX_CHUNK};
use crate::error::{Error, ErrorKind, Result};
use flate2::bufread::MultiGzDecoder;
use std::io::{self, BufRead, Chain, Cursor, Read};

/// Largest member we cut out of a stream: the largest chunk stored raw, plus headers.
const MAX_MEMBER: u64 = MAX_CHUNK as u64 + (MAX_CHUNK as u64 / 16_000) * 5 + (1 << 17);

/// True when `head` starts with a data member of the indexed form (a gzip
/// header whose extra field holds an 8-byte `CI` subfield).
pub fn is_indexed_head(head: &[u8]) -> bool {
    head.len() >= 4
        && head[3] == FEXTRA
        && find_extra(head, ID_MEMBER).is_some_and(|s| s.len() == 8)
}

/// Where the stream is.
enum State<R: BufRead> {
    /// Cutting `CI` members off `inner`.
    Members {
        inner: R,
        /// Header bytes of a member without `CI`: the sequential decoder takes over there.
        foreign: Option<Vec<u8>>,
        end: bool,
    },
    /// The rest of the stream, decoded sequentially.
    Fallback(Box<MultiGzDecoder<Chain<Cursor<Vec<u8>>, R>>>),
    /// Only while switching states.
    Switching,
}

/// A member read off the stream and not yet submitted.
struct Staged {
    member: Vec<u8>,
    ulen: u32,
    coff: u64,
    uoff: u64,
}

/// A `Read` of the decompressed contents of a (multi-member) gzip stream that
/// inflates indexed members on `jobs` threads and yields their data in order.
///
/// Threads: `jobs - 1` workers plus the calling thread, which inflates
/// queued members whenever the next one in order is not ready yet.
///
/// Memory: at most `4 x jobs` members (and `8 MiB x jobs` of output) in
/// flight, plus one member read ahead and as many spare buffers.
pub struct MemberReader<R: BufRead> {
    state: State<R>,
    inflating: Inflating,
    staged: Option<Staged>,
    cur: Vec<u8>,
    pos: usize,
    /// Bytes cut off `inner` so far (the next member's compressed offset).
    compressed: u64,
    /// Uncompressed bytes of the members submitted so far.
    uncompressed: u64,
    /// An error met while cutting members, raised once those before it are out.
    cut_error: Option<Error>,
    /// The first error, repeated on later reads.
    failed: Option<(ErrorKind, String, Option<u64>)>,
}

impl<R: BufRead> MemberReader<R> {
    /// Decodes `inner` (positioned at the first member) with `jobs` threads;
    /// `jobs == 1` inflates on the calling thread.
    pub fn new(inner: R, jobs: usize) -> Result<Self> {
        Ok(MemberReader {
            state: State::Members {
                inner,
                foreign: None,
                end: false,
            },
            inflating: Inflating::new(jobs)?,
            staged: None,
            cur: Vec::new(),
            pos: 0,
            compressed: 0,
            uncompressed: 0,
            cut_error: None,
            failed: None,
        })
    }

    /// The underlying stream.
    pub fn get_ref(&self) -> &R {
        match &self.state {
            State::Members { inner, .. } => inner,
            State::Fallback(d) => d.get_ref().get_ref().1,
            State::Switching => unreachable!("state restored before returning"),
        }
    }

    /// True once a member without `CI` made the rest of the stream sequential.
    pub fn fell_back(&self) -> bool {
        matches!(self.state, State::Fallback(_))
    }

    /// Gives back the underlying stream (whatever was not read of it yet).
    pub fn into_inner(self) -> R {
        match self.state {
            State::Members { inner, .. } => inner,
            State::Fallback(d) => d.into_inner().into_inner().1,
            State::Switching => unreachable!("state restored before returning"),
        }
    }

    /// Reads the next member off the stream: `Ok(None)` at a clean end or at
    /// a member without `CI` (kept in `foreign`).
    fn cut_member(&mut self) -> Result<Option<Staged>> {
        let State::Members {
            inner,
            foreign,
            end,
        } = &mut self.state
        else {
            return Ok(None);
        };
        if *end || foreign.is_some() {
            return Ok(None);
        }
        let coff = self.compressed;
        let read_err = |e: io::Error| Error::io("read compressed stream", e).at(coff);
        let mut head = vec![0u8; 12];
        let n = read_full(inner, &mut head).map_err(read_err)?;
        if n == 0 {
            *end = true;
            return Ok(None);
        }
        head.truncate(n);
        if n < 12 || head[..2] != MAGIC || head[2] != 8 || head[3] != FEXTRA {
            *foreign = Some(head);
            return Ok(None);
        }
        let xlen = usize::from(u16::from_le_bytes([head[10], head[11]]));
        head.resize(12 + xlen, 0);
        let n = read_full(inner, &mut head[12..]).map_err(read_err)?;
        if n < xlen {
            head.truncate(12 + n);
            *foreign = Some(head);
            return Ok(None);
        }
        let Some(sub) = find_extra(&head, ID_MEMBER).filter(|s| s.len() == 8) else {
            *foreign = Some(head);
            return Ok(None);
        };
        let mlen = u64::from(u32::from_le_bytes(sub[..4].try_into().expect("4")));
        let ulen = u32::from_le_bytes(sub[4..].try_into().expect("4"));
        // Sizes we would not have written: not ours after all, so the
        // sequential decoder (which ignores the subfield) decides.
        let smallest = head.len() as u64 + 2 + 8;
        if ulen as usize > MAX_CHUNK || mlen < smallest || mlen > MAX_MEMBER {
            *foreign = Some(head);
            return Ok(None);
        }
        let have = head.len();
        let mut member = self.inflating.input_buffer();
        member.extend_from_slice(&head);
        member.resize(mlen as usize, 0);
        let n = read_full(inner, &mut member[have..]).map_err(read_err)?;
        if have + n < member.len() {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "gzip member at compressed offset {coff} (uncompressed offset {}): \
                     the stream ends {} bytes into this {mlen}-byte member",
                    self.uncompressed,
                    have + n
                ),
            )
            .at(coff));
        }
        self.compressed += mlen;
        let staged = Staged {
            member,
            ulen,
            coff,
            uoff: self.uncompressed,
        };
        self.uncompressed += u64::from(ulen);
        Ok(Some(staged))
    }

    /// Refills `cur`: false at the end of the members (the caller then reads
    /// the fallback decoder, when there is one).
    fn refill(&mut self) -> Result<bool> {
        loop {
            if self.staged.is_none() && self.cut_error.is_none() {
                // A read or framing error belongs after the members cut
                // before it: hold it until they are out.
                match self.cut_member() {
                    Ok(s) => self.staged = s,
                    Err(e) => self.cut_error = Some(e),
                }
            }
            match &self.staged {
                Some(s) if self.inflating.has_room(s.ulen) => {
                    let s = self.staged.take().expect("just matched");
                    self.inflating.submit(s.member, s.ulen, s.coff, s.uoff);
                }
                _ => break,
            }
        }
        if let Some(data) = self.inflating.next() {
            let used = std::mem::replace(&mut self.cur, data?);
            self.inflating.recycle(used);
            self.pos = 0;
            return Ok(true);
        }
        if let Some(e) = self.cut_error.take() {
            return Err(e);
        }
        // Nothing in flight and nothing staged: the members are done.
        if let State::Members {
            foreign: Some(_), ..
        } = &self.state
        {
            let State::Members { inner, foreign, .. } =
                std::mem::replace(&mut self.state, State::Switching)
            else {
                unreachable!("matched above")
            };
            let head = Cursor::new(foreign.expect("matched above"));
            self.state = State::Fallback(Box::new(MultiGzDecoder::new(head.chain(inner))));
        }
        Ok(false)
    }
}

impl<R: BufRead> Read for MemberReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some((kind, msg, at)) = &self.failed {
            let e = Error::new(*kind, msg.clone());
            let e = match at {
                Some(a) => e.at(*a),
                None => e,
            };
            return Err(e.into_io());
        }
        loop {
            if self.pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.pos);
                buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if let State::Fallback(d) = &mut self.state {
                return d.read(buf);
            }
            match self.refill() {
                Ok(true) => {}
                Ok(false) if self.fell_back() => {}
                Ok(false) => return Ok(0),
                Err(e) => {
                    self.failed = Some((e.kind(), e.message().to_string(), e.offset()));
                    return Err(e.into_io());
                }
            }
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

//! The XenServer package: a gzipped tar of a VHD chain named `0.vhd` (leaf)
//! .. `N-1.vhd` (base), as nova's and os-xenapi's glance plugins write it with
//! `tar -zc --directory=DIR .` and read it back.
//!
//! Reading accepts what they accept (`./` names, any member order, legacy
//! names, an ignored `swap.vhd`) and checks what they check: 0..n-1 without a
//! gap, a visible leaf, and each child's parent UUID equal to the next file's
//! UUID.

use crate::admit::admit;
use crate::error::{Error, ErrorKind, Result};
use crate::pack::{pack, PackInput, PackOptions, PackReport};
use crate::source::{Decoder, Limits, StreamStats};
use crate::tar::TarReader;
use crate::vhdmeta::{Sniffer, VhdSummary};
use std::io::{self, Read, Write};

/// One VHD of the chain as found in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainMember {
    /// The member name as stored (`./0.vhd`, `image.vhd`, ...).
    pub archive_name: String,
    /// Position in the chain: 0 is the leaf.
    pub index: usize,
    pub size: u64,
    pub vhd: VhdSummary,
}

/// Sorts `chain` leaf first and checks it links up: a visible leaf, every
/// member but the base differencing with its parent UUID equal to the next
/// member's UUID, and a base that is not itself differencing.
pub fn check_chain(chain: &mut [ChainMember]) -> Result<()> {
    chain.sort_by_key(|m| m.index);
    for (i, m) in chain.iter().enumerate() {
        if m.index != i {
            return Err(Error::new(
                ErrorKind::Layout,
                format!("chain has a gap: {i}.vhd is missing"),
            ));
        }
    }
    let Some(leaf) = chain.first() else {
        return Err(Error::new(
            ErrorKind::Layout,
            "no VHD in the package (expected 0.vhd)",
        ));
    };
    if leaf.vhd.hidden {
        return Err(Error::new(
            ErrorKind::Layout,
            "the leaf VHD is hidden (footer byte 85 set): it is an interior node, not an image",
        )
        .member(leaf.archive_name.clone()));
    }
    for pair in chain.windows(2) {
        let (child, parent) = (&pair[0], &pair[1]);
        match child.vhd.parent_uuid {
            None => {
                return Err(Error::new(
                    ErrorKind::Layout,
                    format!(
                        "{}.vhd is not a differencing disk but {}.vhd follows it",
                        child.index, parent.index
                    ),
                )
                .member(child.archive_name.clone()))
            }
            Some(p) if p != parent.vhd.uuid => {
                return Err(Error::new(
                    ErrorKind::Layout,
                    format!(
                        "{}.vhd names parent {p} but {}.vhd is {}",
                        child.index, parent.index, parent.vhd.uuid
                    ),
                )
                .member(child.archive_name.clone()))
            }
            Some(_) => {}
        }
    }
    let base = chain.last().expect("not empty");
    if base.vhd.is_differencing() {
        return Err(Error::new(
            ErrorKind::Layout,
            format!(
                "the base {}.vhd is a differencing disk whose parent {} is not in the package",
                base.index,
                base.vhd.parent_uuid.expect("differencing")
            ),
        )
        .member(base.archive_name.clone()));
    }
    Ok(())
}

/// One layer to pack: its length (known before the first byte) and its bytes.
pub struct Layer<'a> {
    pub len: u64,
    pub data: Box<dyn Read + 'a>,
}

/// Packs a chain (leaf first) as `0.vhd` .. `N-1.vhd` into `out`, streaming.
pub fn pack_chain<W: Write>(
    out: W,
    chain: Vec<Layer<'_>>,
    opts: &PackOptions,
) -> Result<(PackReport, W)> {
    let inputs = chain
        .into_iter()
        .enumerate()
        .map(|(i, l)| PackInput {
            name: format!("{i}.vhd"),
            len: l.len,
            data: l.data,
        })
        .collect();
    pack(out, inputs, opts)
}

/// Reads a XenServer package front to back, yielding each VHD member as a
/// `Read` in archive order; [`XenStream::finish`] then checks the chain and
/// the stream. Members must be consumed in order; whatever a caller leaves
/// unread is read (and checked) on the next call.
pub struct XenStream<R: Read> {
    tar: TarReader<Decoder<R>>,
    limits: Limits,
    count: usize,
    members: Vec<Seen>,
    /// Index into `members` of the member being read, when it is a VHD.
    open: Option<usize>,
}

struct Seen {
    archive_name: String,
    name: String,
    size: u64,
    sniff: Sniffer,
}

/// A VHD member being streamed.
pub struct StreamMember<'a, R: Read> {
    stream: &'a mut XenStream<R>,
    slot: usize,
}

impl<R: Read> XenStream<R> {
    /// Starts reading `source` (gzipped or plain tar).
    pub fn new(source: R, limits: Limits) -> Result<Self> {
        Ok(XenStream {
            tar: TarReader::new(Decoder::new(source, limits, true, None)?),
            limits,
            count: 0,
            members: Vec::new(),
            open: None,
        })
    }

    /// The next `*.vhd` member other than `swap.vhd`, or `None` at the end.
    pub fn next_member(&mut self) -> Result<Option<StreamMember<'_, R>>> {
        self.finish_open()?;
        loop {
            let Some(entry) = self.tar.next_entry()? else {
                return Ok(None);
            };
            self.count += 1;
            let shown = entry.name();
            let at = entry.header_offset;
            let members = &self.members;
            let Some(name) = admit(&entry.header, self.count, &self.limits, |n| {
                members.iter().any(|m| m.name == n)
            })
            .map_err(|e| e.member(shown.clone()).at(at))?
            else {
                continue;
            };
            let size = entry.header.size;
            self.members.push(Seen {
                archive_name: shown,
                name: name.clone(),
                size,
                sniff: Sniffer::new(),
            });
            if name.ends_with(".vhd") && name != "swap.vhd" {
                let slot = self.members.len() - 1;
                self.open = Some(slot);
                return Ok(Some(StreamMember { stream: self, slot }));
            }
        }
    }

    /// Reads the rest of the open member through its sniffer.
    fn finish_open(&mut self) -> Result<()> {
        let Some(slot) = self.open.take() else {
            return Ok(());
        };
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let at = self.tar.position();
            let n = self.tar.read_data(&mut buf).map_err(|e| {
                Error::io("read member", e)
                    .member(self.members[slot].archive_name.clone())
                    .at(at)
            })?;
            if n == 0 {
                return Ok(());
            }
            self.members[slot].sniff.update(&buf[..n]);
        }
    }

    /// Reads to the end, checks names and chain, and returns the chain (leaf
    /// first) with the stream statistics (MD5 and SHA256 of the compressed input).
    pub fn finish(mut self) -> Result<(Vec<ChainMember>, StreamStats)> {
        while self.next_member()?.is_some() {}
        let names: Vec<&str> = self.members.iter().map(|m| m.name.as_str()).collect();
        let indices = crate::names::xenserver_indices(&names)?;
        let mut chain = Vec::new();
        for (name, index) in indices {
            let m = self
                .members
                .iter()
                .find(|m| m.name == name)
                .expect("listed");
            let vhd = m
                .sniff
                .summary()
                .map_err(|why| Error::new(ErrorKind::NotVhd, why).member(m.archive_name.clone()))?;
            chain.push(ChainMember {
                archive_name: m.archive_name.clone(),
                index,
                size: m.size,
                vhd,
            });
        }
        check_chain(&mut chain)?;
        let rest = self.tar.position();
        let decoder = self.tar.into_inner();
        let stats = decoder.finish().map_err(|e| e.at(rest))?;
        Ok((chain, stats))
    }
}

impl<R: Read> StreamMember<'_, R> {
    /// The member name as stored.
    pub fn archive_name(&self) -> &str {
        &self.stream.members[self.slot].archive_name
    }

    /// The name with `./` stripped (before any legacy renaming, which needs
    /// the whole archive and is settled by [`XenStream::finish`]).
    pub fn name(&self) -> &str {
        &self.stream.members[self.slot].name
    }

    /// Data bytes in the member.
    pub fn size(&self) -> u64 {
        self.stream.members[self.slot].size
    }
}

impl<R: Read> Read for StreamMember<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stream.tar.read_data(buf)?;
        self.stream.members[self.slot].sniff.update(&buf[..n]);
        Ok(n)
    }
}

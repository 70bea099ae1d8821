//! Safe extraction of untrusted (gzipped) tarballs into a folder.
//!
//! Only flat regular files are created. Absolute names, `..`, links, devices,
//! fifos and duplicate names are refused; the member count, member sizes, the
//! total size and the compression ratio are capped. Files are written under
//! temporary names and renamed (never over an existing file) only after the
//! whole stream was read, its digests matched and the layout checked; on any
//! failure everything created is removed again.

use crate::admit::admit;
use crate::error::{Error, ErrorKind, Result};
use crate::pipe::pipe;
use crate::source::{verify, Decoder, Expected, Limits, ProgressFn, StreamStats};
use crate::tar::TarReader;
use crate::vhdmeta::Sniffer;
use crate::xenserver::{check_chain, ChainMember};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// What the archive must be, beyond safe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Layout {
    /// Any flat set of regular files.
    #[default]
    Any,
    /// The XenServer chain: `0.vhd` .. `N-1.vhd` (legacy names renamed), linked by UUID.
    XenServer,
    /// A standard OVA: descriptor first, manifest digests checked.
    Ova,
    /// An OVA when the first member is a `.ovf`, else the XenServer chain when
    /// there is any `.vhd`, else any files.
    Auto,
}

/// How to unpack.
#[derive(Clone, Default)]
pub struct UnpackOptions {
    pub limits: Limits,
    pub expected: Expected,
    pub layout: Layout,
    /// Compute the SHA256 of the compressed stream even when none is expected.
    pub sha256: bool,
    /// Called with the compressed bytes read so far.
    pub progress: Option<ProgressFn>,
    /// Threads inflating an indexed multi-member gzip (0: all cores, 1: the
    /// decompressing thread only). Other streams decompress on one thread.
    pub jobs: usize,
    /// Called at the named instants crash tests stop a process at (`unpack:mid-stream`,
    /// `unpack:before-publish`, `unpack:mid-publish`); the binary passes
    /// `cloudimg_pipeline::crashpoint::hit`.
    #[doc(hidden)]
    pub crash_hook: Option<fn(&str)>,
}

/// One file created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackedMember {
    /// The name as stored in the archive.
    pub archive_name: String,
    /// The file name created in the target folder (legacy XenServer names renamed).
    pub name: String,
    pub size: u64,
    /// Offset of the data in the uncompressed archive.
    pub data_offset: u64,
    /// SHA256 of the content (computed for OVAs).
    pub sha256: Option<String>,
}

/// What an unpack did.
#[derive(Debug, Clone)]
pub struct UnpackReport {
    pub members: Vec<UnpackedMember>,
    pub stream: StreamStats,
    /// The chain, leaf first, for the XenServer layout.
    pub chain: Option<Vec<ChainMember>>,
    /// The descriptor, for an OVA.
    pub ova: Option<crate::ovf::OvaInfo>,
}

/// A member written to a temporary file, with what we learnt while writing it.
struct Pending {
    archive_name: String,
    name: String,
    temp: PathBuf,
    size: u64,
    data_offset: u64,
    sniff: Option<Sniffer>,
    sha256: Option<String>,
    sha1: Option<String>,
    /// Small text members (descriptor, manifest) kept for checking.
    text: Option<Vec<u8>>,
}

/// Everything created so far, removed again unless committed.
struct Created {
    dir: PathBuf,
    made_dir: bool,
    temps: Vec<PathBuf>,
    finals: Vec<PathBuf>,
    committed: bool,
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        for p in self.temps.iter().chain(&self.finals) {
            let _ = fs::remove_file(p);
        }
        if self.made_dir {
            let _ = fs::remove_dir(&self.dir);
        }
    }
}

/// Longest member kept in memory to check (OVF descriptor, manifest).
const MAX_TEXT: u64 = 4 << 20;

/// Unpacks `source` (gzipped or plain tar) into `dir` (created when missing).
pub fn unpack<R: Read + Send>(source: R, dir: &Path, opts: &UnpackOptions) -> Result<UnpackReport> {
    let made_dir = match fs::metadata(dir) {
        Ok(m) if m.is_dir() => false,
        Ok(_) => {
            return Err(
                Error::new(ErrorKind::InvalidArgument, "target is not a directory").path(dir),
            )
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir(dir).map_err(|e| Error::io("create target directory", e).path(dir))?;
            true
        }
        Err(e) => return Err(Error::io("inspect target directory", e).path(dir)),
    };
    remove_stray_temps(dir);
    let mut created = Created {
        dir: dir.to_path_buf(),
        made_dir,
        temps: Vec::new(),
        finals: Vec::new(),
        committed: false,
    };
    let (writer, reader) = pipe();
    let want_sha = opts.sha256 || opts.expected.sha256.is_some();
    let (pending, stats) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || -> Result<StreamStats> {
            let mut dec = Decoder::with_jobs(
                source,
                opts.limits,
                want_sha,
                opts.progress.clone(),
                opts.jobs,
            )
            .inspect_err(|e| writer.fail(Error::new(e.kind(), e.to_string()).into_io()))?;
            match writer.pump(&mut dec) {
                Ok(()) => dec.finish(),
                Err(e) => Err(Error::io("decompress", e)),
            }
        });
        let extracted = extract(reader, dir, opts, &mut created);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Io, "decompression thread panicked")));
        // The extractor's error names the member; prefer it.
        let pending = extracted?;
        Ok::<_, Error>((pending, produced?))
    })?;
    verify(&stats, &opts.expected)?;
    let (chain, ova) = check_layout(&pending, opts.layout)?;
    hit(opts, "unpack:before-publish");
    let members = commit(pending, &chain, &mut created, opts)?;
    created.committed = true;
    Ok(UnpackReport {
        members,
        stream: stats,
        chain,
        ova,
    })
}

/// Reads the tar stream, writing each member to a temporary file.
fn extract(
    input: crate::pipe::PipeReader,
    dir: &Path,
    opts: &UnpackOptions,
    created: &mut Created,
) -> Result<Vec<Pending>> {
    let limits = &opts.limits;
    let mut tar = TarReader::new(input);
    let mut pending: Vec<Pending> = Vec::new();
    let mut count = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let mut layout = opts.layout;
    while let Some(mut entry) = tar.next_entry()? {
        count += 1;
        let shown = entry.name();
        let at = entry.header_offset;
        let Some(file_name) = admit(&entry.header, count, limits, |n| {
            pending.iter().any(|p| p.name == n)
        })
        .map_err(|e| e.member(shown.clone()).at(at))?
        else {
            continue;
        };
        let size = entry.header.size;
        if layout == Layout::Auto && pending.is_empty() && file_name.ends_with(".ovf") {
            layout = Layout::Ova;
        }
        let temp = dir.join(format!(
            ".cloudimg-unpack-{}-{}.part",
            cloudimg_liveness::tag(),
            pending.len()
        ));
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
            // Named by the folder the caller gave: the temporary name is ours.
            .map_err(|e| Error::io("create temporary file", e).path(dir))?;
        created.temps.push(temp.clone());
        let mut sniff = file_name.ends_with(".vhd").then(Sniffer::new);
        let mut sha = (layout == Layout::Ova).then(Sha256::new);
        // OVF 1.x manifests from older tools use SHA1; the manifest comes after
        // the descriptor, so both digests are kept for every member of an OVA.
        let mut sha1 = (layout == Layout::Ova).then(sha1::Sha1::new);
        let is_text = layout == Layout::Ova
            && (file_name.ends_with(".ovf") || file_name.ends_with(".mf"))
            && size <= MAX_TEXT;
        let mut text = is_text.then(Vec::new);
        let data_offset = entry.data_offset;
        loop {
            let pos = entry.position();
            let n = match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(Error::io("read member", e).member(shown.clone()).at(pos)),
            };
            let piece = &buf[..n];
            if let Some(s) = &mut sniff {
                s.update(piece);
            }
            if let Some(h) = &mut sha {
                h.update(piece);
            }
            if let Some(h) = &mut sha1 {
                h.update(piece);
            }
            if let Some(t) = &mut text {
                t.extend_from_slice(piece);
            }
            write_all(&mut file, piece).map_err(|e| e.member(shown.clone()).path(dir))?;
            hit(opts, "unpack:mid-stream");
        }
        drop(file);
        pending.push(Pending {
            archive_name: shown,
            name: file_name,
            temp,
            size,
            data_offset,
            sniff,
            sha256: sha.map(|h| hex::encode(h.finalize())),
            sha1: sha1.map(|h| hex::encode(h.finalize())),
            text,
        });
    }
    // Drain the rest so the gzip trailer is checked and the hashes see every byte.
    let rest = tar.position();
    io::copy(tar.get_mut(), &mut io::sink())
        .map_err(|e| Error::io("read after end of archive", e).at(rest))?;
    Ok(pending)
}

fn write_all(file: &mut File, data: &[u8]) -> Result<()> {
    file.write_all(data)
        .map_err(|e| Error::io("write unpacked file", e))
}

type Checked = (Option<Vec<ChainMember>>, Option<crate::ovf::OvaInfo>);

fn check_layout(pending: &[Pending], layout: Layout) -> Result<Checked> {
    let layout = match layout {
        Layout::Auto if pending.first().is_some_and(|p| p.name.ends_with(".ovf")) => Layout::Ova,
        Layout::Auto if pending.iter().any(|p| p.name.ends_with(".vhd")) => Layout::XenServer,
        Layout::Auto => Layout::Any,
        other => other,
    };
    match layout {
        Layout::Any | Layout::Auto => Ok((None, None)),
        Layout::XenServer => {
            let names: Vec<&str> = pending.iter().map(|p| p.name.as_str()).collect();
            let indices = crate::names::xenserver_indices(&names)?;
            let mut chain = Vec::new();
            for (name, index) in indices {
                let p = pending
                    .iter()
                    .find(|p| p.name == name)
                    .expect("from the list");
                let vhd = p
                    .sniff
                    .as_ref()
                    .expect("sniffed every .vhd")
                    .summary()
                    .map_err(|why| {
                        Error::new(ErrorKind::NotVhd, why).member(p.archive_name.clone())
                    })?;
                chain.push(ChainMember {
                    archive_name: p.archive_name.clone(),
                    index,
                    size: p.size,
                    vhd,
                });
            }
            check_chain(&mut chain)?;
            Ok((Some(chain), None))
        }
        Layout::Ova => {
            let files: Vec<crate::ovf::UnpackedFile<'_>> = pending
                .iter()
                .map(|p| crate::ovf::UnpackedFile {
                    name: &p.name,
                    size: p.size,
                    sha256: p.sha256.as_deref(),
                    sha1: p.sha1.as_deref(),
                    text: p.text.as_deref(),
                })
                .collect();
            Ok((None, Some(crate::ovf::check_unpacked(&files)?)))
        }
    }
}

/// Renames the temporary files to their final names, never replacing a file.
fn commit(
    pending: Vec<Pending>,
    chain: &Option<Vec<ChainMember>>,
    created: &mut Created,
    opts: &UnpackOptions,
) -> Result<Vec<UnpackedMember>> {
    let mut out = Vec::new();
    for p in pending {
        let name = chain
            .as_ref()
            .and_then(|c| c.iter().find(|m| m.archive_name == p.archive_name))
            .map_or_else(|| p.name.clone(), |m| format!("{}.vhd", m.index));
        let dest = created.dir.join(&name);
        if !out.is_empty() {
            hit(opts, "unpack:mid-publish");
        }
        if place(&p.temp, &dest)? {
            created.finals.push(dest);
        }
        created.temps.retain(|t| *t != p.temp);
        out.push(UnpackedMember {
            archive_name: p.archive_name,
            name,
            size: p.size,
            data_offset: p.data_offset,
            sha256: p.sha256,
        });
    }
    Ok(out)
}

/// Moves `temp` to `dest` unless `dest` exists: a hard link is the atomic
/// "create only if absent" rename; filesystems without links get a checked rename.
/// A `dest` that already holds exactly these bytes (what a run killed while placing
/// its files left) counts as placed: the temporary file goes, `Ok(false)` says the
/// file was not created now. Any other existing file is refused.
fn place(temp: &Path, dest: &Path) -> Result<bool> {
    match fs::hard_link(temp, dest) {
        Ok(()) => fs::remove_file(temp)
            .map(|()| true)
            .map_err(|e| Error::io("remove temporary file", e).path(temp)),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if same_bytes(temp, dest) {
                fs::remove_file(temp)
                    .map_err(|e| Error::io("remove temporary file", e).path(temp))?;
                return Ok(false);
            }
            Err(Error::new(
                ErrorKind::InvalidArgument,
                "refusing to replace an existing file",
            )
            .path(dest))
        }
        Err(_) => {
            if dest.symlink_metadata().is_ok() {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "refusing to replace an existing file",
                )
                .path(dest));
            }
            fs::rename(temp, dest)
                .map(|()| true)
                .map_err(|e| Error::io("rename unpacked file", e).path(dest))
        }
    }
}

/// True when `a` and `b` are regular files with equal contents.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (Ok(ma), Ok(mb)) = (fs::metadata(a), b.symlink_metadata()) else {
        return false;
    };
    if !mb.is_file() || ma.len() != mb.len() {
        return false;
    }
    let (Ok(fa), Ok(fb)) = (File::open(a), File::open(b)) else {
        return false;
    };
    let (mut ra, mut rb) = (io::BufReader::new(fa), io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = match ra.read(&mut ba) {
            Ok(n) => n,
            Err(_) => return false,
        };
        if n == 0 {
            return true;
        }
        if rb.read_exact(&mut bb[..n]).is_err() || ba[..n] != bb[..n] {
            return false;
        }
    }
}

/// Removes the temporary files `.cloudimg-unpack-<writer>-<n>.part` of killed unpacks
/// into `dir` (their writer, a [`cloudimg_liveness::tag`], no longer runs); they are
/// hidden and never served, this only frees their space.
fn remove_stray_temps(dir: &Path) {
    cloudimg_liveness::remove_left_by_dead(dir, |n| {
        let rest = n.strip_prefix(".cloudimg-unpack-")?.strip_suffix(".part")?;
        Some(rest.rsplit_once('-')?.0)
    });
}

fn hit(opts: &UnpackOptions, point: &str) {
    if let Some(h) = opts.crash_hook {
        h(point);
    }
}

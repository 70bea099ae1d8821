//! The undo journal of an in-place coalesce, kept beside the parent.
//!
//! Before the first byte of the parent changes, every byte range the merge will
//! overwrite (head footer, header, BAT, tail footer, the bitmaps and the data
//! sectors of blocks that get child sectors) is copied into
//! `<parent>.cloudimg-journal` with the parent's original length, the whole
//! protected by a CRC-32. The journal is written under a temporary name,
//! fsynced and renamed into place, so it either exists complete or not at all.
//! Appended blocks need no copy: truncating to the original length removes them.
//!
//! While the journal exists the parent may be half merged, so everything that
//! opens it through this crate's writers refuses with [`ErrorKind::Journal`];
//! [`rollback`] restores the original bytes (idempotent, so it can itself be
//! interrupted and rerun).

use super::faults::Faults;
pub use crate::journaled::{journal_path, refuse_if_journaled};
use crate::{Error, ErrorKind, Result};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"CIMGJRN1";
/// Largest record accepted when reading a journal back (a record is one run).
const MAX_RECORD: u32 = 256 << 20;

fn tmp_path(parent: &Path) -> PathBuf {
    let mut p = journal_path(parent).into_os_string();
    p.push(".tmp");
    PathBuf::from(p)
}

/// What a journal says beyond its byte ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalInfo {
    /// The parent's length before the merge.
    pub original_len: u64,
    /// The child being merged, relative to the parent's folder.
    pub child: PathBuf,
    /// The child's UUID, to make sure a resume merges the same child.
    pub child_uuid: uuid::Uuid,
}

/// Builds a journal: header, then records of original bytes, then the CRC.
pub(crate) struct JournalWriter<'f> {
    parent: PathBuf,
    out: BufWriter<File>,
    crc: crc32fast::Hasher,
    faults: &'f Faults,
}

impl<'f> JournalWriter<'f> {
    pub(crate) fn create(
        parent: &Path,
        info: &JournalInfo,
        faults: &'f Faults,
    ) -> Result<JournalWriter<'f>> {
        let tmp = tmp_path(parent);
        faults.point()?;
        let file = File::create(&tmp).map_err(|e| Error::io("create journal", e).path(&tmp))?;
        let mut w = JournalWriter {
            parent: parent.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, file),
            crc: crc32fast::Hasher::new(),
            faults,
        };
        let child = info.child.to_string_lossy().into_owned().into_bytes();
        let mut head = Vec::new();
        head.extend_from_slice(MAGIC);
        head.extend_from_slice(&info.original_len.to_le_bytes());
        head.extend_from_slice(info.child_uuid.as_bytes());
        head.extend_from_slice(&(child.len() as u32).to_le_bytes());
        head.extend_from_slice(&child);
        w.put(&head)?;
        Ok(w)
    }

    fn put(&mut self, b: &[u8]) -> Result<()> {
        self.crc.update(b);
        self.out
            .write_all(b)
            .map_err(|e| Error::io("write journal", e).path(tmp_path(&self.parent)))
    }

    /// Records the original `data` found at `offset` of the parent.
    pub(crate) fn record(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        self.faults.point()?;
        let mut h = [0u8; 12];
        h[..8].copy_from_slice(&offset.to_le_bytes());
        h[8..].copy_from_slice(&(data.len() as u32).to_le_bytes());
        self.put(&h)?;
        self.put(data)
    }

    /// Seals, fsyncs and renames the journal into place: from here on the
    /// parent may be changed.
    pub(crate) fn commit(mut self) -> Result<()> {
        let mut end = [0u8; 12];
        end[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        self.put(&end)?;
        let crc = self.crc.clone().finalize();
        let tmp = tmp_path(&self.parent);
        self.out
            .write_all(&crc.to_le_bytes())
            .map_err(|e| Error::io("write journal", e).path(&tmp))?;
        let file = self
            .out
            .into_inner()
            .map_err(|e| Error::io("write journal", e.into_error()).path(&tmp))?;
        self.faults.point()?;
        file.sync_all()
            .map_err(|e| Error::io("fsync journal", e).path(&tmp))?;
        self.faults.point()?;
        let j = journal_path(&self.parent);
        std::fs::rename(&tmp, &j).map_err(|e| Error::io("rename journal", e).path(&j))?;
        sync_dir(&j)
    }
}

/// Fsyncs the folder holding `path`, so a rename or removal in it is durable.
pub(crate) fn sync_dir(path: &Path) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("fsync folder", e).path(dir))
}

/// A journal whose checksum has been verified.
pub(crate) struct Journal {
    pub info: JournalInfo,
    path: PathBuf,
    records_at: u64,
    body_len: u64,
}

fn damaged(path: &Path, msg: &str) -> Error {
    Error::new(ErrorKind::Journal, format!("journal is damaged: {msg}")).path(path)
}

impl Journal {
    /// Opens and verifies the journal of `parent`, streaming it once for the
    /// CRC (it can be as large as the child's data, so it is never held whole).
    pub(crate) fn read(parent: &Path) -> Result<Journal> {
        let j = journal_path(parent);
        let mut f = File::open(&j).map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::InvalidArgument
            } else {
                ErrorKind::Io
            };
            Error::new(kind, format!("no journal to use: {e}")).path(&j)
        })?;
        let len = f
            .metadata()
            .map_err(|e| Error::io("stat journal", e).path(&j))?
            .len();
        if len < 8 + 8 + 16 + 4 + 12 + 4 {
            return Err(damaged(&j, "too short"));
        }
        let body_len = len - 4;
        let mut crc = crc32fast::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut head = Vec::new();
        let mut left = body_len;
        while left > 0 {
            let n = left.min(buf.len() as u64) as usize;
            f.read_exact(&mut buf[..n])
                .map_err(|e| Error::io("read journal", e).path(&j))?;
            crc.update(&buf[..n]);
            if head.len() < 64 * 1024 {
                head.extend_from_slice(&buf[..n.min(64 * 1024)]);
            }
            left -= n as u64;
        }
        let mut tail = [0u8; 4];
        f.read_exact(&mut tail)
            .map_err(|e| Error::io("read journal", e).path(&j))?;
        if crc.finalize() != u32::from_le_bytes(tail) {
            return Err(damaged(&j, "checksum mismatch"));
        }
        if &head[..8] != MAGIC {
            return Err(damaged(&j, "bad magic"));
        }
        let original_len = u64::from_le_bytes(head[8..16].try_into().expect("8"));
        let child_uuid = uuid::Uuid::from_bytes(head[16..32].try_into().expect("16"));
        let n = u32::from_le_bytes(head[32..36].try_into().expect("4")) as usize;
        let child = head
            .get(36..36 + n)
            .ok_or_else(|| damaged(&j, "child path too long"))?;
        let child = PathBuf::from(String::from_utf8_lossy(child).into_owned());
        Ok(Journal {
            info: JournalInfo {
                original_len,
                child,
                child_uuid,
            },
            path: j,
            records_at: 36 + n as u64,
            body_len,
        })
    }

    /// Calls `f(offset, original bytes)` for every record, in order.
    fn for_each_record(&self, mut f: impl FnMut(u64, &[u8]) -> Result<()>) -> Result<()> {
        use std::io::{BufReader, Seek, SeekFrom};
        let file =
            File::open(&self.path).map_err(|e| Error::io("open journal", e).path(&self.path))?;
        let mut r = BufReader::with_capacity(1 << 20, file);
        r.seek(SeekFrom::Start(self.records_at))
            .map_err(|e| Error::io("read journal", e).path(&self.path))?;
        let mut at = self.records_at;
        let mut data = Vec::new();
        loop {
            let mut h = [0u8; 12];
            if at + 12 > self.body_len {
                return Err(damaged(&self.path, "record past the end"));
            }
            r.read_exact(&mut h)
                .map_err(|e| Error::io("read journal", e).path(&self.path))?;
            at += 12;
            let offset = u64::from_le_bytes(h[..8].try_into().expect("8"));
            let len = u32::from_le_bytes(h[8..].try_into().expect("4"));
            if offset == u64::MAX {
                return Ok(());
            }
            if len > MAX_RECORD || at + u64::from(len) > self.body_len {
                return Err(damaged(&self.path, "record too long"));
            }
            data.resize(len as usize, 0);
            r.read_exact(&mut data)
                .map_err(|e| Error::io("read journal", e).path(&self.path))?;
            at += u64::from(len);
            f(offset, &data)?;
        }
    }
}

/// Restores the parent's original bytes from its journal, then removes the
/// journal. Safe to rerun after an interruption.
pub fn rollback(parent: &Path) -> Result<JournalInfo> {
    rollback_with(parent, &Faults::none())
}

pub(crate) fn rollback_with(parent: &Path, faults: &Faults) -> Result<JournalInfo> {
    let journal = Journal::read(parent)?;
    let file = OpenOptions::new()
        .write(true)
        .open(parent)
        .map_err(|e| Error::io("open parent for rollback", e).path(parent))?;
    journal.for_each_record(|offset, data| {
        faults.point()?;
        file.write_all_at(data, offset)
            .map_err(|e| Error::io("restore parent", e).path(parent).at(offset))
    })?;
    faults.point()?;
    file.set_len(journal.info.original_len)
        .map_err(|e| Error::io("truncate parent", e).path(parent))?;
    faults.point()?;
    file.sync_all()
        .map_err(|e| Error::io("fsync parent", e).path(parent))?;
    faults.point()?;
    let j = journal_path(parent);
    std::fs::remove_file(&j).map_err(|e| Error::io("remove journal", e).path(&j))?;
    sync_dir(&j)?;
    Ok(journal.info)
}

/// Removes the journal after a completed merge.
pub(crate) fn finish(parent: &Path, faults: &Faults) -> Result<()> {
    faults.point()?;
    let j = journal_path(parent);
    std::fs::remove_file(&j).map_err(|e| Error::io("remove journal", e).path(&j))?;
    sync_dir(&j)
}

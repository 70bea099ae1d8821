//! One VHD file: its footer, dynamic header, BAT and parent locators, opened
//! with just enough validation that reading it is safe.
//!
//! Opening bounds every offset and length the file gives before using it: the
//! header and the BAT must lie inside the file, the block size must be a power
//! of two between [`MIN_BLOCK_SIZE`] and [`MAX_BLOCK_SIZE`], the table must cover
//! the virtual size, and only the entries the size needs are loaded (at most
//! [`crate::bat::MAX_BAT_ENTRIES`]). Oddities that do not make reading unsafe
//! (a bad header checksum, a damaged tail footer when the head copy is good)
//! become [`Warning`]s. Then the checker's rules run on the same bytes
//! ([`crate::check::validate_io`], the one validation shared by `check` and every
//! reader): whatever `check` calls an error, a wrong checksum aside, refuses the open.

use crate::bat::{self, BAT_UNUSED};
use crate::bitmap::Bitmap;
use crate::format::footer::{self, Footer, FOOTER_SIZE};
use crate::format::header::{self, DynamicHeader, HEADER_SIZE};
use crate::format::locator::{PlatformCode, MAX_LOCATOR_DATA};
use crate::io::{FileIo, LayerIo};
use crate::{DiskType, Error, ErrorKind, Result, MAX_VIRTUAL_SIZE, SECTOR_SIZE};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub use crate::format::header::{MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};

/// Something odd about a file that does not stop it being read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// The field concerned, e.g. `footer.checksum`.
    pub field: &'static str,
    /// Absolute byte offset of the field, when it has one.
    pub offset: Option<u64>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at offset {o:#x}: {}", self.field, self.message),
            None => write!(f, "{}: {}", self.field, self.message),
        }
    }
}

/// A used parent locator entry, with its data decoded when it holds a path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocatorInfo {
    /// Entry index 0..8 in the header.
    pub index: usize,
    /// Platform code as text (`W2ku`, `W2ru`, `MacX`, ...).
    pub code: String,
    #[serde(skip)]
    pub platform: PlatformCode,
    /// Space reserved for the data, in bytes (sectors converted as vhd-util does).
    pub data_space: u64,
    pub data_length: u32,
    /// Absolute byte offset of the data.
    pub offset: u64,
    /// The decoded path, or `None` when the data is not a path, lies outside the
    /// file, is oversized or does not decode.
    pub path: Option<String>,
}

/// One opened VHD file.
pub struct Image {
    path: PathBuf,
    io: Box<dyn LayerIo>,
    file_len: u64,
    footer: Footer,
    footer_offset: u64,
    header: Option<DynamicHeader>,
    bat: Vec<u32>,
    locators: Vec<LocatorInfo>,
    warnings: Vec<Warning>,
    mtime: Option<u64>,
    /// The last bitmap read: readers walk blocks in order, so one entry avoids
    /// rereading a block's bitmap for every extent inside it.
    bitmap_cache: Mutex<Option<(u32, Arc<Bitmap>)>>,
}

impl fmt::Debug for Image {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.path)
            .field("disk_type", &self.footer.disk_type)
            .field("virtual_size", &self.footer.current_size)
            .field("uuid", &self.footer.uuid)
            .finish_non_exhaustive()
    }
}

/// Reads `len` bytes at `offset`, naming `what` in the error.
fn read_vec(io: &dyn LayerIo, offset: u64, len: usize, what: &'static str) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    io.read_exact_at(&mut b, offset)
        .map_err(|e| Error::io(&format!("read {what}"), e).field(what).at(offset))?;
    Ok(b)
}

fn read_footer_at(io: &dyn LayerIo, offset: u64) -> Result<[u8; FOOTER_SIZE]> {
    let mut b = [0u8; FOOTER_SIZE];
    io.read_exact_at(&mut b, offset)
        .map_err(|e| Error::io("read footer", e).field("footer").at(offset))?;
    Ok(b)
}

impl Image {
    /// Opens the VHD file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Image> {
        let path = path.as_ref();
        let io = FileIo::open(path).map_err(|e| Error::io("open", e).path(path))?;
        // Held while the image is open: an in-place coalesce cannot start writing under
        // this reader, nor this reader start under one (that is "in use", not the
        // journal below, which a running merge also has).
        crate::filelock::shared(io.file(), path)?;
        // A half-finished in-place coalesce must be rolled back or resumed before
        // anything reads the parent: its metadata may describe a mix of both states.
        crate::journaled::refuse_if_journaled(path)?;
        let mtime = io
            .file()
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs());
        let mut img = Image::from_io(path.to_path_buf(), Box::new(io))?;
        img.mtime = mtime;
        Ok(img)
    }

    /// Opens a VHD from any positional reader; `name` is used in messages and
    /// as the folder parent locators are resolved against.
    pub fn from_io(name: PathBuf, io: Box<dyn LayerIo>) -> Result<Image> {
        Image::parse(&name, io).map_err(|e| e.path(&name))
    }

    fn parse(name: &Path, io: Box<dyn LayerIo>) -> Result<Image> {
        let file_len = io.len();
        let mut warnings = Vec::new();
        if file_len < FOOTER_SIZE as u64 {
            let short = Error::new(
                ErrorKind::NotVhd,
                format!("{file_len} bytes is too short for a VHD footer"),
            );
            return Err(not_vhd(&*io, name, short));
        }
        let (footer, footer_offset) =
            choose_footer(&*io, file_len, &mut warnings).map_err(|e| {
                if e.kind() == ErrorKind::NotVhd {
                    not_vhd(&*io, name, e)
                } else {
                    e
                }
            })?;
        validate_footer(&footer, footer_offset)?;

        let mut img = Image {
            path: name.to_path_buf(),
            io,
            file_len,
            footer,
            footer_offset,
            header: None,
            bat: Vec::new(),
            locators: Vec::new(),
            warnings,
            mtime: None,
            bitmap_cache: Mutex::new(None),
        };
        if img.footer.disk_type.is_sparse() {
            img.open_sparse()?;
        }
        // What the bounds above let through but the checker calls an error (a block
        // over the metadata or past the data area, blocks that overlap, ...) is refused
        // here, so no reader ever copies metadata or another block's bytes as data.
        crate::rules::validate_io(name, &*img.io)?;
        Ok(img)
    }

    fn open_sparse(&mut self) -> Result<()> {
        let off = self.footer.data_offset;
        if off < FOOTER_SIZE as u64 || off % SECTOR_SIZE != 0 {
            return Err(Error::corrupt(
                "footer.data_offset",
                self.footer_offset + footer::at::DATA_OFFSET,
                format!(
                    "dynamic header offset {off:#x} must be a sector multiple past the head footer"
                ),
            ));
        }
        if off
            .checked_add(HEADER_SIZE as u64)
            .is_none_or(|end| end > self.file_len)
        {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "dynamic header at {off:#x} lies past the end of the {}-byte file",
                    self.file_len
                ),
            )
            .field("footer.data_offset")
            .at(self.footer_offset + footer::at::DATA_OFFSET));
        }
        let raw = read_vec(&*self.io, off, HEADER_SIZE, "header")?;
        let raw: [u8; HEADER_SIZE] = raw.try_into().expect("1024 bytes");
        let h = DynamicHeader::parse(&raw).ok_or_else(|| {
            Error::corrupt(
                "header.cookie",
                off,
                "no 'cxsparse' cookie where the footer says the dynamic header is",
            )
        })?;
        if !h.checksum_ok() {
            self.warnings.push(Warning {
                field: "header.checksum",
                offset: Some(off + header::at::CHECKSUM),
                message: format!(
                    "header checksum {:#010x}, computed {:#010x}",
                    h.checksum,
                    h.computed_checksum()
                ),
            });
        }
        let bs = h.block_size;
        if !bs.is_power_of_two() || !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs) {
            return Err(Error::corrupt(
                "header.block_size",
                off + header::at::BLOCK_SIZE,
                format!("block size {bs} is not a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}"),
            ));
        }
        let needed = bat::entries_for(self.footer.current_size, bs);
        if u64::from(h.max_table_entries) < needed {
            return Err(Error::corrupt(
                "header.max_table_entries",
                off + header::at::MAX_TABLE_ENTRIES,
                format!(
                    "{} BAT entries cannot cover {} bytes in {bs}-byte blocks ({needed} needed)",
                    h.max_table_entries, self.footer.current_size
                ),
            ));
        }
        if needed > bat::MAX_BAT_ENTRIES {
            return Err(Error::new(
                ErrorKind::Unsupported,
                format!(
                    "{needed} BAT entries exceed the limit of {}",
                    bat::MAX_BAT_ENTRIES
                ),
            )
            .field("header.max_table_entries")
            .at(off + header::at::MAX_TABLE_ENTRIES));
        }
        let t = h.table_offset;
        if t < FOOTER_SIZE as u64
            || t.checked_add(needed * 4)
                .is_none_or(|end| end > self.file_len)
        {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "BAT of {needed} entries at {t:#x} does not fit in the {}-byte file",
                    self.file_len
                ),
            )
            .field("header.table_offset")
            .at(off + header::at::TABLE_OFFSET));
        }
        self.bat = bat::read_bat(&*self.io, t, needed)?;
        self.locators = decode_locators(&*self.io, &h, self.file_len);
        self.header = Some(h);
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn io(&self) -> &dyn LayerIo {
        &*self.io
    }

    /// Size of the file (or layer) in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Modification time of the file (Unix seconds) when opened from a path.
    pub fn mtime(&self) -> Option<u64> {
        self.mtime
    }

    /// The footer in use (the tail copy unless it was damaged).
    pub fn footer(&self) -> &Footer {
        &self.footer
    }

    /// Where the footer in use was read: `file_len - 512`, or 0 for the head copy.
    pub fn footer_offset(&self) -> u64 {
        self.footer_offset
    }

    pub fn header(&self) -> Option<&DynamicHeader> {
        self.header.as_ref()
    }

    pub fn disk_type(&self) -> DiskType {
        self.footer.disk_type
    }

    /// The virtual size: the footer's current size.
    pub fn virtual_size(&self) -> u64 {
        self.footer.current_size
    }

    pub fn uuid(&self) -> Uuid {
        self.footer.uuid
    }

    /// The parent's UUID, for differencing disks.
    pub fn parent_uuid(&self) -> Option<Uuid> {
        match (&self.header, self.footer.disk_type) {
            (Some(h), DiskType::Differencing) => Some(h.parent_uuid),
            _ => None,
        }
    }

    /// Block size of a sparse disk; `None` for fixed disks.
    pub fn block_size(&self) -> Option<u32> {
        self.header.as_ref().map(|h| h.block_size)
    }

    /// Sectors per block of a sparse disk (0 for fixed disks).
    pub fn sectors_per_block(&self) -> u32 {
        self.block_size().map_or(0, |b| b / SECTOR_SIZE as u32)
    }

    /// Bytes of each block's sector bitmap (0 for fixed disks).
    pub fn bitmap_size(&self) -> u64 {
        self.header.as_ref().map_or(0, |h| h.bitmap_size())
    }

    /// The BAT entries the virtual size needs (empty for fixed disks).
    pub fn bat(&self) -> &[u32] {
        &self.bat
    }

    /// Number of blocks allocated in this file.
    pub fn allocated_blocks(&self) -> u64 {
        self.bat.iter().filter(|&&e| e != BAT_UNUSED).count() as u64
    }

    /// Absolute offset of block `block`'s bitmap, or `None` when unallocated.
    pub fn block_bitmap_offset(&self, block: u32) -> Option<u64> {
        self.bat
            .get(block as usize)
            .copied()
            .and_then(bat::entry_offset)
    }

    /// Absolute offset of block `block`'s first data byte, or `None` when unallocated.
    pub fn block_data_offset(&self, block: u32) -> Option<u64> {
        self.block_bitmap_offset(block)
            .map(|o| o + self.bitmap_size())
    }

    /// Absolute offset of the BAT entry of `block` (for messages).
    pub fn bat_entry_offset(&self, block: u32) -> u64 {
        self.header
            .as_ref()
            .map_or(0, |h| h.table_offset.saturating_add(u64::from(block) * 4))
    }

    /// Reads the sector bitmap of an allocated block. Fails with `Truncated`
    /// when the BAT points past the end of the file, and `InvalidArgument` when
    /// the block is not allocated.
    pub fn read_bitmap(&self, block: u32) -> Result<Arc<Bitmap>> {
        if let Ok(cache) = self.bitmap_cache.lock() {
            if let Some((b, bm)) = cache.as_ref() {
                if *b == block {
                    return Ok(bm.clone());
                }
            }
        }
        let off = self.block_bitmap_offset(block).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidArgument,
                format!("block {block} is not allocated"),
            )
            .path(&self.path)
        })?;
        let size = self.bitmap_size();
        if off.checked_add(size).is_none_or(|end| end > self.file_len) {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!("bitmap of block {block} at {off:#x} lies past the end of the file"),
            )
            .field("bat")
            .at(self.bat_entry_offset(block))
            .path(&self.path));
        }
        let raw =
            read_vec(&*self.io, off, size as usize, "bitmap").map_err(|e| e.path(&self.path))?;
        let bm = Arc::new(Bitmap::from_bytes(&raw, self.sectors_per_block()));
        if let Ok(mut cache) = self.bitmap_cache.lock() {
            *cache = Some((block, bm.clone()));
        }
        Ok(bm)
    }

    /// The used parent locators, decoded.
    pub fn parent_locators(&self) -> &[LocatorInfo] {
        &self.locators
    }

    /// Decoded locator paths, in the order chain resolution tries them.
    pub fn parent_paths(&self) -> Vec<(PlatformCode, String)> {
        let rank = |c: PlatformCode| match c {
            PlatformCode::W2ru => 0,
            PlatformCode::Wi2r => 1,
            PlatformCode::MacX => 2,
            PlatformCode::W2ku => 3,
            PlatformCode::Wi2k => 4,
            _ => 5,
        };
        let mut v: Vec<_> = self
            .locators
            .iter()
            .filter_map(|l| l.path.clone().map(|p| (l.platform, p)))
            .collect();
        v.sort_by_key(|(c, _)| rank(*c));
        v
    }

    /// The parent's name from the header (Hyper-V stores a full Windows path).
    pub fn parent_name(&self) -> Option<String> {
        match self.footer.disk_type {
            DiskType::Differencing => self.header.as_ref().map(|h| h.parent_name()),
            _ => None,
        }
    }

    /// Oddities found while opening.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Reads raw bytes of the file, refusing ranges outside it.
    pub fn read_raw(&self, buf: &mut [u8], offset: u64) -> Result<()> {
        if offset
            .checked_add(buf.len() as u64)
            .is_none_or(|e| e > self.file_len)
        {
            return Err(Error::new(
                ErrorKind::Truncated,
                format!(
                    "read of {} bytes at {offset:#x} past the end of the file",
                    buf.len()
                ),
            )
            .at(offset)
            .path(&self.path));
        }
        self.io
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io("read data", e).at(offset).path(&self.path))
    }
}

/// Picks the footer copy to trust: the tail when intact, else the head copy of
/// a sparse disk, else whichever still has its cookie (with a warning).
fn choose_footer(io: &dyn LayerIo, len: u64, warnings: &mut Vec<Warning>) -> Result<(Footer, u64)> {
    let tail_at = len - FOOTER_SIZE as u64;
    let tail_raw = read_footer_at(io, tail_at)?;
    let head_raw = read_footer_at(io, 0)?;
    let tail = Footer::parse(&tail_raw);
    // A fixed disk's first sector is data, so only a sparse head copy counts.
    let head = Footer::parse(&head_raw).filter(|f| f.disk_type.is_sparse() && tail_at != 0);
    let ok = |f: &Option<Footer>| f.as_ref().is_some_and(|f| f.checksum_ok());

    if ok(&tail) {
        let tail = tail.expect("checked");
        if tail.disk_type.is_sparse() && head_raw != tail_raw {
            warnings.push(Warning {
                field: "footer",
                offset: Some(0),
                message: "head footer copy differs from the tail copy".into(),
            });
        }
        return Ok((tail, tail_at));
    }
    let why = match &tail {
        None => "no 'conectix' cookie",
        Some(_) => "checksum mismatch",
    };
    if ok(&head) {
        warnings.push(Warning {
            field: "footer",
            offset: Some(tail_at),
            message: format!("tail footer damaged ({why}), used the head copy"),
        });
        return Ok((head.expect("checked"), 0));
    }
    if let Some(t) = tail {
        warnings.push(Warning {
            field: "footer.checksum",
            offset: Some(tail_at + footer::at::CHECKSUM),
            message: format!(
                "footer checksum {:#010x}, computed {:#010x}",
                t.checksum,
                t.computed_checksum()
            ),
        });
        return Ok((t, tail_at));
    }
    if let Some(h) = head {
        warnings.push(Warning {
            field: "footer",
            offset: Some(tail_at),
            message: "tail footer missing and head copy has a bad checksum; used the head copy"
                .into(),
        });
        return Ok((h, 0));
    }
    Err(Error::new(
        ErrorKind::NotVhd,
        "no 'conectix' footer at the end or the start of the file",
    )
    .field("footer.cookie")
    .at(tail_at))
}

/// The error for bytes with no VHD footer: what they are instead and what to
/// run, when the detector knows; `plain` when it cannot read them either.
fn not_vhd(io: &dyn LayerIo, name: &Path, plain: Error) -> Error {
    let src = name.display().to_string();
    let Ok(d) = crate::detect::detect_io(io) else {
        return plain;
    };
    let Some(message) = d.not_vhd("it", &src, crate::detect::Flow::Local) else {
        return plain;
    };
    let mut e = Error::new(ErrorKind::NotVhd, message);
    // Raw data may be a VHD whose footers were lost: keep where the footer should be.
    if d.format == crate::detect::Format::Raw {
        if let (Some(field), Some(at)) = (plain.field_name(), plain.offset()) {
            e = e.field(field).at(at);
        }
    }
    e
}

fn validate_footer(f: &Footer, at: u64) -> Result<()> {
    if !matches!(
        f.disk_type,
        DiskType::Fixed | DiskType::Dynamic | DiskType::Differencing
    ) {
        return Err(Error::new(
            ErrorKind::Unsupported,
            format!(
                "disk type {} is not fixed (2), dynamic (3) or differencing (4)",
                f.disk_type.to_u32()
            ),
        )
        .field("footer.disk_type")
        .at(at + footer::at::DISK_TYPE));
    }
    let size = f.current_size;
    if size % SECTOR_SIZE != 0 {
        return Err(Error::corrupt(
            "footer.current_size",
            at + footer::at::CURRENT_SIZE,
            format!("current size {size} is not a multiple of 512"),
        ));
    }
    match f.disk_type {
        DiskType::Fixed => {
            if size > at {
                return Err(Error::new(
                    ErrorKind::Truncated,
                    format!(
                        "fixed disk of {size} bytes needs a file of {} bytes, found {}",
                        size + 512,
                        at + 512
                    ),
                )
                .field("footer.current_size")
                .at(at + footer::at::CURRENT_SIZE));
            }
        }
        _ => {
            if size > MAX_VIRTUAL_SIZE {
                return Err(Error::corrupt(
                    "footer.current_size",
                    at + footer::at::CURRENT_SIZE,
                    format!("current size {size} exceeds the format's 2040 GiB"),
                ));
            }
        }
    }
    Ok(())
}

fn decode_locators(io: &dyn LayerIo, h: &DynamicHeader, file_len: u64) -> Vec<LocatorInfo> {
    h.locators
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_used())
        .map(|(index, l)| {
            let in_file = l
                .data_offset
                .checked_add(u64::from(l.data_length))
                .is_some_and(|end| end <= file_len);
            let path = if l.code.is_path() && in_file && l.data_length <= MAX_LOCATOR_DATA {
                let mut buf = vec![0u8; l.data_length as usize];
                io.read_exact_at(&mut buf, l.data_offset)
                    .ok()
                    .and_then(|_| l.decode_path(&buf))
            } else {
                None
            };
            LocatorInfo {
                index,
                code: l.code.name(),
                platform: l.code,
                data_space: l.data_space_bytes(),
                data_length: l.data_length,
                offset: l.data_offset,
                path,
            }
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A dynamic disk laid out like qemu: head footer, header at 0x200, BAT at
    /// 0x600 (one sector), block 1 at 0x800 (bitmap + 4 KiB), tail footer.
    /// 16 KiB virtual, 4 KiB blocks; block 1 owns sectors 0-2 (bitmap 0xe0).
    pub(crate) fn tiny(disk_type: DiskType) -> Vec<u8> {
        let mut f = Footer::new(disk_type, 16 << 10, Uuid::from_u128(7), 0);
        let footer = f.seal();
        let mut h = DynamicHeader::new(0x600, 4, 4096);
        h.parent_uuid = Uuid::from_u128(9);
        let header = h.seal();
        let mut b = vec![0u8; 0x800 + 512 + 4096];
        b[..512].copy_from_slice(&footer);
        b[0x200..0x600].copy_from_slice(&header);
        let bat = [BAT_UNUSED, 0x800 / 512, BAT_UNUSED, BAT_UNUSED];
        for (i, e) in bat.iter().enumerate() {
            b[0x600 + i * 4..0x604 + i * 4].copy_from_slice(&e.to_be_bytes());
        }
        b[0x800] = 0xe0; // bitmap: sectors 0, 1, 2 of block 1
        b[0xa00..0xa00 + 4096].fill(0xab); // data, garbage past sector 2
        b.extend_from_slice(&footer);
        b
    }

    pub(crate) fn open(b: Vec<u8>) -> Result<Image> {
        Image::from_io(PathBuf::from("t.vhd"), Box::new(b))
    }

    #[test]
    fn opens_a_dynamic_disk() {
        let img = open(tiny(DiskType::Dynamic)).unwrap();
        assert_eq!(img.block_size(), Some(4096));
        assert_eq!(img.bat().len(), 4);
        assert_eq!(img.block_data_offset(1), Some(0xa00));
        assert!(img.warnings().is_empty());
    }

    #[test]
    fn falls_back_to_the_head_footer() {
        let mut b = tiny(DiskType::Dynamic);
        let n = b.len();
        b[n - 512] = b'X';
        let img = open(b).unwrap();
        assert_eq!(img.footer_offset(), 0);
        assert_eq!(img.warnings()[0].offset, Some(n as u64 - 512));
    }

    #[test]
    fn bounds_are_typed_errors() {
        // Block size not a power of two (header offset 0x200 + 32).
        let mut b = tiny(DiskType::Dynamic);
        b[0x220..0x224].copy_from_slice(&3000u32.to_be_bytes());
        let e = open(b).unwrap_err();
        assert_eq!(
            (e.kind(), e.field_name(), e.offset()),
            (ErrorKind::Corrupt, Some("header.block_size"), Some(0x220))
        );
        // Too few table entries for the size.
        let mut b = tiny(DiskType::Dynamic);
        b[0x21c..0x220].copy_from_slice(&3u32.to_be_bytes());
        assert_eq!(
            open(b).unwrap_err().field_name(),
            Some("header.max_table_entries")
        );
        // BAT past the end of the file.
        let mut b = tiny(DiskType::Dynamic);
        b[0x210..0x218].copy_from_slice(&0xffff_0000u64.to_be_bytes());
        assert_eq!(open(b).unwrap_err().kind(), ErrorKind::Truncated);
        // Not a VHD, too short.
        assert_eq!(open(vec![0; 4096]).unwrap_err().kind(), ErrorKind::NotVhd);
        assert_eq!(open(vec![0; 10]).unwrap_err().kind(), ErrorKind::NotVhd);
        // BAT entry past the end: refused on open, naming the entry.
        let mut b = tiny(DiskType::Dynamic);
        b[0x604..0x608].copy_from_slice(&0x0fff_0000u32.to_be_bytes());
        let e = open(b).unwrap_err();
        assert_eq!(
            (e.kind(), e.field_name(), e.offset()),
            (ErrorKind::Truncated, Some("bat"), Some(0x604))
        );
        // BAT entry over the dynamic header: refused on open.
        let mut b = tiny(DiskType::Dynamic);
        b[0x604..0x608].copy_from_slice(&1u32.to_be_bytes());
        let e = open(b).unwrap_err();
        assert_eq!(
            (e.kind(), e.field_name(), e.offset()),
            (ErrorKind::Corrupt, Some("bat"), Some(0x604))
        );
        assert!(
            e.to_string().starts_with("t.vhd: bat at offset 0x604: "),
            "{e}"
        );
    }
}

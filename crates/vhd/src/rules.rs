//! The checker's rules on the bytes of one layer ([`check_io`]), the findings
//! they make, and the one validation every reader runs ([`validate_io`]).
//!
//! [`crate::image`] runs [`validate_io`] on every open, and [`crate::check`]
//! (files and whole chains, through images) reports the same findings, so the
//! rules sit here, below both; `check` re-exports them. They read the
//! structures themselves, leniently, instead of going through an image, so
//! one bad field does not hide the others. Overlapping blocks are found by
//! sorting (O(n log n)); vhd-util's pairwise scan takes minutes on large disks.

use crate::bat;
use crate::format::footer::{self, Footer, FOOTER_SIZE};
use crate::format::geometry::FORCE_SIZE;
use crate::format::header::{
    self, DynamicHeader, DEFAULT_BLOCK_SIZE, HEADER_SIZE, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
};
use crate::format::locator::{PlatformCode, MAX_LOCATOR_DATA};
use crate::format::time;
use crate::io::LayerIo;
use crate::{DiskType, Error, ErrorKind, MAX_VIRTUAL_SIZE, SECTOR_SIZE};
use serde::Serialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Most findings of one code reported per file; the rest are summarised.
const MAX_PER_CODE: usize = 16;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Odd but readable.
    Warning,
    /// Reading the file is unsafe or gives the wrong bytes.
    Error,
}

/// One problem found in one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub path: PathBuf,
    /// The field, e.g. `footer.checksum`, `header.block_size`, `bat`, `locator`.
    pub field: &'static str,
    /// Absolute byte offset of the field in the file.
    pub offset: Option<u64>,
    pub message: String,
    /// Stable identifier of the rule, e.g. `footer_checksum`.
    pub code: &'static str,
}

/// Everything found in the files checked.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub files: Vec<PathBuf>,
    pub findings: Vec<Finding>,
}

impl Report {
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Warning)
    }

    pub fn has_errors(&self) -> bool {
        self.errors().next().is_some()
    }

    /// No findings at all.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// Adds another report, dropping findings already present.
    pub fn merge(&mut self, other: Report) {
        for f in other.files {
            if !self.files.contains(&f) {
                self.files.push(f);
            }
        }
        for f in other.findings {
            if !self.findings.contains(&f) {
                self.findings.push(f);
            }
        }
    }
}

/// Collects findings for one file, capping each code.
struct Sink {
    path: PathBuf,
    findings: Vec<Finding>,
    counts: HashMap<&'static str, usize>,
}

impl Sink {
    fn push(
        &mut self,
        severity: Severity,
        code: &'static str,
        field: &'static str,
        offset: Option<u64>,
        message: String,
    ) {
        let n = self.counts.entry(code).or_insert(0);
        *n += 1;
        if *n > MAX_PER_CODE {
            return;
        }
        self.findings.push(Finding {
            severity,
            path: self.path.clone(),
            field,
            offset,
            message,
            code,
        });
    }

    fn error(
        &mut self,
        code: &'static str,
        field: &'static str,
        offset: u64,
        message: impl Into<String>,
    ) {
        self.push(Severity::Error, code, field, Some(offset), message.into());
    }

    fn warn(
        &mut self,
        code: &'static str,
        field: &'static str,
        offset: u64,
        message: impl Into<String>,
    ) {
        self.push(Severity::Warning, code, field, Some(offset), message.into());
    }

    fn finish(mut self) -> Vec<Finding> {
        let mut extra: Vec<_> = self
            .counts
            .iter()
            .filter(|(_, &n)| n > MAX_PER_CODE)
            .map(|(&c, &n)| (c, n))
            .collect();
        extra.sort();
        for (code, n) in extra {
            let first = self.findings.iter().find(|f| f.code == code).cloned();
            if let Some(f) = first {
                self.findings.push(Finding {
                    message: format!("{} more findings of this kind not shown", n - MAX_PER_CODE),
                    offset: None,
                    ..f
                });
            }
        }
        self.findings
    }
}

/// A finding for an error from opening or resolving.
pub fn finding_from_error(path: &Path, e: &Error) -> Finding {
    let code = match e.kind() {
        ErrorKind::Io => "io",
        ErrorKind::NotVhd => "not_vhd",
        ErrorKind::Truncated => "truncated",
        ErrorKind::Corrupt => "corrupt",
        ErrorKind::Unsupported => "unsupported",
        ErrorKind::ParentMissing => "chain_parent_missing",
        ErrorKind::ParentMismatch => "chain_parent_mismatch",
        ErrorKind::ChainLoop => "chain_loop",
        ErrorKind::LocatorRefused => "chain_locator_refused",
        ErrorKind::InvalidArgument => "invalid_argument",
        ErrorKind::Journal => "journal",
    };
    Finding {
        severity: Severity::Error,
        path: e.file().unwrap_or(path).to_path_buf(),
        field: e.field_name().unwrap_or("file"),
        offset: e.offset(),
        message: e.message().to_string(),
        code,
    }
}

/// Checks the bytes of one VHD read through `io`; `name` labels the findings.
pub fn check_io(name: &Path, io: &dyn LayerIo) -> Report {
    let mut sink = Sink {
        path: name.to_path_buf(),
        findings: Vec::new(),
        counts: HashMap::new(),
    };
    check_into(&mut sink, io);
    Report {
        files: vec![name.to_path_buf()],
        findings: sink.finish(),
    }
}

/// Findings a reader lets through as warnings: a wrong checksum says a field may have
/// been damaged, but every offset and length is still bounded by the other rules, and
/// `qemu-img` and Hyper-V read such files with a warning. `check` still calls them errors.
pub const READER_TOLERATES: [&str; 2] = ["footer_checksum", "header_checksum"];

/// The one validation every reader runs before a byte of data is read ([`crate::Image`] runs
/// it on open): the checker's rules on `io`, and the first error among them (other than
/// [`READER_TOLERATES`]) as a typed [`Error`] naming `name`, the field and the offset.
pub fn validate_io(name: &Path, io: &dyn LayerIo) -> crate::Result<()> {
    let report = check_io(name, io);
    let mut errors = report
        .errors()
        .filter(|f| !READER_TOLERATES.contains(&f.code));
    let Some(first) = errors.next() else {
        return Ok(());
    };
    let kind = match first.code {
        "io" => ErrorKind::Io,
        "not_vhd" => ErrorKind::NotVhd,
        "bat_outside_file" | "file_truncated" | "fixed_truncated" => ErrorKind::Truncated,
        "footer_disk_type" => ErrorKind::Unsupported,
        _ => ErrorKind::Corrupt,
    };
    let more = errors.count();
    let mut message = first.message.clone();
    if more > 0 {
        message.push_str(&format!(
            " ({more} more error(s): `cloudimg check` lists them)"
        ));
    }
    let mut e = Error::new(kind, message).field(first.field).path(name);
    if let Some(at) = first.offset {
        e = e.at(at);
    }
    Err(e)
}

fn read_exact(io: &dyn LayerIo, at: u64, buf: &mut [u8]) -> bool {
    at.checked_add(buf.len() as u64)
        .is_some_and(|e| e <= io.len())
        && io.read_exact_at(buf, at).is_ok()
}

/// For data with no VHD footer: one finding saying what it is instead and what
/// to run, when the detector knows (false when it does not).
fn not_vhd(s: &mut Sink, io: &dyn LayerIo) -> bool {
    let src = s.path.display().to_string();
    let Ok(d) = crate::detect::detect_io(io) else {
        return false;
    };
    let Some(message) = d.not_vhd("it", &src, crate::detect::Flow::Local) else {
        return false;
    };
    if d.format == crate::detect::Format::Raw && d.size >= FOOTER_SIZE as u64 {
        // Maybe a VHD whose footers were lost: name where the footer should be.
        let tail_at = d.size - FOOTER_SIZE as u64;
        s.error("not_vhd", "footer.cookie", tail_at, message);
    } else {
        s.push(Severity::Error, "not_vhd", "format", None, message);
    }
    true
}

fn check_into(s: &mut Sink, io: &dyn LayerIo) {
    let len = io.len();
    if len < FOOTER_SIZE as u64 {
        if !not_vhd(s, io) {
            s.error(
                "not_vhd",
                "file",
                0,
                format!("{len} bytes is too short for a VHD footer"),
            );
        }
        return;
    }
    let tail_at = len - FOOTER_SIZE as u64;
    let mut tail_raw = [0u8; FOOTER_SIZE];
    let mut head_raw = [0u8; FOOTER_SIZE];
    if !read_exact(io, tail_at, &mut tail_raw) || !read_exact(io, 0, &mut head_raw) {
        s.error("io", "footer", tail_at, "cannot read the footer");
        return;
    }
    let tail = Footer::parse(&tail_raw);
    let head = Footer::parse(&head_raw).filter(|f| f.disk_type.is_sparse() && tail_at != 0);
    let tail_ok = tail.as_ref().is_some_and(Footer::checksum_ok);
    let head_ok = head.as_ref().is_some_and(Footer::checksum_ok);
    let (f, f_at) = if tail_ok {
        (tail.clone().expect("checked"), tail_at)
    } else if head_ok {
        // Readable: every reader falls back to (or, like qemu, prefers) the head copy.
        match &tail {
            None => s.warn(
                "footer_tail_damaged",
                "footer.cookie",
                tail_at,
                "no 'conectix' cookie in the tail footer; the intact head copy is used",
            ),
            Some(t) => s.warn(
                "footer_tail_damaged",
                "footer.checksum",
                tail_at + footer::at::CHECKSUM,
                format!(
                    "tail footer checksum {:#010x}, computed {:#010x}; the intact head copy is used",
                    t.checksum,
                    t.computed_checksum()
                ),
            ),
        }
        (head.clone().expect("checked"), 0)
    } else if let Some(t) = &tail {
        (t.clone(), tail_at)
    } else if let Some(h) = &head {
        s.error(
            "footer_cookie",
            "footer.cookie",
            tail_at,
            "no 'conectix' cookie in the tail footer, and the head copy's checksum is wrong",
        );
        (h.clone(), 0)
    } else {
        if !not_vhd(s, io) {
            s.error(
                "not_vhd",
                "footer.cookie",
                tail_at,
                "no 'conectix' footer at the end or the start of the file",
            );
        }
        return;
    };
    check_footer(s, &f, f_at);
    let Some(kind) = known_type(&f) else { return };

    if kind.is_sparse() {
        if tail_ok {
            match &head {
                Some(_) if head_raw != tail_raw => {
                    let first = head_raw
                        .iter()
                        .zip(&tail_raw)
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    let (field, at) = footer_field_at(first as u64);
                    s.warn(
                        "footer_copies_differ",
                        field,
                        at,
                        "the head footer copy differs from the tail copy (the tail copy is used)",
                    )
                }
                None => s.error(
                    "footer_head_missing",
                    "footer.cookie",
                    0,
                    "a dynamic or differencing disk must start with a copy of its footer",
                ),
                _ => {}
            }
        }
        check_sparse(s, io, &f, f_at, len);
        if tail.is_none() && s.counts.get("bat_outside_file").is_some_and(|&n| n > 0) {
            s.error(
                "file_truncated",
                "file.length",
                len,
                "the file ends inside its data blocks and has lost its tail footer: it was truncated",
            );
        }
    } else {
        let size = f.current_size;
        if size > tail_at {
            s.error(
                "fixed_truncated",
                "footer.current_size",
                f_at + footer::at::CURRENT_SIZE,
                format!(
                    "fixed disk of {size} bytes needs a file of {} bytes, found {len}",
                    size.saturating_add(512)
                ),
            );
        } else if size < tail_at {
            s.warn(
                "fixed_extra_data",
                "footer.current_size",
                f_at + footer::at::CURRENT_SIZE,
                format!(
                    "{} bytes between the end of the disk and the footer",
                    tail_at - size
                ),
            );
        }
    }
}

/// The footer field holding byte `b`, and the field's offset.
fn footer_field_at(b: u64) -> (&'static str, u64) {
    use footer::at;
    const FIELDS: [(&str, u64); 14] = [
        ("footer.cookie", at::COOKIE),
        ("footer.features", at::FEATURES),
        ("footer.format_version", at::FORMAT_VERSION),
        ("footer.data_offset", at::DATA_OFFSET),
        ("footer.timestamp", at::TIMESTAMP),
        ("footer.creator", at::CREATOR_APP),
        ("footer.original_size", at::ORIGINAL_SIZE),
        ("footer.current_size", at::CURRENT_SIZE),
        ("footer.geometry", at::GEOMETRY),
        ("footer.disk_type", at::DISK_TYPE),
        ("footer.checksum", at::CHECKSUM),
        ("footer.unique_id", at::UUID),
        ("footer.saved_state", at::SAVED_STATE),
        ("footer.reserved", at::RESERVED),
    ];
    FIELDS
        .iter()
        .rev()
        .find(|(_, o)| *o <= b)
        .map_or(("footer", 0), |&(f, o)| (f, o))
}

fn known_type(f: &Footer) -> Option<DiskType> {
    matches!(
        f.disk_type,
        DiskType::Fixed | DiskType::Dynamic | DiskType::Differencing
    )
    .then_some(f.disk_type)
}

fn check_footer(s: &mut Sink, f: &Footer, at: u64) {
    if !f.checksum_ok() {
        s.error(
            "footer_checksum",
            "footer.checksum",
            at + footer::at::CHECKSUM,
            format!(
                "footer checksum {:#010x}, computed {:#010x}",
                f.checksum,
                f.computed_checksum()
            ),
        );
    }
    if f.features & footer::FEATURE_RESERVED == 0 {
        s.warn(
            "footer_features",
            "footer.features",
            at + footer::at::FEATURES,
            "the reserved feature bit 0x2 is not set",
        );
    }
    if f.features & !0x3 != 0 {
        s.warn(
            "footer_features",
            "footer.features",
            at + footer::at::FEATURES,
            format!("unknown feature bits {:#x}", f.features & !0x3),
        );
    }
    if f.format_version != footer::FORMAT_VERSION {
        s.error(
            "footer_version",
            "footer.format_version",
            at + footer::at::FORMAT_VERSION,
            format!(
                "format version {:#010x}, expected 0x00010000",
                f.format_version
            ),
        );
    }
    if f.timestamp > time::now().saturating_add(86_400) {
        s.warn(
            "footer_timestamp_future",
            "footer.timestamp",
            at + footer::at::TIMESTAMP,
            format!(
                "timestamp {} is in the future",
                time::to_iso8601(f.timestamp)
            ),
        );
    }
    match f.disk_type {
        DiskType::Fixed => {
            if f.data_offset != footer::FIXED_DATA_OFFSET {
                s.error(
                    "footer_data_offset",
                    "footer.data_offset",
                    at + footer::at::DATA_OFFSET,
                    format!(
                        "data offset of a fixed disk is {:#x}, expected all ones",
                        f.data_offset
                    ),
                );
            }
        }
        DiskType::Dynamic | DiskType::Differencing => {}
        DiskType::Other(t) => {
            s.error(
                "footer_disk_type",
                "footer.disk_type",
                at + footer::at::DISK_TYPE,
                format!("disk type {t} is not fixed (2), dynamic (3) or differencing (4)"),
            );
        }
    }
    let size = f.current_size;
    if size > MAX_VIRTUAL_SIZE {
        s.error(
            "footer_size_too_large",
            "footer.current_size",
            at + footer::at::CURRENT_SIZE,
            format!("current size {size} exceeds the format's 2040 GiB"),
        );
    }
    if size % SECTOR_SIZE != 0 {
        s.error(
            "footer_size_unaligned",
            "footer.current_size",
            at + footer::at::CURRENT_SIZE,
            format!("current size {size} is not a multiple of 512"),
        );
    }
    if f.geometry == FORCE_SIZE {
        s.warn(
            "footer_geometry_force_size",
            "footer.geometry",
            at + footer::at::GEOMETRY,
            "geometry 65535/16/255 (qemu's force-size marker): readers use the current size; vhd-util rejects it",
        );
    } else if f.geometry.chs_size() > size {
        s.error(
            "footer_geometry",
            "footer.geometry",
            at + footer::at::GEOMETRY,
            format!(
                "geometry {} addresses {} bytes, more than the current size {size}; readers that use CHS read past the disk",
                f.geometry,
                f.geometry.chs_size()
            ),
        );
    }
    if f.uuid.is_nil() {
        s.warn(
            "footer_uuid_null",
            "footer.unique_id",
            at + footer::at::UUID,
            "the unique id is all zeros",
        );
    }
    if f.saved_state > 1 {
        s.warn(
            "footer_saved_state",
            "footer.saved_state",
            at + footer::at::SAVED_STATE,
            format!("saved state {} is neither 0 nor 1", f.saved_state),
        );
    } else if f.saved_state == 1 {
        s.warn(
            "footer_saved_state",
            "footer.saved_state",
            at + footer::at::SAVED_STATE,
            "the disk is in a saved state",
        );
    }
    if let Some(i) = f.reserved.iter().position(|&b| b != 0) {
        s.warn(
            "footer_reserved",
            "footer.reserved",
            at + footer::at::RESERVED + i as u64,
            "reserved bytes are not zero",
        );
    }
}

/// A byte range of metadata that data blocks must not overlap.
struct Region {
    start: u64,
    end: u64,
    what: String,
}

fn check_sparse(s: &mut Sink, io: &dyn LayerIo, f: &Footer, f_at: u64, len: u64) {
    let tail_at = len - FOOTER_SIZE as u64;
    let off = f.data_offset;
    let doff_at = f_at + footer::at::DATA_OFFSET;
    if off < FOOTER_SIZE as u64 || off % SECTOR_SIZE != 0 {
        s.error(
            "footer_data_offset",
            "footer.data_offset",
            doff_at,
            format!(
                "dynamic header offset {off:#x} must be a sector multiple past the head footer"
            ),
        );
    }
    if off
        .checked_add(HEADER_SIZE as u64)
        .is_none_or(|e| e > tail_at)
    {
        s.error(
            "footer_data_offset",
            "footer.data_offset",
            doff_at,
            format!("dynamic header at {off:#x} lies outside the file"),
        );
        return;
    }
    let mut raw = [0u8; HEADER_SIZE];
    if !read_exact(io, off, &mut raw) {
        s.error("io", "header", off, "cannot read the dynamic header");
        return;
    }
    let Some(h) = DynamicHeader::parse(&raw) else {
        s.error(
            "header_cookie",
            "header.cookie",
            off,
            "no 'cxsparse' cookie in the dynamic header",
        );
        return;
    };
    if !h.checksum_ok() {
        s.error(
            "header_checksum",
            "header.checksum",
            off + header::at::CHECKSUM,
            format!(
                "header checksum {:#010x}, computed {:#010x}",
                h.checksum,
                h.computed_checksum()
            ),
        );
    }
    if h.data_offset != u64::MAX {
        s.error(
            "header_data_offset",
            "header.data_offset",
            off + header::at::DATA_OFFSET,
            format!("header data offset {:#x}, expected all ones", h.data_offset),
        );
    }
    if h.header_version != header::HEADER_VERSION {
        s.error(
            "header_version",
            "header.header_version",
            off + header::at::HEADER_VERSION,
            format!(
                "header version {:#010x}, expected 0x00010000",
                h.header_version
            ),
        );
    }
    if h.reserved1 != 0 {
        s.warn(
            "header_reserved",
            "header.reserved1",
            off + header::at::RESERVED1,
            "reserved field is not zero",
        );
    }
    if let Some(i) = h.reserved2.iter().position(|&b| b != 0) {
        s.warn(
            "header_reserved",
            "header.reserved2",
            off + header::at::RESERVED2 + i as u64,
            "reserved bytes are not zero",
        );
    }
    let differencing = f.disk_type == DiskType::Differencing;
    if differencing {
        let no_locators = h.locators.iter().all(|l| !l.is_used());
        if h.parent_uuid.is_nil() && no_locators && h.parent_name().is_empty() {
            s.error(
                "differencing_without_parent",
                "footer.disk_type",
                f_at + footer::at::DISK_TYPE,
                "differencing disk with no parent UUID, locator or name",
            );
        } else if h.parent_uuid.is_nil() {
            s.error(
                "header_parent_uuid_null",
                "header.parent_unique_id",
                off + header::at::PARENT_UUID,
                "a differencing disk with a null parent UUID cannot be linked to its parent",
            );
        }
        if h.parent_timestamp > time::now().saturating_add(86_400) {
            s.warn(
                "header_parent_timestamp_future",
                "header.parent_timestamp",
                off + header::at::PARENT_TIMESTAMP,
                format!(
                    "parent timestamp {} is in the future",
                    time::to_iso8601(h.parent_timestamp)
                ),
            );
        }
    }

    let mut regions = vec![
        Region {
            start: 0,
            end: FOOTER_SIZE as u64,
            what: "the head footer".into(),
        },
        Region {
            start: off,
            end: off + HEADER_SIZE as u64,
            what: "the dynamic header".into(),
        },
        Region {
            start: tail_at,
            end: len,
            what: "the tail footer".into(),
        },
    ];
    check_locators(s, io, &h, off, tail_at, differencing, &mut regions);

    let bs = h.block_size;
    let bs_at = off + header::at::BLOCK_SIZE;
    let bs_ok = bs.is_power_of_two() && (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&bs);
    if !bs_ok {
        s.error(
            "header_block_size",
            "header.block_size",
            bs_at,
            format!("block size {bs} is not a power of two between {MIN_BLOCK_SIZE} and {MAX_BLOCK_SIZE}"),
        );
    } else if bs != DEFAULT_BLOCK_SIZE {
        s.warn(
            "header_block_size_nonstandard",
            "header.block_size",
            bs_at,
            format!("block size {bs}: vhd-util and some hypervisors accept only 2 MiB"),
        );
    }
    let mte_at = off + header::at::MAX_TABLE_ENTRIES;
    let needed = if bs_ok {
        bat::entries_for(f.current_size, bs)
    } else {
        0
    };
    if bs_ok && u64::from(h.max_table_entries) < needed {
        s.error(
            "header_max_table_entries",
            "header.max_table_entries",
            mte_at,
            format!(
                "{} BAT entries cannot cover {} bytes in {bs}-byte blocks ({needed} needed)",
                h.max_table_entries, f.current_size
            ),
        );
    }
    let t = h.table_offset;
    let t_at = off + header::at::TABLE_OFFSET;
    let table_bytes = (u64::from(h.max_table_entries) * 4).div_ceil(SECTOR_SIZE) * SECTOR_SIZE;
    if t % SECTOR_SIZE != 0 {
        s.warn(
            "header_table_offset",
            "header.table_offset",
            t_at,
            format!("BAT offset {t:#x} is not sector aligned"),
        );
    }
    if h.max_table_entries > 0x3FFF_FFFF {
        s.error(
            "header_max_table_entries",
            "header.max_table_entries",
            mte_at,
            format!(
                "{} BAT entries: the table size overflows 32 bits",
                h.max_table_entries
            ),
        );
    }
    let table_end = t.checked_add(table_bytes);
    let needed_fits =
        t.checked_add(needed * 4).is_some_and(|e| e <= tail_at) && t >= FOOTER_SIZE as u64;
    if needed_fits && table_end.is_none_or(|e| e > tail_at) {
        s.error(
            "header_max_table_entries",
            "header.max_table_entries",
            mte_at,
            format!(
                "a BAT of {} entries at {t:#x} passes the end of the file",
                h.max_table_entries
            ),
        );
    }
    let table_end = if needed_fits {
        table_end
            .filter(|&e| e <= tail_at)
            .unwrap_or(t + (needed * 4).div_ceil(SECTOR_SIZE) * SECTOR_SIZE)
    } else {
        u64::MAX
    };
    if !needed_fits {
        s.error(
            "header_table_offset",
            "header.table_offset",
            t_at,
            format!(
                "BAT of {} entries at {t:#x} does not lie between the head and tail footers",
                h.max_table_entries
            ),
        );
        return;
    }
    for r in &regions {
        if t < r.end && r.start < table_end {
            s.error(
                "header_table_offset",
                "header.table_offset",
                t_at,
                format!("BAT [{t:#x}, {table_end:#x}) overlaps {}", r.what),
            );
        }
    }
    regions.push(Region {
        start: t,
        end: table_end,
        what: "the BAT".into(),
    });
    // A vhd-util batmap sits after the BAT; it is metadata too, but its extent
    // is in its own header, which we do not parse: blocks overlapping it would
    // also overlap the BAT's padding only if the batmap were corrupt.
    if !bs_ok || needed == 0 {
        return;
    }
    let entries = needed.min(bat::MAX_BAT_ENTRIES);
    let Ok(table) = bat::read_bat(io, t, entries) else {
        s.error("io", "bat", t, "cannot read the BAT");
        return;
    };
    check_blocks(s, &table, &h, t, tail_at, &regions);
}

fn check_locators(
    s: &mut Sink,
    io: &dyn LayerIo,
    h: &DynamicHeader,
    off: u64,
    tail_at: u64,
    differencing: bool,
    regions: &mut Vec<Region>,
) {
    let mut usable = false;
    for (i, l) in h.locators.iter().enumerate() {
        let entry_at = off + header::at::LOCATORS + i as u64 * 24;
        if !l.is_used() {
            continue;
        }
        if !differencing {
            s.warn(
                "locator_unexpected",
                "header.parent_locator",
                entry_at,
                format!("locator {i} in a disk that has no parent"),
            );
        }
        if let PlatformCode::Unknown(_) = l.code {
            s.warn(
                "locator_code",
                "header.parent_locator",
                entry_at,
                format!("locator {i} has unknown platform code {}", l.code.name()),
            );
        }
        let space = l.data_space_bytes();
        let end = l
            .data_offset
            .checked_add(space.max(u64::from(l.data_length)));
        if l.data_offset < FOOTER_SIZE as u64 || end.is_none_or(|e| e > tail_at) {
            s.error(
                "locator_outside_file",
                "header.parent_locator",
                entry_at + 16,
                format!(
                    "locator {i} data at {:#x} ({space} bytes) lies outside the file",
                    l.data_offset
                ),
            );
            continue;
        }
        let end = end.expect("checked");
        if u64::from(l.data_length) > space {
            s.error(
                "locator_length",
                "header.parent_locator",
                entry_at,
                format!(
                    "locator {i} holds {} bytes in a space of {space}",
                    l.data_length
                ),
            );
        }
        for r in regions.iter() {
            if l.data_offset < r.end && r.start < end {
                s.error(
                    "locator_overlap",
                    "header.parent_locator",
                    entry_at,
                    format!(
                        "locator {i} data [{:#x}, {end:#x}) overlaps {}",
                        l.data_offset, r.what
                    ),
                );
            }
        }
        regions.push(Region {
            start: l.data_offset,
            end,
            what: format!("locator {i} data"),
        });
        if l.code.is_path() && l.data_length <= MAX_LOCATOR_DATA {
            let mut buf = vec![0u8; l.data_length as usize];
            if read_exact(io, l.data_offset, &mut buf) && l.decode_path(&buf).is_some() {
                usable = true;
            } else {
                s.warn(
                    "locator_undecodable",
                    "header.parent_locator",
                    entry_at,
                    format!("locator {i} data is not a path"),
                );
            }
        }
    }
    let any_used = h.locators.iter().any(|l| l.is_used());
    if differencing && any_used && !usable && h.parent_name().is_empty() {
        s.error(
            "header_no_parent_path",
            "header.parent_locators",
            off + header::at::LOCATORS,
            "no locator or parent name says where the parent is",
        );
    }
}

fn check_blocks(
    s: &mut Sink,
    table: &[u32],
    h: &DynamicHeader,
    t: u64,
    tail_at: u64,
    regions: &[Region],
) {
    let span = h.bitmap_size() + u64::from(h.block_size);
    let mut blocks: Vec<(u64, u64, usize)> = Vec::new();
    for (i, &e) in table.iter().enumerate() {
        let Some(start) = bat::entry_offset(e) else {
            continue;
        };
        let end = start + span;
        let at = t + i as u64 * 4;
        if end > tail_at {
            s.error(
                "bat_outside_file",
                "bat",
                at,
                format!("block {i} at {start:#x} ends at {end:#x}, past the data area ending at {tail_at:#x}"),
            );
            continue;
        }
        if let Some(r) = regions.iter().find(|r| start < r.end && r.start < end) {
            s.error(
                "bat_overlaps_metadata",
                "bat",
                at,
                format!("block {i} [{start:#x}, {end:#x}) overlaps {}", r.what),
            );
            continue;
        }
        blocks.push((start, end, i));
    }
    blocks.sort_unstable();
    let mut prev: Option<(u64, u64, usize)> = None;
    for b in blocks {
        if let Some(p) = prev {
            if b.0 < p.1 {
                s.error(
                    "bat_overlap",
                    "bat",
                    t + b.2 as u64 * 4,
                    format!(
                        "block {} at {:#x} overlaps block {} at {:#x}",
                        b.2, b.0, p.2, p.0
                    ),
                );
                if b.1 <= p.1 {
                    continue;
                }
            }
        }
        prev = Some(b);
    }
}

//! Creating empty disks: fixed, dynamic, and differencing children of a parent.
//!
//! Children carry a relative (`W2ru`) and an absolute (`W2ku`) parent locator,
//! both UTF-16LE, laid out one of two ways that real tools produce:
//! [`LocatorStyle::VhdUtil`] (BAT at 0x600, locator data after it, data space in
//! sectors as the specification says, header parent name relative, parent
//! timestamp the parent file's mtime) or [`LocatorStyle::HyperV`] (`W2ku` at
//! 0x1000 with 4 KiB of space, BAT at 0x2000, `W2ru` after it with 64 KiB,
//! data space in bytes, header parent name absolute, parent timestamp 0).

use crate::format::footer::FOOTER_SIZE;
use crate::format::header::DEFAULT_BLOCK_SIZE;
use crate::format::locator::{ParentLocator, PlatformCode};
use crate::image::Image;
use crate::journaled::refuse_if_journaled;
use crate::write::{self, DiskSource, DynamicLayout, FixedOptions, Sink};
use crate::{DiskType, DynamicHeader, Error, ErrorKind, Footer, Result, SECTOR_SIZE};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};

/// How a differencing child's parent locators are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LocatorStyle {
    #[default]
    VhdUtil,
    HyperV,
}

/// Options of [`create_child`].
#[derive(Debug, Clone, Default)]
pub struct ChildOptions {
    pub style: LocatorStyle,
    /// The child's UUID; a fresh random one when `None`.
    pub uuid: Option<uuid::Uuid>,
}

/// A disk of zeros, for writing empty images with the ordinary writers.
struct Zeros(u64);

impl DiskSource for Zeros {
    fn virtual_size(&self) -> u64 {
        self.0
    }
    fn next_data(&mut self, _from: u64) -> Result<Option<(u64, u64)>> {
        Ok(None)
    }
    fn read_at(&mut self, _offset: u64, buf: &mut [u8]) -> Result<()> {
        buf.fill(0);
        Ok(())
    }
}

fn create_new(path: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| Error::io("create image", e).path(path))
}

/// Runs `write` on a new file at `path`, removing the file if it fails.
fn write_new(path: &Path, write: impl FnOnce(&File) -> Result<()>) -> Result<()> {
    let file = create_new(path)?;
    let r = write(&file).and_then(|_| file.sync_all().map_err(|e| Error::io("fsync image", e)));
    if r.is_err() {
        let _ = std::fs::remove_file(path);
    }
    r.map_err(|e| e.path(path))
}

/// Creates an empty fixed VHD of `size` bytes (rounded to a sector, or to a
/// MiB with `round_to_mib`); the data is a hole.
pub fn create_fixed(path: &Path, size: u64, opts: &FixedOptions) -> Result<()> {
    write_new(path, |f| {
        write::write_fixed(&mut Zeros(size), Sink::file(f)?, opts, &mut |_| {}).map(|_| ())
    })
}

/// Creates an empty dynamic VHD of `size` bytes.
pub fn create_dynamic(
    path: &Path,
    size: u64,
    block_size: u32,
    uuid: Option<uuid::Uuid>,
) -> Result<()> {
    let layout = DynamicLayout::new(size, block_size, Vec::new(), uuid)?;
    write_new(path, |f| {
        let mut w = std::io::BufWriter::new(f);
        layout.write_to(&mut Zeros(layout.virtual_size()), &mut w, &mut |_| {})?;
        Ok(())
    })
}

/// Creates an empty differencing child of `parent` at `path`, with the
/// parent's size and block size (2 MiB under a fixed parent).
pub fn create_child(path: &Path, parent: &Path, opts: &ChildOptions) -> Result<()> {
    refuse_if_journaled(parent)?;
    let p = Image::open(parent)?;
    let size = p.virtual_size();
    let bs = p.block_size().unwrap_or(DEFAULT_BLOCK_SIZE);
    write::check_block_size(bs)?;
    let entries = size.div_ceil(u64::from(bs));
    if entries > crate::bat::MAX_BAT_ENTRIES {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "parent needs too many BAT entries",
        ));
    }
    let abs =
        std::fs::canonicalize(parent).map_err(|e| Error::io("resolve parent", e).path(parent))?;
    let child_dir = absolute_dir(path)?;
    let rel = relative_path(&child_dir, &abs);
    let hyperv = opts.style == LocatorStyle::HyperV;
    let (rel_text, abs_text) = if hyperv {
        (
            format!(".\\{}", rel.replace('/', "\\")),
            abs.to_string_lossy().into_owned(),
        )
    } else {
        (format!("./{rel}"), abs.to_string_lossy().into_owned())
    };
    let w2ku = ParentLocator::encode_path(PlatformCode::W2ku, &abs_text);
    let w2ru = ParentLocator::encode_path(PlatformCode::W2ru, &rel_text);
    let bat_bytes = entries * 4;
    // (W2ku offset, space), BAT offset, (W2ru offset, space), data-space-in-bytes
    let (ku_at, ku_space, bat_at, ru_at, ru_space, end) = if hyperv {
        let bat_pad = bat_bytes.next_multiple_of(4096);
        let ku_space = (w2ku.len() as u64).next_multiple_of(4096);
        let bat_at = (0x1000 + ku_space).max(0x2000);
        let ru_at = bat_at + bat_pad;
        let ru_space = (w2ru.len() as u64).next_multiple_of(65536);
        (0x1000, ku_space, bat_at, ru_at, ru_space, ru_at + ru_space)
    } else {
        let bat_at = 0x600u64;
        let ku_at = bat_at + bat_bytes.next_multiple_of(SECTOR_SIZE);
        let ku_space = (w2ku.len() as u64).max(1).next_multiple_of(SECTOR_SIZE);
        let ru_at = ku_at + ku_space;
        let ru_space = (w2ru.len() as u64).max(1).next_multiple_of(SECTOR_SIZE);
        (ku_at, ku_space, bat_at, ru_at, ru_space, ru_at + ru_space)
    };
    let space = |bytes: u64| -> u32 {
        if hyperv {
            bytes as u32
        } else {
            (bytes / SECTOR_SIZE) as u32
        }
    };
    let uuid = opts.uuid.unwrap_or_else(uuid::Uuid::new_v4);
    let mut footer = Footer::new(
        DiskType::Differencing,
        size,
        uuid,
        crate::format::time::now(),
    );
    let footer = footer.seal();
    let mut h = DynamicHeader::new(bat_at, entries as u32, bs);
    h.parent_uuid = p.uuid();
    h.parent_timestamp = if hyperv {
        0
    } else {
        p.mtime().map_or(0, crate::format::time::from_unix)
    };
    h.set_parent_name(if hyperv { &abs_text } else { &rel });
    let loc = |code, data: &[u8], at, sp| ParentLocator {
        code,
        data_space: space(sp),
        data_length: data.len() as u32,
        reserved: 0,
        data_offset: at,
    };
    h.locators[0] = loc(PlatformCode::W2ku, &w2ku, ku_at, ku_space);
    h.locators[1] = loc(PlatformCode::W2ru, &w2ru, ru_at, ru_space);
    let header = h.seal();
    write_new(path, |f| {
        let put = |b: &[u8], at: u64| {
            f.write_all_at(b, at)
                .map_err(|e| Error::io("write image", e).at(at))
        };
        put(&footer, 0)?;
        put(&header, 512)?;
        // Every entry unused (0xFFFFFFFF), padding included.
        let total = bat_bytes.next_multiple_of(SECTOR_SIZE);
        let chunk = vec![0xffu8; total.min(1 << 20) as usize];
        let mut done = 0;
        while done < total {
            let n = (total - done).min(chunk.len() as u64) as usize;
            put(&chunk[..n], bat_at + done)?;
            done += n as u64;
        }
        put(&w2ku, ku_at)?;
        put(&w2ru, ru_at)?;
        put(&footer, end)?;
        f.set_len(end + FOOTER_SIZE as u64)
            .map_err(|e| Error::io("size image", e))
    })
}

/// The absolute folder that will hold `path`.
fn absolute_dir(path: &Path) -> Result<PathBuf> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::canonicalize(&dir).map_err(|e| Error::io("resolve child folder", e).path(&dir))
}

/// `to` relative to the folder `from` (both absolute), `/` separated.
pub(crate) fn relative_path(from: &Path, to: &Path) -> String {
    let a: Vec<Component> = from.components().collect();
    let b: Vec<Component> = to.components().collect();
    let common = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut parts: Vec<String> = vec!["..".to_string(); a.len() - common];
    parts.extend(
        b[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/b/p.vhd")),
            "p.vhd"
        );
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/c/p.vhd")),
            "../c/p.vhd"
        );
    }
}

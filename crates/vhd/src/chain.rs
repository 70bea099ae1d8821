//! A differencing chain, leaf first, and how it is found from the leaf.
//!
//! Parent locators are resolved against the child's own folder, never the
//! working directory. Absolute Windows paths (Hyper-V's `W2ku`, the header's
//! parent name) cannot be opened on Unix, so their file name is looked for
//! beside the child. With [`ChainOptions::confine_to`], a locator that resolves
//! (after following symlinks) outside that directory is refused rather than
//! followed. A candidate is accepted only when its footer UUID equals the
//! child's parent UUID; a parent timestamp mismatch is only a warning because
//! Hyper-V writes 0 and vhd-util the parent file's mtime.

use crate::format::footer;
use crate::format::header;
use crate::format::locator::PlatformCode;
use crate::image::{Image, Warning};
use crate::{DiskType, Error, ErrorKind, Result};
use serde::Serialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Deepest chain [`Chain::open`] follows unless told otherwise.
pub const DEFAULT_MAX_DEPTH: usize = 64;

/// How to find a leaf's ancestors.
#[derive(Debug, Clone)]
pub struct ChainOptions {
    /// Refuse locators that resolve outside this directory.
    pub confine_to: Option<PathBuf>,
    /// Candidate parents given explicitly; each is used where its UUID matches
    /// a child's parent UUID, before any locator is tried.
    pub parents: Vec<PathBuf>,
    /// Most layers (leaf included) before the chain is called absurd.
    pub max_depth: usize,
}

impl Default for ChainOptions {
    fn default() -> Self {
        ChainOptions {
            confine_to: None,
            parents: Vec::new(),
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// A warning about one layer or one link of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainWarning {
    pub path: PathBuf,
    #[serde(flatten)]
    pub warning: Warning,
}

/// Layers of a virtual disk, leaf first; the last one is not differencing.
#[derive(Debug)]
pub struct Chain {
    layers: Vec<Image>,
    warnings: Vec<ChainWarning>,
}

impl Chain {
    /// Opens `leaf` and every ancestor it names.
    pub fn open(leaf: impl AsRef<Path>, opts: &ChainOptions) -> Result<Chain> {
        let leaf = leaf.as_ref();
        let confine = match &opts.confine_to {
            Some(d) => Some(
                d.canonicalize()
                    .map_err(|e| Error::io("resolve --confine directory", e).path(d))?,
            ),
            None => None,
        };
        let mut layers = vec![Image::open(leaf)?];
        let mut seen_paths: HashSet<PathBuf> = leaf.canonicalize().into_iter().collect();
        let mut seen_uuids: HashSet<uuid::Uuid> = HashSet::from([layers[0].uuid()]);
        let mut explicit: Vec<Option<Image>> = Vec::new();
        let mut explicit_opened = false;

        while let Some(child) = layers
            .last()
            .filter(|i| i.disk_type() == DiskType::Differencing)
        {
            if layers.len() >= opts.max_depth.max(1) {
                return Err(Error::new(
                    ErrorKind::ChainLoop,
                    format!("chain is deeper than {} layers", opts.max_depth),
                )
                .path(child.path()));
            }
            let want = child.parent_uuid().unwrap_or_default();
            if !explicit_opened {
                explicit_opened = true;
                for p in &opts.parents {
                    explicit.push(Some(Image::open(p)?));
                }
            }
            let parent = match explicit
                .iter_mut()
                .find(|c| c.as_ref().is_some_and(|i| i.uuid() == want))
            {
                Some(slot) => slot.take().expect("matched"),
                None => find_parent(child, want, confine.as_deref())?,
            };
            if let Ok(c) = parent.path().canonicalize() {
                if !seen_paths.insert(c) {
                    return Err(Error::new(
                        ErrorKind::ChainLoop,
                        format!("{} appears twice in the chain", parent.path().display()),
                    )
                    .path(child.path()));
                }
            }
            if !seen_uuids.insert(parent.uuid()) {
                return Err(Error::new(
                    ErrorKind::ChainLoop,
                    format!("UUID {} appears twice in the chain", parent.uuid()),
                )
                .path(parent.path()));
            }
            layers.push(parent);
        }
        Chain::from_images(layers)
    }

    /// Builds a chain from images already opened, leaf first, checking every
    /// link: child differencing, parent UUID, equal virtual sizes, no repeats,
    /// and a base that is not differencing.
    pub fn from_images(layers: Vec<Image>) -> Result<Chain> {
        if layers.is_empty() {
            return Err(Error::new(
                ErrorKind::InvalidArgument,
                "a chain needs at least one image",
            ));
        }
        let mut warnings = Vec::new();
        let mut uuids = HashSet::new();
        for img in &layers {
            for w in img.warnings() {
                warnings.push(ChainWarning {
                    path: img.path().to_path_buf(),
                    warning: w.clone(),
                });
            }
            if !uuids.insert(img.uuid()) {
                return Err(Error::new(
                    ErrorKind::ChainLoop,
                    format!("UUID {} appears twice in the chain", img.uuid()),
                )
                .path(img.path()));
            }
        }
        for pair in layers.windows(2) {
            let (child, parent) = (&pair[0], &pair[1]);
            let h = match (child.disk_type(), child.header()) {
                (DiskType::Differencing, Some(h)) => h,
                _ => {
                    return Err(Error::new(
                        ErrorKind::ParentMismatch,
                        format!(
                            "{} is {}, so it cannot have the parent {}",
                            child.path().display(),
                            child.disk_type().name(),
                            parent.path().display()
                        ),
                    )
                    .path(child.path()))
                }
            };
            let hdr_at = child.footer().data_offset;
            if h.parent_uuid != parent.uuid() {
                return Err(Error::new(
                    ErrorKind::ParentMismatch,
                    format!(
                        "parent UUID {} but {} has UUID {}",
                        h.parent_uuid,
                        parent.path().display(),
                        parent.uuid()
                    ),
                )
                .field("header.parent_unique_id")
                .at(hdr_at + header::at::PARENT_UUID)
                .path(child.path()));
            }
            if child.virtual_size() != parent.virtual_size() {
                return Err(Error::new(
                    ErrorKind::ParentMismatch,
                    format!(
                        "virtual size {} but parent {} has {}",
                        child.virtual_size(),
                        parent.path().display(),
                        parent.virtual_size()
                    ),
                )
                .field("footer.current_size")
                .at(child.footer_offset() + footer::at::CURRENT_SIZE)
                .path(child.path()));
            }
            if let Some(w) = timestamp_warning(h.parent_timestamp, parent, hdr_at) {
                warnings.push(ChainWarning {
                    path: child.path().to_path_buf(),
                    warning: w,
                });
            }
        }
        let base = layers.last().expect("non-empty");
        if base.disk_type() == DiskType::Differencing {
            return Err(Error::new(
                ErrorKind::ParentMissing,
                format!(
                    "differencing disk without its parent (UUID {})",
                    base.parent_uuid().unwrap_or_default()
                ),
            )
            .path(base.path()));
        }
        Ok(Chain { layers, warnings })
    }

    /// A chain of one image, which must not be differencing.
    pub fn single(image: Image) -> Result<Chain> {
        Chain::from_images(vec![image])
    }

    /// Leaf first; the last layer is the base.
    pub fn layers(&self) -> &[Image] {
        &self.layers
    }

    /// Takes the layers back.
    pub fn into_layers(self) -> Vec<Image> {
        self.layers
    }

    pub fn leaf(&self) -> &Image {
        &self.layers[0]
    }

    pub fn base(&self) -> &Image {
        self.layers.last().expect("non-empty")
    }

    pub fn virtual_size(&self) -> u64 {
        self.layers[0].virtual_size()
    }

    /// Warnings of every layer and every link.
    pub fn warnings(&self) -> &[ChainWarning] {
        &self.warnings
    }
}

fn timestamp_warning(ts: u32, parent: &Image, hdr_at: u64) -> Option<Warning> {
    if ts == 0 {
        // Hyper-V writes 0: no claim to check.
        return None;
    }
    let footer_ts = parent.footer().timestamp;
    let mtime = parent.mtime().map(crate::format::time::from_unix);
    if ts == footer_ts || Some(ts) == mtime {
        return None;
    }
    Some(Warning {
        field: "header.parent_timestamp",
        offset: Some(hdr_at + header::at::PARENT_TIMESTAMP),
        message: format!(
            "parent timestamp {ts} matches neither the parent footer ({footer_ts}) nor its mtime"
        ),
    })
}

/// True for `C:\...`, `C:/...` and `\\server\share` paths.
fn is_windows_absolute(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':') || s.starts_with("\\\\")
}

/// Where a locator's path could be, most faithful first.
fn locator_candidates(child_dir: &Path, code: PlatformCode, s: &str) -> Vec<PathBuf> {
    let slashed = s.replace('\\', "/");
    let base = slashed
        .rsplit('/')
        .find(|p| !p.is_empty())
        .map(PathBuf::from);
    let mut out = Vec::new();
    if is_windows_absolute(s) {
        // Cannot exist on this host; the parent usually sits beside the child.
        out.extend(base.map(|b| child_dir.join(b)));
    } else if slashed.starts_with('/') && !code.is_relative() {
        out.push(PathBuf::from(&slashed));
        out.extend(base.map(|b| child_dir.join(b)));
    } else {
        out.push(child_dir.join(slashed.trim_start_matches("./")));
    }
    out
}

fn find_parent(child: &Image, want: uuid::Uuid, confine: Option<&Path>) -> Result<Image> {
    let child_dir = match child.path().parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut candidates: Vec<(String, PathBuf)> = Vec::new();
    let mut sources: Vec<(PlatformCode, String, String)> = child
        .parent_paths()
        .into_iter()
        .map(|(c, p)| (c, c.name(), p))
        .collect();
    if let Some(name) = child.parent_name().filter(|n| !n.is_empty()) {
        sources.push((PlatformCode::None, "parent name".into(), name));
    }
    for (code, what, s) in &sources {
        for p in locator_candidates(&child_dir, *code, s) {
            if !candidates.iter().any(|(_, q)| *q == p) {
                candidates.push((format!("{what} {s:?}"), p));
            }
        }
    }

    let mut refused = Vec::new();
    let mut mismatched = Vec::new();
    let mut tried = Vec::new();
    for (what, p) in &candidates {
        let Ok(real) = p.canonicalize() else {
            tried.push(p.display().to_string());
            continue;
        };
        if let Some(root) = confine {
            if !real.starts_with(root) {
                refused.push(format!("{what} -> {}", real.display()));
                continue;
            }
        }
        match Image::open(p) {
            Ok(img) if img.uuid() == want => return Ok(img),
            Ok(img) => mismatched.push(format!("{} has UUID {}", p.display(), img.uuid())),
            // A journaled parent is the right file in an unsafe state: say so rather
            // than report it missing.
            Err(e) if e.kind() == ErrorKind::Journal => return Err(e),
            Err(e) => tried.push(format!("{} ({e})", p.display())),
        }
    }
    let hdr_at = child.footer().data_offset;
    let err = if !mismatched.is_empty() {
        Error::new(
            ErrorKind::ParentMismatch,
            format!(
                "no candidate parent has UUID {want}: {}",
                mismatched.join("; ")
            ),
        )
        .field("header.parent_unique_id")
        .at(hdr_at + header::at::PARENT_UUID)
    } else if !refused.is_empty() {
        Error::new(
            ErrorKind::LocatorRefused,
            format!(
                "parent locator resolves outside {}: {}",
                confine.map(|c| c.display().to_string()).unwrap_or_default(),
                refused.join("; ")
            ),
        )
        .field("header.parent_locators")
        .at(hdr_at + header::at::LOCATORS)
    } else {
        Error::new(
            ErrorKind::ParentMissing,
            if candidates.is_empty() {
                format!("parent {want}: no locator or parent name gives a path")
            } else {
                format!("parent {want} not found; tried {}", tried.join(", "))
            },
        )
        .field("header.parent_locators")
        .at(hdr_at + header::at::LOCATORS)
    };
    Err(err.path(child.path()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_never_use_the_working_directory() {
        let dir = Path::new("/imgs/x");
        assert_eq!(
            locator_candidates(dir, PlatformCode::W2ru, ".\\base.vhd"),
            vec![PathBuf::from("/imgs/x/base.vhd")]
        );
        assert_eq!(
            locator_candidates(
                dir,
                PlatformCode::W2ku,
                "C:\\Users\\sergi\\Downloads\\win8.vhd"
            ),
            vec![PathBuf::from("/imgs/x/win8.vhd")]
        );
        assert_eq!(
            locator_candidates(dir, PlatformCode::MacX, "/srv/base.vhd"),
            vec![
                PathBuf::from("/srv/base.vhd"),
                PathBuf::from("/imgs/x/base.vhd")
            ]
        );
        assert_eq!(
            locator_candidates(dir, PlatformCode::W2ru, "..\\..\\etc\\passwd"),
            vec![PathBuf::from("/imgs/x/../../etc/passwd")]
        );
    }
}

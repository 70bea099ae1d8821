//! The checker: every rule `vhd-util check` applies and a few more, reported
//! all at once as findings that name the file, the field and the byte offset,
//! for one file ([`check_file`]) or a file and its ancestors ([`check_chain`]).
//!
//! The rules themselves live in the `rules` module (re-exported here), below
//! [`Image::open`], which runs them too. An error means reading the file is
//! unsafe or gives the wrong bytes; a warning means odd but readable (e.g.
//! qemu's force-size geometry, which vhd-util rejects but qemu and Hyper-V
//! read).

pub use crate::rules::{
    check_io, finding_from_error, validate_io, Finding, Report, Severity, READER_TOLERATES,
};

use crate::chain::{Chain, ChainOptions};
use crate::image::Image;
use crate::io::FileIo;
use crate::{DiskType, Error};
use std::path::Path;

/// Checks one file on its own (parents are not looked for).
pub fn check_file(path: impl AsRef<Path>) -> Report {
    let path = path.as_ref();
    match FileIo::open(path) {
        Ok(io) => check_io(path, &io),
        Err(e) => Report {
            files: vec![path.to_path_buf()],
            findings: vec![finding_from_error(path, &Error::io("open", e).path(path))],
        },
    }
}

/// Checks a file and, for a differencing disk, every ancestor and every link.
pub fn check_chain(leaf: impl AsRef<Path>, opts: &ChainOptions) -> Report {
    let leaf = leaf.as_ref();
    let mut report = check_file(leaf);
    let differencing = report.findings.is_empty() || !report.has_errors();
    if !differencing {
        return report;
    }
    match Image::open(leaf) {
        Ok(img) if img.disk_type() == DiskType::Differencing => {}
        _ => return report,
    }
    match Chain::open(leaf, opts) {
        Ok(chain) => {
            for layer in &chain.layers()[1..] {
                report.merge(check_file(layer.path()));
            }
            for w in chain.warnings() {
                if w.warning.field == "header.parent_timestamp" {
                    report.findings.push(Finding {
                        severity: Severity::Warning,
                        path: w.path.clone(),
                        field: w.warning.field,
                        offset: w.warning.offset,
                        message: w.warning.message.clone(),
                        code: "chain_parent_timestamp",
                    });
                }
            }
        }
        Err(e) => {
            // An ancestor the shared validation refused: report all its findings,
            // not only the first one the open saw.
            let other = e.file().filter(|p| *p != leaf).map(check_file);
            match other {
                Some(r) if r.has_errors() => report.merge(r),
                _ => report.findings.push(finding_from_error(leaf, &e)),
            }
        }
    }
    report
}

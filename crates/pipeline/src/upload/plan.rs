//! Planning an upload: which large-object form it takes ([`pick_kind`]), where its
//! segments go and what they are called ([`SegmentLayout`]), and the limits checked
//! before anything is sent ([`check`], [`Plan`]).

use super::input::Source;
use super::options::{LargeKind, SegmentNaming, UploadOptions};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{Capabilities, ObjectPath, ObjectStore};
use std::collections::HashMap;

/// Checks the destination and options against the backend before anything is read.
pub(super) fn check(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    source: &Source,
    opts: &UploadOptions,
    caps: &Capabilities,
) -> Result<()> {
    if dest.name.is_empty() {
        return Err(Error::usage(
            "upload",
            format!("{}: no object name", store.url(dest)),
        ));
    }
    let seg_size = opts.segment_size;
    if seg_size == 0 || seg_size > caps.max_object_size {
        return Err(Error::usage(
            "upload",
            format!(
                "segment size {seg_size} must be between 1 and {}",
                caps.max_object_size
            ),
        ));
    }
    if seg_size > opts.max_buffer && matches!(source, Source::Stream(_)) {
        return Err(Error::usage(
            "upload",
            format!(
                "segment size {seg_size} is above the {} byte buffer limit: a stream needs smaller segments (or give a file)",
                opts.max_buffer
            ),
        ));
    }
    Ok(())
}

/// Segments already stored that a resumed upload may skip: position -> size, ETag.
pub(super) type Existing = HashMap<u64, (u64, String)>;

/// Where a large object's segments go.
pub(super) enum Target {
    /// Objects of their own, named by the plan's layout (Swift DLO/SLO).
    Segments,
    /// Parts of this S3 multipart upload.
    Multipart(String),
}

impl Target {
    /// The multipart upload id, if any.
    pub fn upload_id(&self) -> Option<&str> {
        match self {
            Target::Segments => None,
            Target::Multipart(id) => Some(id),
        }
    }
}

/// A large object's form, segment layout and limits.
pub(super) struct Plan {
    /// DLO, SLO or multipart (never `Auto` or `Single`).
    pub kind: LargeKind,
    /// Where segments go.
    pub layout: SegmentLayout,
    /// Bytes per segment (the last may be shorter).
    pub segment_size: u64,
    /// Most segments the kind and the naming allow.
    pub max_segments: u64,
}

impl Plan {
    /// The plan of a large object of `kind`; refuses a known size needing too many
    /// segments and parts below the backend's minimum.
    pub fn new(
        dest: &ObjectPath,
        opts: &UploadOptions,
        caps: &Capabilities,
        kind: LargeKind,
        size: Option<u64>,
    ) -> Result<Plan> {
        let layout = SegmentLayout::new(dest, opts, kind, size)?;
        let seg_size = opts.segment_size;
        let max_segments = if kind == LargeKind::Dlo {
            layout.max_segments()
        } else {
            caps.max_segments.min(layout.max_segments())
        };
        if let Some(n) = size.map(|s| s.div_ceil(seg_size)) {
            if n > max_segments {
                return Err(Error::usage(
                    "upload",
                    format!("{n} segments of {seg_size} bytes exceed the limit of {max_segments}: use a larger segment size"),
                ));
            }
        }
        if kind == LargeKind::Multipart && seg_size < caps.min_part_size {
            return Err(Error::usage(
                "upload",
                format!("parts must be at least {} bytes", caps.min_part_size),
            ));
        }
        Ok(Plan {
            kind,
            layout,
            segment_size: seg_size,
            max_segments,
        })
    }

    /// Refuses the `count`th segment of an input whose size was not known up front.
    pub fn check_count(&self, count: u64) -> Result<()> {
        if count > self.max_segments {
            return Err(Error::usage(
                "upload",
                format!(
                    "more than {} segments: use a larger segment size",
                    self.max_segments
                ),
            ));
        }
        Ok(())
    }

    /// Path of segment `i` (0-based) for Swift kinds.
    pub fn segment_path(&self, i: u64) -> ObjectPath {
        ObjectPath::new(&self.layout.container, self.layout.name(i))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLayout {
    /// Segment container.
    pub container: String,
    /// Name prefix shared by all segments (the DLO prefix).
    pub prefix: String,
    pub(super) first_index: u64,
    digits: usize,
}

impl SegmentLayout {
    /// Layout for `dest` with `opts`, the given kind and (for python-swiftclient naming) size.
    pub fn new(
        dest: &ObjectPath,
        opts: &UploadOptions,
        kind: LargeKind,
        size: Option<u64>,
    ) -> Result<Self> {
        match &opts.naming {
            SegmentNaming::CloudImages => Ok(SegmentLayout {
                container: opts
                    .segment_container
                    .clone()
                    .unwrap_or_else(|| dest.container.clone()),
                prefix: format!("{}-", dest.name),
                first_index: 1,
                digits: 5,
            }),
            SegmentNaming::SwiftClient { mtime } => {
                let size = size.ok_or_else(|| {
                    Error::usage(
                        "upload",
                        "python-swiftclient segment naming needs a file input (its size is part of the name)",
                    )
                })?;
                let slo = if kind == LargeKind::Slo { "slo/" } else { "" };
                Ok(SegmentLayout {
                    container: opts
                        .segment_container
                        .clone()
                        .unwrap_or_else(|| format!("{}_segments", dest.container)),
                    prefix: format!("{}/{slo}{mtime}/{size}/{}/", dest.name, opts.segment_size),
                    first_index: 0,
                    digits: 8,
                })
            }
        }
    }

    /// Name of segment `i` (0-based position).
    pub fn name(&self, i: u64) -> String {
        format!(
            "{}{:0width$}",
            self.prefix,
            i + self.first_index,
            width = self.digits
        )
    }

    /// The 0-based position of `name`, if it is one of this layout's segment names.
    pub fn position(&self, name: &str) -> Option<u64> {
        let rest = name.strip_prefix(&self.prefix)?;
        if rest.len() < self.digits || !rest.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse::<u64>().ok()?.checked_sub(self.first_index)
    }

    pub(super) fn max_segments(&self) -> u64 {
        10u64.pow(self.digits as u32) - self.first_index
    }
}

pub(super) fn kind_name(k: LargeKind) -> &'static str {
    match k {
        LargeKind::Auto | LargeKind::Single => "single",
        LargeKind::Dlo => "dlo",
        LargeKind::Slo => "slo",
        LargeKind::Multipart => "multipart",
    }
}

pub(super) fn pick_kind(
    want: LargeKind,
    caps: &Capabilities,
    size: Option<u64>,
    seg: u64,
) -> Result<LargeKind> {
    let ok = match want {
        LargeKind::Dlo => caps.dlo,
        LargeKind::Slo => caps.slo,
        LargeKind::Multipart => caps.multipart,
        LargeKind::Single => true,
        LargeKind::Auto => {
            return Ok(match size {
                Some(s) if s <= seg => LargeKind::Single,
                None => LargeKind::Auto,
                Some(s) => {
                    let n = s.div_ceil(seg);
                    if caps.multipart {
                        LargeKind::Multipart
                    } else if caps.slo && (n <= caps.max_segments || s == u64::MAX) {
                        LargeKind::Slo
                    } else {
                        LargeKind::Dlo
                    }
                }
            })
        }
    };
    if !ok {
        return Err(Error::new(
            ErrorKind::Unsupported,
            "upload",
            "",
            format!("this backend cannot write {} objects", kind_name(want)),
        ));
    }
    // Refused before a byte is read, not after buffering the most a single PUT may hold.
    if let Some(s) = size.filter(|s| want == LargeKind::Single && *s > caps.max_object_size) {
        return Err(Error::usage(
            "upload",
            format!(
                "{s} bytes is more than the largest single object this backend takes ({} bytes): upload it as a large object",
                caps.max_object_size
            ),
        ));
    }
    Ok(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn swift_caps() -> Capabilities {
        Capabilities {
            dlo: true,
            slo: true,
            multipart: false,
            max_object_size: 5 * GIB,
            max_segments: 1000,
            min_part_size: 0,
        }
    }

    #[test]
    fn swifts_5_gib_and_1000_segment_limits() {
        let caps = swift_caps();
        let seg = 100 << 20;
        // Over 5 GiB is never one object, and is refused before anything is read.
        let e = pick_kind(LargeKind::Single, &caps, Some(5 * GIB + 1), seg).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
        assert_eq!(
            pick_kind(LargeKind::Single, &caps, Some(5 * GIB), 5 * GIB).unwrap(),
            LargeKind::Single
        );
        // Auto: an SLO up to 1,000 segments, a DLO beyond.
        assert_eq!(
            pick_kind(LargeKind::Auto, &caps, Some(1000 * seg), seg).unwrap(),
            LargeKind::Slo
        );
        assert_eq!(
            pick_kind(LargeKind::Auto, &caps, Some(1000 * seg + 1), seg).unwrap(),
            LargeKind::Dlo
        );
        // An SLO asked for explicitly past 1,000 segments: refused up front when the
        // size is known, at the 1,001st segment when it is not.
        let dest = ObjectPath::new("c", "img.vhd");
        let o = UploadOptions {
            segment_size: seg,
            ..Default::default()
        };
        let e = Plan::new(&dest, &o, &caps, LargeKind::Slo, Some(1000 * seg + 1))
            .err()
            .unwrap();
        assert!(e.to_string().contains("exceed the limit of 1000"), "{e}");
        let p = Plan::new(&dest, &o, &caps, LargeKind::Slo, None).unwrap();
        assert!(p.check_count(1000).is_ok());
        assert_eq!(p.check_count(1001).unwrap_err().kind(), ErrorKind::Usage);
    }

    #[test]
    fn layouts() {
        let dest = ObjectPath::new("c", "img.vhd");
        let l = SegmentLayout::new(&dest, &UploadOptions::default(), LargeKind::Dlo, None).unwrap();
        assert_eq!(l.name(0), "img.vhd-00001");
        assert_eq!(l.position("img.vhd-00012"), Some(11));
        assert_eq!(l.position("img.vhd-backup"), None);
        assert_eq!(l.container, "c");
        let o = UploadOptions {
            naming: SegmentNaming::SwiftClient {
                mtime: "1.5".into(),
            },
            segment_size: 10,
            ..Default::default()
        };
        let l = SegmentLayout::new(&dest, &o, LargeKind::Slo, Some(25)).unwrap();
        assert_eq!(l.container, "c_segments");
        assert_eq!(l.name(2), "img.vhd/slo/1.5/25/10/00000002");
        assert_eq!(l.position("img.vhd/slo/1.5/25/10/00000002"), Some(2));
    }
}

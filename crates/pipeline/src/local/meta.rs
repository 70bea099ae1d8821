//! The JSON sidecar the local backend keeps beside each object it wrote.

use crate::store::SegmentRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Sidecar contents; valid only while `size` and `mtime_ns` match the data file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Meta {
    pub size: u64,
    pub mtime_ns: i128,
    pub etag: String,
    #[serde(default)]
    pub manifest: Option<LocalManifest>,
    #[serde(default)]
    pub content_type: Option<String>,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// An emulated large-object manifest.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum LocalManifest {
    Dlo { container: String, prefix: String },
    Slo { segments: Vec<SloEntry> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct SloEntry {
    pub container: String,
    pub name: String,
    pub etag: String,
    pub size: u64,
}

impl From<&SegmentRef> for SloEntry {
    fn from(s: &SegmentRef) -> Self {
        SloEntry {
            container: s.path.container.clone(),
            name: s.path.name.clone(),
            etag: crate::hash::normalize_etag(&s.etag),
            size: s.size,
        }
    }
}

//! Rendered image documents, kept by image id and checked against the row they came from.
//!
//! Why: a page of `GET /v2/images` is 25 rows of 21 columns, each decoded, parsed (the
//! properties' and tags' JSON), built into an [`Image`] and written back out as escaped
//! JSON; under load that was about a third of the server's CPU per page, and on
//! PostgreSQL the two cores ran out before the p99 goal was met. A document depends only
//! on its row, so it is rendered once per row version and then copied out as is.
//!
//! Why it is never stale: every read still fetches the row, and an entry is used only
//! when the row's `version`, `created_at` and `updated_at` equal the entry's. Every writer
//! of a shown column bumps `version` (see [`super::images`], [`super::tags`]); an image
//! deleted and created again under the same id (imports derive their ids) starts again at
//! the first version but with a new `created_at` (microseconds). Each server of a fleet
//! keeps its own entries, checked the same way against the shared catalog.
//!
//! The memory is bounded by [`CAPACITY`] bytes of documents; the least recently used go
//! first.

use crate::domain::image::Image;
use quick_cache::sync::Cache;
use quick_cache::Weighter;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use std::sync::Arc;

/// Bytes of rendered documents kept (about 1 KiB each: some 30,000 images).
pub const CAPACITY: u64 = 32 << 20;

/// An image's document as it was rendered for one version of its row.
#[derive(Debug)]
pub struct Doc {
    /// The image id.
    pub id: String,
    version: i64,
    created_at: String,
    updated_at: String,
    json: Box<RawValue>,
}

impl Doc {
    /// Renders `img`.
    pub fn render(img: &Image) -> Result<Doc, serde_json::Error> {
        Ok(Doc {
            id: img.id.clone(),
            version: img.version,
            created_at: img.created_at.clone(),
            updated_at: img.updated_at.clone(),
            json: serde_json::value::to_raw_value(img)?,
        })
    }

    /// Whether this is the document of the row whose validators these are.
    fn is_of(&self, version: i64, created_at: &str, updated_at: &str) -> bool {
        self.version == version && self.updated_at == updated_at && self.created_at == created_at
    }

    /// The rendered JSON.
    pub fn json(&self) -> &str {
        self.json.get()
    }
}

/// Written verbatim into the response.
impl Serialize for Doc {
    fn serialize<S: Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        self.json.serialize(ser)
    }
}

#[derive(Clone)]
struct ByBytes;

impl Weighter<String, Arc<Doc>> for ByBytes {
    fn weight(&self, key: &String, d: &Arc<Doc>) -> u64 {
        // The key, the document, its validators, and the entry's own bookkeeping.
        (key.len() + d.id.len() + d.json.get().len() + d.created_at.len() + d.updated_at.len())
            as u64
            + 96
    }
}

/// The documents of one server.
pub struct Docs {
    cache: Cache<String, Arc<Doc>, ByBytes>,
}

impl std::fmt::Debug for Docs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Docs")
            .field("entries", &self.cache.len())
            .field("bytes", &self.cache.weight())
            .finish()
    }
}

impl Default for Docs {
    fn default() -> Self {
        Docs::with_capacity(CAPACITY)
    }
}

impl Docs {
    /// At most `bytes` of documents.
    pub fn with_capacity(bytes: u64) -> Docs {
        Docs {
            cache: Cache::with_weighter((bytes / 1024).max(16) as usize, bytes, ByBytes),
        }
    }

    /// The document of `id` if it was rendered from this version of its row.
    pub fn get(
        &self,
        id: &str,
        version: i64,
        created_at: &str,
        updated_at: &str,
    ) -> Option<Arc<Doc>> {
        self.cache
            .get(id)
            .filter(|d| d.is_of(version, created_at, updated_at))
    }

    /// Renders `img` and keeps the result.
    pub fn put(&self, img: &Image) -> Result<Arc<Doc>, serde_json::Error> {
        let d = Arc::new(Doc::render(img)?);
        self.cache.insert(img.id.clone(), d.clone());
        Ok(d)
    }

    /// Entries kept (for tests and metrics).
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.cache.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Image {
        let mut img = Image::new("a3b1a8a0-0000-4000-8000-000000000001".into(), "p1");
        img.created_at = "2026-12-06T10:00:00.000001Z".into();
        img.updated_at = img.created_at.clone();
        img.name = Some("quote \" and \\ backslash".into());
        img
    }

    #[test]
    fn a_document_is_the_image_rendered_and_is_used_only_for_its_row() {
        let docs = Docs::default();
        let img = image();
        let d = docs.put(&img).unwrap();
        assert_eq!(d.json(), serde_json::to_string(&img).unwrap());
        let (v, c, u) = (img.version, &img.created_at, &img.updated_at);
        assert!(docs.get(&img.id, v, c, u).is_some());
        // A newer version, a later change, or the same id made again: not this document.
        assert!(docs.get(&img.id, v + 1, c, u).is_none());
        assert!(docs
            .get(&img.id, v, c, "2026-12-06T10:00:00.000002Z")
            .is_none());
        assert!(docs
            .get(&img.id, v, "2026-12-06T10:00:01.000000Z", u)
            .is_none());
        assert!(docs.get("another", v, c, u).is_none());
    }

    #[test]
    fn the_bytes_kept_are_bounded() {
        let docs = Docs::with_capacity(64 << 10);
        for n in 0..1000 {
            let mut img = image();
            img.id = format!("a3b1a8a0-0000-4000-8000-{n:012}");
            docs.put(&img).unwrap();
        }
        assert!(docs.cache.weight() <= 64 << 10, "{}", docs.cache.weight());
        assert!(!docs.is_empty() && docs.len() < 1000, "{}", docs.len());
    }
}

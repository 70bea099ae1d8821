//! The image store: where imported images live, in any object store (a local directory
//! by default).
//!
//! Each image is two things beside each other under the store's container and prefix:
//! - the package `<id>.tar.gz`: the XenServer gzipped tarball (`0.vhd` leaf .. `N-1.vhd`
//!   base), a plain object or, above one segment, a DLO manifest over
//!   `<id>.tar.gz-00001`, `-00002`, ...;
//! - the record `<id>.json`: the Glance image fields (see [`ImageRecord`]).
//!
//! The record is written last, only after the package is uploaded and verified, and it is
//! the only thing that makes an image exist: a package without a record is debris from a
//! failed or killed run and is removed by the next run of the same task (or
//! [`ImageStore::remove_debris`]). While a run writes, its lock `<id>.import.lock` (or
//! `<id>.export-<dest>.lock`) keeps a second run of the same task out ([`crate::lock`]).

use crate::error::{Error, ErrorKind, Result};
use crate::time;
use cloudimg_pipeline::{ObjectPath, ObjectStore, PutOptions};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// Glance property that says whether an image may be exported ("0": yes).
pub const OPTIONS_PROPERTY: &str = "com.rackspace__1__options";
/// Largest record accepted when reading one back (they are a few KiB).
const MAX_RECORD: u64 = 1 << 20;

/// Who can see an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Only the owner (exportable).
    Private,
    /// Everyone.
    Public,
    /// The owner and projects it was shared with.
    Shared,
    /// Glance's community images.
    Community,
}

/// Where the package's bytes are, and how they were written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageInfo {
    /// The package object (a plain object or a DLO manifest).
    pub object: String,
    /// Segments in order (empty for a plain object).
    pub segments: Vec<SegmentInfo>,
    /// `gzip` (one member) or `gzip-indexed` (our seekable multi-member form).
    pub compression: String,
    /// Virtual size and names of the chain's layers, leaf first (`0.vhd`, ...).
    pub layers: Vec<String>,
}

/// One segment of a package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Object name.
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// MD5 (hex), as the store's ETag.
    pub etag: String,
}

/// The metadata record of an image: Glance v2's image fields, plus where the package is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// Image UUID.
    pub id: String,
    /// Name.
    pub name: String,
    /// Owning project.
    pub owner: String,
    /// `active` once the record exists (it is never written earlier).
    pub status: String,
    /// private | public | shared | community.
    pub visibility: Visibility,
    /// Bytes of the package (the gzipped tarball).
    pub size: u64,
    /// Virtual size of the disk.
    pub virtual_size: u64,
    /// Always `vhd`.
    pub disk_format: String,
    /// Always `ovf` (what Glance records for XenServer packages).
    pub container_format: String,
    /// MD5 (hex) of the package.
    pub checksum: String,
    /// Always `sha512`.
    pub os_hash_algo: String,
    /// SHA512 (hex) of the package.
    pub os_hash_value: String,
    /// ISO 8601 UTC.
    pub created_at: String,
    /// ISO 8601 UTC.
    pub updated_at: String,
    /// Free-form properties, including `com.rackspace__1__options`.
    pub properties: BTreeMap<String, String>,
    /// Where the package is.
    pub package: PackageInfo,
}

impl ImageRecord {
    /// The export options property (`"0"` when missing, the Cloud Images default).
    pub fn options(&self) -> &str {
        self.properties
            .get(OPTIONS_PROPERTY)
            .map(String::as_str)
            .unwrap_or("0")
    }
}

/// Fields of a new image known before its package is written.
#[derive(Debug, Clone)]
pub struct NewImage {
    /// Image id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Owning project.
    pub owner: String,
    /// Virtual size of the disk.
    pub virtual_size: u64,
}

/// An image store: an object store, a container and a name prefix.
#[derive(Debug, Clone)]
pub struct ImageStore {
    store: Arc<dyn ObjectStore>,
    container: String,
    prefix: String,
}

impl ImageStore {
    /// A store over `store`, keeping images in `container` under `prefix`.
    pub fn new(
        store: Arc<dyn ObjectStore>,
        container: impl Into<String>,
        prefix: impl Into<String>,
    ) -> ImageStore {
        ImageStore {
            store,
            container: container.into(),
            prefix: prefix.into(),
        }
    }

    /// Opens a store URL: `swift://container[/prefix]`, `s3://bucket[/prefix]`, or a local
    /// directory (`file:///dir` or a plain path; images go in its `images` folder).
    pub fn open(url: &str) -> Result<ImageStore> {
        let fail = |e| Error::store("open image store", url, e);
        if url.starts_with("swift://") || url.starts_with("s3://") {
            let loc = cloudimg_pipeline::url::Location::parse(url).map_err(fail)?;
            let store = loc.open().map_err(fail)?;
            let p = loc.path();
            let mut prefix = p.name.clone();
            if !prefix.is_empty() && !prefix.ends_with('/') {
                prefix.push('/');
            }
            let s = ImageStore::new(store, p.container.clone(), prefix);
            s.store.ensure_container(&s.container).map_err(fail)?;
            return Ok(s);
        }
        let dir = match url.strip_prefix("file://") {
            Some(p) => PathBuf::from(p),
            None if url.contains("://") => {
                return Err(Error::input(format!(
                    "{url}: unknown store URL scheme (swift://, s3://, file:// or a path)"
                )))
            }
            None => PathBuf::from(url),
        };
        let local = cloudimg_pipeline::local::LocalStore::new(dir).map_err(fail)?;
        let s = ImageStore::new(Arc::new(local), "images", "");
        s.store.ensure_container(&s.container).map_err(fail)?;
        Ok(s)
    }

    /// The object store underneath.
    pub fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The same images (container, prefix) reached through `store` instead, e.g. a
    /// wrapper that can stop a run.
    pub fn through(&self, store: Arc<dyn ObjectStore>) -> ImageStore {
        ImageStore {
            store,
            container: self.container.clone(),
            prefix: self.prefix.clone(),
        }
    }

    /// The container images live in.
    pub fn container(&self) -> &str {
        &self.container
    }

    /// Path of the package object of image `id`.
    pub fn package_path(&self, id: &Uuid) -> ObjectPath {
        ObjectPath::new(&self.container, format!("{}{id}.tar.gz", self.prefix))
    }

    /// Path of the record of image `id`.
    pub fn record_path(&self, id: &Uuid) -> ObjectPath {
        ObjectPath::new(&self.container, format!("{}{id}.json", self.prefix))
    }

    /// Takes the lock of the import of image `id` (entries `<id>.import.lock.*` beside the
    /// record): two runs of one import task derive the same id, and only one may write it.
    pub fn lock_import(&self, id: &Uuid) -> Result<crate::lock::StoreLock> {
        let path = ObjectPath::new(&self.container, format!("{}{id}.import.lock", self.prefix));
        crate::lock::StoreLock::acquire(&self.store, path, &format!("the import of image {id}"))
    }

    /// Takes the lock of exports of image `id` to `dest` (a container URL): two exports
    /// into one container write the same names, and only one may at a time.
    pub fn lock_export(&self, id: &Uuid, dest: &str) -> Result<crate::lock::StoreLock> {
        use md5::Digest;
        let key = hex::encode(&md5::Md5::digest(dest.as_bytes())[..8]);
        let path = ObjectPath::new(
            &self.container,
            format!("{}{id}.export-{key}.lock", self.prefix),
        );
        crate::lock::StoreLock::acquire(
            &self.store,
            path,
            &format!("an export of image {id} to {dest}"),
        )
    }

    /// URL of an object of this store, for messages.
    pub fn url(&self, path: &ObjectPath) -> String {
        self.store.url(path)
    }

    /// The record of image `id`, or `None` when there is no such image.
    pub fn get(&self, id: &Uuid) -> Result<Option<ImageRecord>> {
        let path = self.record_path(id);
        let bytes = match cloudimg_pipeline::store::get_bytes(&*self.store, &path, MAX_RECORD) {
            Ok(b) => b,
            Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::store("read image record", self.url(&path), e)),
        };
        let rec: ImageRecord = serde_json::from_slice(&bytes).map_err(|e| {
            Error::new(
                ErrorKind::Corrupt,
                "read image record",
                self.url(&path),
                "not an image record",
            )
            .with_source(e)
        })?;
        if rec.id != id.to_string() {
            return Err(Error::new(
                ErrorKind::Corrupt,
                "read image record",
                self.url(&path),
                format!("record holds image {}", rec.id),
            ));
        }
        Ok(Some(rec))
    }

    /// The record of image `id`; a missing image is `NotFound`.
    pub fn require(&self, id: &Uuid) -> Result<ImageRecord> {
        self.get(id)?.ok_or_else(|| {
            Error::new(
                ErrorKind::NotFound,
                "find image",
                id.to_string(),
                "no such image",
            )
        })
    }

    /// Writes (or replaces) a record. Callers write it only once the package is verified.
    pub fn put_record(&self, rec: &ImageRecord) -> Result<()> {
        let id = Uuid::parse_str(&rec.id)
            .map_err(|_| Error::input(format!("image id {:?} is not a UUID", rec.id)))?;
        let path = self.record_path(&id);
        let json = serde_json::to_vec_pretty(rec).expect("records serialise");
        let opts = PutOptions {
            content_type: Some("application/json".into()),
            ..Default::default()
        };
        self.store
            .put(&path, &json, &opts)
            .map_err(|e| Error::store("write image record", self.url(&path), e))?;
        Ok(())
    }

    /// Builds the record of a new image whose package was just verified.
    pub fn new_record(
        &self,
        img: &NewImage,
        package: PackageInfo,
        size: u64,
        md5: String,
        sha512: String,
    ) -> ImageRecord {
        let now = time::now();
        let mut properties = BTreeMap::new();
        properties.insert(OPTIONS_PROPERTY.to_string(), "0".to_string());
        ImageRecord {
            id: img.id.to_string(),
            name: img.name.clone(),
            owner: img.owner.clone(),
            status: "active".into(),
            visibility: Visibility::Private,
            size,
            virtual_size: img.virtual_size,
            disk_format: "vhd".into(),
            container_format: "ovf".into(),
            checksum: md5,
            os_hash_algo: "sha512".into(),
            os_hash_value: sha512,
            created_at: now.clone(),
            updated_at: now,
            properties,
            package,
        }
    }

    /// Every image record in the store.
    pub fn list(&self) -> Result<Vec<ImageRecord>> {
        let entries = cloudimg_pipeline::list_all(&*self.store, &self.container, &self.prefix)
            .map_err(|e| Error::store("list images", &self.container, e))?;
        let mut out = Vec::new();
        for e in entries {
            let Some(stem) = e
                .name
                .strip_prefix(&self.prefix)
                .and_then(|n| n.strip_suffix(".json"))
            else {
                continue;
            };
            if let Ok(id) = Uuid::parse_str(stem) {
                if let Some(r) = self.get(&id)? {
                    out.push(r);
                }
            }
        }
        Ok(out)
    }

    /// Removes an image's package objects (manifest and segments) when it has no record;
    /// returns how many objects were removed. A finished image is left alone.
    pub fn remove_debris(&self, id: &Uuid) -> Result<usize> {
        if self.get(id)?.is_some() {
            return Ok(0);
        }
        remove_object(&*self.store, &self.package_path(id))
    }

    /// Deletes an image: the record first (so the image stops existing at once), then the
    /// package objects.
    pub fn delete(&self, id: &Uuid) -> Result<()> {
        let rec = self.record_path(id);
        match self.store.delete(&rec) {
            Ok(()) => {}
            Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    "delete image",
                    id.to_string(),
                    "no such image",
                ))
            }
            Err(e) => return Err(Error::store("delete image record", self.url(&rec), e)),
        }
        remove_object(&*self.store, &self.package_path(id))?;
        Ok(())
    }
}

/// Deletes `path` and the segments `cloudimg_pipeline`'s upload gave it (Cloud Images
/// naming), manifest first; returns how many objects went. Missing objects are fine.
pub(crate) fn remove_object(store: &dyn ObjectStore, path: &ObjectPath) -> Result<usize> {
    use cloudimg_pipeline::upload::{remove, LargeKind, UploadOptions};
    remove(store, path, &UploadOptions::default(), LargeKind::Dlo, None)
        .map(|n| n as usize)
        .map_err(|e| Error::store("delete", store.url(path), e))
}

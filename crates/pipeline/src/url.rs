//! Object URLs: `swift://container/object`, `s3://bucket/key`, `file:///dir/container/name`
//! or a plain path. A local path `/a/b/c` maps to the store rooted at `/a`, container `b`,
//! object `c`, so segments (`b/c-00001`, `b_segments/...`) land beside it.

use crate::error::{Error, Result};
use crate::local::LocalStore;
use crate::store::{ObjectPath, ObjectStore};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A parsed object URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Local directory store root and path inside it.
    Local {
        /// Store root.
        root: PathBuf,
        /// Container (directory under root) and object name.
        path: ObjectPath,
    },
    /// Swift container/object (credentials from the environment).
    Swift(ObjectPath),
    /// S3 bucket/key (credentials from the environment).
    S3(ObjectPath),
}

impl Location {
    /// The file a local object's bytes live in (`None` for a remote store or a bare
    /// container), so a caller can tell an object from the file it reads or writes.
    pub fn local_file(&self) -> Option<PathBuf> {
        match self {
            Location::Local { root, path } if !path.name.is_empty() => {
                Some(root.join(&path.container).join(&path.name))
            }
            _ => None,
        }
    }

    /// Parses a URL or plain path. The object name may be empty (`swift://container`).
    pub fn parse(url: &str) -> Result<Location> {
        if let Some(rest) = url.strip_prefix("swift://") {
            return Ok(Location::Swift(split_bucket(url, rest)?));
        }
        if let Some(rest) = url.strip_prefix("s3://") {
            return Ok(Location::S3(split_bucket(url, rest)?));
        }
        let path = match url.strip_prefix("file://") {
            Some(p) if p.starts_with('/') => PathBuf::from(p),
            Some(_) => {
                return Err(Error::usage(
                    "parse url",
                    format!("{url}: file URLs must be absolute (file:///path)"),
                ))
            }
            None if url.contains("://") => {
                return Err(Error::usage(
                    "parse url",
                    format!("{url}: unknown scheme (use swift://, s3://, file:// or a path)"),
                ))
            }
            None => PathBuf::from(url),
        };
        local_location(&path)
    }

    /// The object path.
    pub fn path(&self) -> &ObjectPath {
        match self {
            Location::Local { path, .. } | Location::Swift(path) | Location::S3(path) => path,
        }
    }

    /// Opens the store (reading credentials from the environment for Swift and S3).
    pub fn open(&self) -> Result<Arc<dyn ObjectStore>> {
        Ok(match self {
            Location::Local { root, .. } => Arc::new(LocalStore::new(root)?),
            Location::Swift(_) => Arc::new(crate::swift::SwiftStore::from_env()?),
            Location::S3(_) => Arc::new(crate::s3::S3Store::from_env()?),
        })
    }
}

/// Parses `url` and opens its store: the usual entry point.
pub fn open_url(url: &str) -> Result<(Arc<dyn ObjectStore>, ObjectPath)> {
    let loc = Location::parse(url)?;
    Ok((loc.open()?, loc.path().clone()))
}

fn split_bucket(url: &str, rest: &str) -> Result<ObjectPath> {
    let (c, n) = rest.split_once('/').unwrap_or((rest, ""));
    if c.is_empty() {
        return Err(Error::usage(
            "parse url",
            format!("{url}: missing container or bucket"),
        ));
    }
    Ok(ObjectPath::new(c, n))
}

fn local_location(path: &Path) -> Result<Location> {
    let abs = std::path::absolute(path)
        .map_err(|e| Error::io("parse url", path.display().to_string(), e))?;
    let bad = || {
        Error::usage(
            "parse url",
            format!(
                "{}: a local object needs a parent directory and a file name",
                path.display()
            ),
        )
    };
    let name = abs.file_name().and_then(|s| s.to_str()).ok_or_else(bad)?;
    let parent = abs.parent().ok_or_else(bad)?;
    let container = parent
        .file_name()
        .and_then(|s| s.to_str())
        .ok_or_else(bad)?;
    let root = parent.parent().ok_or_else(bad)?;
    Ok(Location::Local {
        root: root.to_path_buf(),
        path: ObjectPath::new(container, name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Location::parse("swift://c/a/b.vhd").unwrap(),
            Location::Swift(ObjectPath::new("c", "a/b.vhd"))
        );
        assert_eq!(
            Location::parse("s3://bkt").unwrap(),
            Location::S3(ObjectPath::new("bkt", ""))
        );
        assert_eq!(
            Location::parse("file:///x/y/z.vhd").unwrap(),
            Location::Local {
                root: "/x".into(),
                path: ObjectPath::new("y", "z.vhd")
            }
        );
        assert_eq!(
            Location::parse("/x/y/z.vhd").unwrap(),
            Location::parse("file:///x/y/z.vhd").unwrap()
        );
        assert!(Location::parse("http://x/y").is_err());
        assert!(Location::parse("swift:///o").is_err());
        assert!(Location::parse("file://rel/x").is_err());
    }
}

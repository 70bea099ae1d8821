//! S3 multipart uploads: segments are parts of an upload id; resume finds the unfinished
//! upload and lists its parts; the commit is the completion request, verified by the
//! object's size and multipart ETag; failure cleanup aborts the upload.

use super::plan::Existing;
use super::verify;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{ObjectPath, ObjectStore, PartInfo, SegmentRef};

/// The upload id to send parts to: with `resume`, an unfinished upload of `dest` and its
/// parts (position -> size, ETag); otherwise a new one.
pub(super) fn begin(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    resume: bool,
) -> Result<(String, Existing)> {
    let mut existing = Existing::new();
    let found = if resume {
        store.multipart_find(dest)?
    } else {
        None
    };
    let id = match found {
        Some(id) => {
            for p in store.multipart_list_parts(dest, &id)? {
                // Part numbers are 1-based; a 0 from a confused server is not a part.
                if let Some(at) = u64::from(p.number).checked_sub(1) {
                    existing.insert(at, (p.size, p.etag));
                }
            }
            id
        }
        None => store.multipart_begin(dest)?,
    };
    Ok((id, existing))
}

/// Completes the upload from its parts and verifies the object; returns its ETag.
pub(super) fn commit(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    upload_id: &str,
    segments: &[SegmentRef],
    total: u64,
) -> Result<String> {
    let parts: Vec<PartInfo> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| PartInfo {
            number: i as u32 + 1,
            etag: s.etag.clone(),
            size: s.size,
        })
        .collect();
    store.multipart_complete(dest, upload_id, &parts)?;
    verify::verify_multipart(store, dest, segments, total)
}

/// Aborts every unfinished upload of `dest`; returns how many.
///
/// The ids come from the server: one that is still listed after its abort would keep
/// this loop going forever, so a repeated id is an error, and so are more than 1,000.
pub(super) fn abort_all(store: &dyn ObjectStore, dest: &ObjectPath) -> Result<u64> {
    let mut aborted = std::collections::HashSet::new();
    while let Some(id) = store.multipart_find(dest)? {
        if aborted.contains(&id) || aborted.len() >= 1000 {
            return Err(Error::new(
                ErrorKind::Permanent,
                "abort multipart",
                store.url(dest),
                format!(
                    "the server still lists upload {id} after {} abort(s)",
                    aborted.len()
                ),
            ));
        }
        store.multipart_abort(dest, &id)?;
        aborted.insert(id);
    }
    Ok(aborted.len() as u64)
}

//! Swift large objects (DLO and SLO): segments are objects of their own in a container,
//! named by the [`SegmentLayout`]; resume reads their listing; the manifest (a DLO's
//! prefix, an SLO's segment list) is written after stale segments of an earlier, longer
//! upload are gone; failure cleanup deletes the segments by name.

use super::options::LargeKind;
use super::plan::{Existing, Plan, SegmentLayout};
use super::verify;
use crate::error::{Error, ErrorKind, Result};
use crate::store::{list_all, ObjectPath, ObjectStore, SegmentRef};

/// Makes sure the segment container exists; with `resume`, returns the segments already
/// stored (position -> size, ETag).
pub(super) fn begin(store: &dyn ObjectStore, plan: &Plan, resume: bool) -> Result<Existing> {
    let layout = &plan.layout;
    store.ensure_container(&layout.container)?;
    let mut existing = Existing::new();
    if resume {
        for e in list_all(store, &layout.container, &layout.prefix)? {
            if let Some(i) = layout.position(&e.name) {
                existing.insert(i, (e.size, e.etag));
            }
        }
    }
    Ok(existing)
}

/// Removes stale segments, writes the manifest and verifies what it serves; returns the
/// manifest's ETag.
pub(super) fn commit(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    plan: &Plan,
    segments: &[SegmentRef],
    total: u64,
) -> Result<String> {
    let (layout, kind) = (&plan.layout, plan.kind);
    remove_stale(store, layout, segments.len() as u64, kind == LargeKind::Dlo)?;
    if kind == LargeKind::Dlo {
        store.put_dlo_manifest(dest, &layout.container, &layout.prefix)?;
    } else {
        store.put_slo_manifest(dest, segments)?;
    }
    verify::verify_large(store, dest, layout, segments, kind, total)
}

/// Deletes every segment of the layout (never the manifest); returns how many went.
pub(super) fn remove_segments(store: &dyn ObjectStore, layout: &SegmentLayout) -> Result<u64> {
    let mut n = 0;
    for e in list_all(store, &layout.container, &layout.prefix)? {
        if layout.position(&e.name).is_some() {
            match store.delete(&ObjectPath::new(&layout.container, &e.name)) {
                Ok(()) => n += 1,
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            }
        }
    }
    Ok(n)
}

/// Deletes this layout's segments at positions >= `count` left by an earlier, longer
/// upload; with `strict` (DLO), any other object under the prefix is an error since it
/// would become part of the object.
pub(super) fn remove_stale(
    store: &dyn ObjectStore,
    layout: &SegmentLayout,
    count: u64,
    strict: bool,
) -> Result<()> {
    for e in list_all(store, &layout.container, &layout.prefix)? {
        match layout.position(&e.name) {
            Some(i) if i < count => {}
            Some(_) => match store.delete(&ObjectPath::new(&layout.container, &e.name)) {
                Ok(()) => {}
                Err(err) if err.kind() == ErrorKind::NotFound => {}
                Err(err) => return Err(err),
            },
            None if strict => {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "upload",
                    format!("{}/{}", layout.container, e.name),
                    format!(
                        "a foreign object shares the DLO prefix {:?} and would become part of the object",
                        layout.prefix
                    ),
                ))
            }
            None => {}
        }
    }
    Ok(())
}

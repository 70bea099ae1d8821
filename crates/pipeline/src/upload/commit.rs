//! Committing a large object: preparing where its segments go (a Swift container or an
//! S3 upload id, [`begin`]), and, once every segment is sent, the manifest or multipart completion
//! written last, its verification and the summary ([`finish`]); on failure, cleanup as
//! the options ask.

use super::options::{mib_s, LargeKind, UploadOptions, UploadSummary};
use super::plan::{kind_name, Existing, Plan, Target};
use super::send::{Sent, Upload};
use super::{multipart, swiftlo};
use crate::error::{Error, ErrorKind, Result};
use crate::store::{ObjectPath, ObjectStore, SegmentRef};
use std::time::Instant;

/// Prepares the destination; returns it and the segments already stored there that a
/// resumed upload may skip (position -> size, ETag).
pub(super) fn begin(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    plan: &Plan,
    opts: &UploadOptions,
) -> Result<(Target, Existing)> {
    if plan.kind == LargeKind::Multipart {
        let (id, existing) = multipart::begin(store, dest, opts.resume)?;
        return Ok((Target::Multipart(id), existing));
    }
    Ok((Target::Segments, swiftlo::begin(store, plan, opts.resume)?))
}

/// Ends an upload whose segments were sent: on failure removes what it stored when the
/// options ask; otherwise checks every segment is there, writes and verifies the
/// manifest (or completes the multipart upload), and sums up.
pub(super) fn finish(up: &Upload<'_>, sent: Sent, start: Instant) -> Result<UploadSummary> {
    let (store, dest, plan) = (up.store, up.dest, up.plan);
    let url = store.url(dest);
    if let Some(e) = sent.failure {
        if up.opts.remove_on_error {
            let _ = match up.target.upload_id() {
                Some(id) => store.multipart_abort(dest, id).map(|()| 0),
                None => swiftlo::remove_segments(store, &plan.layout),
            };
        }
        return Err(e);
    }
    if sent.done.len() as u64 != sent.count {
        return Err(Error::new(
            ErrorKind::Integrity,
            "upload",
            &url,
            format!("{} of {} segments stored", sent.done.len(), sent.count),
        ));
    }
    let skipped = sent.done.values().filter(|d| d.skipped).count() as u64;
    let segments: Vec<SegmentRef> = sent
        .done
        .iter()
        .map(|(i, d)| SegmentRef {
            path: plan.segment_path(*i),
            etag: d.etag.clone(),
            size: d.size,
        })
        .collect();
    crate::crashpoint::hit("upload:before-manifest");
    let etag = match up.target.upload_id() {
        Some(id) => multipart::commit(store, dest, id, &segments, sent.total)?,
        None => swiftlo::commit(store, dest, plan, &segments, sent.total)?,
    };
    let secs = start.elapsed().as_secs_f64();
    Ok(UploadSummary {
        url,
        kind: kind_name(plan.kind).into(),
        bytes: sent.total,
        segments: sent.count,
        segments_skipped: skipped,
        segment_prefix: Some(format!("{}/{}", plan.layout.container, plan.layout.prefix)),
        digests: sent.checksums.computed(),
        checksums: sent.checksums,
        etag,
        duration_secs: secs,
        throughput_mib_s: mib_s(sent.total, secs),
        segment_list: segments,
    })
}

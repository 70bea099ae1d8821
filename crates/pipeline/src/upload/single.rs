//! A single object: one PUT, with its MD5 so the server verifies it, then a HEAD to see
//! it stored. [`buffer_first`] reads up to a segment of an input in order, which decides
//! between a single object and a large one when the size is not known up front.

use super::input::Input;
use super::options::{mib_s, LargeKind, UploadOptions, UploadSummary};
use super::verify;
use crate::error::{Error, Result};
use crate::hash::{Checksums, Digests, MultiHasher, Sha512};
use crate::store::{Body, Capabilities, HashedSlice, ObjectPath, ObjectStore, PutOptions};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::io::Read;
use std::time::Instant;

/// What [`buffer_first`] read.
pub(super) enum First {
    /// The whole input: one object.
    Whole(Vec<u8>),
    /// The first segment of a larger input.
    Segment(Vec<u8>),
}

/// Reads up to one object's worth (`Single`) or one segment (`Auto`) of the input and
/// says whether that was all of it; more than one object's worth is an error for
/// `Single`.
pub(super) fn buffer_first(
    input: &mut Input<'_>,
    kind: LargeKind,
    caps: &Capabilities,
    size: Option<u64>,
    opts: &UploadOptions,
) -> Result<First> {
    let seg_size = opts.segment_size;
    let limit = if kind == LargeKind::Single {
        caps.max_object_size.min(opts.max_buffer.max(seg_size))
    } else {
        seg_size
    };
    let mut buf = Vec::with_capacity(size.unwrap_or(limit).min(limit) as usize);
    let mut filled = 0u64;
    while filled < limit {
        let want = (limit - filled).min(8 << 20) as usize;
        let n = input
            .fill(&mut buf, want)
            .map_err(|e| Error::io("upload", "input", e))?;
        if n == 0 {
            break;
        }
        filled += n as u64;
    }
    let eof = input
        .at_eof()
        .map_err(|e| Error::io("upload", "input", e))?;
    if eof {
        return Ok(First::Whole(buf));
    }
    if kind == LargeKind::Single {
        return Err(Error::usage(
            "upload",
            format!("input is larger than {limit} bytes: use a large object"),
        ));
    }
    Ok(First::Segment(buf))
}

/// One PUT of a buffered input, with its MD5 so the server verifies it.
pub(super) fn put(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    buf: Vec<u8>,
    opts: &UploadOptions,
    start: Instant,
) -> Result<UploadSummary> {
    let checksums = hash_all(&buf, opts.digests);
    let md5 = checksums.md5.clone();
    // Hashed from this buffer just now: the store need not hash it again in-process.
    store.put(
        dest,
        &HashedSlice::new(&buf, &md5),
        &PutOptions {
            md5: Some(md5.clone()),
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone(),
        },
    )?;
    if let Some(p) = &opts.progress {
        p(buf.len() as u64);
    }
    let etag = verify::verify_single(store, dest, buf.len() as u64, &md5)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(UploadSummary {
        url: store.url(dest),
        kind: "single".into(),
        bytes: buf.len() as u64,
        segments: 1,
        segments_skipped: 0,
        segment_prefix: None,
        digests: checksums.computed(),
        checksums,
        etag,
        duration_secs: secs,
        throughput_mib_s: mib_s(buf.len() as u64, secs),
        segment_list: Vec::new(),
    })
}

/// One PUT of a positional input not buffered: with whole-object digests, hash it
/// first, then send it with its MD5 so the server verifies it; without, send it and let
/// the store hash what it sends.
pub(super) fn put_positional(
    store: &dyn ObjectStore,
    dest: &ObjectPath,
    range: Box<dyn Body>,
    opts: &UploadOptions,
    start: Instant,
) -> Result<UploadSummary> {
    let len = range.len();
    let checksums = if opts.digests.any() {
        let mut whole = MultiHasher::with(opts.digests);
        let mut r = range
            .reader()
            .map_err(|e| Error::io("upload", "input", e))?;
        let mut chunk = vec![0u8; 4 << 20];
        loop {
            let k = r
                .read(&mut chunk)
                .map_err(|e| Error::io("upload", "input", e))?;
            if k == 0 {
                break;
            }
            whole.update(&chunk[..k]);
        }
        whole.finish()
    } else {
        Checksums::default()
    };
    // One object: its MD5 is the whole-object MD5.
    let sent = store.put(
        dest,
        &*range,
        &PutOptions {
            md5: (!checksums.md5.is_empty()).then(|| checksums.md5.clone()),
            content_type: opts.content_type.clone(),
            metadata: opts.metadata.clone(),
        },
    )?;
    let md5 = sent.etag;
    if let Some(p) = &opts.progress {
        p(len);
    }
    let etag = verify::verify_single(store, dest, len, &md5)?;
    let secs = start.elapsed().as_secs_f64();
    Ok(UploadSummary {
        url: store.url(dest),
        kind: "single".into(),
        bytes: len,
        segments: 1,
        segments_skipped: 0,
        segment_prefix: None,
        digests: checksums.computed(),
        checksums,
        etag,
        duration_secs: secs,
        throughput_mib_s: mib_s(len, secs),
        segment_list: Vec::new(),
    })
}

/// MD5 and the chosen digests of one in-memory buffer, each on its own thread.
fn hash_all(data: &[u8], digests: Digests) -> Checksums {
    std::thread::scope(|s| {
        let sha512 = digests.sha512.then(|| s.spawn(|| Sha512::digest_hex(data)));
        let sha256 = digests
            .sha256
            .then(|| s.spawn(|| hex::encode(Sha256::digest(data))));
        let md5 = hex::encode(Md5::digest(data));
        let join = |h: Option<std::thread::ScopedJoinHandle<'_, String>>| {
            h.and_then(|h| h.join().ok()).unwrap_or_default()
        };
        Checksums {
            md5,
            sha256: join(sha256),
            sha512: join(sha512),
        }
    })
}

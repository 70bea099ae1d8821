//! Image data: `PUT /v2/images/{id}/file` streams the request body into the image store
//! through the pipeline's one upload engine; `GET` streams it back, whole or by range.
//!
//! Upload: queued -> saving under a lease that a heartbeat keeps alive; the body goes
//! through a blocking bridge into `cloudimg_pipeline::upload` (segments, MD5 per segment
//! against the store's ETag, MD5 and SHA-512 of the whole); only when the store holds all
//! of it does one fenced UPDATE make the image active with its size and digests. Any
//! failure (client gone, too large, store down, shutdown) removes what was stored and puts
//! the image back to queued. A server that dies mid-upload leaves an expired lease; the
//! next server start (or any server's reaper) puts the image back to queued and removes
//! the object.
//!
//! Memory per upload is bounded by `(upload_jobs + 1) x upload_segment_size` (the
//! pipeline's buffers), and uploads at once by `max_uploads`. A download from a local
//! store maps `2 x (MAPPED_AHEAD + 1)` segments of page cache and holds no buffer; from another
//! store it holds `3 x DOWNLOAD_PIECE` (see there).

use super::{owned_image, visible_image};
use crate::auth::{Action, Caller};
use crate::clock;
use crate::db::{self, images::Stored, locations::Location};
use crate::domain::image::status;
use crate::domain::inspect;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cloudimg_pipeline::{upload, ObjectPath};
use cloudimg_vhd::detect::{detect, HEAD_LEN, TAIL_LEN};
use futures_util::{StreamExt, TryStreamExt};
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::io::{StreamReader, SyncIoBridge};
use tokio_util::sync::CancellationToken;

/// Chunk size of streamed downloads.
const CHUNK: usize = 1 << 20;

/// The store object holding the data uploaded for image `id`.
pub fn object_path(st: &AppState, id: &str) -> ObjectPath {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_default();
    let pkg = st.store.package_path(&uuid);
    // The package name is `<prefix><id>.tar.gz`; uploaded data sits beside it.
    let base = pkg.name.strip_suffix(".tar.gz").unwrap_or(&pkg.name);
    ObjectPath::new(pkg.container.clone(), format!("{base}.img"))
}

/// Why reading the request body stopped.
#[derive(Default)]
struct BodyState {
    bytes: AtomicU64,
    too_large: std::sync::atomic::AtomicBool,
    /// The first bytes and the last sector, for the format inspection.
    ends: std::sync::Mutex<Ends>,
}

#[derive(Default)]
struct Ends {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Ends {
    fn see(&mut self, b: &[u8]) {
        if self.head.len() < HEAD_LEN {
            let n = (HEAD_LEN - self.head.len()).min(b.len());
            self.head.extend_from_slice(&b[..n]);
        }
        self.tail
            .extend_from_slice(&b[b.len().saturating_sub(TAIL_LEN)..]);
        if self.tail.len() > 8 * TAIL_LEN {
            self.tail.drain(..self.tail.len() - TAIL_LEN);
        }
    }
}

/// The request body as a blocking reader that stops at the size cap or when cancelled.
struct BodyReader {
    inner: SyncIoBridge<
        StreamReader<futures_util::stream::BoxStream<'static, io::Result<Bytes>>, Bytes>,
    >,
    state: Arc<BodyState>,
    max: u64,
    cancel: CancellationToken,
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cancel.is_cancelled() {
            return Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the upload was cancelled",
            ));
        }
        let n = self.inner.read(buf)?;
        self.state
            .ends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .see(&buf[..n]);
        let total = self.state.bytes.fetch_add(n as u64, Ordering::Relaxed) + n as u64;
        if total > self.max {
            self.state.too_large.store(true, Ordering::Relaxed);
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "image data over the size limit",
            ));
        }
        Ok(n)
    }
}

/// `PUT /v2/images/{id}/file`.
pub async fn upload(
    st: Arc<AppState>,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<()> {
    caller.may(Action::Write)?;
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.split(';').next().map(str::trim) != Some("application/octet-stream") {
        return Err(ApiError::UnsupportedMediaType {
            message: format!("Image data must be sent as application/octet-stream, not '{ctype}'"),
            accept_patch: None,
        });
    }
    let declared: Option<u64> = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let max = st.limits.max_image_size;
    if let Some(n) = declared.filter(|n| *n > max) {
        return Err(ApiError::TooLarge(format!(
            "Image data of {n} bytes is larger than the {max} bytes this service accepts"
        )));
    }
    let img = owned_image(&st, caller, id, "upload its data").await?;
    match img.status.as_str() {
        status::QUEUED => {}
        status::DEACTIVATED => {
            return Err(ApiError::forbidden(format!("Image {id} is deactivated")))
        }
        s => {
            return Err(ApiError::conflict(format!(
                "Image status transition from {s} to saving is not allowed (image {id} already has data or is receiving it)"
            )))
        }
    }
    // Glance's rule: the formats say what the data is, so they come first (and the
    // inspection below compares the bytes with them).
    let (Some(disk_format), Some(container_format)) =
        (img.disk_format.clone(), img.container_format.clone())
    else {
        return Err(ApiError::bad(format!(
            "Properties disk_format and container_format must be set before image {id} receives data"
        )));
    };
    let _slot = st
        .uploads
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Unavailable("the service is shutting down".into()))?;
    let lease = format!("{}:{}", st.node, uuid::Uuid::new_v4());
    let expires = clock::after(st.limits.upload_lease);
    if !db::images::begin_upload(&st.db, id, &lease, &expires, &clock::now()).await? {
        return Err(ApiError::conflict(format!(
            "Image {id} is no longer queued: another upload took it"
        )));
    }
    let cancel = st.shutdown.child_token();
    let beat = tokio::spawn(heartbeat(
        st.clone(),
        id.to_string(),
        lease.clone(),
        cancel.clone(),
    ));
    let state = Arc::new(BodyState::default());
    let stream: futures_util::stream::BoxStream<'static, io::Result<Bytes>> =
        Box::pin(body.into_data_stream().map_err(|e| {
            io::Error::new(
                io::ErrorKind::ConnectionAborted,
                format!("reading the request body: {e}"),
            )
        }));
    let reader = BodyReader {
        inner: SyncIoBridge::new(StreamReader::new(stream)),
        state: state.clone(),
        max,
        cancel: cancel.clone(),
    };
    let dest = object_path(&st, id);
    let opts = upload::UploadOptions {
        segment_size: st.limits.upload_segment_size,
        jobs: st.limits.upload_jobs,
        resume: false,
        remove_on_error: true,
        max_buffer: st.limits.upload_segment_size,
        content_type: Some("application/octet-stream".into()),
        digests: cloudimg_pipeline::hash::Digests::GLANCE,
        ..Default::default()
    };
    let store = st.store.object_store().clone();
    let d2 = dest.clone();
    let result = tokio::task::spawn_blocking(move || {
        upload::upload(&*store, &d2, upload::Source::stream(reader), &opts)
    })
    .await;
    beat.abort();
    let lost_lease = cancel.is_cancelled() && !st.shutdown.is_cancelled();
    let outcome: ApiResult<Stored> = match result {
        Err(e) => Err(ApiError::Internal(format!("upload task: {e}"))),
        Ok(Err(e)) => Err(if state.too_large.load(Ordering::Relaxed) {
            ApiError::TooLarge(format!(
                "Image data is larger than the {max} bytes this service accepts"
            ))
        } else if st.shutdown.is_cancelled() {
            ApiError::Unavailable("the service is shutting down; upload again".into())
        } else if lost_lease {
            ApiError::conflict(format!("Image {id} was deleted or reset during the upload"))
        } else if matches!(e.kind(), cloudimg_pipeline::ErrorKind::Io) {
            ApiError::bad(format!("The upload of image {id} was interrupted: {e}"))
        } else {
            ApiError::Unavailable(format!("The image store could not take the data: {e}"))
        }),
        Ok(Ok(summary)) => match declared {
            Some(n) if n != summary.bytes => Err(ApiError::bad(format!(
                "Received {} bytes but Content-Length said {n}",
                summary.bytes
            ))),
            _ => {
                let ends = state.ends.lock().unwrap_or_else(|p| p.into_inner());
                let det = detect(&ends.head, &ends.tail, summary.bytes);
                inspect::check(&det, &disk_format, &container_format).map(|()| Stored {
                    size: summary.bytes as i64,
                    checksum: summary.checksums.md5.clone(),
                    sha512: summary.checksums.sha512.clone(),
                    virtual_size: det.virtual_size.map(|v| v as i64).or(match det.format {
                        cloudimg_vhd::detect::Format::Raw => Some(summary.bytes as i64),
                        _ => None,
                    }),
                })
            }
        },
    };
    // A VHD is also held to the rules every reader of the toolkit applies (the one shared
    // validation, `cloudimg_vhd::check::validate_io`): a BAT over the metadata or past the
    // end is refused here, not served.
    let outcome = match outcome {
        Ok(stored) if vhd_data(&state) => {
            let store = st.store.object_store().clone();
            let d2 = dest.clone();
            match tokio::task::spawn_blocking(move || validate_vhd(store, &d2)).await {
                Ok(Ok(())) => Ok(stored),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(ApiError::Internal(format!("validation task: {e}"))),
            }
        }
        other => other,
    };
    let now = clock::now();
    match outcome {
        Ok(stored) => {
            let loc = Location {
                container: dest.container.clone(),
                object: dest.name.clone(),
                kind: "object".into(),
            };
            if db::images::finish_upload(&st.db, id, &lease, &stored, &loc, &now).await? {
                return Ok(());
            }
            remove_object(&st, &loc).await;
            Err(ApiError::conflict(format!(
                "Image {id} was deleted or reset during the upload; the data was discarded"
            )))
        }
        Err(e) => {
            let loc = Location {
                container: dest.container.clone(),
                object: dest.name.clone(),
                kind: "object".into(),
            };
            remove_object(&st, &loc).await;
            if let Err(db_err) = db::images::abort_upload(&st.db, id, &lease, &now).await {
                tracing::warn!(image = id, error = %db_err, "could not reset a failed upload; the reaper will");
            }
            Err(e)
        }
    }
}

/// Whether the body's first and last bytes are a VHD's.
fn vhd_data(state: &BodyState) -> bool {
    let ends = state.ends.lock().unwrap_or_else(|p| p.into_inner());
    let det = detect(&ends.head, &ends.tail, state.bytes.load(Ordering::Relaxed));
    matches!(det.format, cloudimg_vhd::detect::Format::Vhd(_))
}

/// Runs the toolkit's VHD validation on the stored object: 400 naming the field and
/// offset when `check` would call the data an error.
fn validate_vhd(
    store: Arc<dyn cloudimg_pipeline::ObjectStore>,
    dest: &ObjectPath,
) -> ApiResult<()> {
    let io = cloudimg_tasks::objectio::ObjectIo::open(store, dest).map_err(|e| {
        ApiError::Unavailable(format!("The image store could not read the data back: {e}"))
    })?;
    let name = std::path::Path::new("image data");
    cloudimg_vhd::check::validate_io(name, &io).map_err(|e| {
        if e.kind().is_data_error() {
            ApiError::bad(format!(
                "Image data refused: it is not a VHD every reader can read safely: {e}"
            ))
        } else {
            ApiError::Unavailable(format!("The image store could not read the data back: {e}"))
        }
    })
}

/// Keeps the upload lease alive; cancels the upload when the lease is lost.
async fn heartbeat(st: Arc<AppState>, id: String, lease: String, cancel: CancellationToken) {
    let every = st.limits.upload_lease / 3;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
        let expires = clock::after(st.limits.upload_lease);
        match db::images::extend_upload(&st.db, &id, &lease, &expires).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(image = %id, "upload lease lost; stopping the upload");
                cancel.cancel();
                return;
            }
            // The database is briefly away: keep trying until the lease runs out.
            Err(e) => tracing::warn!(image = %id, error = %e, "upload heartbeat failed"),
        }
    }
}

/// Removes a stored object and its segments (`<object>-NNNNN`); failures are logged, not
/// returned: the image record is what makes data exist, and it is already gone or reset.
pub async fn remove_object(st: &AppState, loc: &Location) {
    let store = st.store.clone();
    let loc = loc.clone();
    let res = tokio::task::spawn_blocking(move || -> Result<(), String> {
        if loc.kind == "package" {
            if let Some(id) = loc
                .object
                .rsplit('/')
                .next()
                .and_then(|n| n.strip_suffix(".tar.gz"))
                .and_then(|n| uuid::Uuid::parse_str(n).ok())
            {
                return match store.delete(&id) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == cloudimg_tasks::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(e.to_string()),
                };
            }
        }
        let os = store.object_store();
        let path = ObjectPath::new(&loc.container, &loc.object);
        match os.delete(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
        let segs = cloudimg_pipeline::list_all(&**os, &loc.container, &format!("{}-", loc.object))
            .map_err(|e| e.to_string())?;
        for s in segs {
            match os.delete(&ObjectPath::new(&loc.container, &s.name)) {
                Ok(()) => {}
                Err(e) if e.kind() == cloudimg_pipeline::ErrorKind::NotFound => {}
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(())
    })
    .await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!(error = %e, "could not remove image data"),
        Err(e) => tracing::warn!(error = %e, "could not remove image data"),
    }
}

/// Uploads that a dead server left in `saving`: back to queued, their objects removed.
pub async fn reap(st: &AppState) -> ApiResult<usize> {
    let ids = db::images::reap_uploads(&st.db, &clock::now()).await?;
    for id in &ids {
        let p = object_path(st, id);
        remove_object(
            st,
            &Location {
                container: p.container,
                object: p.name,
                kind: "object".into(),
            },
        )
        .await;
        tracing::info!(image = %id, "an upload whose server stopped was reset to queued");
    }
    Ok(ids.len())
}

/// A parsed single `Range: bytes=...` against `size`: `Ok(None)` for the whole object.
fn parse_range(h: Option<&HeaderValue>, size: u64) -> ApiResult<Option<(u64, u64)>> {
    let Some(v) = h.and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let unsatisfiable = || ApiError::RangeNotSatisfiable {
        message: format!("Range '{v}' is outside the {size} bytes of image data"),
        size,
    };
    let Some(spec) = v.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Several ranges: served whole, which RFC 9110 allows.
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or_else(unsatisfiable)?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| unsatisfiable())?;
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let s: u64 = a.parse().map_err(|_| unsatisfiable())?;
        let e: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse::<u64>()
                .map_err(|_| unsatisfiable())?
                .min(size.saturating_sub(1))
        };
        (s, e)
    };
    if start >= size || start > end {
        return Err(unsatisfiable());
    }
    Ok(Some((start, end)))
}

/// A `Write` that hands 1 MiB chunks to the response body.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let n = b.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&b[..n]);
        if self.buf.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Largest piece a download fetches: an uploaded image's segment (`upload_segment_size`,
/// 32 MiB by default) fits in one, so its worker checks the segment's MD5 against its
/// ETag before a byte of it is sent, two segments at a time on two cores. With 8 MiB
/// pieces a segment was cut in four and its MD5 taken in order on the one thread that
/// writes the response: 70 % of the server's CPU, and the API served 0.6x of what
/// `cloudimg download` does (BENCHMARKS.md, 2026-12-06 17:42). The price: a download
/// holds `(2 jobs + 1) x 32 MiB` in buffers, as an upload does.
const DOWNLOAD_PIECE: u64 = 32 << 20;

/// `GET /v2/images/{id}/file`.
pub async fn download(
    st: Arc<AppState>,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    caller.may(Action::Read)?;
    let (img, _) = visible_image(&st, caller, id).await?;
    if img.status == status::DEACTIVATED && !(img.owner == caller.project_id && caller.is_admin()) {
        return Err(ApiError::forbidden(
            "The requested image has been deactivated. Image data download is prohibited.",
        ));
    }
    let loc = match db::locations::get(&st.db, id).await? {
        Some(l) if img.status == status::ACTIVE || img.status == status::DEACTIVATED => l,
        _ => return Ok(StatusCode::NO_CONTENT.into_response()),
    };
    let size = img.size.unwrap_or(0).max(0) as u64;
    let range = parse_range(headers.get(header::RANGE), size)?;
    let store = st.store.object_store().clone();
    let path = ObjectPath::new(&loc.container, &loc.object);
    let body = match range {
        None => mapped_body(&store, &path, size).await,
        Some(_) => None,
    };
    let body = match body {
        Some(b) => b,
        None => streamed_body(store, path, range),
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    match range {
        None => {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
            if let Some(md5) = img
                .checksum
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                h.insert("content-md5", md5);
            }
        }
        Some((a, b)) => {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            let h = resp.headers_mut();
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(b - a + 1));
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{size}")) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
    }
    Ok(resp)
}

/// Pairs of segments checked and mapped ahead of the one being sent: each pair's MD5s are
/// one two-lane pass on one thread ([`cloudimg_pipeline::mapped::map_segments`]), two pairs
/// on the two cores.
const MAPPED_AHEAD: usize = 2;

/// The body of a whole download from a local store, each segment mapped from its file and
/// sent as it is once its MD5 matches its ETag ([`cloudimg_pipeline::mapped`]): the only
/// copy is the socket's. None when the object is not all such segments (or its plan says
/// another size than the catalog): then [`streamed_body`] serves it.
async fn mapped_body(
    store: &Arc<dyn cloudimg_pipeline::ObjectStore>,
    path: &ObjectPath,
    size: u64,
) -> Option<Body> {
    use cloudimg_pipeline::mapped;
    store.local_file(path)?;
    let (s2, p2) = (store.clone(), path.clone());
    let plan = tokio::task::spawn_blocking(move || cloudimg_pipeline::download::plan(&*s2, &p2))
        .await
        .ok()?
        .ok()?;
    if plan.size != size || !plan.segments.iter().all(|s| mapped::mappable(&**store, s)) {
        return None;
    }
    let store = store.clone();
    let pairs: Vec<Vec<_>> = plan.segments.chunks(2).map(<[_]>::to_vec).collect();
    let stream = futures_util::stream::iter(pairs)
        .map(move |segs| {
            let store = store.clone();
            tokio::task::spawn_blocking(move || mapped::map_segments(&*store, &segs))
        })
        .buffered(MAPPED_AHEAD)
        .map(|r| {
            let r = match r {
                Ok(Ok(maps)) => {
                    let frames: Vec<io::Result<Bytes>> =
                        maps.into_iter().map(|m| Ok(Bytes::from_owner(m))).collect();
                    return futures_util::stream::iter(frames);
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => format!("download task: {e}"),
            };
            tracing::warn!(error = %r, "image download stopped");
            futures_util::stream::iter(vec![Err(io::Error::other(r))])
        })
        .flatten();
    Some(Body::from_stream(stream))
}

/// The body of a download through the pipeline's download engine (any store, whole) or
/// one ranged GET, copied in [`CHUNK`]s to the response.
fn streamed_body(
    store: Arc<dyn cloudimg_pipeline::ObjectStore>,
    path: ObjectPath,
    range: Option<(u64, u64)>,
) -> Body {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let err_tx = tx.clone();
    tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        };
        let res: Result<(), String> = match range {
            None => {
                let opts = cloudimg_pipeline::download::DownloadOptions {
                    jobs: 2,
                    piece_size: DOWNLOAD_PIECE,
                    ..Default::default()
                };
                cloudimg_pipeline::download::download(&*store, &path, &mut w, &opts)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
                    .and_then(|_| w.flush().map_err(|e| e.to_string()))
            }
            Some((a, b)) => cloudimg_pipeline::get_range_unhashed(&*store, &path, a..b + 1)
                .map_err(|e| e.to_string())
                .and_then(|mut s| {
                    io::copy(&mut s.reader, &mut w)
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                })
                .and_then(|_| w.flush().map_err(|e| e.to_string())),
        };
        if let Err(e) = res {
            tracing::warn!(error = %e, "image download stopped");
            let _ = err_tx.blocking_send(Err(io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    Body::from_stream(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(v: &str, size: u64) -> ApiResult<Option<(u64, u64)>> {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), size)
    }

    #[test]
    fn ranges() {
        assert_eq!(r("bytes=0-9", 100).unwrap(), Some((0, 9)));
        assert_eq!(r("bytes=90-", 100).unwrap(), Some((90, 99)));
        assert_eq!(r("bytes=-10", 100).unwrap(), Some((90, 99)));
        assert_eq!(r("bytes=50-500", 100).unwrap(), Some((50, 99)));
        assert_eq!(r("bytes=0-1,5-6", 100).unwrap(), None);
        assert!(matches!(
            r("bytes=100-", 100),
            Err(ApiError::RangeNotSatisfiable { .. })
        ));
        assert!(matches!(
            r("bytes=5-2", 100),
            Err(ApiError::RangeNotSatisfiable { .. })
        ));
        assert!(matches!(
            r("bytes=x-2", 100),
            Err(ApiError::RangeNotSatisfiable { .. })
        ));
        assert_eq!(parse_range(None, 100).unwrap(), None);
    }
}

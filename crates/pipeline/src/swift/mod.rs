//! The OpenStack Swift backend (blocking HTTP over rustls).
//!
//! Every request goes through [`SwiftStore::request`], which applies the retry policy and
//! renews an expired token once (401) when the credentials allow it. DLO and SLO manifests
//! are written and read with Swift's own headers and `multipart-manifest` queries.

mod auth;

pub use auth::{catalog_endpoint, SwiftAuth};

use crate::error::{Error, ErrorKind, Result};
use crate::hash::{normalize_etag, Md5Reader};
use crate::http::{
    agent, decode, encode, get_stream, kind_for_status, map_err, read_body, HttpConfig,
};
use crate::rawhttp::{RawClient, RawResponse};
use crate::retry::RetryPolicy;
use crate::store::{
    Body, Capabilities, GetStream, ListEntry, ListPage, Manifest, ObjectInfo, ObjectPath,
    ObjectStore, PutOptions, PutResult, SegmentRef,
};
use std::ops::Range;
use std::sync::{Mutex, RwLock};

/// Largest single Swift object by default (5 GiB + 2).
pub const MAX_OBJECT_SIZE: u64 = 5_368_709_122;

/// A Swift account.
pub struct SwiftStore {
    auth: SwiftAuth,
    agent: ureq::Agent,
    /// Object PUT/GET on plain-http storage URLs (see [`crate::rawhttp`]).
    raw: Option<RawClient>,
    session: RwLock<Option<(String, String)>>,
    /// Held while logging in, so concurrent callers wait for one login.
    login_lock: Mutex<()>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SwiftStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwiftStore")
            .field("auth", &self.auth)
            .finish()
    }
}

impl SwiftStore {
    /// A store using `auth`; nothing is sent until the first request.
    pub fn new(auth: SwiftAuth) -> Self {
        Self::with_config(auth, None, HttpConfig::default(), RetryPolicy::default())
    }

    /// Full control: an optional preset (storage URL, token) tried before logging in.
    pub fn with_config(
        auth: SwiftAuth,
        preset: Option<(String, String)>,
        http: HttpConfig,
        retry: RetryPolicy,
    ) -> Self {
        SwiftStore {
            auth,
            agent: agent(&http),
            raw: raw_enabled().then(|| RawClient::new(&http)),
            session: RwLock::new(preset),
            login_lock: Mutex::new(()),
            retry,
        }
    }

    /// From python-swiftclient's environment variables (see [`SwiftAuth::from_env`]).
    pub fn from_env() -> Result<Self> {
        let (auth, preset) = SwiftAuth::from_env()?;
        Ok(Self::with_config(
            auth,
            preset,
            HttpConfig::default(),
            RetryPolicy::default(),
        ))
    }

    /// Replaces the retry policy.
    pub fn set_retry_policy(&mut self, retry: RetryPolicy) {
        self.retry = retry;
    }

    /// The storage URL and token, logging in if needed.
    ///
    /// One login at a time: when a token expires under many parallel transfers, the first
    /// to see the 401 logs in and the others wait for its token instead of each asking
    /// the identity service for one.
    pub fn session(&self) -> Result<(String, String)> {
        if let Some(s) = self.session.read().ok().and_then(|g| g.clone()) {
            return Ok(s);
        }
        let _one = self.login_lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = self.session.read().ok().and_then(|g| g.clone()) {
            return Ok(s);
        }
        let s = self.retry.run(|_| self.auth.login(&self.agent))?;
        if let Ok(mut g) = self.session.write() {
            *g = Some(s.clone());
        }
        Ok(s)
    }

    fn renew(&self, stale_token: &str) -> Result<()> {
        if let Ok(mut g) = self.session.write() {
            // Another thread may have renewed already.
            if g.as_ref().is_some_and(|(_, t)| t == stale_token) {
                *g = None;
            }
        }
        self.session().map(|_| ())
    }

    fn target(&self, container: &str, name: Option<&str>) -> String {
        match name {
            Some(n) => format!("swift://{container}/{n}"),
            None => format!("swift://{container}"),
        }
    }

    /// One request with retries and token renewal. `body` is re-read for every attempt;
    /// `md5_out` receives (md5, bytes) of the body actually sent when `hash_body`.
    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        op: &str,
        method: &str,
        container: &str,
        name: Option<&str>,
        query: &str,
        headers: &[(&str, String)],
        body: Option<&dyn Body>,
        hash_body: bool,
    ) -> Result<(ureq::Response, Option<(String, u64)>)> {
        self.request_with(
            self.retry, op, method, container, name, query, headers, body, hash_body,
        )
    }

    /// A GET whose (small) body is read inside the retry loop, so a body cut short is
    /// retried like any other transient failure.
    fn request_read(
        &self,
        op: &str,
        container: &str,
        name: Option<&str>,
        query: &str,
    ) -> Result<(u16, Vec<u8>)> {
        let target = self.target(container, name);
        self.retry.run(|_| {
            let (resp, _) = self.request_with(
                RetryPolicy::none(),
                op,
                "GET",
                container,
                name,
                query,
                &[],
                None,
                false,
            )?;
            let status = resp.status();
            Ok((status, read_body(resp, 64 << 20, op, &target)?))
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn request_with(
        &self,
        policy: RetryPolicy,
        op: &str,
        method: &str,
        container: &str,
        name: Option<&str>,
        query: &str,
        headers: &[(&str, String)],
        body: Option<&dyn Body>,
        hash_body: bool,
    ) -> Result<(ureq::Response, Option<(String, u64)>)> {
        let target = self.target(container, name);
        policy.run(|_| {
            let mut renewed = false;
            loop {
                let (storage, token) = self.session()?;
                let mut url = format!(
                    "{}/{}",
                    storage.trim_end_matches('/'),
                    encode(container, false)
                );
                if let Some(n) = name {
                    url.push('/');
                    url.push_str(&encode(n, true));
                }
                if !query.is_empty() {
                    url.push('?');
                    url.push_str(query);
                }
                let mut req = self.agent.request(method, &url).set("X-Auth-Token", &token);
                for (k, v) in headers {
                    req = req.set(k, v);
                }
                let mut hashed = None;
                let res = match body {
                    None => req.call(),
                    Some(b) => {
                        let req = req.set("Content-Length", &b.len().to_string());
                        let r = b.reader().map_err(|e| Error::io(op, &target, e))?;
                        if hash_body {
                            let mut hr = Md5Reader::new(r);
                            let res = req.send(&mut hr);
                            hashed = Some(hr.finish());
                            res
                        } else {
                            req.send(r)
                        }
                    }
                };
                match res {
                    Ok(resp) => return Ok((resp, hashed)),
                    Err(ureq::Error::Status(401, _)) if !renewed && self.auth.renewable() => {
                        renewed = true;
                        self.renew(&token)?;
                    }
                    Err(e) => return Err(map_err(op, &target, e)),
                }
            }
        })
    }
}

/// The lean data path is on unless `CLOUDIMG_RAW_HTTP=0` (an escape hatch, and a way to
/// measure the difference).
fn raw_enabled() -> bool {
    std::env::var("CLOUDIMG_RAW_HTTP").map_or(true, |v| v != "0")
}

impl SwiftStore {
    /// The object URL, when the data path may use the lean client for it.
    fn raw_url(&self, storage: &str, path: &ObjectPath) -> Option<String> {
        self.raw.as_ref()?;
        if !storage.starts_with("http://") {
            return None;
        }
        Some(format!(
            "{}/{}/{}",
            storage.trim_end_matches('/'),
            encode(&path.container, false),
            encode(&path.name, true)
        ))
    }

    /// An object PUT or GET through the lean client, with the same retries, token
    /// renewal and status classification as [`SwiftStore::request`]. `None` when the
    /// storage URL is not plain http.
    fn raw_request(
        &self,
        op: &str,
        method: &str,
        path: &ObjectPath,
        headers: &[(&str, String)],
        body: Option<&dyn Body>,
    ) -> Result<Option<RawResponse>> {
        let Some(raw) = &self.raw else {
            return Ok(None);
        };
        let target = self.url(path);
        let (storage, _) = self.session()?;
        if self.raw_url(&storage, path).is_none() {
            return Ok(None);
        }
        self.retry
            .run(|_| {
                let mut renewed = false;
                loop {
                    let (storage, token) = self.session()?;
                    let Some(url) = self.raw_url(&storage, path) else {
                        return Err(Error::new(
                            ErrorKind::Permanent,
                            op,
                            &target,
                            "storage URL changed from http to https",
                        ));
                    };
                    let mut all: Vec<(&str, String)> = vec![("X-Auth-Token", token.clone())];
                    all.extend(headers.iter().map(|(k, v)| (*k, v.clone())));
                    let resp = raw
                        .request(method, &url, &all, body)
                        .map_err(|e| Error::io(op, &target, e).with_kind(ErrorKind::Transient))?;
                    match resp.status {
                        200..=299 => return Ok(resp),
                        401 if !renewed && self.auth.renewable() => {
                            renewed = true;
                            drop(resp);
                            self.renew(&token)?;
                        }
                        code => {
                            let body = resp.text(400);
                            let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
                            let detail = if body.is_empty() {
                                format!("server answered {code}")
                            } else {
                                format!("server answered {code}: {body}")
                            };
                            return Err(Error::new(kind_for_status(code), op, &target, detail)
                                .with_status(code));
                        }
                    }
                }
            })
            .map(Some)
    }
}

fn header_string(resp: &ureq::Response, name: &str) -> Option<String> {
    resp.header(name).map(str::to_string)
}

impl ObjectStore for SwiftStore {
    fn url(&self, path: &ObjectPath) -> String {
        self.target(&path.container, Some(&path.name))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dlo: true,
            slo: true,
            multipart: false,
            max_object_size: MAX_OBJECT_SIZE,
            max_segments: 1000,
            min_part_size: 0,
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    fn ensure_container(&self, container: &str) -> Result<()> {
        self.request(
            "create container",
            "PUT",
            container,
            None,
            "",
            &[],
            Some(&Vec::new()),
            false,
        )
        .map(|_| ())
    }

    fn container_exists(&self, container: &str) -> Result<bool> {
        match self.request(
            "head container",
            "HEAD",
            container,
            None,
            "",
            &[],
            None,
            false,
        ) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn put(&self, path: &ObjectPath, body: &dyn Body, opts: &PutOptions) -> Result<PutResult> {
        let mut headers: Vec<(&str, String)> = Vec::new();
        if let Some(m) = &opts.md5 {
            headers.push(("ETag", normalize_etag(m)));
        }
        if let Some(ct) = &opts.content_type {
            headers.push(("Content-Type", ct.clone()));
        }
        let meta: Vec<(String, String)> = opts
            .metadata
            .iter()
            .map(|(k, v)| (format!("X-Object-Meta-{k}"), v.clone()))
            .collect();
        for (k, v) in &meta {
            headers.push((k.as_str(), v.clone()));
        }
        // The lean path sends in-memory bodies; it needs the MD5 before sending.
        if let Some(slice) = body.as_slice() {
            let md5 = match &opts.md5 {
                Some(m) => normalize_etag(m),
                None => crate::hash::md5_hex(slice),
            };
            if opts.md5.is_none() {
                headers.push(("ETag", md5.clone()));
            }
            if let Some(resp) = self.raw_request("put", "PUT", path, &headers, Some(body))? {
                let etag = resp.header("ETag").map(normalize_etag).unwrap_or_default();
                drop(resp);
                if etag != md5 {
                    return Err(Error::new(
                        ErrorKind::Integrity,
                        "put",
                        self.url(path),
                        format!("server ETag {etag:?} differs from the MD5 of the body {md5}"),
                    ));
                }
                return Ok(PutResult {
                    etag,
                    size: body.len(),
                });
            }
            if opts.md5.is_none() {
                headers.pop();
            }
        }
        // With a known MD5 the server verifies the body (422 otherwise) and we compare its
        // answer; without one we hash what we send.
        let hash = opts.md5.is_none();
        let (resp, hashed) = self.request(
            "put",
            "PUT",
            &path.container,
            Some(&path.name),
            "",
            &headers,
            Some(body),
            hash,
        )?;
        let sent_md5 = match (&opts.md5, hashed) {
            (Some(m), _) => normalize_etag(m),
            (None, Some((m, n))) => {
                if n != body.len() {
                    return Err(Error::new(
                        ErrorKind::Integrity,
                        "put",
                        self.url(path),
                        format!("sent {n} bytes, expected {}", body.len()),
                    ));
                }
                m
            }
            (None, None) => String::new(),
        };
        let etag = resp.header("ETag").map(normalize_etag).unwrap_or_default();
        if etag != sent_md5 {
            return Err(Error::new(
                ErrorKind::Integrity,
                "put",
                self.url(path),
                format!("server ETag {etag:?} differs from the MD5 of the body {sent_md5}"),
            ));
        }
        Ok(PutResult {
            etag,
            size: body.len(),
        })
    }

    fn get(&self, path: &ObjectPath, range: Option<Range<u64>>) -> Result<GetStream> {
        let mut headers = Vec::new();
        if let Some(r) = &range {
            if r.start >= r.end {
                return Err(Error::new(
                    ErrorKind::Usage,
                    "get",
                    self.url(path),
                    format!("empty range {r:?}"),
                ));
            }
            headers.push(("Range", format!("bytes={}-{}", r.start, r.end - 1)));
        }
        if let Some(resp) = self.raw_request("get", "GET", path, &headers, None)? {
            return crate::rawhttp::raw_get_stream(resp, range.as_ref(), self.url(path));
        }
        let (resp, _) = self.request(
            "get",
            "GET",
            &path.container,
            Some(&path.name),
            "",
            &headers,
            None,
            false,
        )?;
        get_stream(resp, range.as_ref(), self.url(path))
    }

    fn get_ranges(&self, path: &ObjectPath, ranges: &[Range<u64>]) -> Result<Option<Vec<Vec<u8>>>> {
        use crate::byteranges;
        use std::io::Read;
        let mut out = Vec::with_capacity(ranges.len());
        for group in ranges.chunks(byteranges::MAX_PER_REQUEST) {
            let headers = [("Range", byteranges::header(group))];
            // Without the raw client (https) each group is a streamed GET of its own: no
            // better than one request per range.
            let Some(mut resp) = self.raw_request("get ranges", "GET", path, &headers, None)?
            else {
                return Ok(None);
            };
            if resp.status != 206 {
                // The server ignored the header (too many ranges for it): the whole
                // object follows, which the caller streams better.
                return Ok(None);
            }
            let max = byteranges::max_body(group);
            let mut body = Vec::new();
            (&mut resp.body)
                .take(max + 1)
                .read_to_end(&mut body)
                .map_err(|e| {
                    Error::io("get ranges", self.url(path), e).with_kind(ErrorKind::Transient)
                })?;
            if body.len() as u64 > max {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    "get ranges",
                    self.url(path),
                    format!("the answer to {} ranges exceeds {max} bytes", group.len()),
                ));
            }
            let ctype = resp.header("Content-Type").unwrap_or_default().to_string();
            match byteranges::boundary(&ctype) {
                Some(b) => out.extend(byteranges::parse(&body, b, group, &self.url(path))?),
                // One range is answered as a plain 206 body.
                None if group.len() == 1 && body.len() as u64 == group[0].end - group[0].start => {
                    out.push(body)
                }
                // A Swift-compatible server that answers only part of a multi-range
                // header (some answer the first range alone): stream instead.
                None => return Ok(None),
            }
        }
        Ok(Some(out))
    }

    fn head(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        let (resp, _) = self.request(
            "head",
            "HEAD",
            &path.container,
            Some(&path.name),
            "",
            &[],
            None,
            false,
        )?;
        let size = resp
            .header("Content-Length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let manifest = if let Some(m) = resp.header("X-Object-Manifest") {
            let m = decode(m);
            let (c, p) = m.split_once('/').unwrap_or((m.as_str(), ""));
            Some(Manifest::Dlo {
                container: c.to_string(),
                prefix: p.to_string(),
            })
        } else if resp
            .header("X-Static-Large-Object")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        {
            Some(Manifest::Slo)
        } else {
            None
        };
        let metadata = resp
            .headers_names()
            .into_iter()
            .filter_map(|h| {
                let lower = h.to_ascii_lowercase();
                let key = lower.strip_prefix("x-object-meta-")?.to_string();
                Some((key, header_string(&resp, &h)?))
            })
            .collect();
        Ok(ObjectInfo {
            size,
            etag: resp.header("ETag").map(normalize_etag),
            manifest,
            content_type: header_string(&resp, "Content-Type"),
            metadata,
        })
    }

    fn list(
        &self,
        container: &str,
        prefix: &str,
        marker: Option<&str>,
        limit: usize,
    ) -> Result<ListPage> {
        let mut query = format!("format=json&limit={limit}");
        if !prefix.is_empty() {
            query.push_str(&format!("&prefix={}", encode(prefix, false)));
        }
        if let Some(m) = marker {
            query.push_str(&format!("&marker={}", encode(m, false)));
        }
        let (status, body) = self.request_read("list", container, None, &query)?;
        let target = self.target(container, None);
        if status == 204 {
            return Ok(ListPage::default());
        }
        parse_listing_of(&body, limit, &target)
    }

    fn delete(&self, path: &ObjectPath) -> Result<()> {
        self.request(
            "delete",
            "DELETE",
            &path.container,
            Some(&path.name),
            "",
            &[],
            None,
            false,
        )
        .map(|_| ())
    }

    fn put_dlo_manifest(
        &self,
        path: &ObjectPath,
        segments_container: &str,
        prefix: &str,
    ) -> Result<()> {
        let value = format!(
            "{}/{}",
            encode(segments_container, false),
            encode(prefix, true)
        );
        self.request(
            "put DLO manifest",
            "PUT",
            &path.container,
            Some(&path.name),
            "",
            &[("X-Object-Manifest", value)],
            Some(&Vec::new()),
            false,
        )
        .map(|_| ())
    }

    fn put_slo_manifest(&self, path: &ObjectPath, segments: &[SegmentRef]) -> Result<()> {
        let list: Vec<serde_json::Value> = segments
            .iter()
            .map(|s| {
                serde_json::json!({
                    "path": format!("/{}/{}", s.path.container, s.path.name),
                    "etag": normalize_etag(&s.etag),
                    "size_bytes": s.size,
                })
            })
            .collect();
        let body = serde_json::to_vec(&list).unwrap_or_default();
        self.request(
            "put SLO manifest",
            "PUT",
            &path.container,
            Some(&path.name),
            "multipart-manifest=put",
            &[("Content-Type", "application/json".to_string())],
            Some(&body),
            false,
        )
        .map(|_| ())
    }

    fn get_slo_manifest(&self, path: &ObjectPath) -> Result<Vec<SegmentRef>> {
        let (_, body) = self.request_read(
            "get SLO manifest",
            &path.container,
            Some(&path.name),
            "multipart-manifest=get",
        )?;
        parse_slo_manifest_of(&body, &self.url(path))
    }
}

/// Parses one page of a Swift JSON container listing (`?format=json`) asked for with
/// `limit`. Entries without a name or size (subdir markers) are left out; the page is
/// `truncated` when it is full, so the caller asks for the next one.
pub fn parse_listing(body: &[u8], limit: usize) -> Result<ListPage> {
    parse_listing_of(body, limit, "swift listing")
}

fn parse_listing_of(body: &[u8], limit: usize, target: &str) -> Result<ListPage> {
    #[derive(serde::Deserialize)]
    struct Item {
        name: Option<String>,
        bytes: Option<u64>,
        hash: Option<String>,
    }
    let items: Vec<Item> = serde_json::from_slice(body).map_err(|e| {
        Error::new(ErrorKind::Permanent, "list", target, "bad listing JSON").with_source(e)
    })?;
    let n = items.len();
    let entries = items
        .into_iter()
        .filter_map(|i| {
            Some(ListEntry {
                name: i.name?,
                size: i.bytes?,
                etag: listing_etag(i.hash.as_deref().unwrap_or_default()),
            })
        })
        .collect();
    Ok(ListPage {
        entries,
        truncated: n >= limit,
    })
}

/// `hash` normalised, or `None` when it is still not a bare token afterwards (a quote or
/// blank inside it): no ETag Swift writes looks like that.
fn etag_token(hash: &str) -> Option<String> {
    let etag = normalize_etag(hash);
    (!etag.bytes().any(|b| b == b'"' || !b.is_ascii_graphic())).then_some(etag)
}

/// A listing's `hash`, normalised; one that is no ETag is kept as unknown (empty), which
/// never equals a computed MD5: the segment is sent again rather than trusted.
fn listing_etag(hash: &str) -> String {
    etag_token(hash).unwrap_or_default()
}

/// Parses an SLO manifest as `?multipart-manifest=get` returns it (a JSON list of
/// `name`, `hash`, `bytes`). Segments with ranges and nested SLOs are refused as
/// [`ErrorKind::Unsupported`]; a name without a container is [`ErrorKind::Permanent`].
pub fn parse_slo_manifest(body: &[u8]) -> Result<Vec<SegmentRef>> {
    parse_slo_manifest_of(body, "swift SLO manifest")
}

fn parse_slo_manifest_of(body: &[u8], target: &str) -> Result<Vec<SegmentRef>> {
    #[derive(serde::Deserialize)]
    struct Item {
        name: String,
        hash: String,
        bytes: u64,
        #[serde(default)]
        range: Option<String>,
        #[serde(default)]
        sub_slo: Option<bool>,
    }
    let items: Vec<Item> = serde_json::from_slice(body).map_err(|e| {
        Error::new(
            ErrorKind::Permanent,
            "get SLO manifest",
            target,
            "not an SLO manifest (bad JSON)",
        )
        .with_source(e)
    })?;
    items
        .into_iter()
        .enumerate()
        .map(|(k, i)| {
            if i.range.is_some() || i.sub_slo == Some(true) {
                return Err(Error::new(
                    ErrorKind::Unsupported,
                    "get SLO manifest",
                    target,
                    "segments with ranges or nested SLOs are not supported",
                ));
            }
            let name = i.name.trim_start_matches('/');
            let (c, o) = name.split_once('/').ok_or_else(|| {
                Error::new(
                    ErrorKind::Permanent,
                    "get SLO manifest",
                    target,
                    format!("bad segment name {:?}", i.name),
                )
            })?;
            // A segment's hash is what its bytes are checked against on download.
            let etag = etag_token(&i.hash).ok_or_else(|| {
                Error::new(
                    ErrorKind::Permanent,
                    "get SLO manifest",
                    target,
                    format!("segment {}: hash {:?} is not an ETag", k + 1, i.hash),
                )
            })?;
            Ok(SegmentRef {
                path: ObjectPath::new(c, o),
                etag,
                size: i.bytes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_keeps_named_sized_entries() {
        let body = br#"[{"name":"a-00001","bytes":5,"hash":"\"ABC\""},{"subdir":"a/"},{"name":"b","bytes":0}]"#;
        let page = parse_listing(body, 3).unwrap();
        assert_eq!(page.entries.len(), 2);
        assert_eq!(page.entries[0].etag, "abc");
        assert_eq!(page.entries[1].etag, "");
        assert!(page.truncated);
        assert!(!parse_listing(body, 4).unwrap().truncated);
        // A quote or blank left inside the hash after normalising: unknown, not trusted.
        let odd =
            br#"[{"name":"q","bytes":1,"hash":"ab\"cd"},{"name":"s","bytes":1,"hash":"\"a b\""}]"#;
        let page = parse_listing(odd, 9).unwrap();
        assert_eq!(page.entries.len(), 2);
        assert!(page.entries.iter().all(|e| e.etag.is_empty()), "{page:?}");
        let err = parse_listing(b"{", 1).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Permanent);
    }

    #[test]
    fn slo_manifest_segments() {
        let body = br#"[{"name":"/c_segments/o/00000000","hash":"ABCD","bytes":3}]"#;
        let segs = parse_slo_manifest(body).unwrap();
        assert_eq!(segs[0].path, ObjectPath::new("c_segments", "o/00000000"));
        assert_eq!((segs[0].etag.as_str(), segs[0].size), ("abcd", 3));
        let ranged = br#"[{"name":"/c/o","hash":"x","bytes":3,"range":"0-1"}]"#;
        assert_eq!(
            parse_slo_manifest(ranged).unwrap_err().kind(),
            ErrorKind::Unsupported
        );
        let no_container = br#"[{"name":"/o","hash":"x","bytes":3}]"#;
        assert_eq!(
            parse_slo_manifest(no_container).unwrap_err().kind(),
            ErrorKind::Permanent
        );
        // The fuzzer's find: a quote left inside the hash once its own quotes are gone.
        let quoted = br#"[{"name":"/c/a","hash":"ab","bytes":1},{"name":"/c/o","hash":"d4'0\"ce","bytes":3}]"#;
        let e = parse_slo_manifest(quoted).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.to_string().contains("segment 2"), "{e}");
    }
}

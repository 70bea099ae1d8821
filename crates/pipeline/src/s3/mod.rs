//! The S3 backend: path-style requests signed with SigV4 over the same blocking HTTP client
//! as Swift (so it works with any endpoint: AWS, MinIO, Swift's s3api). Multipart uploads
//! are the large-object form; bodies are sent `UNSIGNED-PAYLOAD` with `Content-MD5`, so the
//! server checks every part and object.

mod sigv4;
pub mod xml;

use crate::error::{Error, ErrorKind, Result};
use crate::hash::normalize_etag;
use crate::http::{agent, encode, get_stream, map_err, read_body, HttpConfig};
use crate::retry::RetryPolicy;
use crate::store::{
    Body, Capabilities, GetStream, ListPage, Manifest, ObjectInfo, ObjectPath, ObjectStore,
    PartInfo, PutOptions, PutResult,
};
use base64::Engine;
use std::ops::Range;

/// Where and who.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// Endpoint base URL, e.g. `http://127.0.0.1:18080` or `https://s3.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    /// Region used in signatures.
    pub region: String,
    /// Access key id.
    pub access_key: String,
    /// Secret key.
    pub secret_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "S3Config({}, {}, {})",
            self.endpoint, self.region, self.access_key
        )
    }
}

impl S3Config {
    /// From `S3_ENDPOINT`/`AWS_ENDPOINT_URL`, `S3_ACCESS_KEY`/`AWS_ACCESS_KEY_ID`,
    /// `S3_SECRET_KEY`/`AWS_SECRET_ACCESS_KEY`, `S3_REGION`/`AWS_REGION`/`AWS_DEFAULT_REGION`.
    pub fn from_env() -> Result<Self> {
        let var = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
        };
        let region = var(&["S3_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"])
            .unwrap_or_else(|| "us-east-1".into());
        let endpoint = var(&["S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"])
            .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
        let access_key = var(&["S3_ACCESS_KEY", "AWS_ACCESS_KEY_ID"]);
        let secret_key = var(&["S3_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"]);
        match (access_key, secret_key) {
            (Some(access_key), Some(secret_key)) => Ok(S3Config {
                endpoint,
                region,
                access_key,
                secret_key,
            }),
            _ => Err(Error::usage(
                "s3 auth",
                "no S3 credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or S3_ACCESS_KEY/S3_SECRET_KEY)",
            )),
        }
    }
}

/// An S3 account at one endpoint.
pub struct S3Store {
    cfg: S3Config,
    agent: ureq::Agent,
    host: String,
    signer: sigv4::Signer,
    retry: RetryPolicy,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("cfg", &self.cfg).finish()
    }
}

#[derive(Clone)]
struct Req<'a> {
    op: &'a str,
    method: &'a str,
    bucket: &'a str,
    key: Option<&'a str>,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<&'a dyn Body>,
    /// SHA-256 of a small body that is signed; None sends UNSIGNED-PAYLOAD (or the empty hash).
    payload_sha256: Option<String>,
}

impl S3Store {
    /// A store for `cfg`.
    pub fn new(cfg: S3Config) -> Self {
        Self::with_config(cfg, HttpConfig::default(), RetryPolicy::default())
    }

    /// Full control over HTTP and retries.
    pub fn with_config(cfg: S3Config, http: HttpConfig, retry: RetryPolicy) -> Self {
        let host = cfg
            .endpoint
            .split("://")
            .nth(1)
            .unwrap_or(&cfg.endpoint)
            .split('/')
            .next()
            .unwrap_or("")
            .to_string();
        S3Store {
            agent: agent(&http),
            host,
            signer: sigv4::Signer::new(&cfg.access_key, &cfg.secret_key, &cfg.region),
            cfg,
            retry,
        }
    }

    /// From the environment (see [`S3Config::from_env`]).
    pub fn from_env() -> Result<Self> {
        Ok(Self::new(S3Config::from_env()?))
    }

    fn target(&self, bucket: &str, key: Option<&str>) -> String {
        match key {
            Some(k) => format!("s3://{bucket}/{k}"),
            None => format!("s3://{bucket}"),
        }
    }

    fn send(&self, r: Req<'_>) -> Result<ureq::Response> {
        self.send_with(self.retry, r)
    }

    /// Sends and reads the (small, XML) answer inside the retry loop, so a body cut short
    /// is retried too.
    fn send_read(&self, r: Req<'_>) -> Result<String> {
        let target = self.target(r.bucket, r.key);
        self.retry.run(|_| {
            let resp = self.send_with(RetryPolicy::none(), r.clone())?;
            self.xml(resp, r.op, &target)
        })
    }

    fn send_with(&self, policy: RetryPolicy, r: Req<'_>) -> Result<ureq::Response> {
        let target = self.target(r.bucket, r.key);
        let mut uri = format!("/{}", encode(r.bucket, false));
        if let Some(k) = r.key {
            uri.push('/');
            uri.push_str(&encode(k, true));
        }
        let mut q: Vec<(String, String)> = r
            .query
            .iter()
            .map(|(k, v)| (encode(k, false), encode(v, false)))
            .collect();
        q.sort();
        let query = q
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let base = self.cfg.endpoint.trim_end_matches('/');
        let url = if query.is_empty() {
            format!("{base}{uri}")
        } else {
            format!("{base}{uri}?{query}")
        };
        let payload = match (&r.payload_sha256, r.body) {
            (Some(h), _) => h.clone(),
            (None, Some(_)) => "UNSIGNED-PAYLOAD".to_string(),
            (None, None) => sigv4::EMPTY_SHA256.to_string(),
        };
        policy.run(|_| {
            let mut headers = r.headers.clone();
            headers.push(("host".into(), self.host.clone()));
            let signed = self
                .signer
                .sign(
                    r.method,
                    &url,
                    &headers,
                    &payload,
                    std::time::SystemTime::now(),
                )
                .map_err(|e| {
                    Error::new(
                        ErrorKind::Usage,
                        r.op,
                        &target,
                        format!("cannot sign the request: {e}"),
                    )
                })?;
            let mut req = self.agent.request(r.method, &url);
            for (k, v) in headers.iter().chain(&signed) {
                if k != "host" {
                    req = req.set(k, v);
                }
            }
            let res = match r.body {
                None => req.call(),
                Some(b) => {
                    let req = req.set("Content-Length", &b.len().to_string());
                    let rd = b.reader().map_err(|e| Error::io(r.op, &target, e))?;
                    req.send(rd)
                }
            };
            res.map_err(|e| {
                let e = map_err(r.op, &target, e);
                // S3 refuses a body that does not match Content-MD5 with 400 BadDigest.
                if e.detail().contains("<Code>BadDigest</Code>") {
                    Error::new(ErrorKind::Integrity, r.op, &target, e.detail().to_string())
                        .with_status(400)
                } else {
                    e
                }
            })
        })
    }

    fn req<'a>(
        &self,
        op: &'a str,
        method: &'a str,
        bucket: &'a str,
        key: Option<&'a str>,
    ) -> Req<'a> {
        Req {
            op,
            method,
            bucket,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
            payload_sha256: None,
        }
    }

    fn xml(&self, resp: ureq::Response, op: &str, target: &str) -> Result<String> {
        let body = read_body(resp, 64 << 20, op, target)?;
        String::from_utf8(body)
            .map_err(|_| Error::new(ErrorKind::Permanent, op, target, "response is not UTF-8"))
    }
}

fn b64_md5(hex_md5: &str) -> Option<String> {
    let bin = hex::decode(normalize_etag(hex_md5)).ok()?;
    Some(base64::engine::general_purpose::STANDARD.encode(bin))
}

impl ObjectStore for S3Store {
    fn url(&self, path: &ObjectPath) -> String {
        self.target(&path.container, Some(&path.name))
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            dlo: false,
            slo: false,
            multipart: true,
            max_object_size: 5 << 30,
            max_segments: 10_000,
            min_part_size: 5 << 20,
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    fn ensure_container(&self, container: &str) -> Result<()> {
        match self.send(self.req("create bucket", "PUT", container, None)) {
            Ok(_) => Ok(()),
            Err(e) if e.status() == Some(409) && self.container_exists(container)? => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn container_exists(&self, container: &str) -> Result<bool> {
        match self.send(self.req("head bucket", "HEAD", container, None)) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn put(&self, path: &ObjectPath, body: &dyn Body, opts: &PutOptions) -> Result<PutResult> {
        let md5 = match &opts.md5 {
            Some(m) => normalize_etag(m),
            // S3 needs the MD5 up front to verify; hash the (re-readable) body first.
            None => {
                let mut r = crate::hash::Md5Reader::new(
                    body.reader()
                        .map_err(|e| Error::io("put", self.url(path), e))?,
                );
                std::io::copy(&mut r, &mut std::io::sink())
                    .map_err(|e| Error::io("put", self.url(path), e))?;
                r.finish().0
            }
        };
        let mut req = self.req("put", "PUT", &path.container, Some(&path.name));
        if let Some(b) = b64_md5(&md5) {
            req.headers.push(("content-md5".into(), b));
        }
        if let Some(ct) = &opts.content_type {
            req.headers.push(("content-type".into(), ct.clone()));
        }
        for (k, v) in &opts.metadata {
            req.headers.push((format!("x-amz-meta-{k}"), v.clone()));
        }
        req.body = Some(body);
        let resp = self.send(req)?;
        let etag = resp.header("ETag").map(normalize_etag).unwrap_or_default();
        if etag != md5 {
            return Err(Error::new(
                ErrorKind::Integrity,
                "put",
                self.url(path),
                format!("server ETag {etag:?} differs from the MD5 of the body {md5}"),
            ));
        }
        Ok(PutResult {
            etag,
            size: body.len(),
        })
    }

    fn get(&self, path: &ObjectPath, range: Option<Range<u64>>) -> Result<GetStream> {
        let mut req = self.req("get", "GET", &path.container, Some(&path.name));
        if let Some(r) = &range {
            if r.start >= r.end {
                return Err(Error::usage("get", format!("empty range {r:?}")));
            }
            req.headers
                .push(("range".into(), format!("bytes={}-{}", r.start, r.end - 1)));
        }
        let resp = self.send(req)?;
        get_stream(resp, range.as_ref(), self.url(path))
    }

    fn head(&self, path: &ObjectPath) -> Result<ObjectInfo> {
        let resp = self.send(self.req("head", "HEAD", &path.container, Some(&path.name)))?;
        let etag = resp.header("ETag").map(normalize_etag);
        let manifest = etag.as_ref().and_then(|e| {
            let (_, n) = e.split_once('-')?;
            Some(Manifest::S3Multipart {
                parts: n.parse().ok()?,
            })
        });
        let metadata = resp
            .headers_names()
            .into_iter()
            .filter_map(|h| {
                let key = h
                    .to_ascii_lowercase()
                    .strip_prefix("x-amz-meta-")?
                    .to_string();
                Some((key, resp.header(&h)?.to_string()))
            })
            .collect();
        Ok(ObjectInfo {
            size: resp
                .header("Content-Length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            etag,
            manifest,
            content_type: resp.header("Content-Type").map(str::to_string),
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
        let mut req = self.req("list", "GET", container, None);
        req.query
            .push(("max-keys".into(), limit.min(1000).to_string()));
        if !prefix.is_empty() {
            req.query.push(("prefix".into(), prefix.into()));
        }
        if let Some(m) = marker {
            req.query.push(("marker".into(), m.into()));
        }
        let target = self.target(container, None);
        let text = self.send_read(req)?;
        xml::list_page(&text, &target)
    }

    fn delete(&self, path: &ObjectPath) -> Result<()> {
        // S3 answers 204 for a missing key; check first so every backend reports NotFound.
        self.head(path)?;
        self.send(self.req("delete", "DELETE", &path.container, Some(&path.name)))
            .map(|_| ())
    }

    fn multipart_begin(&self, path: &ObjectPath) -> Result<String> {
        let mut req = self.req("begin multipart", "POST", &path.container, Some(&path.name));
        req.query.push(("uploads".into(), String::new()));
        let target = self.url(path);
        let text = self.send_read(req)?;
        xml::upload_id(&text, &target)
    }

    fn multipart_find(&self, path: &ObjectPath) -> Result<Option<String>> {
        let mut req = self.req("find multipart", "GET", &path.container, None);
        req.query.push(("uploads".into(), String::new()));
        req.query.push(("prefix".into(), path.name.clone()));
        let target = self.url(path);
        let text = self.send_read(req)?;
        xml::upload_of(&text, &path.name, &target)
    }

    fn multipart_put_part(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        number: u32,
        body: &dyn Body,
        md5: Option<&str>,
    ) -> Result<PutResult> {
        let mut req = self.req("put part", "PUT", &path.container, Some(&path.name));
        req.query.push(("partNumber".into(), number.to_string()));
        req.query.push(("uploadId".into(), upload_id.into()));
        if let Some(b) = md5.and_then(b64_md5) {
            req.headers.push(("content-md5".into(), b));
        }
        req.body = Some(body);
        let resp = self.send(req)?;
        let etag = resp.header("ETag").map(normalize_etag).unwrap_or_default();
        if let Some(m) = md5 {
            if etag != normalize_etag(m) {
                return Err(Error::new(
                    ErrorKind::Integrity,
                    "put part",
                    self.url(path),
                    format!("server ETag {etag:?} differs from the part MD5 {m}"),
                )
                .with_segment(number.into()));
            }
        }
        Ok(PutResult {
            etag,
            size: body.len(),
        })
    }

    fn multipart_list_parts(&self, path: &ObjectPath, upload_id: &str) -> Result<Vec<PartInfo>> {
        let target = self.url(path);
        let mut parts = Vec::new();
        let mut marker: Option<u32> = None;
        // Each page must move past the last one; with 1..=10,000 parts that bounds the loop.
        loop {
            let mut req = self.req("list parts", "GET", &path.container, Some(&path.name));
            req.query.push(("uploadId".into(), upload_id.into()));
            if let Some(m) = marker {
                req.query.push(("part-number-marker".into(), m.to_string()));
            }
            let text = self.send_read(req)?;
            let (page, next) = xml::parts_page(&text, &target)?;
            parts.extend(page);
            match next {
                Some(n) if marker.is_none_or(|m| n > m) && n < xml::MAX_PART_NUMBER => {
                    marker = Some(n)
                }
                _ => break,
            }
        }
        parts.sort_by_key(|p| p.number);
        parts.dedup_by_key(|p| p.number);
        Ok(parts)
    }

    fn multipart_complete(
        &self,
        path: &ObjectPath,
        upload_id: &str,
        parts: &[PartInfo],
    ) -> Result<String> {
        let mut xml = String::from("<CompleteMultipartUpload>");
        for p in parts {
            xml.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>\"{}\"</ETag></Part>",
                p.number,
                normalize_etag(&p.etag)
            ));
        }
        xml.push_str("</CompleteMultipartUpload>");
        let body = xml.into_bytes();
        let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&body));
        let mut req = self.req(
            "complete multipart",
            "POST",
            &path.container,
            Some(&path.name),
        );
        req.query.push(("uploadId".into(), upload_id.into()));
        req.body = Some(&body);
        req.payload_sha256 = Some(sha);
        let target = self.url(path);
        let text = self.send_read(req)?;
        xml::complete_etag(&text, &target)
    }

    fn multipart_abort(&self, path: &ObjectPath, upload_id: &str) -> Result<()> {
        let mut req = self.req(
            "abort multipart",
            "DELETE",
            &path.container,
            Some(&path.name),
        );
        req.query.push(("uploadId".into(), upload_id.into()));
        self.send(req).map(|_| ())
    }
}

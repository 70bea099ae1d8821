//! A lean HTTP/1.1 client over `std::net::TcpStream` for the bulk data path (object PUT and
//! GET) of plain `http://` endpoints; everything else, and all of `https://`, goes through
//! `ureq`.
//!
//! Why: `ureq` 2 sends a body through `std::io::copy` from a boxed reader (8 KiB writes)
//! and reads a body through an 8 KiB `BufReader` that re-arms the socket timeout before
//! every `recv`, so a 2 GiB transfer costs ~260,000 write or ~520,000 read-side syscalls
//! plus a copy. Here a segment already in memory goes out in one `write_all` (the kernel
//! takes it in socket-buffer-sized pieces), and a body is read straight into the caller's
//! buffer with reads as large as the caller asks. Timeouts are set once per connection.
//!
//! Connections are kept per `host:port` and reused; a reused connection that fails before
//! any byte of the answer arrives (the server closed it while idle) is replaced by a new
//! one once, which is safe because only idempotent PUT and GET go this way.
//!
//! hyper 1 was tried in its place and kept out (downloads 8 % slower, more CPU): the numbers
//! are in docs/DESIGN.md, "Crates we tried".

use crate::http::HttpConfig;
use crate::httpwire::{find_head_end, framing, parse_head, Deframer, Framing, Head, MAX_HEAD};
use crate::store::Body;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};

/// Idle connections per `host:port`.
#[derive(Debug)]
pub(crate) struct RawClient {
    cfg: HttpConfig,
    idle: Arc<Mutex<HashMap<String, Vec<TcpStream>>>>,
}

/// An answer: status, headers and a body reader that returns the connection for reuse
/// once the body has been read to its end.
pub(crate) struct RawResponse {
    pub status: u16,
    headers: Vec<(String, String)>,
    pub body: RawBody,
}

impl RawResponse {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Reads at most `max` bytes of the body as text (for error messages).
    pub fn text(mut self, max: u64) -> String {
        let mut s = Vec::new();
        let _ = (&mut self.body).take(max).read_to_end(&mut s);
        String::from_utf8_lossy(&s).into_owned()
    }
}

/// The socket side of a body: the bytes that came with the head, then the connection.
struct Src {
    conn: Option<TcpStream>,
    pre: Vec<u8>,
    pre_pos: usize,
}

impl Read for Src {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pre_pos < self.pre.len() {
            let n = (self.pre.len() - self.pre_pos).min(buf.len());
            buf[..n].copy_from_slice(&self.pre[self.pre_pos..self.pre_pos + n]);
            self.pre_pos += n;
            return Ok(n);
        }
        match &mut self.conn {
            Some(c) => c.read(buf),
            None => Ok(0),
        }
    }
}

/// A response body, read directly from the socket after the bytes that came with the head.
pub(crate) struct RawBody {
    src: Src,
    de: Deframer,
    reusable: bool,
    key: String,
    idle: Arc<Mutex<HashMap<String, Vec<TcpStream>>>>,
}

impl RawBody {
    /// At the end of the body: the connection goes back to the pool when it may carry
    /// another request and nothing of a next answer was read with this one.
    fn finished(&mut self) {
        if self.reusable && self.src.pre_pos >= self.src.pre.len() {
            if let (Some(c), Ok(mut idle)) = (self.src.conn.take(), self.idle.lock()) {
                idle.entry(self.key.clone()).or_default().push(c);
            }
        }
        self.src.conn = None;
    }
}

impl Read for RawBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.de.framing == Framing::Done {
            return Ok(0);
        }
        match self.de.read(&mut self.src, buf) {
            Ok(k) => {
                if self.de.framing == Framing::Done {
                    self.finished();
                }
                Ok(k)
            }
            Err(e) => {
                // Where the next answer would start is unknown: never reuse.
                self.src.conn = None;
                Err(e)
            }
        }
    }
}

/// `http://host[:port]/path?query` split into `host:port` (for connecting), the Host
/// header value and the request target.
pub(crate) fn split_url(url: &str) -> Option<(String, String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let hostport = if authority.starts_with('[') {
        if authority.contains("]:") {
            authority.to_string()
        } else {
            format!("{authority}:80")
        }
    } else if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Some((hostport, authority.to_string(), path.to_string()))
}

/// Why a request attempt failed: on a reused connection, before any answer, it may be
/// retried on a fresh one.
enum Attempt {
    Stale(io::Error),
    Failed(io::Error),
}

impl RawClient {
    pub fn new(cfg: &HttpConfig) -> Self {
        RawClient {
            cfg: *cfg,
            idle: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn connect(&self, hostport: &str) -> io::Result<TcpStream> {
        use std::net::ToSocketAddrs;
        let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{hostport}: no address"));
        for addr in hostport.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, self.cfg.connect_timeout) {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    s.set_read_timeout(Some(self.cfg.io_timeout))?;
                    s.set_write_timeout(Some(self.cfg.io_timeout))?;
                    return Ok(s);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Sends one request and reads the answer's head. `body` is sent from its slice in one
    /// write when it has one, else through a 1 MiB buffer.
    pub fn request(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&dyn Body>,
    ) -> io::Result<RawResponse> {
        let (hostport, host, target) = split_url(url).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a plain http URL: {url}"),
            )
        })?;
        let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
        for (k, v) in headers {
            if v.contains(['\r', '\n']) || k.contains(['\r', '\n', ':']) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("header {k} has a line break"),
                ));
            }
            head.push_str(k);
            head.push_str(": ");
            head.push_str(v);
            head.push_str("\r\n");
        }
        if let Some(b) = body {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        } else if method == "PUT" || method == "POST" {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let pooled = self
            .idle
            .lock()
            .ok()
            .and_then(|mut m| m.get_mut(&hostport).and_then(Vec::pop));
        if let Some(conn) = pooled {
            match self.attempt(conn, &hostport, method, head.as_bytes(), body) {
                Ok(r) => return Ok(r),
                Err(Attempt::Failed(e)) => return Err(e),
                Err(Attempt::Stale(_)) => {}
            }
        }
        let conn = self.connect(&hostport)?;
        match self.attempt(conn, &hostport, method, head.as_bytes(), body) {
            Ok(r) => Ok(r),
            Err(Attempt::Stale(e) | Attempt::Failed(e)) => Err(e),
        }
    }

    fn attempt(
        &self,
        mut conn: TcpStream,
        key: &str,
        method: &str,
        head: &[u8],
        body: Option<&dyn Body>,
    ) -> Result<RawResponse, Attempt> {
        // Nothing of the answer has been seen while sending: a failure here on a reused
        // connection is most likely an idle close, so the caller may try a fresh one.
        let sent = (|| -> io::Result<()> {
            match body {
                None => conn.write_all(head),
                Some(b) => match b.as_slice() {
                    Some(s) if s.len() <= 64 << 10 => {
                        let mut all = Vec::with_capacity(head.len() + s.len());
                        all.extend_from_slice(head);
                        all.extend_from_slice(s);
                        conn.write_all(&all)
                    }
                    Some(s) => {
                        conn.write_all(head)?;
                        conn.write_all(s)
                    }
                    None => {
                        conn.write_all(head)?;
                        let mut r = b.reader()?;
                        let mut buf = vec![0u8; (1 << 20).min(b.len() as usize).max(1)];
                        let mut left = b.len();
                        while left > 0 {
                            let want = (left.min(buf.len() as u64)) as usize;
                            let n = r.read(&mut buf[..want])?;
                            if n == 0 {
                                return Err(io::Error::new(
                                    io::ErrorKind::UnexpectedEof,
                                    "request body ended early",
                                ));
                            }
                            conn.write_all(&buf[..n])?;
                            left -= n as u64;
                        }
                        Ok(())
                    }
                },
            }
        })();
        if let Err(e) = sent {
            // The server may have answered early (e.g. 401/413/503) and closed: read it.
            if let Ok(r) = self.read_head(conn, key, method) {
                return Ok(r);
            }
            return Err(Attempt::Stale(e));
        }
        self.read_head(conn, key, method)
    }

    fn read_head(
        &self,
        mut conn: TcpStream,
        key: &str,
        method: &str,
    ) -> Result<RawResponse, Attempt> {
        let mut buf = Vec::with_capacity(16 << 10);
        let mut chunk = [0u8; 16 << 10];
        let end = loop {
            if let Some(i) = find_head_end(&buf) {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return Err(Attempt::Failed(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("response head larger than {} KiB", MAX_HEAD >> 10),
                )));
            }
            let n = match conn.read(&mut chunk) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if buf.is_empty() => return Err(Attempt::Stale(e)),
                Err(e) => return Err(Attempt::Failed(e)),
            };
            if n == 0 {
                let e = io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before the response head",
                );
                return Err(if buf.is_empty() {
                    Attempt::Stale(e)
                } else {
                    Attempt::Failed(e)
                });
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let bad = |what: String| Attempt::Failed(io::Error::new(io::ErrorKind::InvalidData, what));
        let head = parse_head(&buf[..end]).map_err(bad)?;
        let (framing, reusable) = framing(method, &head).map_err(bad)?;
        let mut body = RawBody {
            src: Src {
                conn: Some(conn),
                pre: buf[end + 4..].to_vec(),
                pre_pos: 0,
            },
            de: Deframer { framing },
            reusable,
            key: key.to_string(),
            idle: self.idle.clone(),
        };
        if body.de.framing == Framing::Length(0) {
            body.de.framing = Framing::Done;
            body.finished();
        }
        let Head {
            status, headers, ..
        } = head;
        Ok(RawResponse {
            status,
            headers,
            body,
        })
    }
}

/// [`crate::http::get_stream`] for an answer of this client: the same length and range checks.
pub(crate) fn raw_get_stream(
    resp: RawResponse,
    range: Option<&std::ops::Range<u64>>,
    target: String,
) -> crate::error::Result<crate::store::GetStream> {
    let status = resp.status;
    let len = resp
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            crate::error::Error::new(
                crate::error::ErrorKind::Permanent,
                "get",
                target.clone(),
                "no Content-Length in the answer",
            )
        })?;
    crate::http::check_range(status, len, range, &target)?;
    Ok(crate::store::GetStream {
        reader: Box::new(crate::store::LengthChecked {
            inner: resp.body,
            remaining: len,
        }),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn urls() {
        let (hp, host, t) = split_url("http://127.0.0.1:8080/v1/AUTH_x/c/o?a=b").unwrap();
        assert_eq!(
            (hp.as_str(), host.as_str(), t.as_str()),
            ("127.0.0.1:8080", "127.0.0.1:8080", "/v1/AUTH_x/c/o?a=b")
        );
        let (hp, _, t) = split_url("http://example").unwrap();
        assert_eq!((hp.as_str(), t.as_str()), ("example:80", "/"));
        assert!(split_url("https://x/y").is_none());
        assert!(split_url("http://u@x/y").is_none());
    }

    /// A server answering each request of one connection from a script, to check framing,
    /// reuse and the stale-connection retry.
    fn server(answers: Vec<&'static [u8]>, per_conn: usize) -> String {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut answers = answers.into_iter();
            for conn in l.incoming().take(4) {
                let mut c = conn.unwrap();
                for _ in 0..per_conn {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if c.read(&mut b).unwrap_or(0) == 0 {
                            break;
                        }
                        head.push(b[0]);
                    }
                    let text = String::from_utf8_lossy(&head).to_lowercase();
                    let len: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length: "))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; len];
                    let _ = c.read_exact(&mut body);
                    match answers.next() {
                        Some(a) => c.write_all(a).unwrap(),
                        None => return,
                    }
                }
            }
        });
        format!("http://{addr}")
    }

    #[test]
    fn framing_reuse_and_stale_retry() {
        let base = server(
            vec![
                b"HTTP/1.1 201 Created\r\nEtag: abc\r\nContent-Length: 0\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
                // The connection closes after two answers; the third request finds it stale.
                b"HTTP/1.1 206 Partial Content\r\nContent-Length: 5\r\n\r\nhello",
            ],
            2,
        );
        let c = RawClient::new(&HttpConfig::default());
        let r = c
            .request("PUT", &format!("{base}/c/o"), &[], Some(&b"data".to_vec()))
            .unwrap();
        assert_eq!((r.status, r.header("etag")), (201, Some("abc")));
        drop(r);
        let mut r = c.request("GET", &format!("{base}/c/o"), &[], None).unwrap();
        let mut s = String::new();
        r.body.read_to_string(&mut s).unwrap();
        assert_eq!(s, "abcde");
        drop(r);
        let mut r = c.request("GET", &format!("{base}/c/o"), &[], None).unwrap();
        assert_eq!(r.status, 206);
        let mut s = String::new();
        r.body.read_to_string(&mut s).unwrap();
        assert_eq!(s, "hello");
    }

    #[test]
    fn short_body_is_an_error() {
        let base = server(
            vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\nabc"],
            1,
        );
        let c = RawClient::new(&HttpConfig::default());
        let mut r = c.request("GET", &format!("{base}/x"), &[], None).unwrap();
        let mut v = Vec::new();
        let e = r.body.read_to_end(&mut v).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(v, b"abc");
    }
}

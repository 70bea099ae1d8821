//! Shared HTTP plumbing for the Swift and S3 backends: one blocking `ureq` agent with
//! rustls and pooled connections, status-to-[`ErrorKind`] mapping, percent-encoding.

use crate::error::{Error, ErrorKind};
use std::io::Read;
use std::time::Duration;

/// Connection settings shared by the HTTP backends.
#[derive(Debug, Clone, Copy)]
pub struct HttpConfig {
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of a response (or for the server to accept more).
    pub io_timeout: Duration,
    /// Idle connections kept per host; should be at least the number of parallel jobs.
    pub pool_per_host: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout: Duration::from_secs(10),
            io_timeout: Duration::from_secs(60),
            pool_per_host: 32,
        }
    }
}

pub(crate) fn agent(cfg: &HttpConfig) -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(cfg.connect_timeout)
        .timeout_read(cfg.io_timeout)
        .timeout_write(cfg.io_timeout)
        .max_idle_connections(cfg.pool_per_host * 2)
        .max_idle_connections_per_host(cfg.pool_per_host)
        .redirects(0)
        .build()
}

/// The kind for an HTTP status: the retry policy's whole classification lives here.
pub fn kind_for_status(status: u16) -> ErrorKind {
    match status {
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::NotFound,
        // Swift answers 422 when the body's MD5 differs from the ETag we sent.
        422 => ErrorKind::Integrity,
        408 | 429 | 498 | 500..=599 => ErrorKind::Transient,
        _ => ErrorKind::Permanent,
    }
}

/// Turns a ureq error into ours, reading a little of an error body for the message.
pub(crate) fn map_err(op: &str, target: &str, err: ureq::Error) -> Error {
    match err {
        ureq::Error::Status(code, resp) => {
            let mut body = String::new();
            let _ = resp.into_reader().take(400).read_to_string(&mut body);
            let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
            let detail = if body.is_empty() {
                format!("server answered {code}")
            } else {
                format!("server answered {code}: {body}")
            };
            Error::new(kind_for_status(code), op, target, detail).with_status(code)
        }
        ureq::Error::Transport(t) => {
            let kind = match t.kind() {
                ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme => ErrorKind::Usage,
                _ => ErrorKind::Transient,
            };
            Error::new(kind, op, target, t.to_string())
        }
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `/` when `keep_slash`).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
pub fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            let hexval = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hexval(b[i + 1]) << 4 | hexval(b[i + 2]));
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads at most `max` bytes of a response body as a string.
pub(crate) fn read_body(
    resp: ureq::Response,
    max: u64,
    op: &str,
    target: &str,
) -> crate::Result<Vec<u8>> {
    let mut buf = Vec::new();
    resp.into_reader()
        .take(max + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(op, target, e).with_kind(ErrorKind::Transient))?;
    if buf.len() as u64 > max {
        return Err(Error::new(
            ErrorKind::Permanent,
            op,
            target,
            format!("response larger than {max} bytes"),
        ));
    }
    Ok(buf)
}

/// Turns a GET answer into a length-checked stream: the answer must carry a
/// Content-Length, and a ranged request must come back as 206 with exactly the bytes
/// asked for, so a short or misdirected body is refused before anyone reads it.
pub(crate) fn get_stream(
    resp: ureq::Response,
    range: Option<&std::ops::Range<u64>>,
    target: String,
) -> crate::error::Result<crate::store::GetStream> {
    let status = resp.status();
    let len = resp
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Permanent,
                "get",
                target.clone(),
                "no Content-Length in the answer",
            )
        })?;
    check_range(status, len, range, &target)?;
    Ok(crate::store::GetStream {
        reader: Box::new(crate::store::LengthChecked {
            inner: resp.into_reader(),
            remaining: len,
        }),
        len,
    })
}

/// The answer is the asked range (206 with exactly its length), when one was asked.
pub(crate) fn check_range(
    status: u16,
    len: u64,
    range: Option<&std::ops::Range<u64>>,
    target: &str,
) -> crate::error::Result<()> {
    if let Some(r) = range {
        if status != 206 || len != r.end - r.start {
            return Err(Error::new(
                ErrorKind::Integrity,
                "get",
                target,
                format!(
                    "asked for {} bytes at {}, server answered {status} with {len}",
                    r.end - r.start,
                    r.start
                ),
            )
            .with_status(status));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips() {
        let s = "a b/c%d+é";
        let e = encode(s, true);
        assert_eq!(e, "a%20b/c%25d%2B%C3%A9");
        assert_eq!(decode(&e), s);
        assert_eq!(encode("a/b", false), "a%2Fb");
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn statuses() {
        for s in [400, 409, 413] {
            assert_eq!(kind_for_status(s), ErrorKind::Permanent);
        }
        for s in [408, 429, 500, 502, 503, 504, 507] {
            assert_eq!(kind_for_status(s), ErrorKind::Transient);
        }
        assert_eq!(kind_for_status(401), ErrorKind::Auth);
        assert_eq!(kind_for_status(404), ErrorKind::NotFound);
    }
}

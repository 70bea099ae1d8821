//! The HTTP/1.1 response wire format for [`crate::rawhttp`]: the head (status line and
//! headers) and the framing of the body (Content-Length, chunked, or until the close),
//! parsed apart from sockets so that every byte a server can send is fuzzed
//! (`fuzz/fuzz_targets/http_response.rs`).
//!
//! All of it is a stranger's input, so everything is bounded: the head by [`MAX_HEAD`],
//! a chunk-size or trailer line by 1 KiB, the trailers by [`MAX_TRAILERS`] lines, and a
//! chunk size by its 16 hex digits (no arithmetic on it beyond counting down).

use std::io::{self, Read};

/// The largest response head read before the answer is refused.
pub(crate) const MAX_HEAD: usize = 64 << 10;
/// Longest chunk-size or trailer line.
const MAX_LINE: usize = 1024;
/// Most trailer lines after the last chunk.
pub(crate) const MAX_TRAILERS: usize = 64;

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The server closes the connection after this answer (HTTP/1.0, `Connection: close`).
    pub close: bool,
}

impl Head {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Where the head ends: the index of the `\r\n\r\n` that closes it.
pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

/// Parses the bytes of a head, without its closing blank line.
pub(crate) fn parse_head(bytes: &[u8]) -> Result<Head, String> {
    if bytes.len() > MAX_HEAD {
        return Err(format!("response head larger than {} KiB", MAX_HEAD >> 10));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or("");
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .filter(|s| (100..1000).contains(s) && version.starts_with("HTTP/1."))
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let (k, v) = l
            .split_once(':')
            .ok_or_else(|| format!("bad header line {l:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut head = Head {
        status,
        headers,
        close: version == "HTTP/1.0",
    };
    head.close |= head
        .header("Connection")
        .is_some_and(|v| v.eq_ignore_ascii_case("close"));
    Ok(head)
}

/// How a body is delimited, and how much of it is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    Length(u64),
    /// Chunked: bytes left in the current chunk, or None before a chunk header.
    Chunked(Option<u64>),
    /// No length given: the body ends when the server closes the connection.
    Eof,
    Done,
}

/// The framing of the body of `head` answering `method`, and whether the connection can
/// carry another request once that body has been read.
pub(crate) fn framing(method: &str, head: &Head) -> Result<(Framing, bool), String> {
    let s = head.status;
    if method == "HEAD" || s == 204 || s == 304 || (100..200).contains(&s) {
        return Ok((Framing::Length(0), !head.close));
    }
    if head
        .header("Transfer-Encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return Ok((Framing::Chunked(None), !head.close));
    }
    match head.header("Content-Length") {
        Some(cl) => {
            let n = cl
                .parse::<u64>()
                .map_err(|_| format!("bad Content-Length {cl:?}"))?;
            Ok((Framing::Length(n), !head.close))
        }
        // Delimited by the close: read to the end, never reuse.
        None => Ok((Framing::Eof, false)),
    }
}

/// Reads a body from the bytes after its head according to its [`Framing`].
#[derive(Debug)]
pub(crate) struct Deframer {
    pub framing: Framing,
}

impl Deframer {
    /// Body bytes into `buf`; `Ok(0)` at the end, after which `framing` is `Done`. A body
    /// cut short is `UnexpectedEof`; a malformed chunk is `InvalidData`.
    pub fn read(&mut self, src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.framing {
                Framing::Done => return Ok(0),
                Framing::Eof => {
                    let k = read_retrying(src, buf)?;
                    if k == 0 {
                        self.framing = Framing::Done;
                    }
                    return Ok(k);
                }
                Framing::Length(0) => {
                    self.framing = Framing::Done;
                    return Ok(0);
                }
                Framing::Length(n) => {
                    let want = n.min(buf.len() as u64) as usize;
                    let k = read_retrying(src, &mut buf[..want])?;
                    if k == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("connection closed with {n} body bytes missing"),
                        ));
                    }
                    self.framing = match n - k as u64 {
                        0 => Framing::Done,
                        left => Framing::Length(left),
                    };
                    return Ok(k);
                }
                Framing::Chunked(None) => {
                    let line = read_line(src)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("bad chunk size {line:?}"),
                        )
                    })?;
                    if size == 0 {
                        self.trailers(src)?;
                        self.framing = Framing::Done;
                        return Ok(0);
                    }
                    self.framing = Framing::Chunked(Some(size));
                }
                Framing::Chunked(Some(n)) => {
                    let want = n.min(buf.len() as u64) as usize;
                    let k = read_retrying(src, &mut buf[..want])?;
                    if k == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            format!("connection closed with {n} bytes of a chunk missing"),
                        ));
                    }
                    if n == k as u64 {
                        if !read_line(src)?.is_empty() {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                "chunk not followed by CRLF",
                            ));
                        }
                        self.framing = Framing::Chunked(None);
                    } else {
                        self.framing = Framing::Chunked(Some(n - k as u64));
                    }
                    return Ok(k);
                }
            }
        }
    }

    /// Trailer lines up to the empty one, at most [`MAX_TRAILERS`].
    fn trailers(&mut self, src: &mut impl Read) -> io::Result<()> {
        for _ in 0..=MAX_TRAILERS {
            if read_line(src)?.is_empty() {
                return Ok(());
            }
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {MAX_TRAILERS} trailer lines"),
        ))
    }
}

fn read_retrying(src: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match src.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// A line ended by LF (its CR dropped), of at most [`MAX_LINE`] bytes.
fn read_line(src: &mut impl Read) -> io::Result<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        if read_retrying(src, &mut b)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a chunk header",
            ));
        }
        if b[0] == b'\n' {
            break;
        }
        if line.len() >= MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "chunk header or trailer line too long",
            ));
        }
        line.push(b[0]);
    }
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// Parses `data` as a whole response to `GET` and reads its body to the end, in reads of
/// at most `chunk` bytes; returns the status and the body. For the fuzz target and tests.
pub fn decode_response(data: &[u8], chunk: usize) -> Result<(u16, Vec<u8>), String> {
    let end = find_head_end(data).ok_or("no end of head")?;
    let head = parse_head(&data[..end])?;
    let (framing, _) = framing("GET", &head)?;
    let mut de = Deframer { framing };
    let mut src = &data[end + 4..];
    let mut body = Vec::new();
    let mut buf = vec![0u8; chunk.clamp(1, 1 << 16)];
    loop {
        let k = de.read(&mut src, &mut buf).map_err(|e| e.to_string())?;
        if k == 0 {
            return Ok((head.status, body));
        }
        body.extend_from_slice(&buf[..k]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        for chunk in [1, 2, 100] {
            assert_eq!(decode_response(r, chunk).unwrap(), (200, b"abcde".to_vec()));
        }
    }

    #[test]
    fn lies_and_cuts_are_errors() {
        // Content-Length past the bytes sent.
        let e = decode_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551615\r\n\r\nab",
            8,
        )
        .unwrap_err();
        assert!(e.contains("body bytes missing"), "{e}");
        // A chunk size of more than 16 hex digits.
        let e = decode_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10000000000000000\r\n",
            8,
        )
        .unwrap_err();
        assert!(e.contains("bad chunk size"), "{e}");
        // Trailers without end.
        let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n".to_vec();
        for _ in 0..100 {
            r.extend_from_slice(b"X: y\r\n");
        }
        r.extend_from_slice(b"\r\n");
        let e = decode_response(&r, 8).unwrap_err();
        assert!(e.contains("trailer lines"), "{e}");
        // Status lines.
        for bad in [
            "HTTP/2 200 OK",
            "HTTP/1.1 2000 X",
            "ICY 200 OK",
            "HTTP/1.1 abc",
        ] {
            assert!(parse_head(bad.as_bytes()).is_err(), "{bad}");
        }
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon").is_err());
    }

    #[test]
    fn close_and_reuse() {
        let h = parse_head(b"HTTP/1.0 200 OK\r\nContent-Length: 1").unwrap();
        assert_eq!(framing("GET", &h).unwrap(), (Framing::Length(1), false));
        let h = parse_head(b"HTTP/1.1 200 OK\r\nconnection: Close").unwrap();
        assert_eq!(framing("GET", &h).unwrap(), (Framing::Eof, false));
        let h = parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 9").unwrap();
        assert_eq!(framing("GET", &h).unwrap(), (Framing::Length(0), true));
    }
}

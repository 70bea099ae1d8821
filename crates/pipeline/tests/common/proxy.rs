//! A small misbehaving HTTP proxy of ours on 127.0.0.1, between a client and a real server
//! (Swift, its S3 API, Keystone): it answers 503s, drops connections, truncates bodies,
//! reads slowly, stalls without answering, or answers one request 401 as an expired token
//! would. It rewrites the upstream's address in auth answers (tempauth's `X-Storage-Url`,
//! Keystone's catalog) so that a client that logs in through it keeps coming through it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What goes wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: a plain proxy.
    None,
    /// A deterministic mix of faults, most requests pass.
    Mixed,
    /// Every request answered 503.
    Always503,
    /// Requests `every`, `2 * every`, ... (at most `times` of them) get no answer: the
    /// connection stays open and silent until the client gives up (or 30 s pass).
    Stall { every: u64, times: u64 },
    /// The `at`-th request that is not a login is answered 401, once.
    ExpireAt(u64),
}

/// What the proxy saw and did.
#[derive(Default, Debug)]
pub struct Stats {
    pub requests: AtomicU64,
    pub logins: AtomicU64,
    pub unauthorized: AtomicU64,
    pub stalled: AtomicU64,
    /// Stalled requests whose client closed the connection before the proxy did.
    pub abandoned: AtomicU64,
}

impl Stats {
    pub fn get(&self, f: impl Fn(&Stats) -> &AtomicU64) -> u64 {
        f(self).load(Ordering::SeqCst)
    }
}

pub struct Proxy {
    /// `http://127.0.0.1:port`
    pub url: String,
    pub stats: Arc<Stats>,
}

/// Starts a proxy to `upstream` (`http://host:port`); every occurrence of `rewrite.0` in
/// an answer's headers or a login answer's body becomes `rewrite.1` (the upstream's own
/// address always becomes the proxy's).
pub fn start(upstream: &str, fault: Fault, rewrite: Option<(String, String)>) -> Proxy {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let stats = Arc::new(Stats::default());
    let upstream = upstream.trim_end_matches('/').to_string();
    let mut rewrites = vec![(upstream.clone(), url.clone())];
    rewrites.extend(rewrite);
    let st = stats.clone();
    std::thread::spawn(move || {
        let rewrites = Arc::new(rewrites);
        let work = Arc::new(AtomicU64::new(0));
        // Bounded: a test never needs more connections than this.
        for conn in listener.incoming().take(20_000) {
            let Ok(conn) = conn else { continue };
            let (up, rw, st, work) = (upstream.clone(), rewrites.clone(), st.clone(), work.clone());
            std::thread::spawn(move || {
                let _ = serve(conn, &up, fault, &rw, &st, &work);
            });
        }
    });
    Proxy { url, stats }
}

fn read_head(r: &mut impl BufRead) -> std::io::Result<(Vec<String>, Option<u64>)> {
    let mut lines = Vec::new();
    let mut len = None;
    loop {
        let mut l = String::new();
        if r.read_line(&mut l)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let t = l.trim_end().to_string();
        if t.is_empty() {
            break;
        }
        if let Some((k, v)) = t.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok();
            }
        }
        lines.push(t);
    }
    Ok((lines, len))
}

fn drain(r: &mut impl Read, n: u64) -> std::io::Result<()> {
    std::io::copy(&mut r.take(n), &mut std::io::sink()).map(|_| ())
}

fn serve(
    conn: TcpStream,
    upstream: &str,
    fault: Fault,
    rewrites: &[(String, String)],
    st: &Stats,
    work: &AtomicU64,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut client = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let (head, body_len) = read_head(&mut client)?;
    let body_len = body_len.unwrap_or(0);
    let target = head[0].split_whitespace().nth(1).unwrap_or("").to_string();
    let login = target.starts_with("/auth/") || target.contains("/auth/tokens");
    let n = st.requests.fetch_add(1, Ordering::SeqCst);
    if login {
        st.logins.fetch_add(1, Ordering::SeqCst);
    }
    // Numbered among the requests that are not logins, from 1.
    let k = if login {
        0
    } else {
        work.fetch_add(1, Ordering::SeqCst) + 1
    };
    let fault = match fault {
        Fault::Always503 => 1,
        Fault::Mixed => n % 6,
        Fault::Stall { every, times } if k > 0 && k % every == 0 && k / every <= times => 10,
        Fault::ExpireAt(at) if k == at => 11,
        _ => 0,
    };
    match fault {
        1 => {
            drain(&mut client, body_len)?;
            out.write_all(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        3 => {
            // Drop the connection halfway through the request body (or right away).
            return drain(&mut client, body_len / 2);
        }
        10 => {
            // Silent: read whatever comes until the client hangs up or 30 s pass.
            st.stalled.fetch_add(1, Ordering::SeqCst);
            let until = Instant::now() + Duration::from_secs(30);
            let mut buf = [0u8; 64 << 10];
            let sock = client.get_ref();
            sock.set_read_timeout(Some(Duration::from_millis(100)))?;
            while Instant::now() < until {
                match (&*sock).read(&mut buf) {
                    Ok(0) => {
                        st.abandoned.fetch_add(1, Ordering::SeqCst);
                        return Ok(());
                    }
                    Ok(_) => {}
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
                                | std::io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => {
                        st.abandoned.fetch_add(1, Ordering::SeqCst);
                        return Ok(());
                    }
                }
            }
            return Ok(());
        }
        11 => {
            st.unauthorized.fetch_add(1, Ordering::SeqCst);
            drain(&mut client, body_len)?;
            out.write_all(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )?;
            return Ok(());
        }
        _ => {}
    }
    let mut up = TcpStream::connect(upstream.trim_start_matches("http://"))?;
    for l in &head {
        if l.to_ascii_lowercase().starts_with("connection:") {
            continue;
        }
        up.write_all(l.as_bytes())?;
        up.write_all(b"\r\n")?;
    }
    up.write_all(b"Connection: close\r\n\r\n")?;
    std::io::copy(&mut (&mut client).take(body_len), &mut up)?;
    let mut upr = BufReader::new(up);
    let (rhead, rlen) = read_head(&mut upr)?;
    let rewrite = |s: &str| {
        rewrites
            .iter()
            .fold(s.to_string(), |s, (from, to)| s.replace(from.as_str(), to))
    };
    // A login answer's body (Keystone's catalog) is rewritten whole.
    let body = match (login, rlen) {
        (true, Some(len)) => {
            let mut b = Vec::new();
            (&mut upr).take(len).read_to_end(&mut b)?;
            Some(rewrite(&String::from_utf8_lossy(&b)).into_bytes())
        }
        _ => None,
    };
    for l in &rhead {
        let low = l.to_ascii_lowercase();
        if low.starts_with("connection:") || (body.is_some() && low.starts_with("content-length:"))
        {
            continue;
        }
        out.write_all(rewrite(l).as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    if let Some(b) = &body {
        out.write_all(format!("Content-Length: {}\r\n", b.len()).as_bytes())?;
    }
    out.write_all(b"Connection: close\r\n\r\n")?;
    if let Some(b) = body {
        return out.write_all(&b);
    }
    let rlen = rlen.unwrap_or(u64::MAX);
    match fault {
        // Truncated body: half of it, then close.
        5 if rlen > 1 && rlen != u64::MAX => {
            std::io::copy(&mut (&mut upr).take(rlen / 2), &mut out)?;
        }
        // Slow reader: small chunks with pauses (bounded: at most 64 pauses).
        4 => {
            let mut buf = vec![0u8; (rlen / 64).clamp(4096, 1 << 20) as usize];
            loop {
                let k = upr.read(&mut buf)?;
                if k == 0 {
                    break;
                }
                out.write_all(&buf[..k])?;
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        _ => {
            std::io::copy(&mut upr, &mut out)?;
        }
    }
    Ok(())
}

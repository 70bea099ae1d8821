//! Fault injection: a small misbehaving HTTP proxy of ours on 127.0.0.1 between the client
//! and the test Swift answers 503s, drops connections, truncates bodies and reads slowly.
//! Uploads and downloads through it are exact or cleanly refused; a refused upload leaves
//! no manifest.

mod common;

use cloudimg_pipeline::download::{download, DownloadOptions};
use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::upload::{upload, LargeKind, Source, UploadOptions};
use cloudimg_pipeline::{ErrorKind, ObjectPath, ObjectStore, RetryPolicy};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A deterministic mix of faults, most requests pass.
    Mixed,
    /// Every request answered 503.
    Always503,
}

/// Starts the proxy; returns its base URL. Each connection serves one request.
fn proxy(upstream: String, mode: Mode) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        // Bounded: a test never needs more connections than this.
        for conn in listener.incoming().take(20_000) {
            let Ok(conn) = conn else { continue };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let up = upstream.clone();
            std::thread::spawn(move || {
                let _ = serve(conn, &up, n, mode);
            });
        }
    });
    format!("http://{addr}")
}

fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<(Vec<String>, u64)> {
    let mut lines = Vec::new();
    let mut len = 0;
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
                len = v.trim().parse().unwrap_or(0);
            }
        }
        lines.push(t);
    }
    Ok((lines, len))
}

fn serve(conn: TcpStream, upstream: &str, n: u64, mode: Mode) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut client = BufReader::new(conn.try_clone()?);
    let mut out = conn;
    let (head, body_len) = read_head(&mut client)?;
    let fault = match mode {
        Mode::Always503 => 1,
        Mode::Mixed => n % 6,
    };
    if fault == 1 {
        std::io::copy(&mut (&mut client).take(body_len), &mut std::io::sink())?;
        out.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )?;
        return Ok(());
    }
    if fault == 3 {
        // Drop the connection halfway through the request body (or right away).
        std::io::copy(&mut (&mut client).take(body_len / 2), &mut std::io::sink())?;
        return Ok(());
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
    for l in &rhead {
        out.write_all(l.as_bytes())?;
        out.write_all(b"\r\n")?;
    }
    out.write_all(b"\r\n")?;
    match fault {
        // Truncated body: half of it, then close.
        5 if rlen > 1 => {
            std::io::copy(&mut (&mut upr).take(rlen / 2), &mut out)?;
        }
        // Slow reader: small chunks with pauses (bounded: at most 64 pauses).
        4 => {
            let mut buf = vec![0u8; (rlen / 64).max(4096) as usize];
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

fn stores(mode: Mode) -> Option<(SwiftStore, SwiftStore)> {
    let env = cloudimg_fixtures::env::swift()?;
    let direct = SwiftStore::new(SwiftAuth::V1 {
        auth_url: env.auth_url,
        user: env.user,
        key: env.key,
    });
    let (storage, token) = direct.session().unwrap();
    let rest = storage.split("://").nth(1).unwrap();
    let (hostport, path) = rest.split_once('/').unwrap();
    let base = proxy(format!("http://{hostport}"), mode);
    let faulty = SwiftStore::with_config(
        SwiftAuth::Token {
            storage_url: format!("{base}/{path}"),
            token,
        },
        None,
        Default::default(),
        RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(50),
        },
    );
    Some((direct, faulty))
}

#[test]
fn exact_through_a_misbehaving_proxy() {
    let Some((direct, faulty)) = stores(Mode::Mixed) else {
        return;
    };
    let c = common::unique("fault");
    direct.ensure_container(&c).unwrap();
    let d = common::data(1_000_003, 70);
    for kind in [LargeKind::Dlo, LargeKind::Slo, LargeKind::Single] {
        let p = ObjectPath::new(&c, format!("{kind:?}"));
        let o = UploadOptions {
            segment_size: if kind == LargeKind::Single {
                2 << 20
            } else {
                100_000
            },
            large: kind,
            jobs: 4,
            ..Default::default()
        };
        let s = upload(
            &faulty,
            &p,
            Source::stream(std::io::Cursor::new(d.clone())),
            &o,
        )
        .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(s.checksums.md5, common::md5_hex(&d));
        // What the server holds, read directly, is exact...
        assert_eq!(common::fetch(&direct, &p, 2, 1 << 20), d, "{kind:?}");
        // ...and so is what we read through the faults.
        assert_eq!(
            common::fetch(&faulty, &p, 4, 64_000),
            d,
            "{kind:?} via proxy"
        );
    }
}

#[test]
fn refused_cleanly_when_faults_persist() {
    let Some((direct, faulty)) = stores(Mode::Always503) else {
        return;
    };
    let c = common::unique("fault503");
    direct.ensure_container(&c).unwrap();
    let d = common::data(300_000, 71);
    let p = ObjectPath::new(&c, "x.vhd");
    let o = UploadOptions {
        segment_size: 100_000,
        large: LargeKind::Dlo,
        ..Default::default()
    };
    let e = upload(
        &faulty,
        &p,
        Source::stream(std::io::Cursor::new(d.clone())),
        &o,
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RetriesExhausted, "{e}");
    assert_eq!(e.status(), Some(503));
    assert_eq!(direct.head(&p).unwrap_err().kind(), ErrorKind::NotFound);

    // A good upload, then a download through persistent 503s: an error, no partial success.
    upload(
        &direct,
        &p,
        Source::stream(std::io::Cursor::new(d.clone())),
        &o,
    )
    .unwrap();
    let mut out = Vec::new();
    let e = download(&faulty, &p, &mut out, &DownloadOptions::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::RetriesExhausted);
}

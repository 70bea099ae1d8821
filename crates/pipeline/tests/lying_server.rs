//! A server that lies about sizes and listings, played by a scripted HTTP server of ours on
//! 127.0.0.1: whatever it says, the client neither loops nor allocates without bound, and
//! answers with an error of the right kind.

use cloudimg_pipeline::download::{download, DownloadOptions};
use cloudimg_pipeline::swift::{SwiftAuth, SwiftStore};
use cloudimg_pipeline::{list_all, ErrorKind, ObjectPath, RetryPolicy};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Serves every request (one per connection) with `answer(method, target)`; counts them.
fn server(
    answer: impl Fn(&str, &str) -> Vec<u8> + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    std::thread::spawn(move || {
        // Bounded: no test here needs more requests than this.
        for conn in l.incoming().take(5_000) {
            let Ok(conn) = conn else { continue };
            c.fetch_add(1, Ordering::SeqCst);
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            if r.read_line(&mut first).unwrap_or(0) == 0 {
                continue;
            }
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                    break;
                }
            }
            let mut parts = first.split_whitespace();
            let (m, t) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let _ = (&conn).write_all(&answer(m, t));
        }
    });
    (format!("http://{addr}/v1/AUTH_test"), count)
}

fn store(base: &str) -> SwiftStore {
    SwiftStore::with_config(
        SwiftAuth::Token {
            storage_url: base.to_string(),
            token: "t".into(),
        },
        None,
        Default::default(),
        RetryPolicy::none(),
    )
}

fn json(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A full page of 1,000 names starting at `from`.
fn page(from: usize) -> String {
    let items: Vec<String> = (from..from + 1000)
        .map(|i| format!(r#"{{"name":"seg-{i:09}","bytes":1,"hash":"00"}}"#))
        .collect();
    format!("[{}]", items.join(","))
}

#[test]
fn a_listing_that_repeats_itself_is_refused() {
    let (base, count) = server(|_, _| json(&page(0)));
    let e = list_all(&store(&base), "c", "").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent, "{e}");
    assert!(e.to_string().contains("out of order"), "{e}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "stopped at the first repeat"
    );
}

#[test]
fn a_listing_that_never_ends_stops_at_its_bound() {
    // Always a full page, always after the marker: an endless, well-ordered listing.
    let (base, count) = server(|_, t| {
        let from = t
            .split("marker=seg-")
            .nth(1)
            .map(|m| m[..9].parse::<usize>().unwrap() + 1)
            .unwrap_or(0);
        json(&page(from))
    });
    let e = list_all(&store(&base), "c", "").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent, "{e}");
    assert!(e.to_string().contains("more than 1000000 entries"), "{e}");
    assert_eq!(
        count.load(Ordering::SeqCst),
        cloudimg_pipeline::store::LIST_ALL_MAX / 1000 + 1
    );
}

#[test]
fn segment_sizes_that_overflow_are_refused() {
    let (base, _) = server(|m, t| {
        if m == "HEAD" {
            return b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-Object-Manifest: segs/disk-\r\nConnection: close\r\n\r\n".to_vec();
        }
        if t.contains("marker=") {
            return json("[]");
        }
        json(&format!(
            r#"[{{"name":"disk-1","bytes":{0},"hash":"00"}},{{"name":"disk-2","bytes":{0},"hash":"00"}}]"#,
            u64::MAX / 2 + 1
        ))
    });
    let mut out = Vec::new();
    let e = download(
        &store(&base),
        &ObjectPath::new("c", "disk"),
        &mut out,
        &DownloadOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("past 2^63"), "{e}");
    assert!(out.is_empty());
}

#[test]
fn a_body_shorter_than_its_content_length_is_not_taken() {
    // Claims 2^63 bytes, sends 5, closes: a short body, never a huge allocation.
    let (base, _) = server(|m, _| {
        if m == "HEAD" {
            return b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nEtag: 00\r\nConnection: close\r\n\r\n"
                .to_vec();
        }
        b"HTTP/1.1 200 OK\r\nContent-Length: 9223372036854775807\r\nConnection: close\r\n\r\nhello"
            .to_vec()
    });
    let s = store(&base);
    let e =
        cloudimg_pipeline::store::get_bytes(&s, &ObjectPath::new("c", "o"), 1 << 20).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
    let mut out = Vec::new();
    let e = download(
        &s,
        &ObjectPath::new("c", "o"),
        &mut out,
        &DownloadOptions::default(),
    )
    .unwrap_err();
    // The first range asked for is answered with a different length: refused as such.
    assert_eq!(e.kind(), ErrorKind::Integrity, "{e}");
    assert!(e.to_string().contains("9223372036854775807"), "{e}");
    assert!(out.len() <= 5);
}

#[test]
fn a_listing_body_past_its_cap_is_refused_unread() {
    // 65 MiB of JSON whitespace, then an empty listing: valid if read whole, so only the
    // 64 MiB cap on a listing's body can refuse it.
    const CAP: usize = 64 << 20;
    let (base, count) = server(|_, _| {
        let mut a =
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                .to_vec();
        a.resize(a.len() + CAP + (1 << 20), b' ');
        a.extend_from_slice(b"[]");
        a
    });
    let e = list_all(&store(&base), "c", "").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Permanent, "{e}");
    assert!(
        e.to_string()
            .contains(&format!("response larger than {CAP} bytes")),
        "{e}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "one request");
}

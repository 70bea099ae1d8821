//! Timestamps: stored at microsecond precision as RFC 3339 UTC text made here (so they sort
//! as text on both engines and never depend on a database clock), shown as Glance shows
//! them, to the second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `t` as `YYYY-MM-DDThh:mm:ss.uuuuuuZ`.
pub fn stamp(t: SystemTime) -> String {
    let whole = cloudimg_tasks::time::iso8601(t);
    let micros = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_micros())
        .unwrap_or(0);
    format!("{}.{micros:06}Z", &whole[..19])
}

/// The current time, stored form.
pub fn now() -> String {
    stamp(SystemTime::now())
}

/// The stored form `secs` from now.
pub fn after(d: Duration) -> String {
    stamp(SystemTime::now() + d)
}

/// A stored timestamp as Glance shows it (`YYYY-MM-DDThh:mm:ssZ`).
pub fn show(stored: &str) -> String {
    let mut buf = [0u8; SHOWN];
    show_in(stored, &mut buf).to_string()
}

/// Length of a shown timestamp.
pub const SHOWN: usize = 20;

/// [`show`] into `buf`, without allocating: a page of images shows 50 timestamps.
pub fn show_in<'a>(stored: &'a str, buf: &'a mut [u8; SHOWN]) -> &'a str {
    match stored.get(..SHOWN - 1) {
        Some(head) => {
            buf[..SHOWN - 1].copy_from_slice(head.as_bytes());
            buf[SHOWN - 1] = b'Z';
            // A str's prefix at a char boundary followed by ASCII is UTF-8.
            std::str::from_utf8(&buf[..]).unwrap_or(stored)
        }
        None => stored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_and_shown() {
        let t = UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(stamp(t), "2023-11-14T22:13:20.123456Z");
        assert_eq!(show(&stamp(t)), "2023-11-14T22:13:20Z");
        assert_eq!(show("short"), "short");
        assert_eq!(show("2023-11-14T22:13:2é"), "2023-11-14T22:13:2é");
        // Text order is time order.
        let a = stamp(UNIX_EPOCH + Duration::from_micros(9_999_999));
        let b = stamp(UNIX_EPOCH + Duration::from_micros(10_000_000));
        assert!(a < b);
    }
}

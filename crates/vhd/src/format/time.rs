//! VHD timestamps count seconds from 2000-01-01 00:00:00 UTC.

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix time of the VHD epoch.
pub const VHD_EPOCH_UNIX: u64 = 946_684_800;

/// Now, as a VHD timestamp (saturating: the field is 32 bits wide).
pub fn now() -> u32 {
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(VHD_EPOCH_UNIX);
    from_unix(unix)
}

/// Converts Unix seconds to a VHD timestamp, clamping at the field's range.
pub fn from_unix(unix: u64) -> u32 {
    unix.saturating_sub(VHD_EPOCH_UNIX).min(u64::from(u32::MAX)) as u32
}

/// Converts a VHD timestamp to Unix seconds.
pub fn to_unix(ts: u32) -> u64 {
    VHD_EPOCH_UNIX + u64::from(ts)
}

/// Formats a VHD timestamp as ISO 8601 UTC, e.g. `2015-02-13T10:41:58Z`.
pub fn to_iso8601(ts: u32) -> String {
    let unix = to_unix(ts);
    let (days, rem) = (unix / 86_400, unix % 86_400);
    // Howard Hinnant's days-to-civil, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn iso8601() {
        assert_eq!(super::to_iso8601(0), "2000-01-01T00:00:00Z");
        // 2024-02-29T12:34:56Z is Unix 1709210096.
        assert_eq!(
            super::to_iso8601(super::from_unix(1_709_210_096)),
            "2024-02-29T12:34:56Z"
        );
        assert_eq!(super::to_iso8601(u32::MAX), "2136-02-07T06:28:15Z");
    }

    #[test]
    fn round_trips() {
        assert_eq!(
            super::to_unix(super::from_unix(1_700_000_000)),
            1_700_000_000
        );
        assert_eq!(super::from_unix(0), 0);
    }
}

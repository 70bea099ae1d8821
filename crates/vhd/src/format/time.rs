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

#[cfg(test)]
mod tests {
    #[test]
    fn round_trips() {
        assert_eq!(super::to_unix(super::from_unix(1_700_000_000)), 1_700_000_000);
        assert_eq!(super::from_unix(0), 0);
    }
}

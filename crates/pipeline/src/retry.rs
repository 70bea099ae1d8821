//! Retries with exponential backoff and full jitter: the one place every backend goes
//! through, so the split between retryable and permanent failures is decided once.
//!
//! Retried: [`ErrorKind::Transient`] (HTTP 408/429/5xx, dropped connections, timeouts, short
//! bodies). Never retried: everything else (400/401/403/404/409/413, integrity, usage). Swift
//! token renewal on 401 is the backend's business and happens inside one attempt.

use crate::error::{ErrorKind, Result};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts including the first (at least 1).
    pub max_attempts: u32,
    /// Backoff cap for the first retry; doubles each time.
    pub base_delay: Duration,
    /// Upper bound of one backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The delay before retry number `retry` (1-based): uniform in [0, min(max, base*2^(n-1))].
    pub fn backoff(&self, retry: u32) -> Duration {
        let cap = self
            .base_delay
            .saturating_mul(1u32 << retry.saturating_sub(1).min(16))
            .min(self.max_delay);
        let nanos = cap.as_nanos().min(u64::MAX as u128) as u64;
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(jitter() % (nanos + 1))
    }

    /// Runs `f` (given the 1-based attempt number) until it succeeds, fails permanently or
    /// the attempts run out; the last transient error becomes [`ErrorKind::RetriesExhausted`]
    /// (with a single-attempt policy it stays [`ErrorKind::Transient`], so an outer loop
    /// may still retry it).
    pub fn run<T>(&self, mut f: impl FnMut(u32) -> Result<T>) -> Result<T> {
        let max = self.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match f(attempt) {
                Ok(v) => return Ok(v),
                Err(e) if e.kind().is_retryable() => {
                    if attempt >= max {
                        if max == 1 {
                            return Err(e);
                        }
                        return Err(e
                            .with_kind(ErrorKind::RetriesExhausted)
                            .with_attempts(attempt));
                    }
                    log::debug!("retrying after transient error: {e}");
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e.with_attempts(attempt)),
            }
        }
    }
}

/// A cheap, non-cryptographic random number (splitmix64 over a time-seeded counter): jitter
/// only needs to decorrelate clients, not resist prediction.
fn jitter() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut seed = STATE.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
    if seed == 0 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        STATE.store(t | 1, Ordering::Relaxed);
        seed = t;
    }
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn fast(n: u32) -> RetryPolicy {
        RetryPolicy {
            max_attempts: n,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        }
    }

    #[test]
    fn retries_transient_then_gives_up() {
        let mut calls = 0;
        let r: Result<()> = fast(3).run(|_| {
            calls += 1;
            Err(Error::new(ErrorKind::Transient, "get", "x", "503").with_status(503))
        });
        let e = r.unwrap_err();
        assert_eq!(calls, 3);
        assert_eq!(e.kind(), ErrorKind::RetriesExhausted);
        assert_eq!(e.attempts(), 3);
        assert_eq!(e.status(), Some(503));
    }

    #[test]
    fn never_retries_permanent() {
        let mut calls = 0;
        let r: Result<()> = fast(5).run(|_| {
            calls += 1;
            Err(Error::new(ErrorKind::NotFound, "get", "x", "404"))
        });
        assert_eq!(r.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(calls, 1);
    }

    #[test]
    fn succeeds_after_transient() {
        let r = fast(4).run(|n| {
            if n < 3 {
                Err(Error::new(ErrorKind::Transient, "put", "x", "drop"))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 3);
    }

    #[test]
    fn backoff_is_bounded() {
        let p = RetryPolicy::default();
        for n in 1..40 {
            assert!(p.backoff(n) <= p.max_delay);
        }
    }
}

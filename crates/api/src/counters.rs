//! The metric counters of one process (claims, takeovers, claim latency, tasks
//! running, bytes moved, heartbeats, results) and the worker's part of the exposition.
//!
//! The worker's hooks ([`Metrics::claimed`], [`Transfer::report`], [`Metrics::heartbeat`],
//! [`Metrics::finished`]) are cheap: atomics, and a short lock for labelled counters.
//! Every [`crate::state::AppState`] holds its own counters and the `/metrics` pages
//! ([`crate::metrics`]) read them through it, so they sit below both.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Upper bounds (seconds) of the claim latency histogram's buckets.
const CLAIM_BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// A heartbeat's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// The lease was extended.
    Ok,
    /// The lease was gone (taken over, cancelled): the run's result will be refused.
    LeaseLost,
    /// The catalog did not answer.
    Error,
}

/// The counters of one process.
#[derive(Debug, Default)]
pub struct Metrics {
    claims: Mutex<BTreeMap<String, u64>>,
    takeovers: AtomicU64,
    claim_latency: Histogram,
    running: AtomicI64,
    bytes_moved: Mutex<BTreeMap<String, u64>>,
    heartbeats: AtomicU64,
    heartbeats_lost: AtomicU64,
    heartbeats_error: AtomicU64,
    finished: Mutex<BTreeMap<(String, String), u64>>,
    refused: Mutex<BTreeMap<String, u64>>,
}

#[derive(Debug)]
struct Histogram {
    counts: [AtomicU64; CLAIM_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        // Buckets are stored non-cumulative and summed when rendered.
        if let Some(i) = CLAIM_BUCKETS.iter().position(|b| s <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }
}

fn bump<K: Ord>(m: &Mutex<BTreeMap<K, u64>>, k: K, by: u64) {
    *m.lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(k)
        .or_default() += by;
}

/// A stored timestamp (`YYYY-MM-DDThh:mm:ss.uuuuuuZ`) as a time, microseconds included.
fn stored_time(s: &str) -> Option<SystemTime> {
    let whole = cloudimg_tasks::time::parse_iso8601(s)?;
    let micros = s
        .get(19..)
        .and_then(|f| f.strip_prefix('.'))
        .map(|f| f.trim_end_matches('Z'))
        .filter(|f| f.len() == 6)
        .and_then(|f| f.parse::<u64>().ok())
        .unwrap_or(0);
    Some(whole + Duration::from_micros(micros))
}

impl Metrics {
    /// A task of `task_type` created at `created_at` (stored form) was claimed for its
    /// `attempt`-th run. Claim latency is observed for first runs only: a takeover's wait
    /// is the dead worker's lease, counted apart. The task counts as running until the
    /// returned guard is dropped, whichever way the run ends.
    pub fn claimed(self: &Arc<Self>, task_type: &str, created_at: &str, attempt: i64) -> Running {
        bump(&self.claims, task_type.to_string(), 1);
        self.running.fetch_add(1, Ordering::Relaxed);
        if attempt > 1 {
            self.takeovers.fetch_add(1, Ordering::Relaxed);
        } else if let Some(t) = stored_time(created_at) {
            let waited = SystemTime::now().duration_since(t).unwrap_or_default();
            self.claim_latency.observe(waited);
        }
        Running(self.clone())
    }

    /// A heartbeat's outcome.
    pub fn heartbeat(&self, b: Beat) {
        self.heartbeats.fetch_add(1, Ordering::Relaxed);
        match b {
            Beat::Ok => {}
            Beat::LeaseLost => {
                self.heartbeats_lost.fetch_add(1, Ordering::Relaxed);
            }
            Beat::Error => {
                self.heartbeats_error.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A run ended: its result `status` was written (`written`), or refused because the
    /// lease was lost (cancelled by an operator, or taken over).
    pub fn finished(&self, task_type: &str, status: &str, written: bool) {
        if written {
            bump(
                &self.finished,
                (task_type.to_string(), status.to_string()),
                1,
            );
        } else {
            bump(&self.refused, task_type.to_string(), 1);
        }
    }

    /// A tracker of the bytes one run of a `task_type` task moves.
    pub fn transfer(self: &Arc<Self>, task_type: &str) -> Transfer {
        Transfer {
            metrics: self.clone(),
            task_type: task_type.to_string(),
            last: AtomicU64::new(0),
        }
    }

    /// The worker side, in the exposition format.
    pub fn render_worker(&self, out: &mut String) {
        let lock =
            |m: &Mutex<BTreeMap<String, u64>>| m.lock().unwrap_or_else(|e| e.into_inner()).clone();
        head(
            out,
            "cloudimg_worker_claims_total",
            "counter",
            "Tasks claimed by this process's workers, by type.",
        );
        for (t, n) in lock(&self.claims) {
            let _ = writeln!(
                out,
                "cloudimg_worker_claims_total{{type=\"{}\"}} {n}",
                esc(&t)
            );
        }
        head(
            out,
            "cloudimg_worker_takeovers_total",
            "counter",
            "Claims of a task whose earlier run's lease had expired.",
        );
        let _ = writeln!(
            out,
            "cloudimg_worker_takeovers_total {}",
            self.takeovers.load(Ordering::Relaxed)
        );
        let h = &self.claim_latency;
        head(
            out,
            "cloudimg_worker_claim_latency_seconds",
            "histogram",
            "Time from a task's creation to its first claim.",
        );
        let mut cum = 0;
        for (b, c) in CLAIM_BUCKETS.iter().zip(&h.counts) {
            cum += c.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "cloudimg_worker_claim_latency_seconds_bucket{{le=\"{b}\"}} {cum}"
            );
        }
        let count = h.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "cloudimg_worker_claim_latency_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "cloudimg_worker_claim_latency_seconds_sum {sum}");
        let _ = writeln!(out, "cloudimg_worker_claim_latency_seconds_count {count}");
        head(
            out,
            "cloudimg_worker_tasks_running",
            "gauge",
            "Tasks this process is running now.",
        );
        let _ = writeln!(
            out,
            "cloudimg_worker_tasks_running {}",
            self.running.load(Ordering::Relaxed).max(0)
        );
        head(
            out,
            "cloudimg_worker_bytes_moved_total",
            "counter",
            "Bytes converted and uploaded by tasks (the transferring phase's progress), by type.",
        );
        for (t, n) in lock(&self.bytes_moved) {
            let _ = writeln!(
                out,
                "cloudimg_worker_bytes_moved_total{{type=\"{}\"}} {n}",
                esc(&t)
            );
        }
        head(
            out,
            "cloudimg_worker_heartbeats_total",
            "counter",
            "Lease heartbeats sent.",
        );
        let _ = writeln!(
            out,
            "cloudimg_worker_heartbeats_total {}",
            self.heartbeats.load(Ordering::Relaxed)
        );
        head(out, "cloudimg_worker_heartbeats_failed_total", "counter", "Heartbeats that did not extend the lease: lease_lost (taken over or cancelled) or catalog_error.");
        let _ = writeln!(
            out,
            "cloudimg_worker_heartbeats_failed_total{{reason=\"lease_lost\"}} {}",
            self.heartbeats_lost.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "cloudimg_worker_heartbeats_failed_total{{reason=\"catalog_error\"}} {}",
            self.heartbeats_error.load(Ordering::Relaxed)
        );
        head(
            out,
            "cloudimg_worker_tasks_finished_total",
            "counter",
            "Task runs whose end was written, by type and status.",
        );
        let finished = self
            .finished
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for ((t, s), n) in finished {
            let _ = writeln!(
                out,
                "cloudimg_worker_tasks_finished_total{{type=\"{}\",status=\"{}\"}} {n}",
                esc(&t),
                esc(&s)
            );
        }
        head(
            out,
            "cloudimg_worker_results_refused_total",
            "counter",
            "Task runs whose end was refused because their lease was lost, by type.",
        );
        for (t, n) in lock(&self.refused) {
            let _ = writeln!(
                out,
                "cloudimg_worker_results_refused_total{{type=\"{}\"}} {n}",
                esc(&t)
            );
        }
    }
}

/// A claimed task being run (see [`Metrics::claimed`]).
#[derive(Debug)]
pub struct Running(Arc<Metrics>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The bytes one run moves: progress reports of the transferring phase, turned into
/// increments of the counter (a report repeats or advances `done`; each phase restarts
/// at 0).
#[derive(Debug)]
pub struct Transfer {
    metrics: Arc<Metrics>,
    task_type: String,
    last: AtomicU64,
}

impl Transfer {
    /// One progress report of the run.
    pub fn report(&self, p: &cloudimg_tasks::Progress) {
        if p.phase != cloudimg_tasks::Phase::Transferring {
            self.last.store(0, Ordering::Relaxed);
            return;
        }
        let prev = self.last.fetch_max(p.done, Ordering::Relaxed);
        if p.done > prev {
            bump(
                &self.metrics.bytes_moved,
                self.task_type.clone(),
                p.done - prev,
            );
        }
    }
}

pub(crate) fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value escaped as the format requires.
pub(crate) fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudimg_tasks::{Phase, Progress};

    #[test]
    fn transfer_counts_each_byte_once() {
        let m = Arc::new(Metrics::default());
        let t = m.transfer("export");
        for (phase, done) in [
            (Phase::Checking, 0),
            (Phase::Transferring, 0),
            (Phase::Transferring, 100),
            (Phase::Transferring, 100),
            (Phase::Transferring, 250),
            (Phase::Verifying, 0),
        ] {
            t.report(&Progress {
                phase,
                done,
                total: 250,
            });
        }
        let mut out = String::new();
        m.render_worker(&mut out);
        assert!(
            out.contains("cloudimg_worker_bytes_moved_total{type=\"export\"} 250\n"),
            "{out}"
        );
    }

    #[test]
    fn claim_latency_buckets_are_cumulative() {
        let m = Arc::new(Metrics::default());
        let created = crate::clock::stamp(SystemTime::now() - Duration::from_secs(45));
        let first = m.claimed("import", &created, 1);
        let _second = m.claimed("import", &created, 2);
        drop(first);
        let mut out = String::new();
        m.render_worker(&mut out);
        assert!(
            out.contains("cloudimg_worker_claim_latency_seconds_bucket{le=\"30\"} 0\n"),
            "{out}"
        );
        assert!(
            out.contains("cloudimg_worker_claim_latency_seconds_bucket{le=\"60\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("cloudimg_worker_claim_latency_seconds_bucket{le=\"+Inf\"} 1\n"),
            "{out}"
        );
        assert!(
            out.contains("cloudimg_worker_claim_latency_seconds_count 1\n"),
            "{out}"
        );
        assert!(
            out.contains("cloudimg_worker_claims_total{type=\"import\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("cloudimg_worker_takeovers_total 1\n"), "{out}");
        assert!(out.contains("cloudimg_worker_tasks_running 1\n"), "{out}");
        assert_eq!(
            stored_time("2023-11-14T22:13:20.123456Z"),
            Some(std::time::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456))
        );
    }
}

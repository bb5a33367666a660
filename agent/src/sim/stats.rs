//! Counters and latency histograms of a running simulation. Recording is lock-free (atomic
//! adds), as 2,000 reports a second go through here from many tasks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::steps::{ActionKind, KIND_SLOTS};
use crate::transport::TransportError;

/// Log-linear buckets over microseconds: exact below 16 µs, then 8 per power of two (≤ 12.5 %
/// error), up to 2^41 µs (25 days; longer values land in the last bucket).
const LINEAR: usize = 16;
const SUB: usize = 8;
const BUCKETS: usize = LINEAR + (41 - 4) * SUB;

/// A concurrent latency histogram.
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    max_us: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if let Some(b) = self.buckets.get(bucket(us)) {
            b.fetch_add(1, Relaxed);
        }
        self.count.fetch_add(1, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Relaxed);
        }
        self.count.store(0, Relaxed);
        self.max_us.store(0, Relaxed);
    }
}

fn bucket(us: u64) -> usize {
    if us < LINEAR as u64 {
        return us as usize;
    }
    let p = 63 - us.leading_zeros() as usize; // ≥ 4
    let sub = ((us >> (p - 3)) & (SUB as u64 - 1)) as usize;
    (LINEAR + (p - 4) * SUB + sub).min(BUCKETS - 1)
}

/// The smallest value of bucket `i` and its width.
fn bucket_range(i: usize) -> (u64, u64) {
    if i < LINEAR {
        return (i as u64, 1);
    }
    let p = (i - LINEAR) / SUB + 4;
    let sub = ((i - LINEAR) % SUB) as u64;
    ((SUB as u64 + sub) << (p - 3), 1 << (p - 3))
}

/// Percentiles over the sum of `parts`.
fn summarize(parts: &[&Histogram]) -> Latency {
    let count: u64 = parts.iter().map(|h| h.count.load(Relaxed)).sum();
    let max_us = parts
        .iter()
        .map(|h| h.max_us.load(Relaxed))
        .max()
        .unwrap_or(0);
    let counts: Vec<u64> = (0..BUCKETS)
        .map(|i| parts.iter().map(|h| h.buckets[i].load(Relaxed)).sum())
        .collect();
    let quantile = |q: f64| -> f64 {
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                let (lo, width) = bucket_range(i);
                let mid = lo as f64 + width as f64 / 2.0;
                return round_ms(mid.min(max_us as f64) / 1_000.0);
            }
        }
        round_ms(max_us as f64 / 1_000.0)
    };
    Latency {
        count,
        p50: quantile(0.50),
        p99: quantile(0.99),
        max: round_ms(max_us as f64 / 1_000.0),
    }
}

fn round_ms(ms: f64) -> f64 {
    (ms * 100.0).round() / 100.0
}

/// A histogram since the start plus a recent window (the last 30–60 s): two halves, the
/// older one cleared and reused every 30 s.
pub(crate) struct Windowed {
    total: Histogram,
    halves: [Histogram; 2],
    current: AtomicUsize,
    /// When the older and the current half started collecting.
    since: Mutex<(Instant, Instant)>,
}

pub(crate) const WINDOW: Duration = Duration::from_secs(30);

impl Windowed {
    fn new(now: Instant) -> Self {
        Self {
            total: Histogram::new(),
            halves: [Histogram::new(), Histogram::new()],
            current: AtomicUsize::new(0),
            since: Mutex::new((now, now)),
        }
    }

    pub(crate) fn record(&self, d: Duration) {
        self.total.record(d);
        self.halves[self.current.load(Relaxed) % 2].record(d);
    }

    /// Starts a new half (called every [`WINDOW`]).
    fn rotate(&self, now: Instant) {
        let next = (self.current.load(Relaxed) + 1) % 2;
        let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
        // The half collecting until now becomes the older one.
        *since = (since.1, now);
        self.halves[next].reset();
        self.current.store(next, Relaxed);
    }

    fn recent(&self) -> (Latency, Duration) {
        let (older, _) = *self.since.lock().unwrap_or_else(|e| e.into_inner());
        (
            summarize(&[&self.halves[0], &self.halves[1]]),
            older.elapsed(),
        )
    }
}

/// Refusal codes counted separately (see [`TransportError::code`]).
const REFUSALS: [&str; 7] = [
    "invalid",
    "unauthorized",
    "replayed",
    "too_large",
    "overloaded",
    "server_error",
    "unexpected",
];

/// Live counters of a simulation.
pub(crate) struct Stats {
    pub started: Instant,
    pub sent: AtomicU64,
    pub accepted: AtomicU64,
    pub dropped: AtomicU64,
    pub transport_errors: AtomicU64,
    pub partitioned: AtomicU64,
    pub failovers: AtomicU64,
    refused: [AtomicU64; REFUSALS.len()],
    pub in_flight: AtomicU64,
    pub enrolled: AtomicU64,
    pub enroll_failed: AtomicU64,
    pub enroll_pending: AtomicU64,
    pub commands_succeeded: AtomicU64,
    pub commands_failed: AtomicU64,
    pub commands_fenced: AtomicU64,
    pub commands_reissued: AtomicU64,
    /// Per action kind (`ActionKind` order, unknown last): succeeded, failed.
    commands_by_kind: [[AtomicU64; 2]; KIND_SLOTS],
    /// Real round-trip time of report requests (local HTTP + controller work).
    pub rtt: Windowed,
    /// How late a report started compared with its schedule (waiting for an in-flight
    /// slot): the simulator falling behind shows here first.
    pub lag: Windowed,
}

impl Stats {
    pub fn new(sites: usize) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            transport_errors: AtomicU64::new(0),
            partitioned: AtomicU64::new(0),
            failovers: AtomicU64::new(0),
            refused: Default::default(),
            in_flight: AtomicU64::new(0),
            enrolled: AtomicU64::new(0),
            enroll_failed: AtomicU64::new(0),
            enroll_pending: AtomicU64::new(sites as u64),
            commands_succeeded: AtomicU64::new(0),
            commands_failed: AtomicU64::new(0),
            commands_fenced: AtomicU64::new(0),
            commands_reissued: AtomicU64::new(0),
            commands_by_kind: Default::default(),
            rtt: Windowed::new(now),
            lag: Windowed::new(now),
        }
    }

    pub fn count_error(&self, e: &TransportError) {
        match e {
            TransportError::Transport(_) => {
                self.transport_errors.fetch_add(1, Relaxed);
            }
            other => {
                if let Some(i) = REFUSALS.iter().position(|c| *c == other.code()) {
                    self.refused[i].fetch_add(1, Relaxed);
                }
            }
        }
    }

    /// Counts the commands a tick finished.
    pub fn count_commands(&self, tick: &super::site::TickOutcome) {
        self.commands_succeeded
            .fetch_add(u64::from(tick.succeeded), Relaxed);
        self.commands_failed
            .fetch_add(u64::from(tick.failed), Relaxed);
        if tick.succeeded + tick.failed == 0 {
            return;
        }
        for (counters, counts) in self.commands_by_kind.iter().zip(&tick.by_kind) {
            for (c, n) in counters.iter().zip(counts) {
                if *n > 0 {
                    c.fetch_add(u64::from(*n), Relaxed);
                }
            }
        }
    }

    pub fn rotate(&self) {
        let now = Instant::now();
        self.rtt.rotate(now);
        self.lag.rotate(now);
    }

    /// The counters; the per-site figures are filled in by the caller.
    pub fn snapshot(&self, sites: SiteCounts, max_in_flight: usize) -> SimStats {
        let (recent_rtt, window) = self.rtt.recent();
        let (recent_lag, _) = self.lag.recent();
        let secs = window.as_secs_f64();
        SimStats {
            uptime_s: round_ms(self.started.elapsed().as_secs_f64()),
            sites: sites.sites,
            enrolled: self.enrolled.load(Relaxed),
            enrolling: self.enroll_pending.load(Relaxed),
            enroll_failed: self.enroll_failed.load(Relaxed),
            sites_down: sites.down,
            sites_faulted: sites.faulted,
            sites_with_alarms: sites.with_alarms,
            sites_degraded: sites.degraded,
            sites_out_of_sync: sites.out_of_sync,
            sites_by_owner: sites.by_owner,
            sites_by_controller: sites.by_controller,
            owner_conflicts: sites.owner_conflicts,
            epoch_regressions: sites.epoch_regressions,
            reports_sent: self.sent.load(Relaxed),
            reports_accepted: self.accepted.load(Relaxed),
            reports_dropped: self.dropped.load(Relaxed),
            refused: REFUSALS
                .iter()
                .zip(&self.refused)
                .map(|(c, n)| (c.to_string(), n.load(Relaxed)))
                .collect(),
            transport_errors: self.transport_errors.load(Relaxed),
            partitioned_attempts: self.partitioned.load(Relaxed),
            failovers: self.failovers.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed),
            max_in_flight,
            reports_per_s: if secs > 0.0 {
                round_ms(recent_rtt.count as f64 / secs)
            } else {
                0.0
            },
            report_rtt_ms: summarize(&[&self.rtt.total]),
            recent_report_rtt_ms: recent_rtt,
            recent_schedule_lag_ms: recent_lag,
            commands_succeeded: self.commands_succeeded.load(Relaxed),
            commands_failed: self.commands_failed.load(Relaxed),
            commands_fenced: self.commands_fenced.load(Relaxed),
            commands_reissued: self.commands_reissued.load(Relaxed),
            commands_by_action: ActionKind::ALL
                .iter()
                .map(|k| k.name())
                .chain(["unknown"])
                .zip(&self.commands_by_kind)
                .map(|(name, [ok, failed])| {
                    (
                        name.to_string(),
                        CommandCounts {
                            succeeded: ok.load(Relaxed),
                            failed: failed.load(Relaxed),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Figures counted over the sites at snapshot time.
#[derive(Debug, Default, Clone)]
pub(crate) struct SiteCounts {
    pub sites: usize,
    pub down: usize,
    pub faulted: usize,
    pub with_alarms: usize,
    pub degraded: usize,
    pub out_of_sync: usize,
    pub owner_conflicts: u64,
    pub epoch_regressions: u64,
    pub by_owner: BTreeMap<String, usize>,
    pub by_controller: BTreeMap<String, usize>,
}

/// Commands of one action kind that finished.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandCounts {
    pub succeeded: u64,
    pub failed: u64,
}

/// Percentiles of a latency distribution, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub count: u64,
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
}

/// A snapshot of a simulation (`GET /stats`, [`super::SimHandle::stats`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimStats {
    pub uptime_s: f64,
    pub sites: usize,
    pub enrolled: u64,
    /// Sites still enrolling (waiting for a slot or retrying).
    pub enrolling: u64,
    /// Sites whose enrollment was refused (they stay silent).
    pub enroll_failed: u64,
    /// Sites silent now (down, flapping down, or restarting).
    pub sites_down: usize,
    /// Sites under any fault.
    pub sites_faulted: usize,
    pub sites_with_alarms: usize,
    pub sites_degraded: usize,
    pub sites_out_of_sync: usize,
    /// Sites per owner named by their last accepted answer (sites never answered: none).
    #[serde(default)]
    pub sites_by_owner: BTreeMap<String, usize>,
    /// Enrolled sites per controller they report to now.
    #[serde(default)]
    pub sites_by_controller: BTreeMap<String, usize>,
    /// Answers, over all sites, under an epoch another owner had already claimed for the
    /// same site: a split brain when not 0.
    #[serde(default)]
    pub owner_conflicts: u64,
    /// Commands sites obeyed from answers under an epoch below the highest they had seen:
    /// a fencing failure when not 0.
    #[serde(default)]
    pub epoch_regressions: u64,
    /// Report requests sent (each failover attempt counts).
    pub reports_sent: u64,
    pub reports_accepted: u64,
    /// Reports dropped by the `loss` fault (never sent).
    pub reports_dropped: u64,
    /// Refusals by code: invalid, unauthorized, replayed, too_large, overloaded, server_error,
    /// unexpected.
    pub refused: BTreeMap<String, u64>,
    /// Requests without an answer (connection refused, timeout).
    pub transport_errors: u64,
    /// Attempts blocked by a `partition` fault (not sent).
    pub partitioned_attempts: u64,
    /// Reports accepted by a controller other than the one the site used before.
    pub failovers: u64,
    pub in_flight: u64,
    pub max_in_flight: usize,
    /// Report requests completed per second over the recent window.
    pub reports_per_s: f64,
    /// Measured round-trip time of report requests since the start.
    pub report_rtt_ms: Latency,
    /// The same over the last 30–60 s.
    pub recent_report_rtt_ms: Latency,
    /// How late reports started compared with their schedule, last 30–60 s.
    pub recent_schedule_lag_ms: Latency,
    pub commands_succeeded: u64,
    pub commands_failed: u64,
    /// Commands ignored for carrying an epoch below the highest seen.
    pub commands_fenced: u64,
    /// Commands a new owner re-issued (same key, its own id) that sites had already taken
    /// on: reported under the new id, never run again.
    #[serde(default)]
    pub commands_reissued: u64,
    /// Commands finished per action kind (`software_deploy`, …, and `unknown`).
    #[serde(default)]
    pub commands_by_action: BTreeMap<String, CommandCounts>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_values_in_order() {
        let mut last = 0;
        for us in (0..100_000u64).step_by(7).chain([u64::MAX]) {
            let b = bucket(us);
            assert!(b >= last && b < BUCKETS);
            last = b;
            let (lo, width) = bucket_range(b);
            if b < BUCKETS - 1 {
                assert!(lo <= us && us < lo + width, "{us} in {lo}+{width}");
            }
        }
    }

    #[test]
    fn percentiles_are_close() {
        let h = Histogram::new();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let l = summarize(&[&h]);
        assert_eq!(l.count, 100);
        assert!((45.0..56.0).contains(&l.p50), "{l:?}");
        assert!((90.0..=100.0).contains(&l.p99), "{l:?}");
        assert_eq!(l.max, 100.0);
        assert_eq!(summarize(&[&Histogram::new()]).p99, 0.0);
    }

    #[test]
    fn the_recent_window_forgets() {
        let w = Windowed::new(Instant::now());
        w.record(Duration::from_millis(500));
        w.rotate(Instant::now());
        assert_eq!(w.recent().0.count, 1, "kept for one more window");
        w.rotate(Instant::now());
        assert_eq!(w.recent().0.count, 0);
        assert_eq!(summarize(&[&w.total]).count, 1);
    }
}

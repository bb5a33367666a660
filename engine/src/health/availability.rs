//! Availability with hysteresis: a subcloud goes offline only after `offline_after_missed`
//! report intervals without a good report, and comes back online only after
//! `online_after_reports` consecutive good reports. A link that flaps inside those windows
//! changes neither the state nor the alarms.

use serde::{Deserialize, Serialize};

use crate::fleet::AvailabilityStatus;
use crate::time::Millis;

/// How availability is derived from report arrivals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HysteresisPolicy {
    /// How often agents are asked to report.
    pub interval_ms: i64,
    /// Missed intervals before an online subcloud is declared offline.
    pub offline_after_missed: u32,
    /// Consecutive good reports before an offline subcloud is declared online again.
    pub online_after_reports: u32,
}

impl Default for HysteresisPolicy {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            offline_after_missed: 3,
            online_after_reports: 2,
        }
    }
}

impl HysteresisPolicy {
    /// Silence longer than this takes an online subcloud offline.
    pub fn offline_after_ms(&self) -> i64 {
        self.interval_ms
            .saturating_mul(i64::from(self.offline_after_missed.max(1)))
    }

    /// Two good reports further apart than this are not consecutive (jitter of up to half an
    /// interval is tolerated).
    pub fn consecutive_gap_ms(&self) -> i64 {
        self.interval_ms.saturating_add(self.interval_ms / 2)
    }
}

/// The availability state machine of one subcloud.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvailabilityTracker {
    pub availability: AvailabilityStatus,
    /// Arrival of the last good report (or the moment tracking started, as a grace period).
    pub last_good_at: Millis,
    /// Consecutive good reports while offline.
    pub good_streak: u32,
}

impl AvailabilityTracker {
    pub fn new(availability: AvailabilityStatus, last_good_at: Millis) -> Self {
        Self {
            availability,
            last_good_at,
            good_streak: 0,
        }
    }

    /// A report arrived at `at`; `good` is false when the site reports a failed platform (it
    /// answers, but is not usable). Returns the new state if it changed.
    pub fn on_report(
        &mut self,
        at: Millis,
        good: bool,
        p: &HysteresisPolicy,
    ) -> Option<AvailabilityStatus> {
        if !good {
            self.good_streak = 0;
            return None;
        }
        let gap = at.0.saturating_sub(self.last_good_at.0);
        self.last_good_at = Millis(self.last_good_at.0.max(at.0));
        match self.availability {
            AvailabilityStatus::Online => None,
            AvailabilityStatus::Offline => {
                self.good_streak = if self.good_streak > 0 && gap <= p.consecutive_gap_ms() {
                    self.good_streak + 1
                } else {
                    1
                };
                if self.good_streak >= p.online_after_reports.max(1) {
                    self.good_streak = 0;
                    self.availability = AvailabilityStatus::Online;
                    Some(AvailabilityStatus::Online)
                } else {
                    None
                }
            }
        }
    }

    /// Time has passed to `now` without (further) reports. Returns the new state if it changed.
    pub fn on_tick(&mut self, now: Millis, p: &HysteresisPolicy) -> Option<AvailabilityStatus> {
        if self.availability == AvailabilityStatus::Online
            && now.0.saturating_sub(self.last_good_at.0) > p.offline_after_ms()
        {
            self.availability = AvailabilityStatus::Offline;
            self.good_streak = 0;
            return Some(AvailabilityStatus::Offline);
        }
        if self.availability == AvailabilityStatus::Offline
            && self.good_streak > 0
            && now.0.saturating_sub(self.last_good_at.0) > p.consecutive_gap_ms()
        {
            // The streak of good reports was broken by silence.
            self.good_streak = 0;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AvailabilityStatus::*;

    const P: HysteresisPolicy = HysteresisPolicy {
        interval_ms: 1_000,
        offline_after_missed: 3,
        online_after_reports: 2,
    };

    /// Drives a tracker with reports at the given times and ticks every 100 ms until `end`;
    /// returns the transitions with their times.
    fn run(start: AvailabilityStatus, reports: &[i64], end: i64) -> Vec<(i64, AvailabilityStatus)> {
        let mut t = AvailabilityTracker::new(start, Millis(0));
        let mut out = Vec::new();
        let mut reports = reports.iter().peekable();
        for now in (0..=end).step_by(100) {
            while let Some(&&r) = reports.peek() {
                if r > now {
                    break;
                }
                reports.next();
                if let Some(s) = t.on_report(Millis(r), true, &P) {
                    out.push((now, s));
                }
            }
            if let Some(s) = t.on_tick(Millis(now), &P) {
                out.push((now, s));
            }
        }
        out
    }

    #[test]
    fn silence_takes_a_site_offline_after_the_threshold_and_not_before() {
        // Reports every second until 5 s, then silence: offline once 3 s have passed.
        let reports: Vec<i64> = (0..=5).map(|s| s * 1000).collect();
        assert_eq!(run(Online, &reports, 12_000), vec![(8_100, Offline)]);
    }

    #[test]
    fn a_short_outage_inside_the_window_changes_nothing() {
        // Link down from 3 s to 5.5 s (two missed reports), then back.
        let reports: Vec<i64> = [0, 1000, 2000, 3000, 5500, 6500, 7500, 8500].to_vec();
        assert!(run(Online, &reports, 9_000).is_empty());
    }

    #[test]
    fn recovery_needs_consecutive_good_reports() {
        let reports = [10_000, 11_000, 12_000];
        assert_eq!(run(Offline, &reports, 13_000), vec![(11_000, Online)]);
    }

    #[test]
    fn a_flapping_link_does_not_bring_an_offline_site_back() {
        // One report every 2.5 s: never two within the consecutive gap (1.5 s).
        let reports: Vec<i64> = (0..8).map(|i| 1000 + i * 2500).collect();
        assert!(run(Offline, &reports, 20_000).is_empty());
    }

    #[test]
    fn failed_platform_reports_do_not_count_as_good() {
        let mut t = AvailabilityTracker::new(Online, Millis(0));
        for s in 1..=5 {
            assert_eq!(t.on_report(Millis(s * 1000), false, &P), None);
        }
        assert_eq!(t.on_tick(Millis(5_000), &P), Some(Offline));
    }

    #[test]
    fn out_of_order_arrivals_never_move_time_backwards() {
        let mut t = AvailabilityTracker::new(Online, Millis(5_000));
        t.on_report(Millis(1_000), true, &P);
        assert_eq!(t.last_good_at, Millis(5_000));
    }
}

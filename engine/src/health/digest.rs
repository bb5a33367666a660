//! "Is anything wrong, where, since when": the fleet's problems at a glance, worst and oldest
//! first, for the phone status page and wall screens.

use serde::{Deserialize, Serialize};

use super::AlarmSeverity;
use crate::time::Millis;

/// Most problems listed; the counts always cover all of them.
pub const MAX_PROBLEMS: usize = 25;

/// One thing an operator should know about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub severity: AlarmSeverity,
    /// What is wrong, in words ("Subcloud offline", "Strategy paused").
    pub what: String,
    /// Where: a subcloud, a controller or a strategy.
    pub place: String,
    /// The page to look at.
    pub href: String,
    pub since: Millis,
}

/// The fleet's state in one look.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDigest {
    /// Nothing critical or major anywhere, every managed site online and measuring its own
    /// health, every controller up ([`StatusDigest::nothing_wrong`]).
    pub all_clear: bool,
    pub sites: u64,
    /// Managed sites offline.
    pub offline: u64,
    /// Managed sites whose agents do not observe their platform (alarm roll-up `unknown`):
    /// nobody measured that they are fine, so the fleet is not "all clear" while there are any.
    #[serde(default)]
    pub health_unknown: u64,
    pub critical_alarms: u64,
    pub major_alarms: u64,
    /// Controllers with an active alarm of their own (unreachable peer, waiting group, shortfall).
    pub controller_alarms: u64,
    /// Strategies paused or failed.
    pub stalled_strategies: u64,
    /// Worst first, then oldest first.
    pub problems: Vec<Problem>,
    pub as_of: Millis,
}

impl StatusDigest {
    /// The verdict "all clear": nothing known to be wrong, and nothing unmeasured.
    pub fn nothing_wrong(&self) -> bool {
        self.offline == 0
            && self.health_unknown == 0
            && self.critical_alarms == 0
            && self.major_alarms == 0
            && self.controller_alarms == 0
            && self.stalled_strategies == 0
    }
}

/// "42 min", "3 h 5 min", "2 d 4 h": how long since `since`, at `now`.
pub fn duration_text(since: Millis, now: Millis) -> String {
    let mins = ((now.0 - since.0).max(0)) / 60_000;
    match mins {
        0 => "under a minute".into(),
        m if m < 60 => format!("{m} min"),
        m if m < 24 * 60 => match m % 60 {
            0 => format!("{} h", m / 60),
            r => format!("{} h {r} min", m / 60),
        },
        m => match (m / 60) % 24 {
            0 => format!("{} d", m / (24 * 60)),
            h => format!("{} d {h} h", m / (24 * 60)),
        },
    }
}

#[cfg(feature = "store")]
mod read {
    use sqlx::Row;

    use super::*;
    use crate::error::Result;
    use crate::Engine;

    fn severity(v: &str) -> AlarmSeverity {
        v.parse().unwrap_or(AlarmSeverity::Major)
    }

    impl Engine {
        /// The fleet's problems now: controller alarms, critical and major site alarms, and
        /// stalled strategies.
        pub async fn status_digest(&self) -> Result<StatusDigest> {
            let pool = self.store.pool();
            let now = Millis::now();
            let counts = sqlx::query(
                "SELECT COUNT(*), \
                 COALESCE(SUM(CASE WHEN management_state = 'managed' AND availability = 'offline' THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN management_state = 'managed' AND alarm_status = 'unknown' THEN 1 ELSE 0 END), 0) \
                 FROM subclouds",
            )
            .fetch_one(pool)
            .await?;
            let alarm_counts = sqlx::query(
                "SELECT COALESCE(SUM(CASE WHEN severity = 'critical' THEN 1 ELSE 0 END), 0), \
                 COALESCE(SUM(CASE WHEN severity = 'major' THEN 1 ELSE 0 END), 0) \
                 FROM alarms WHERE cleared_at IS NULL",
            )
            .fetch_one(pool)
            .await?;
            let mut problems = Vec::new();
            let controller_rows = sqlx::query(
                "SELECT a.severity, a.reason, c.name, a.raised_at FROM controller_alarms a \
                 JOIN system_controllers c ON c.id = a.controller_id WHERE a.cleared_at IS NULL \
                 ORDER BY a.raised_at, a.id",
            )
            .fetch_all(pool)
            .await?;
            for r in &controller_rows {
                problems.push(Problem {
                    severity: severity(r.try_get(0)?),
                    what: r.try_get(1)?,
                    place: r.try_get(2)?,
                    href: "/controllers".into(),
                    since: Millis(r.try_get(3)?),
                });
            }
            let stalled = sqlx::query(
                "SELECT id, strategy_type, state, reason, updated_at FROM strategies \
                 WHERE state IN ('paused', 'failed') AND (finished_at IS NULL OR finished_at >= $1) \
                 ORDER BY updated_at, id",
            )
            // A failed strategy stays news for a day.
            .bind(now.0 - 86_400_000)
            .fetch_all(pool)
            .await?;
            for r in &stalled {
                let id: i64 = r.try_get(0)?;
                let t: String = r.try_get(1)?;
                let state: String = r.try_get(2)?;
                let reason: String = r.try_get(3)?;
                problems.push(Problem {
                    severity: if state == "failed" {
                        AlarmSeverity::Critical
                    } else {
                        AlarmSeverity::Major
                    },
                    what: if reason.is_empty() {
                        format!("Strategy {state}")
                    } else {
                        format!("Strategy {state}: {reason}")
                    },
                    place: format!("{t} strategy #{id}"),
                    href: format!("/orchestration/{id}"),
                    since: Millis(r.try_get(4)?),
                });
            }
            let site_rows = sqlx::query(&format!(
                "SELECT a.severity, a.reason, s.name, a.raised_at FROM alarms a \
                 JOIN subclouds s ON s.id = a.subcloud_id \
                 WHERE a.cleared_at IS NULL AND a.severity IN ('critical', 'major') \
                 ORDER BY CASE a.severity WHEN 'critical' THEN 0 ELSE 1 END, a.raised_at, a.id \
                 LIMIT {MAX_PROBLEMS}"
            ))
            .fetch_all(pool)
            .await?;
            for r in &site_rows {
                let name: String = r.try_get(2)?;
                problems.push(Problem {
                    severity: severity(r.try_get(0)?),
                    what: r.try_get(1)?,
                    href: format!("/subclouds/{name}"),
                    place: name,
                    since: Millis(r.try_get(3)?),
                });
            }
            problems.sort_by(|a, b| {
                a.severity
                    .cmp(&b.severity)
                    .then(a.since.0.cmp(&b.since.0))
                    .then(a.place.cmp(&b.place))
            });
            problems.truncate(MAX_PROBLEMS);
            let sites = u64::try_from(counts.try_get::<i64, _>(0)?).unwrap_or(0);
            let offline = u64::try_from(counts.try_get::<i64, _>(1)?).unwrap_or(0);
            let health_unknown = u64::try_from(counts.try_get::<i64, _>(2)?).unwrap_or(0);
            let critical_alarms = u64::try_from(alarm_counts.try_get::<i64, _>(0)?).unwrap_or(0);
            let major_alarms = u64::try_from(alarm_counts.try_get::<i64, _>(1)?).unwrap_or(0);
            let controller_alarms = controller_rows.len() as u64;
            let stalled_strategies = stalled.len() as u64;
            let mut digest = StatusDigest {
                all_clear: false,
                sites,
                offline,
                health_unknown,
                critical_alarms,
                major_alarms,
                controller_alarms,
                stalled_strategies,
                problems,
                as_of: now,
            };
            digest.all_clear = digest.nothing_wrong();
            Ok(digest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmeasured_sites_are_not_all_clear() {
        let clear = StatusDigest {
            all_clear: true,
            sites: 10,
            offline: 0,
            health_unknown: 0,
            critical_alarms: 0,
            major_alarms: 0,
            controller_alarms: 0,
            stalled_strategies: 0,
            problems: Vec::new(),
            as_of: Millis(0),
        };
        assert!(clear.nothing_wrong());
        let unmeasured = StatusDigest {
            health_unknown: 1,
            ..clear.clone()
        };
        assert!(!unmeasured.nothing_wrong());
        let offline = StatusDigest {
            offline: 1,
            ..clear
        };
        assert!(!offline.nothing_wrong());
    }

    #[test]
    fn durations_read_at_a_glance() {
        let t = |m: i64| duration_text(Millis(0), Millis(m * 60_000));
        assert_eq!(t(0), "under a minute");
        assert_eq!(t(42), "42 min");
        assert_eq!(t(60), "1 h");
        assert_eq!(t(185), "3 h 5 min");
        assert_eq!(t(24 * 60), "1 d");
        assert_eq!(t(52 * 60), "2 d 4 h");
        // A clock slightly behind never shows a negative time.
        assert_eq!(duration_text(Millis(5_000), Millis(0)), "under a minute");
    }
}

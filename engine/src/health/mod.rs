//! Health: alarms with X.733 severities and the per-subcloud alarm roll-up (StarlingX
//! `cloud_status`, reference §1.7).

use serde::{Deserialize, Serialize};

use crate::text_enum::text_enum;
use crate::time::Millis;

text_enum! {
    /// X.733 perceived severity of an alarm.
    pub enum AlarmSeverity: "alarm severity" {
        Critical = "critical",
        Major = "major",
        Minor = "minor",
        Warning = "warning",
    }
}

text_enum! {
    /// Alarm roll-up of one subcloud: `critical` if any critical alarm, `degraded` if any major
    /// or minor, `OK` otherwise, `disabled` when alarm reporting is off. `unknown` (not in
    /// StarlingX): the site's agent does not observe its platform, so "no alarm" would be a
    /// claim nobody measured; alarms the controller raises itself still make it worse.
    pub enum AlarmStatus: "alarm status" {
        Critical = "critical",
        Degraded = "degraded",
        Unknown = "unknown",
        Ok = "OK",
        Disabled = "disabled",
    }
}

impl AlarmStatus {
    /// Severity order, worst highest (stored as `alarm_rank` for sorting).
    pub fn rank(self) -> i64 {
        match self {
            AlarmStatus::Critical => 4,
            AlarmStatus::Degraded => 3,
            AlarmStatus::Unknown => 2,
            AlarmStatus::Ok => 1,
            AlarmStatus::Disabled => 0,
        }
    }
}

/// Active-alarm counts of one subcloud by severity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmCounts {
    pub critical: u32,
    pub major: u32,
    pub minor: u32,
    pub warnings: u32,
}

impl AlarmCounts {
    /// Counts of a set of active alarms.
    pub fn of<'a>(severities: impl IntoIterator<Item = &'a AlarmSeverity>) -> Self {
        let mut c = Self::default();
        for s in severities {
            match s {
                AlarmSeverity::Critical => c.critical += 1,
                AlarmSeverity::Major => c.major += 1,
                AlarmSeverity::Minor => c.minor += 1,
                AlarmSeverity::Warning => c.warnings += 1,
            }
        }
        c
    }

    /// The roll-up of §1.7. Warnings alone leave a subcloud `OK`.
    pub fn status(self) -> AlarmStatus {
        self.status_when(true)
    }

    /// The roll-up when the site's own alarms may not have been observed: what is known to be
    /// wrong still shows (critical, degraded), but "nothing wrong" is only `OK` when the site
    /// measured its alarms; otherwise it is `unknown`.
    pub fn status_when(self, site_observed: bool) -> AlarmStatus {
        if self.critical > 0 {
            AlarmStatus::Critical
        } else if self.major > 0 || self.minor > 0 {
            AlarmStatus::Degraded
        } else if !site_observed {
            AlarmStatus::Unknown
        } else {
            AlarmStatus::Ok
        }
    }

    pub fn total(self) -> u32 {
        self.critical + self.major + self.minor + self.warnings
    }
}

/// One row of the fleet alarm summary (reference §1.7), per subcloud.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmSummaryRow {
    /// The subcloud's name (StarlingX calls this field `region_name`).
    pub region_name: String,
    pub critical_alarms: u32,
    pub major_alarms: u32,
    pub minor_alarms: u32,
    pub warnings: u32,
    pub cloud_status: AlarmStatus,
}

/// One alarm, active or cleared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alarm {
    pub id: i64,
    /// Alarm identifier in the StarlingX numbering, e.g. `280.001` (subcloud offline).
    pub alarm_id: String,
    pub severity: AlarmSeverity,
    pub reason: String,
    pub entity: String,
    pub raised_at: Millis,
    pub cleared_at: Option<Millis>,
    pub acknowledged: bool,
}

/// Well-known alarm identifiers raised by the controller itself.
pub mod alarm_ids {
    /// Subcloud offline (critical).
    pub const SUBCLOUD_OFFLINE: &str = "280.001";
    /// Subcloud resource out-of-sync (major).
    pub const SUBCLOUD_OUT_OF_SYNC: &str = "280.002";
    /// Subcloud backup failed (minor).
    pub const BACKUP_FAILED: &str = "280.003";
}

mod alarms;
mod availability;
mod digest;
pub use alarms::{
    AlarmPage, AlarmQuery, AlarmRow, AlarmState, AvailabilitySpan, AvailabilityTimeline,
};
pub use availability::{AvailabilityTracker, HysteresisPolicy};
pub use digest::{duration_text, Problem, StatusDigest, MAX_PROBLEMS};

#[cfg(feature = "store")]
mod monitor;
#[cfg(feature = "store")]
mod store;
#[cfg(feature = "store")]
pub use monitor::TickReport;
#[cfg(feature = "store")]
pub use store::TIMELINE_WINDOW_MS;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roll_up_follows_reference() {
        use AlarmSeverity::*;
        assert_eq!(AlarmCounts::of(&[]).status(), AlarmStatus::Ok);
        assert_eq!(
            AlarmCounts::of(&[Warning, Warning]).status(),
            AlarmStatus::Ok
        );
        assert_eq!(AlarmCounts::of(&[Minor]).status(), AlarmStatus::Degraded);
        assert_eq!(
            AlarmCounts::of(&[Major, Warning]).status(),
            AlarmStatus::Degraded
        );
        assert_eq!(
            AlarmCounts::of(&[Minor, Critical]).status(),
            AlarmStatus::Critical
        );
        let c = AlarmCounts::of(&[Critical, Major, Major, Warning]);
        assert_eq!(
            (c.critical, c.major, c.minor, c.warnings, c.total()),
            (1, 2, 0, 1, 4)
        );
    }

    #[test]
    fn unobserved_sites_are_never_ok() {
        use AlarmSeverity::*;
        // Nothing measured, nothing raised: unknown, not OK.
        assert_eq!(
            AlarmCounts::of(&[]).status_when(false),
            AlarmStatus::Unknown
        );
        assert_eq!(
            AlarmCounts::of(&[Warning]).status_when(false),
            AlarmStatus::Unknown
        );
        // What the controller knows is wrong still shows.
        assert_eq!(
            AlarmCounts::of(&[Critical]).status_when(false),
            AlarmStatus::Critical
        );
        assert_eq!(
            AlarmCounts::of(&[Major]).status_when(false),
            AlarmStatus::Degraded
        );
        // Sorted worst first: unknown between degraded and OK.
        let mut by_rank = AlarmStatus::ALL.to_vec();
        by_rank.sort_by_key(|s| std::cmp::Reverse(s.rank()));
        assert_eq!(by_rank, AlarmStatus::ALL.to_vec());
    }

    #[test]
    fn severity_parses_and_rejects() {
        assert_eq!("major".parse::<AlarmSeverity>(), Ok(AlarmSeverity::Major));
        let e = "MAJOR".parse::<AlarmSeverity>().unwrap_err();
        assert!(e.message.contains("critical, major, minor, warning"), "{e}");
        assert_eq!("OK".parse::<AlarmStatus>(), Ok(AlarmStatus::Ok));
    }
}

//! The fleet alarm list (filters, paging, acknowledge) and the availability timeline: the
//! vocabulary shared by the server and the dashboard.

use serde::{Deserialize, Serialize};

use super::{AlarmCounts, AlarmSeverity};
use crate::error::ValidationError;
use crate::fleet::AvailabilityStatus;
use crate::text_enum::text_enum;
use crate::time::Millis;

text_enum! {
    /// Which alarms a list shows.
    pub enum AlarmState: "alarm state" {
        Active = "active",
        Cleared = "cleared",
        All = "all",
    }
}

/// Filters and page of the alarms view (`/alarms`, `GET /api/v1/alarms/list`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmQuery {
    /// Severities to show; empty means all.
    pub severities: Vec<AlarmSeverity>,
    pub state: AlarmState,
    /// Exact subcloud name.
    pub subcloud: Option<String>,
    /// `Some(false)`: only unacknowledged.
    pub acknowledged: Option<bool>,
    pub page: u32,
    pub per_page: u32,
}

impl Default for AlarmQuery {
    fn default() -> Self {
        Self {
            severities: Vec::new(),
            state: AlarmState::Active,
            subcloud: None,
            acknowledged: None,
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }
}

impl AlarmQuery {
    pub const DEFAULT_PER_PAGE: u32 = 50;
    pub const MAX_PER_PAGE: u32 = 500;
    pub const MAX_PAGE: u32 = 1_000_000;

    /// Parses URL parameters: `severity` (repeatable), `state`, `subcloud`, `ack`
    /// (`yes`/`no`), `page`, `per_page`. Empty values mean "any"; unknown keys are ignored.
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationError> {
        let mut q = Self::default();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key {
                "severity" => {
                    let s: AlarmSeverity = value
                        .parse()
                        .map_err(|e: ValidationError| e.in_field(key))?;
                    if !q.severities.contains(&s) {
                        q.severities.push(s);
                    }
                }
                "state" => {
                    q.state = value
                        .parse()
                        .map_err(|e: ValidationError| e.in_field(key))?
                }
                "subcloud" => q.subcloud = Some(value.to_string()),
                "ack" => {
                    q.acknowledged = match value {
                        "yes" => Some(true),
                        "no" => Some(false),
                        _ => {
                            return Err(ValidationError::new("ack", "expected yes or no"));
                        }
                    }
                }
                "page" => q.page = ValidationError::whole_number(key, value)?,
                "per_page" => q.per_page = ValidationError::whole_number(key, value)?,
                _ => {}
            }
        }
        q.severities.sort();
        q.validate()?;
        Ok(q)
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        ValidationError::paging(self.page, self.per_page, Self::MAX_PAGE, Self::MAX_PER_PAGE)?;
        if let Some(s) = &self.subcloud {
            if s.chars().count() > 64 || s.chars().any(char::is_control) {
                return Err(ValidationError::new(
                    "subcloud",
                    "subcloud is at most 64 characters without control characters",
                ));
            }
        }
        Ok(())
    }

    /// The query as URL parameters, omitting defaults.
    pub fn to_params(&self) -> Vec<(&'static str, String)> {
        let d = Self::default();
        let mut out = Vec::new();
        for s in &self.severities {
            out.push(("severity", s.as_str().to_string()));
        }
        if self.state != d.state {
            out.push(("state", self.state.as_str().to_string()));
        }
        if let Some(s) = &self.subcloud {
            out.push(("subcloud", s.clone()));
        }
        if let Some(a) = self.acknowledged {
            out.push(("ack", if a { "yes" } else { "no" }.to_string()));
        }
        if self.page != d.page {
            out.push(("page", self.page.to_string()));
        }
        if self.per_page != d.per_page {
            out.push(("per_page", self.per_page.to_string()));
        }
        out
    }

    /// `?a=b&…` (empty when all defaults).
    pub fn to_query_string(&self) -> String {
        let params = self.to_params();
        if params.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", crate::url::encode_query_value(v)))
            .collect();
        format!("?{}", parts.join("&"))
    }
}

/// One alarm with its subcloud, for the fleet alarm list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmRow {
    pub id: i64,
    pub subcloud: String,
    pub alarm_id: String,
    pub severity: AlarmSeverity,
    pub reason: String,
    pub entity: String,
    /// `controller` (raised from health transitions) or `agent` (reported by the site).
    pub source: String,
    pub raised_at: Millis,
    pub cleared_at: Option<Millis>,
    pub acknowledged: bool,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Millis>,
}

/// One page of alarms, with fleet-wide active counts for the severity filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlarmPage {
    pub rows: Vec<AlarmRow>,
    pub matching: u64,
    pub page: u32,
    pub per_page: u32,
    /// Active alarms in the whole fleet by severity (independent of the filters).
    pub active: AlarmCounts,
    pub as_of: Millis,
}

impl AlarmPage {
    pub fn page_count(&self) -> u32 {
        crate::paging::page_count(self.matching, self.per_page)
    }
}

/// A stretch of time in one availability state; `None` means nothing is known (before the
/// first recorded transition).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilitySpan {
    pub from: Millis,
    pub to: Millis,
    pub availability: Option<AvailabilityStatus>,
}

/// Availability of one subcloud over a window (the detail page shows the last 24 h).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvailabilityTimeline {
    pub from: Millis,
    pub to: Millis,
    /// Consecutive, covering `from..to` exactly.
    pub spans: Vec<AvailabilitySpan>,
    /// Transitions inside the window.
    pub transitions: u32,
}

impl AvailabilityTimeline {
    /// Builds spans from the state at `from` (if known) and the transitions inside the window,
    /// oldest first. Transitions outside the window are ignored.
    pub fn build(
        from: Millis,
        to: Millis,
        state_at_from: Option<AvailabilityStatus>,
        transitions: &[(Millis, AvailabilityStatus)],
    ) -> Self {
        let mut spans = Vec::new();
        let mut cur_from = from;
        let mut cur = state_at_from;
        let mut count = 0;
        for &(at, s) in transitions {
            if at < from || at > to {
                continue;
            }
            count += 1;
            if Some(s) == cur {
                continue;
            }
            if at > cur_from {
                spans.push(AvailabilitySpan {
                    from: cur_from,
                    to: at,
                    availability: cur,
                });
            }
            cur_from = at;
            cur = Some(s);
        }
        if to > cur_from {
            spans.push(AvailabilitySpan {
                from: cur_from,
                to,
                availability: cur,
            });
        }
        Self {
            from,
            to,
            spans,
            transitions: count,
        }
    }

    /// Share of the known time spent online, 0–1000 (per mille), if anything is known.
    pub fn online_permille(&self) -> Option<u32> {
        let known: i64 = self
            .spans
            .iter()
            .filter(|s| s.availability.is_some())
            .map(|s| s.to.0 - s.from.0)
            .sum();
        if known <= 0 {
            return None;
        }
        let online: i64 = self
            .spans
            .iter()
            .filter(|s| s.availability == Some(AvailabilityStatus::Online))
            .map(|s| s.to.0 - s.from.0)
            .sum();
        u32::try_from(online * 1000 / known).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AvailabilityStatus::*;

    #[test]
    fn timeline_covers_the_window_exactly() {
        let t = AvailabilityTimeline::build(
            Millis(0),
            Millis(100),
            Some(Online),
            &[
                (Millis(20), Offline),
                (Millis(50), Online),
                (Millis(200), Offline),
            ],
        );
        assert_eq!(t.transitions, 2);
        let spans: Vec<_> = t
            .spans
            .iter()
            .map(|s| (s.from.0, s.to.0, s.availability))
            .collect();
        assert_eq!(
            spans,
            vec![
                (0, 20, Some(Online)),
                (20, 50, Some(Offline)),
                (50, 100, Some(Online))
            ]
        );
        assert_eq!(t.online_permille(), Some(700));
        let unknown = AvailabilityTimeline::build(Millis(0), Millis(100), None, &[]);
        assert_eq!(unknown.spans.len(), 1);
        assert_eq!(unknown.online_permille(), None);
    }

    #[test]
    fn alarm_query_round_trips_and_refuses() {
        let q = AlarmQuery::from_params([
            ("severity", "major"),
            ("severity", "critical"),
            ("state", "all"),
            ("ack", "no"),
            ("page", "2"),
        ])
        .unwrap();
        assert_eq!(
            q.severities,
            vec![AlarmSeverity::Critical, AlarmSeverity::Major]
        );
        let again =
            AlarmQuery::from_params(q.to_params().iter().map(|(k, v)| (*k, v.as_str()))).unwrap();
        assert_eq!(again, q);
        assert_eq!(
            AlarmQuery::from_params([("severity", "fatal")])
                .unwrap_err()
                .field,
            "severity"
        );
        assert_eq!(
            AlarmQuery::from_params([("ack", "maybe")])
                .unwrap_err()
                .field,
            "ack"
        );
        assert_eq!(
            AlarmQuery::from_params([("per_page", "0")])
                .unwrap_err()
                .field,
            "per_page"
        );
    }
}

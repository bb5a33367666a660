//! The audit log: who changed what, when, from where, and how it ended. Entries are written
//! inside the transaction of the change they describe, so a change without its entry (or an
//! entry without its change) cannot exist.

use serde::{Deserialize, Serialize};

use crate::time::Millis;

/// One audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub actor: String,
    pub role: String,
    pub action: String,
    pub target: String,
    pub summary: String,
    pub client_addr: Option<String>,
    pub outcome: String,
}

impl AuditEntry {
    /// A change made by the controller itself (seeding, health derivation, takeovers).
    #[cfg(feature = "store")]
    pub fn system(action: &str, target: &str, summary: String) -> Self {
        Self {
            actor: "system".into(),
            role: "system".into(),
            action: action.into(),
            target: target.into(),
            summary,
            client_addr: None,
            outcome: "ok".into(),
        }
    }
}

#[cfg(feature = "store")]
impl crate::auth::Actor {
    /// An audit entry of a change this actor made.
    pub fn audit(&self, action: &str, target: &str, summary: String) -> AuditEntry {
        AuditEntry {
            actor: self.name.clone(),
            role: self.role_name().into(),
            action: action.into(),
            target: target.into(),
            summary,
            client_addr: self.client_addr.clone(),
            outcome: "ok".into(),
        }
    }
}

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Millis,
    pub entry: AuditEntry,
}

/// Appends `entry` in the caller's transaction.
#[cfg(feature = "store")]
pub async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    entry: &AuditEntry,
) -> crate::error::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (at, actor, role, action, target, summary, client_addr, outcome) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(Millis::now().0)
    .bind(&entry.actor)
    .bind(&entry.role)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.summary)
    .bind(entry.client_addr.as_deref())
    .bind(&entry.outcome)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Filters and page of the audit log view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// Exact actor (user name, `system`, or the name tried at a failed login).
    pub actor: Option<String>,
    /// Action, or an action family when it ends with `.` (e.g. `user.`).
    pub action: Option<String>,
    /// Case-insensitive substring of the target.
    pub target: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
    pub page: u32,
    pub per_page: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            actor: None,
            action: None,
            target: None,
            from: None,
            to: None,
            page: 1,
            per_page: 50,
        }
    }
}

impl AuditQuery {
    pub const PARAMS: [&'static str; 7] = [
        "actor", "action", "target", "from", "to", "page", "per_page",
    ];

    /// Parses URL query parameters (empty means "any"; unknown ones are ignored).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, crate::ValidationError> {
        use crate::ValidationError as V;
        let mut q = Self::default();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            let text = |v: &str| -> Result<String, V> { Ok(v.to_string()) };
            let time = |v: &str| {
                Millis::parse_iso(v).ok_or_else(|| {
                    V::new(
                        key,
                        format!("{key} must be a date like 2026-11-28 or 2026-11-28T07:30"),
                    )
                })
            };
            match key {
                "actor" => q.actor = Some(text(value)?),
                "action" => q.action = Some(text(value)?),
                "target" => q.target = Some(text(value)?),
                "from" => q.from = Some(time(value)?),
                // An end given to the day or minute includes all of that day or minute.
                "to" => {
                    let t = time(value)?;
                    let slack = match value.split_once('T') {
                        None => 86_399_999,
                        Some((_, time)) if time.matches(':').count() == 1 => 59_999,
                        Some(_) => 999,
                    };
                    q.to = Some(Millis(t.0 + slack));
                }
                "page" => q.page = V::whole_number(key, value)?,
                "per_page" => q.per_page = V::whole_number(key, value)?,
                _ => {}
            }
        }
        q.validate()?;
        Ok(q)
    }

    pub fn validate(&self) -> Result<(), crate::ValidationError> {
        use crate::ValidationError as V;
        V::paging(self.page, self.per_page, 1_000_000, 500)?;
        for (field, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
        ] {
            if let Some(v) = v {
                if v.chars().count() > 128 || v.chars().any(char::is_control) {
                    return Err(V::new(
                        field,
                        format!("{field} is at most 128 characters, without control characters"),
                    ));
                }
            }
        }
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f > t {
                return Err(V::new("to", "the end of the range is before its start"));
            }
        }
        Ok(())
    }

    /// URL parameters, omitting defaults.
    pub fn to_query_string(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        let enc = crate::url::encode_query_value;
        for (k, v) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", enc(v)));
            }
        }
        if let Some(v) = self.from {
            parts.push(format!("from={}", enc(&v.to_iso())));
        }
        // `to` holds the last included millisecond; its second is what the URL says.
        if let Some(v) = self.to {
            parts.push(format!(
                "to={}",
                enc(&Millis(v.0 - v.0.rem_euclid(1000)).to_iso())
            ));
        }
        if self.page != 1 {
            parts.push(format!("page={}", self.page));
        }
        if self.per_page != 50 {
            parts.push(format!("per_page={}", self.per_page));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// One page of audit records, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRecord>,
    pub matching: u64,
    pub page: u32,
    pub per_page: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_query_parses_and_round_trips() {
        // An end given as a day includes the whole day.
        let day = AuditQuery::from_params([("to", "2026-11-28")]).unwrap();
        let next_day = Millis::parse_iso("2026-11-29").unwrap();
        assert_eq!(day.to, Some(Millis(next_day.0 - 1)));
        let minute = AuditQuery::from_params([("to", "2026-11-28T07:26")]).unwrap();
        assert_eq!(
            minute.to,
            Some(Millis(Millis::parse_iso("2026-11-28T07:27").unwrap().0 - 1))
        );
        let q = AuditQuery::from_params([
            ("actor", "admin"),
            ("action", "user."),
            ("from", "2026-11-01"),
            ("to", "2026-11-28T23:59"),
            ("page", "2"),
        ])
        .unwrap();
        let s = q.to_query_string();
        let pairs: Vec<(String, String)> = s
            .trim_start_matches('?')
            .split('&')
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.replace("%3A", ":"))
            })
            .collect();
        let back =
            AuditQuery::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).unwrap();
        assert_eq!(back, q);
        assert_eq!(
            AuditQuery::from_params([("from", "yesterday")])
                .unwrap_err()
                .field,
            "from"
        );
        assert_eq!(
            AuditQuery::from_params([("from", "2026-11-28"), ("to", "2026-11-01")])
                .unwrap_err()
                .field,
            "to"
        );
        assert_eq!(
            AuditQuery::from_params([("per_page", "0")])
                .unwrap_err()
                .field,
            "per_page"
        );
    }
}

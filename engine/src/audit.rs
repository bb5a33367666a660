//! The audit log: who changed what, when, from where, and how it ended. Entries are written
//! inside the transaction of the change they describe, so a change without its entry (or an
//! entry without its change) cannot exist.

use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};

use crate::error::Result;
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

/// A stored audit record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub id: i64,
    pub at: Millis,
    pub entry: AuditEntry,
}

/// Appends `entry` in the caller's transaction.
pub async fn record(tx: &mut Transaction<'_, Any>, entry: &AuditEntry) -> Result<()> {
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

//! The [`Engine`] façade: the one entry point the server, the dashboard and the agent
//! gateway call. Feature modules add their operations in `impl Engine` blocks next to their
//! SQL (e.g. `fleet/store.rs`).

use sqlx::Row;

use crate::audit::{AuditEntry, AuditRecord};
use crate::error::Result;
use crate::events::EventBus;
use crate::store::Store;
use crate::time::Millis;

/// Shared handle to the store and the event bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) events: EventBus,
}

impl Engine {
    /// Opens (and migrates) the store at `database_url`.
    pub async fn open(database_url: &str) -> Result<Self> {
        Ok(Self::new(Store::open(database_url).await?))
    }

    pub fn new(store: Store) -> Self {
        Self {
            store,
            events: EventBus::new(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The most recent audit records, newest first.
    pub async fn recent_audit(&self, limit: u32) -> Result<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT id, at, actor, role, action, target, summary, client_addr, outcome \
             FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get(0)?,
                    at: Millis(r.try_get(1)?),
                    entry: AuditEntry {
                        actor: r.try_get(2)?,
                        role: r.try_get(3)?,
                        action: r.try_get(4)?,
                        target: r.try_get(5)?,
                        summary: r.try_get(6)?,
                        client_addr: r.try_get(7)?,
                        outcome: r.try_get(8)?,
                    },
                })
            })
            .collect()
    }
}

//! The [`Engine`] façade: the one entry point the server, the dashboard and the agent
//! gateway call. Feature modules add their operations in `impl Engine` blocks next to their
//! SQL (e.g. `fleet/store.rs`).

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
        let rows: Vec<(
            i64,
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
        )> = sqlx::query_as(
            "SELECT id, at, actor, role, action, target, summary, client_addr, outcome \
                 FROM audit_log ORDER BY id DESC LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(id, at, actor, role, action, target, summary, client_addr, outcome)| {
                    AuditRecord {
                        id,
                        at: Millis(at),
                        entry: AuditEntry {
                            actor,
                            role,
                            action,
                            target,
                            summary,
                            client_addr,
                            outcome,
                        },
                    }
                },
            )
            .collect())
    }
}

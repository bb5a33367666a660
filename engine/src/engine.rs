//! The [`Engine`] façade: the one entry point the server, the dashboard and the agent
//! gateway call. Feature modules add their operations in `impl Engine` blocks next to their
//! SQL (e.g. `fleet/store.rs`).

use std::sync::Arc;

use sqlx::Row;

use crate::audit::{AuditEntry, AuditPage, AuditQuery, AuditRecord};
use crate::auth::throttle::{LoginThrottle, ThrottlePolicy};
use crate::auth::{Actor, Permission};
use crate::error::Result;
use crate::events::EventBus;
use crate::store::Store;
use crate::store::{escape_like, fold_case, Sql};
use crate::time::Millis;

/// Shared handle to the store and the event bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) store: Store,
    pub(crate) events: EventBus,
    pub(crate) login_throttle: Arc<LoginThrottle>,
    pub(crate) overview_cache: Arc<OverviewCache>,
    /// Set once the controller takes agent reports (`start_agent_gateway`).
    pub(crate) agents: Arc<std::sync::OnceLock<crate::agents::AgentGateway>>,
    /// Set once the orchestrator runs: operator actions wake it instead of waiting a tick.
    pub(crate) orchestrator_wake: Arc<std::sync::OnceLock<Arc<tokio::sync::Notify>>>,
    /// Set once geo-redundancy runs (`start_geo`).
    pub(crate) geo: Arc<std::sync::OnceLock<Arc<crate::georedundancy::GeoRuntime>>>,
}

/// The last overview computed, with the event generation it reflects. Many dashboards (wall
/// screens, phones, portals) ask for the same figures; they share one computation until the
/// fleet changes (an event) or `OVERVIEW_MAX_AGE` passes (writes by other controller
/// instances sharing a PostgreSQL store publish no event here).
#[derive(Debug, Default)]
pub(crate) struct OverviewCache {
    pub(crate) entry: tokio::sync::Mutex<Option<(u64, std::time::Instant, crate::fleet::Overview)>>,
}

/// Longest an overview is served from the cache.
pub const OVERVIEW_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(2);

impl Engine {
    /// Opens (and migrates) the store at `database_url`.
    pub async fn open(database_url: &str) -> Result<Self> {
        Ok(Self::new(Store::open(database_url).await?))
    }

    pub fn new(store: Store) -> Self {
        Self::with_throttle(store, ThrottlePolicy::default())
    }

    /// An engine whose login throttle uses `policy` (tests use short windows).
    pub fn with_throttle(store: Store, policy: ThrottlePolicy) -> Self {
        Self {
            store,
            events: EventBus::new(),
            login_throttle: Arc::new(LoginThrottle::new(policy)),
            overview_cache: Arc::default(),
            agents: Arc::default(),
            orchestrator_wake: Arc::default(),
            geo: Arc::default(),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// A filtered page of the audit log, newest first (admins and operators).
    pub async fn audit_page(&self, actor: &Actor, q: &AuditQuery) -> Result<AuditPage> {
        actor.require(Permission::ReadAudit)?;
        q.validate()?;
        let backend = self.store.backend();
        let filter = |b: &mut Sql<'_>| {
            b.push(" FROM audit_log WHERE 1 = 1");
            if let Some(v) = &q.actor {
                b.push(" AND actor = ").bind(v.clone());
            }
            if let Some(v) = &q.action {
                if v.ends_with('.') {
                    b.push(" AND action LIKE ")
                        .bind(format!("{}%", escape_like(v)))
                        .push(" ESCAPE '\\'");
                } else {
                    b.push(" AND action = ").bind(v.clone());
                }
            }
            if let Some(v) = &q.target {
                b.push(" AND LOWER(target) LIKE ")
                    .bind(format!("%{}%", escape_like(&fold_case(backend, v))))
                    .push(" ESCAPE '\\'");
            }
            if let Some(v) = q.from {
                b.push(" AND at >= ").bind(v.0);
            }
            if let Some(v) = q.to {
                b.push(" AND at <= ").bind(v.0);
            }
        };
        let mut count_q = Sql::new("SELECT COUNT(*)");
        filter(&mut count_q);
        let (sql, args) = count_q.finish()?;
        let matching: i64 = sqlx::query_scalar_with(&sql, args)
            .fetch_one(self.store.pool())
            .await?;
        let mut list_q =
            Sql::new("SELECT id, at, actor, role, action, target, summary, client_addr, outcome");
        filter(&mut list_q);
        list_q
            .push(" ORDER BY id DESC LIMIT ")
            .bind(i64::from(q.per_page))
            .push(" OFFSET ")
            .bind((i64::from(q.page) - 1) * i64::from(q.per_page));
        let (sql, args) = list_q.finish()?;
        let rows = sqlx::query_with(&sql, args)
            .fetch_all(self.store.pool())
            .await?;
        Ok(AuditPage {
            rows: rows.iter().map(audit_from_row).collect::<Result<_>>()?,
            matching: crate::store::count(matching),
            page: q.page,
            per_page: q.per_page,
        })
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
        rows.iter().map(audit_from_row).collect()
    }
}

fn audit_from_row(r: &sqlx::any::AnyRow) -> Result<AuditRecord> {
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
}

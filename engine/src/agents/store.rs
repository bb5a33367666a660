//! The agent gateway: credentials, report intake and command delivery.
//!
//! Intake is in memory and cheap (a hash, a map insert) so a controller answers 2,000 reports a
//! second; the health monitor (`crate::health::monitor`) writes everything received since its
//! last tick in one transaction. The gateway's maps are the authority for credentials and
//! sequence numbers while the process runs; they are loaded from the store at start and
//! every change to them is written through the engine with its audit entry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::wire::{
    self, Command, CommandAction, ControllerRef, EnrollRequest, Enrollment, Report, ReportAnswer,
    SecretParts, ENROLLMENT_PREFIX, PROTOCOL_VERSION, SECRET_PREFIX,
};
use super::{AgentStatus, EnrollmentRequest, SiteEnrollment};
use crate::audit::{self, AuditEntry};
use crate::auth::{Actor, Permission};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::fleet::{AvailabilityStatus, ManagementState, SubcloudName};
use crate::health::{AvailabilityTracker, HysteresisPolicy};
use crate::store::{bulk_insert, parse_col, Cell, Sql};
use crate::time::Millis;
use crate::Engine;

/// How the controller takes reports and derives health from them.
#[derive(Debug, Clone)]
pub struct IntakePolicy {
    pub hysteresis: HysteresisPolicy,
    /// How often the health monitor writes what arrived and looks for silent subclouds.
    pub tick: Duration,
    /// Subclouds with a report waiting for the next tick before intake sheds load (503).
    pub max_pending: usize,
    /// How long an enrollment token stays valid.
    pub enrollment_ttl: Duration,
    /// This controller, as agents should address it.
    pub this_controller: ControllerRef,
}

impl Default for IntakePolicy {
    fn default() -> Self {
        Self {
            hysteresis: HysteresisPolicy::default(),
            tick: Duration::from_secs(1),
            max_pending: 100_000,
            enrollment_ttl: Duration::from_secs(7 * 24 * 3600),
            this_controller: ControllerRef {
                name: "local".into(),
                url: "http://127.0.0.1:3000".into(),
            },
        }
    }
}

/// Why a report or enrollment was refused. The HTTP layer maps each to one status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    /// Unknown subcloud, wrong or revoked secret, wrong or expired enrollment token.
    #[error("credential refused")]
    Unauthorized,
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
    /// `seq` not above the last accepted one: a replayed or reordered report.
    #[error("report {seq} is not newer than the last accepted ({last})")]
    Replayed { seq: u64, last: u64 },
    /// Too many reports waiting for the next write.
    #[error("controller is shedding load")]
    Overloaded { retry_after_secs: u64 },
    /// The health monitor is not running on this controller.
    #[error("agent intake is not running")]
    NotRunning,
    /// Demo: the controller was stopped to simulate its failure; agents should fail over.
    #[error("this controller is stopped")]
    Stopped,
    #[error("internal error")]
    Internal,
}

impl From<crate::ValidationError> for IntakeError {
    fn from(e: crate::ValidationError) -> Self {
        IntakeError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

/// Everything the gateway knows about one subcloud's agent.
#[derive(Debug, Clone)]
pub(crate) struct AgentEntry {
    pub name: String,
    pub managed: bool,
    pub secret_hash: Option<[u8; 32]>,
    pub last_seq: u64,
    pub owner_epoch: u64,
    pub tracker: AvailabilityTracker,
    /// Whether any report arrived since this process started (silent sites without a
    /// credential are not tracked).
    pub tracked: bool,
    /// Fingerprints of what the store holds, so only changes are written.
    pub stored: Option<StoredView>,
    /// Which ownership route the subcloud follows (its peer group, or its controller).
    pub route: RouteKey,
    /// Its group moved here and the rehoming ramp has not admitted it yet.
    pub waiting: bool,
}

/// What decides a subcloud's owner: its peer group, or (in no group) its controller's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RouteKey {
    Group(i64),
    Ungrouped(i64),
}

/// The owner of a route as this controller knows it, and the controllers agents should use.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    /// Empty while unknown (this controller was fenced and has not learned the new owner).
    pub owner: String,
    pub epoch: u64,
    /// Owner first, then the other controllers in association priority order.
    pub controllers: Vec<ControllerRef>,
}

/// What one agent last told a controller that does not manage it (evidence for takeovers).
#[derive(Debug, Clone)]
pub(crate) struct Evidence {
    pub route: RouteKey,
    pub at: Millis,
    /// The owner it could not reach (`None`: it reached its owner).
    pub owner_unreachable: Option<String>,
    /// Round trips it measured, by controller.
    pub rtt_ms: Vec<(String, u32)>,
}

/// What was last written for a subcloud from its reports.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct StoredView {
    pub software_version: String,
    pub health: wire::SiteHealth,
    pub agent_version: String,
    pub highest_epoch: u64,
    pub capacity: wire::Capacity,
    pub endpoints: Vec<wire::EndpointSync>,
    pub alarms: Vec<wire::ReportedAlarm>,
    /// Reachability with RTTs rounded to 10 ms, so jitter alone writes nothing.
    pub reachability: Vec<(String, bool, Option<u32>)>,
}

/// A report waiting for the next tick.
#[derive(Debug, Clone)]
pub(crate) struct Accepted {
    pub report: Report,
    pub received_at: Millis,
}

#[derive(Debug, Default)]
pub(crate) struct GatewayState {
    pub agents: HashMap<i64, AgentEntry>,
    pub pending: HashMap<i64, Accepted>,
    /// Commands not yet acknowledged, by subcloud.
    pub commands: HashMap<i64, Vec<Command>>,
    /// Other controllers, by name, in the order agents should try them after this one.
    pub peers: Vec<ControllerRef>,
    /// Geo-redundancy is on: only subclouds whose route this controller owns are managed.
    pub geo: bool,
    pub routes: HashMap<RouteKey, Route>,
    /// By subcloud id.
    pub evidence: HashMap<i64, Evidence>,
    /// Groups an agent showed a higher epoch for: this controller stopped managing them.
    pub fenced: Vec<i64>,
    /// Demo: the controller is "stopped" and refuses agents.
    pub stopped: bool,
}

impl GatewayState {
    /// Whether this controller manages the subcloud of `e` now.
    pub(crate) fn owns(&self, e: &AgentEntry, this: &str) -> bool {
        if !self.geo {
            return true;
        }
        !e.waiting && self.routes.get(&e.route).is_some_and(|r| r.owner == this)
    }
}

/// Where a report goes under geo-redundancy.
enum Routed {
    /// Managed here: the owner epoch and controller list to answer with.
    Managed(u64, Vec<ControllerRef>),
    /// Managed elsewhere: answer with the owner's epoch and list, nothing else; whether the
    /// agent said it cannot reach that owner.
    Elsewhere(u64, Vec<ControllerRef>, bool),
}

/// Shared handle to the gateway.
#[derive(Debug, Clone)]
pub struct AgentGateway {
    pub(crate) policy: Arc<IntakePolicy>,
    pub(crate) state: Arc<Mutex<GatewayState>>,
}

impl AgentGateway {
    pub fn policy(&self) -> &IntakePolicy {
        &self.policy
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, GatewayState> {
        // A panic while holding the lock cannot leave the maps half-updated in a way that
        // matters more than stopping intake would: keep serving.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn controllers(&self, st: &GatewayState) -> Vec<ControllerRef> {
        let mut out = Vec::with_capacity(st.peers.len() + 1);
        out.push(self.policy.this_controller.clone());
        out.extend(st.peers.iter().cloned());
        out
    }

    /// Authenticates, validates and queues one report; answers at once with pending commands,
    /// the owner epoch and the controllers to use. Nothing is written until the next tick.
    pub fn accept_report(
        &self,
        bearer: &str,
        report: Report,
        received_at: Millis,
    ) -> Result<ReportAnswer, IntakeError> {
        let parts = SecretParts::parse(bearer).map_err(|_| IntakeError::Unauthorized)?;
        let presented = sha256(bearer);
        let mut st = self.lock();
        if st.stopped {
            return Err(IntakeError::Stopped);
        }
        let pending_len = st.pending.len();
        let Some(entry) = st.agents.get(&parts.subcloud_id) else {
            tracing::warn!(
                subcloud_id = parts.subcloud_id,
                "report refused: unknown subcloud"
            );
            return Err(IntakeError::Unauthorized);
        };
        match entry.secret_hash {
            Some(h) if constant_time_eq(&h, &presented) => {}
            Some(_) => {
                tracing::warn!(subcloud = %entry.name, "report refused: wrong secret");
                return Err(IntakeError::Unauthorized);
            }
            None => {
                let this = self.policy.this_controller.name.as_str();
                let elsewhere =
                    st.geo && st.routes.get(&entry.route).is_some_and(|r| r.owner != this);
                if elsewhere {
                    // A site another controller manages and has not replicated here (in no
                    // peer group): expected while its controller is down, so not a warning.
                    tracing::debug!(subcloud = %entry.name, "report refused: managed elsewhere, no credential here");
                } else {
                    tracing::warn!(subcloud = %entry.name, "report refused: no valid credential (revoked or never enrolled)");
                }
                return Err(IntakeError::Unauthorized);
            }
        }
        // Validate only after authentication, so strangers learn nothing about the format.
        report.validate()?;
        if report.seq <= entry.last_seq {
            tracing::warn!(subcloud = %entry.name, seq = report.seq, last = entry.last_seq, "report refused: replayed");
            return Err(IntakeError::Replayed {
                seq: report.seq,
                last: entry.last_seq,
            });
        }
        let id = parts.subcloud_id;
        if pending_len >= self.policy.max_pending && !st.pending.contains_key(&id) {
            return Err(IntakeError::Overloaded {
                retry_after_secs: self.policy.tick.as_secs().max(1),
            });
        }
        let entry = st.agents.get_mut(&id).ok_or(IntakeError::Internal)?;
        entry.last_seq = report.seq;
        let mut owner_epoch = entry.owner_epoch;
        let seq = report.seq;
        let mut controllers = None;
        if st.geo {
            match self.route_report(&mut st, id, &report, received_at) {
                Routed::Managed(epoch, list) => {
                    owner_epoch = epoch;
                    controllers = Some(list);
                }
                Routed::Elsewhere(epoch, list, owner_unreachable) => {
                    let interval =
                        u64::try_from(self.policy.hysteresis.interval_ms).unwrap_or(10_000);
                    return Ok(ReportAnswer {
                        protocol: PROTOCOL_VERSION,
                        accepted_seq: seq,
                        owner_epoch: epoch,
                        controllers: list,
                        commands: Vec::new(),
                        // An agent cut off from its owner reports more often while its group
                        // may be moving, so it learns the new owner within a fraction of an
                        // interval (it gets the normal interval back from the new owner).
                        report_interval_ms: if owner_unreachable {
                            (interval / 4).max(1_000).min(interval)
                        } else {
                            interval
                        },
                    });
                }
            }
        }
        // Progress acknowledges a command: stop resending it.
        if !report.commands.is_empty() {
            if let Some(cmds) = st.commands.get_mut(&id) {
                cmds.retain(|c| !report.commands.iter().any(|p| p.id == c.id));
            }
        }
        let commands = st.commands.get(&id).cloned().unwrap_or_default();
        match st.pending.get_mut(&id) {
            // Two reports in one tick: keep the newer, but not at the cost of the older
            // one's command progress.
            Some(prev) => {
                let mut older = std::mem::take(&mut prev.report.commands);
                older.retain(|o| !report.commands.iter().any(|n| n.id == o.id));
                *prev = Accepted {
                    report,
                    received_at,
                };
                prev.report.commands.extend(older);
            }
            None => {
                st.pending.insert(
                    id,
                    Accepted {
                        report,
                        received_at,
                    },
                );
            }
        }
        Ok(ReportAnswer {
            protocol: PROTOCOL_VERSION,
            accepted_seq: seq,
            owner_epoch,
            controllers: controllers.unwrap_or_else(|| self.controllers(&st)),
            commands,
            report_interval_ms: u64::try_from(self.policy.hysteresis.interval_ms).unwrap_or(10_000),
        })
    }

    /// With geo-redundancy on: whether this controller manages the reporting subcloud, and
    /// what to answer. A report showing a higher epoch than this controller's claim fences it
    /// (it stops managing the whole group at once); a report for a subcloud managed elsewhere
    /// is kept as evidence about its owner.
    fn route_report(&self, st: &mut GatewayState, id: i64, report: &Report, at: Millis) -> Routed {
        let this = self.policy.this_controller.name.as_str();
        let Some(entry) = st.agents.get(&id) else {
            return Routed::Elsewhere(0, Vec::new(), false);
        };
        let (key, waiting) = (entry.route, entry.waiting);
        let Some(route) = st.routes.get_mut(&key) else {
            return Routed::Elsewhere(entry.owner_epoch, self.controllers(st), false);
        };
        if route.owner == this && report.highest_epoch > route.epoch {
            tracing::warn!(
                subcloud = %entry.name,
                ours = route.epoch,
                seen = report.highest_epoch,
                "fenced: an agent has seen a higher owner epoch; this controller stops managing the group"
            );
            route.owner.clear();
            // Put this controller last, so agents go back to whoever fenced it.
            if !route.controllers.is_empty() {
                route.controllers.rotate_left(1);
            }
            if let RouteKey::Group(g) = key {
                st.fenced.push(g);
            }
        }
        let Some(route) = st.routes.get(&key) else {
            return Routed::Elsewhere(0, Vec::new(), false);
        };
        if route.owner == this && !waiting {
            return Routed::Managed(route.epoch, route.controllers.clone());
        }
        let (epoch, list) = (route.epoch, route.controllers.clone());
        let owner_unreachable = (!route.owner.is_empty() && route.owner != this)
            .then(|| {
                report
                    .reachability
                    .iter()
                    .find(|r| r.controller == route.owner)
                    .filter(|r| !r.reachable)
                    .map(|r| r.controller.clone())
            })
            .flatten();
        let cut_off = owner_unreachable.is_some();
        st.evidence.insert(
            id,
            Evidence {
                route: key,
                at,
                owner_unreachable,
                rtt_ms: report
                    .reachability
                    .iter()
                    .filter_map(|r| Some((r.controller.clone(), r.rtt_ms?)))
                    .collect(),
            },
        );
        Routed::Elsewhere(epoch, list, cut_off)
    }

    /// Reports waiting for the next tick.
    pub fn pending_reports(&self) -> usize {
        self.lock().pending.len()
    }
}

/// A fresh enrollment token's row; an existing credential row keeps its secret until the
/// token is used.
const ENROLLMENT_COLUMNS: [&str; 4] = [
    "subcloud_id",
    "enrollment_hash",
    "enrollment_expires_at",
    "updated_at",
];
const ENROLLMENT_UPSERT: &str = " ON CONFLICT (subcloud_id) DO UPDATE SET \
     enrollment_hash = excluded.enrollment_hash, \
     enrollment_expires_at = excluded.enrollment_expires_at, updated_at = excluded.updated_at";

fn enrollment_row(id: i64, hash: String, expires_at: Millis, now: Millis) -> Vec<Cell> {
    vec![
        Cell::Int(id),
        Cell::Text(hash),
        Cell::Int(expires_at.0),
        Cell::Int(now.0),
    ]
}

/// What an enrollment hands the installer or simulator about a site (read with [`site_enrollment`]).
const SITE_FACTS: &str = "SELECT s.id, s.name, r.name, s.lat, s.lon, s.software_version, c.name \
     FROM subclouds s JOIN regions r ON r.id = s.region_id \
     JOIN system_controllers c ON c.id = s.controller_id";

fn site_enrollment(
    r: &sqlx::any::AnyRow,
    token: String,
    expires_at: Millis,
) -> Result<SiteEnrollment> {
    Ok(SiteEnrollment {
        subcloud: r.try_get(1)?,
        token,
        expires_at,
        region: r.try_get(2)?,
        lat: r.try_get(3)?,
        lon: r.try_get(4)?,
        software_version: r.try_get(5)?,
        controller: r.try_get(6)?,
    })
}

pub(crate) fn route_key(peer_group_id: Option<i64>, controller_id: i64) -> RouteKey {
    match peer_group_id {
        Some(g) => RouteKey::Group(g),
        None => RouteKey::Ungrouped(controller_id),
    }
}

fn sha256(s: &str) -> [u8; 32] {
    Sha256::digest(s.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    /// Loads credentials, sequence numbers and open commands and starts taking reports.
    /// Subclouds with a credential get a grace period of one offline window from now, so a
    /// controller restart does not declare the fleet offline.
    pub async fn start_agent_gateway(&self, policy: IntakePolicy) -> Result<AgentGateway> {
        let now = Millis::now();
        let gateway = AgentGateway {
            policy: Arc::new(policy),
            state: Arc::default(),
        };
        let rows = sqlx::query(
            "SELECT s.id, s.name, s.management_state, s.availability, a.secret_hash, \
             a.revoked_at, a.last_seq, a.last_report_at, COALESCE(p.owner_epoch, 0), \
             s.peer_group_id, s.controller_id, s.rehome_status \
             FROM subclouds s LEFT JOIN subcloud_agents a ON a.subcloud_id = s.id \
             LEFT JOIN peer_groups p ON p.id = s.peer_group_id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut agents = HashMap::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let availability: AvailabilityStatus =
                parse_col("availability", r.try_get::<&str, _>(3)?)?;
            let management: ManagementState =
                parse_col("management_state", r.try_get::<&str, _>(2)?)?;
            let revoked: Option<i64> = r.try_get(5)?;
            let secret_hash = match revoked {
                Some(_) => None,
                None => r
                    .try_get::<Option<String>, _>(4)?
                    .as_deref()
                    .and_then(unhex32),
            };
            let last_report: Option<i64> = r.try_get(7)?;
            let tracked = secret_hash.is_some();
            agents.insert(
                id,
                AgentEntry {
                    name: r.try_get(1)?,
                    managed: management == ManagementState::Managed,
                    secret_hash,
                    last_seq: u64::try_from(r.try_get::<Option<i64>, _>(6)?.unwrap_or(0))
                        .unwrap_or(0),
                    owner_epoch: u64::try_from(r.try_get::<i64, _>(8)?).unwrap_or(0),
                    tracker: AvailabilityTracker::new(
                        availability,
                        Millis(last_report.unwrap_or(0).max(now.0)),
                    ),
                    tracked,
                    stored: None,
                    route: route_key(r.try_get(9)?, r.try_get(10)?),
                    waiting: r.try_get::<&str, _>(11)? == "waiting",
                },
            );
        }
        let mut commands: HashMap<i64, Vec<Command>> = HashMap::new();
        for r in sqlx::query(
            "SELECT id, subcloud_id, action, epoch, idempotency_key FROM subcloud_commands \
             WHERE state IN ('queued', 'running') ORDER BY id",
        )
        .fetch_all(self.store.pool())
        .await?
        {
            let action: String = r.try_get(2)?;
            commands.entry(r.try_get(1)?).or_default().push(Command {
                id: r.try_get(0)?,
                epoch: u64::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0),
                key: r.try_get(4)?,
                action: serde_json::from_str(&action).unwrap_or(CommandAction::Unknown),
            });
        }
        let this = gateway.policy.this_controller.name.clone();
        let peers = sqlx::query("SELECT name, endpoint FROM system_controllers ORDER BY name")
            .fetch_all(self.store.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(ControllerRef {
                    name: r.try_get(0)?,
                    url: r.try_get(1)?,
                })
            })
            .collect::<Result<Vec<_>>>()?
            .into_iter()
            .filter(|c| c.name != this)
            .collect();
        {
            let mut st = gateway.lock();
            st.agents = agents;
            st.commands = commands;
            st.peers = peers;
        }
        self.agents
            .set(gateway.clone())
            .map_err(|_| Error::Conflict("the agent gateway is already running".into()))?;
        Ok(gateway)
    }

    /// The running gateway, if this controller takes reports.
    pub fn agent_gateway(&self) -> Option<&AgentGateway> {
        self.agents.get()
    }

    /// Issues fresh enrollment tokens (admins). A subcloud's current secret stays valid until
    /// the new token is used, so re-issuing never cuts off a running agent by itself.
    pub async fn issue_enrollments(
        &self,
        actor: &Actor,
        req: &EnrollmentRequest,
    ) -> Result<Vec<SiteEnrollment>> {
        actor.require(Permission::Administer)?;
        let names: Vec<SubcloudName> = if req.all {
            Vec::new()
        } else {
            if req.subclouds.is_empty() {
                return Err(crate::ValidationError::new(
                    "subclouds",
                    "name at least one subcloud, or set all",
                )
                .into());
            }
            req.subclouds
                .iter()
                .map(|n| SubcloudName::parse(n))
                .collect::<Result<_, _>>()?
        };
        let mut q = Sql::new(SITE_FACTS);
        if !req.all {
            q.push(" WHERE s.name IN (");
            for n in &names {
                q.item(n.as_str().to_string());
            }
            q.push(")");
        }
        q.push(" ORDER BY s.id");
        let (sql, args) = q.finish()?;
        let now = Millis::now();
        let expires_at = self.enrollment_expiry(now);
        let rows = sqlx::query_with(&sql, args)
            .fetch_all(self.store.pool())
            .await?;
        if !req.all && rows.len() != names.len() {
            let found: Vec<String> = rows
                .iter()
                .filter_map(|r| r.try_get::<String, _>(1).ok())
                .collect();
            let missing = names
                .iter()
                .find(|n| !found.iter().any(|f| f == n.as_str()))
                .map(|n| n.as_str().to_string())
                .unwrap_or_default();
            return Err(Error::not_found("subcloud", missing));
        }
        let mut out = Vec::with_capacity(rows.len());
        let mut hashes = Vec::with_capacity(rows.len());
        // Writes first: see `enroll_agent` on SQLite's snapshot upgrades.
        let mut tx = self.store.begin_write().await?;
        for r in &rows {
            let token = format!("{ENROLLMENT_PREFIX}{}", random_hex());
            hashes.push((r.try_get::<i64, _>(0)?, hex(&sha256(&token))));
            out.push(site_enrollment(r, token, expires_at)?);
        }
        let rows = hashes
            .into_iter()
            .map(|(id, hash)| enrollment_row(id, hash, expires_at, now))
            .collect();
        bulk_insert(
            &mut tx,
            "subcloud_agents",
            &ENROLLMENT_COLUMNS,
            rows,
            ENROLLMENT_UPSERT,
        )
        .await?;
        let target = if req.all {
            "subclouds:all".to_string()
        } else if out.len() == 1 {
            format!("subcloud:{}", out[0].subcloud)
        } else {
            format!("subclouds:{}", out.len())
        };
        audit::record(
            &mut tx,
            &actor.audit(
                "agent.enrollment_issued",
                &target,
                format!(
                    "issued {} enrollment token(s), valid until {}",
                    out.len(),
                    expires_at.to_iso()
                ),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::AgentsChanged {
            subclouds: out.len() as u64,
            at: now,
        });
        Ok(out)
    }

    /// Issues one subcloud's enrollment token inside the caller's transaction (the caller
    /// writes the audit entry). Used when a subcloud is added.
    pub(crate) async fn issue_enrollment_in(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        subcloud_id: i64,
        now: Millis,
    ) -> Result<SiteEnrollment> {
        let expires_at = self.enrollment_expiry(now);
        let token = format!("{ENROLLMENT_PREFIX}{}", random_hex());
        let row = enrollment_row(subcloud_id, hex(&sha256(&token)), expires_at, now);
        bulk_insert(
            tx,
            "subcloud_agents",
            &ENROLLMENT_COLUMNS,
            vec![row],
            ENROLLMENT_UPSERT,
        )
        .await?;
        let r = sqlx::query(&format!("{SITE_FACTS} WHERE s.id = $1"))
            .bind(subcloud_id)
            .fetch_one(&mut **tx)
            .await?;
        site_enrollment(&r, token, expires_at)
    }

    /// When an enrollment token issued at `now` stops working.
    fn enrollment_expiry(&self, now: Millis) -> Millis {
        let ttl = self
            .agent_gateway()
            .map(|g| g.policy.enrollment_ttl)
            .unwrap_or(IntakePolicy::default().enrollment_ttl);
        Millis(now.0.saturating_add(millis(ttl)))
    }

    /// Makes a newly added subcloud known to the running gateway (its reports are refused
    /// until it enrolls).
    pub(crate) async fn register_agent(
        &self,
        id: i64,
        name: &str,
        peer_group_id: Option<i64>,
    ) -> Result<()> {
        let Some(g) = self.agent_gateway() else {
            return Ok(());
        };
        let epoch: i64 = match peer_group_id {
            Some(p) => sqlx::query_scalar("SELECT owner_epoch FROM peer_groups WHERE id = $1")
                .bind(p)
                .fetch_optional(self.store.pool())
                .await?
                .unwrap_or(0),
            None => 0,
        };
        let controller_id: i64 =
            sqlx::query_scalar("SELECT controller_id FROM subclouds WHERE id = $1")
                .bind(id)
                .fetch_optional(self.store.pool())
                .await?
                .unwrap_or(0);
        g.lock().agents.insert(
            id,
            AgentEntry {
                name: name.to_string(),
                managed: false,
                secret_hash: None,
                last_seq: 0,
                owner_epoch: u64::try_from(epoch).unwrap_or(0),
                tracker: AvailabilityTracker::new(AvailabilityStatus::Offline, Millis::now()),
                tracked: false,
                stored: None,
                route: route_key(peer_group_id, controller_id),
                waiting: false,
            },
        );
        Ok(())
    }

    /// Exchanges an enrollment token for the subcloud's secret, once. Any previous secret of
    /// the subcloud stops working.
    pub async fn enroll_agent(&self, req: &EnrollRequest) -> Result<Enrollment, IntakeError> {
        let gateway = self.agent_gateway().ok_or(IntakeError::NotRunning)?;
        if req.protocol != PROTOCOL_VERSION {
            return Err(IntakeError::Invalid {
                field: "protocol".into(),
                message: format!("this controller speaks protocol {PROTOCOL_VERSION}"),
            });
        }
        let name = SubcloudName::parse(&req.subcloud).map_err(|_| IntakeError::Unauthorized)?;
        if !req.enrollment_token.starts_with(ENROLLMENT_PREFIX) || req.enrollment_token.len() > 128
        {
            return Err(IntakeError::Unauthorized);
        }
        let now = Millis::now();
        let token_hash = hex(&sha256(&req.enrollment_token));
        let result: Result<Option<(i64, String)>> = async {
            // Read outside the write transaction: a wrong token never waits for the write lock.
            let row = sqlx::query(
                "SELECT a.subcloud_id FROM subcloud_agents a JOIN subclouds s ON s.id = a.subcloud_id \
                 WHERE s.name = $1 AND a.enrollment_hash = $2 AND a.enrollment_expires_at > $3",
            )
            .bind(name.as_str())
            .bind(&token_hash)
            .bind(now.0)
            .fetch_optional(self.store.pool())
            .await?;
            let Some(row) = row else { return Ok(None) };
            let id: i64 = row.try_get(0)?;
            let secret = format!("{SECRET_PREFIX}{id}_{}", random_hex());
            let mut tx = self.store.begin_write().await?;
            // Consume the token atomically: a second use (or a race) changes no row.
            let done = sqlx::query(
                "UPDATE subcloud_agents SET enrollment_hash = NULL, enrollment_expires_at = NULL, \
                 secret_hash = $1, enrolled_at = $2, revoked_at = NULL, updated_at = $2 \
                 WHERE subcloud_id = $3 AND enrollment_hash = $4 AND enrollment_expires_at > $2",
            )
            .bind(hex(&sha256(&secret)))
            .bind(now.0)
            .bind(id)
            .bind(&token_hash)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() != 1 {
                return Ok(None);
            }
            crate::georedundancy::store::bump_revision_of_subcloud(&mut tx, id).await?;
            audit::record(
                &mut tx,
                &AuditEntry::system(
                    "agent.enrolled",
                    &format!("subcloud:{}", name.as_str()),
                    "agent exchanged its enrollment token for a secret".into(),
                ),
            )
            .await?;
            tx.commit().await?;
            Ok(Some((id, secret)))
        }
        .await;
        let (id, secret) = match result {
            Ok(Some(v)) => v,
            Ok(None) => {
                tracing::warn!(
                    subcloud = name.as_str(),
                    "enrollment refused: unknown, used or expired token"
                );
                return Err(IntakeError::Unauthorized);
            }
            Err(e) => {
                tracing::error!(error = %e, "enrollment failed");
                return Err(IntakeError::Internal);
            }
        };
        let controllers = {
            let mut st = gateway.lock();
            if let Some(entry) = st.agents.get_mut(&id) {
                entry.secret_hash = Some(sha256(&secret));
                entry.tracked = true;
            }
            // With geo-redundancy: the site's owner first, then its group's backups.
            let routed = st
                .agents
                .get(&id)
                .and_then(|e| st.routes.get(&e.route))
                .filter(|r| st.geo && !r.controllers.is_empty())
                .map(|r| r.controllers.clone());
            routed.unwrap_or_else(|| gateway.controllers(&st))
        };
        self.events.publish(Event::AgentsChanged {
            subclouds: 1,
            at: now,
        });
        Ok(Enrollment {
            protocol: PROTOCOL_VERSION,
            subcloud: name.as_str().to_string(),
            secret,
            report_interval_ms: u64::try_from(gateway.policy.hysteresis.interval_ms)
                .unwrap_or(10_000),
            controllers,
        })
    }

    /// Revokes a subcloud's secret and any unused enrollment token (admins). Its reports are
    /// refused from now on.
    pub async fn revoke_agent(&self, actor: &Actor, subcloud: &str) -> Result<()> {
        actor.require(Permission::Administer)?;
        let name = SubcloudName::parse(subcloud)?;
        let now = Millis::now();
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM subclouds WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(self.store.pool())
            .await?;
        let id = id.ok_or_else(|| Error::not_found("subcloud", name.as_str()))?;
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query(
            "UPDATE subcloud_agents SET secret_hash = NULL, enrollment_hash = NULL, \
             enrollment_expires_at = NULL, revoked_at = $1, updated_at = $1 WHERE subcloud_id = $2",
        )
        .bind(now.0)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::Conflict(format!(
                "{} has no agent credential",
                name.as_str()
            )));
        }
        crate::georedundancy::store::bump_revision_of_subcloud(&mut tx, id).await?;
        audit::record(
            &mut tx,
            &actor.audit(
                "agent.revoked",
                &format!("subcloud:{}", name.as_str()),
                "agent credential revoked".into(),
            ),
        )
        .await?;
        tx.commit().await?;
        if let Some(g) = self.agent_gateway() {
            let mut st = g.lock();
            if let Some(e) = st.agents.get_mut(&id) {
                e.secret_hash = None;
            }
            st.pending.remove(&id);
        }
        self.events.publish(Event::AgentsChanged {
            subclouds: 1,
            at: now,
        });
        Ok(())
    }

    /// Queues a command for a subcloud's agent (operators). It is delivered in report answers
    /// until the agent reports progress on it.
    pub async fn queue_command(
        &self,
        actor: &Actor,
        subcloud: &str,
        action: CommandAction,
    ) -> Result<i64> {
        actor.require(Permission::OperateFleet)?;
        if action == CommandAction::Unknown {
            return Err(crate::ValidationError::new("action", "unknown command").into());
        }
        let name = SubcloudName::parse(subcloud)?;
        let now = Millis::now();
        let row = sqlx::query(
            "SELECT s.id, COALESCE(p.owner_epoch, 0) FROM subclouds s \
             LEFT JOIN peer_groups p ON p.id = s.peer_group_id WHERE s.name = $1",
        )
        .bind(name.as_str())
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| Error::not_found("subcloud", name.as_str()))?;
        let (sid, epoch): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        let json = serde_json::to_string(&action).map_err(|e| Error::Internal(e.to_string()))?;
        let mut tx = self.store.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO subcloud_commands (subcloud_id, action, epoch, state, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $5) RETURNING id",
        )
        .bind(sid)
        .bind(&json)
        .bind(epoch)
        .bind(&actor.name)
        .bind(now.0)
        .fetch_one(&mut *tx)
        .await?;
        audit::record(
            &mut tx,
            &actor.audit(
                "agent.command_queued",
                &format!("subcloud:{}", name.as_str()),
                format!("command {id}: {json}"),
            ),
        )
        .await?;
        tx.commit().await?;
        if let Some(g) = self.agent_gateway() {
            g.lock().commands.entry(sid).or_default().push(Command {
                id,
                epoch: u64::try_from(epoch).unwrap_or(0),
                key: None,
                action,
            });
        }
        self.events.publish(Event::CommandChanged {
            subcloud: name.as_str().to_string(),
            command: id,
            at: now,
        });
        Ok(id)
    }

    /// Adds commands queued in the store that this controller's gateway does not hold: on
    /// PostgreSQL another controller instance sharing the store may have issued them (an
    /// orchestrator tick or an operator there), and the site's agent may report here.
    pub async fn refresh_queued_commands(&self) -> Result<()> {
        let Some(g) = self.agent_gateway() else {
            return Ok(());
        };
        let rows = sqlx::query(
            "SELECT id, subcloud_id, action, epoch, idempotency_key FROM subcloud_commands \
             WHERE state = 'queued' ORDER BY id",
        )
        .fetch_all(self.store.pool())
        .await?;
        let mut st = g.lock();
        for r in rows {
            let (id, sid): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
            let list = st.commands.entry(sid).or_default();
            if list.iter().any(|c| c.id == id) {
                continue;
            }
            let action: String = r.try_get(2)?;
            list.push(Command {
                id,
                epoch: u64::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0),
                key: r.try_get(4)?,
                action: serde_json::from_str(&action).unwrap_or(CommandAction::Unknown),
            });
        }
        Ok(())
    }

    /// Enrollment and report facts of one subcloud.
    pub async fn agent_status(&self, subcloud_id: i64) -> Result<Option<AgentStatus>> {
        let Some(r) = sqlx::query(
            "SELECT enrolled_at, revoked_at, last_report_at, agent_version, health, highest_epoch \
             FROM subcloud_agents WHERE subcloud_id = $1",
        )
        .bind(subcloud_id)
        .fetch_optional(self.store.pool())
        .await?
        else {
            return Ok(None);
        };
        let reach = sqlx::query(
            "SELECT controller, reachable, rtt_ms FROM subcloud_reachability \
             WHERE subcloud_id = $1 ORDER BY controller",
        )
        .bind(subcloud_id)
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(wire::Reachability {
                controller: r.try_get(0)?,
                reachable: r.try_get::<i64, _>(1)? != 0,
                rtt_ms: r
                    .try_get::<Option<i64>, _>(2)?
                    .and_then(|v| u32::try_from(v).ok()),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(AgentStatus {
            enrolled_at: r.try_get::<Option<i64>, _>(0)?.map(Millis),
            revoked_at: r.try_get::<Option<i64>, _>(1)?.map(Millis),
            last_report_at: r.try_get::<Option<i64>, _>(2)?.map(Millis),
            agent_version: r.try_get(3)?,
            health: r.try_get(4)?,
            highest_epoch: u64::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
            reachability: reach,
        }))
    }
}

//! The running side of geo-redundancy: heartbeat state, agent evidence, takeover decisions,
//! the rehoming ramp, replication and failback. The engine knows nothing of HTTP: the server
//! hands it a [`PeerLink`] that carries the peer protocol's messages.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::model::*;
use super::plan::{self, OrphanGroup, PlanContext, Survivor};
use super::store::{GroupRow, Topology};
use crate::agents::store::{AgentGateway, RouteKey};
use crate::audit::AuditEntry;
use crate::auth::{Actor, Permission};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::fleet::{ControllerAvailability, MigrationStatus, PeerGroupState};
use crate::health::AvailabilityTracker;
use crate::time::Millis;
use crate::Engine;

/// One peer as configured on this controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub name: String,
    /// Base URL of the peer (its dashboard, agent and peer APIs).
    pub url: String,
    /// Shared with that peer; authenticates both directions.
    pub secret: String,
}

/// How this controller takes part in geo-redundancy.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoConfig {
    /// This controller's name (a row of `system_controllers`).
    pub this: String,
    /// This controller's base URL as agents and peers reach it.
    pub url: String,
    pub capacity: u64,
    pub reserved_capacity: u64,
    /// Heartbeat settings applied to every configured peer.
    pub heartbeat: HeartbeatSettings,
    pub peers: Vec<PeerConfig>,
    /// Share (percent) of a group's online sites that must confirm the owner is unreachable.
    pub quorum_percent: u32,
    /// How recent a report must be to count as evidence.
    pub evidence_window_ms: u64,
    /// How often replicated copies are refreshed even without edits (health changes).
    pub resync_ms: u64,
    /// Groups whose home is this controller fail back automatically once it has been
    /// available this long again (seconds); 0: only operators fail back.
    pub failback_hold_down_s: u64,
    /// Demo: operators may stop and start controllers from the dashboard.
    pub demo: bool,
}

impl GeoConfig {
    pub fn validate(&self) -> std::result::Result<(), crate::ValidationError> {
        self.heartbeat.validate()?;
        if !(1..=100).contains(&self.quorum_percent) {
            return Err(crate::ValidationError::new(
                "quorum_percent",
                "must be 1..=100",
            ));
        }
        if self.reserved_capacity > self.capacity {
            return Err(crate::ValidationError::new(
                "reserved_capacity",
                "cannot exceed capacity",
            ));
        }
        let mut names = HashSet::new();
        for p in &self.peers {
            if p.name == self.this || !names.insert(&p.name) {
                return Err(crate::ValidationError::new(
                    "peers",
                    format!("peer {} is listed twice or is this controller", p.name),
                ));
            }
            if p.secret.len() < 16 {
                return Err(crate::ValidationError::new(
                    "peers",
                    format!("the secret for {} must be at least 16 characters", p.name),
                ));
            }
        }
        if names.len() + 1 >= EPOCH_SLOTS as usize {
            return Err(crate::ValidationError::new("peers", "too many peers"));
        }
        Ok(())
    }

    /// Each controller's epoch slot: its position among all names, from 1. Every controller
    /// computes the same slots from the same set of names.
    fn slots(&self) -> HashMap<String, u64> {
        let mut names: Vec<&str> = self.peers.iter().map(|p| p.name.as_str()).collect();
        names.push(&self.this);
        names.sort_unstable();
        names
            .into_iter()
            .enumerate()
            .map(|(k, n)| (n.to_string(), k as u64 + 1))
            .collect()
    }
}

/// Least time between two pushes of changed strategies to one peer: a rollout changes every
/// second, and each push carries whole strategies.
const STRATEGY_PUSH_MS: i64 = 2_000;

/// A boxed future of the peer link.
pub type PeerFuture<'a, T> =
    Pin<Box<dyn Future<Output = std::result::Result<T, String>> + Send + 'a>>;

/// Carries the peer protocol (the server implements it over authenticated HTTP).
pub trait PeerLink: Send + Sync + 'static {
    fn heartbeat<'a>(
        &'a self,
        peer: &'a PeerConfig,
        hb: &'a Heartbeat,
    ) -> PeerFuture<'a, Heartbeat>;
    fn sync<'a>(&'a self, peer: &'a PeerConfig, snapshot: &'a GroupSnapshot) -> PeerFuture<'a, ()>;
    fn sync_strategies<'a>(
        &'a self,
        peer: &'a PeerConfig,
        sync: &'a StrategySync,
    ) -> PeerFuture<'a, ()>;
    fn takeover<'a>(
        &'a self,
        peer: &'a PeerConfig,
        order: &'a TakeoverOrder,
    ) -> PeerFuture<'a, TakeoverAnswer>;
    fn migrate<'a>(
        &'a self,
        peer: &'a PeerConfig,
        req: &'a MigrateRequest,
        by: &'a str,
    ) -> PeerFuture<'a, TakeoverAnswer>;
    fn demo_power<'a>(&'a self, peer: &'a PeerConfig, running: bool) -> PeerFuture<'a, ()>;
}

/// What this controller knows live about one peer.
#[derive(Debug, Clone)]
struct PeerLive {
    last_ok: Option<Millis>,
    last_sent: Option<Millis>,
    rtt_ms: Option<u32>,
    missed: u32,
    availability: ControllerAvailability,
    /// Since when it has been available (for failback hold-down).
    available_since: Option<Millis>,
    last_heartbeat: Option<Heartbeat>,
}

#[derive(Debug, Default)]
struct GeoState {
    peers: HashMap<String, PeerLive>,
    maintenance_until: Option<Millis>,
    /// Orders sent for a group, so a decision is not repeated every tick.
    ordered: HashMap<String, Millis>,
    last_sync: HashMap<(String, String), Millis>,
    /// Per peer: when the last successful strategy push started, and the last full one.
    strategies_pushed: HashMap<String, (Millis, Millis)>,
    last_ramp: Option<Millis>,
    /// Latency medians per group received in snapshots.
    latency: HashMap<String, Vec<(String, u32)>>,
    running: bool,
    started: Option<Millis>,
}

/// Geo-redundancy of one controller.
pub struct GeoRuntime {
    config: GeoConfig,
    slots: HashMap<String, u64>,
    link: Arc<dyn PeerLink>,
    state: Mutex<GeoState>,
    wake: tokio::sync::Notify,
}

impl std::fmt::Debug for GeoRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoRuntime")
            .field("this", &self.config.this)
            .finish()
    }
}

impl GeoRuntime {
    fn lock(&self) -> MutexGuard<'_, GeoState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn config(&self) -> &GeoConfig {
        &self.config
    }

    /// The configured peer called `name`.
    pub fn peer(&self, name: &str) -> Option<&PeerConfig> {
        self.config.peers.iter().find(|p| p.name == name)
    }

    fn slot(&self) -> u64 {
        self.slots.get(&self.config.this).copied().unwrap_or(1)
    }

    fn is_available(&self, st: &GeoState, name: &str) -> bool {
        name == self.config.this
            || st
                .peers
                .get(name)
                .is_some_and(|p| p.availability == ControllerAvailability::Available)
    }
}

impl Engine {
    fn geo(&self) -> Option<&Arc<GeoRuntime>> {
        self.geo.get()
    }

    /// The running geo-redundancy, if configured (the server authenticates peers with it).
    pub fn geo_runtime(&self) -> Option<&Arc<GeoRuntime>> {
        self.geo.get()
    }

    fn geo_required(&self) -> Result<&Arc<GeoRuntime>> {
        self.geo().ok_or_else(|| {
            Error::Conflict("geo-redundancy is not configured on this controller".into())
        })
    }

    /// Starts geo-redundancy (after the agent gateway): stores the configuration, routes
    /// agents by ownership. Run [`spawn_peer_loop`] next.
    pub async fn start_geo(
        &self,
        config: GeoConfig,
        link: Arc<dyn PeerLink>,
    ) -> Result<Arc<GeoRuntime>> {
        config.validate()?;
        self.agent_gateway()
            .ok_or_else(|| Error::Conflict("start the agent gateway first".into()))?;
        self.geo_store_config(&config).await?;
        let now = Millis::now();
        let peers = config
            .peers
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    PeerLive {
                        last_ok: None,
                        last_sent: None,
                        rtt_ms: None,
                        missed: 0,
                        availability: ControllerAvailability::Created,
                        available_since: None,
                        last_heartbeat: None,
                    },
                )
            })
            .collect();
        let runtime = Arc::new(GeoRuntime {
            slots: config.slots(),
            config,
            link,
            state: Mutex::new(GeoState {
                peers,
                running: true,
                started: Some(now),
                ..Default::default()
            }),
            wake: tokio::sync::Notify::new(),
        });
        self.geo
            .set(Arc::clone(&runtime))
            .map_err(|_| Error::Conflict("geo-redundancy is already running".into()))?;
        self.geo_refresh_routes().await?;
        Ok(runtime)
    }

    /// Reloads ownership into the agent gateway: subclouds whose owner changed start or stop
    /// being managed here at once.
    pub(crate) async fn geo_refresh_routes(&self) -> Result<()> {
        let (Some(geo), Some(gateway)) = (self.geo(), self.agent_gateway()) else {
            return Ok(());
        };
        let topo = self.geo_topology().await?;
        let (routes, subclouds) = self.geo_routes(&topo).await?;
        apply_routes(gateway, &geo.config.this, routes, subclouds, Millis::now());
        Ok(())
    }

    pub fn demo_mode(&self) -> bool {
        self.geo().is_some_and(|g| g.config.demo)
    }

    /// Whether this controller is "running" (demo: an admin can stop it to simulate a failure).
    pub fn geo_running(&self) -> bool {
        self.geo().is_none_or(|g| g.lock().running)
    }

    /// Demo: stops (the controller stops answering agents and peers, as if it had failed) or
    /// starts this controller, or asks a peer to.
    pub async fn demo_set_controller_running(
        &self,
        actor: &Actor,
        controller: &str,
        running: bool,
    ) -> Result<()> {
        actor.require(Permission::Administer)?;
        let geo = self.geo_required()?;
        if !geo.config.demo {
            return Err(Error::Conflict(
                "stopping controllers is a demo feature".into(),
            ));
        }
        if controller == geo.config.this {
            self.geo_set_running(running);
        } else {
            let peer = geo
                .peer(controller)
                .ok_or_else(|| Error::not_found("system controller", controller))?
                .clone();
            geo.link
                .demo_power(&peer, running)
                .await
                .map_err(|e| Error::Conflict(format!("{controller} did not answer: {e}")))?;
        }
        let mut tx = self.store.begin_write().await?;
        crate::audit::record(
            &mut tx,
            &actor.audit(
                if running {
                    "demo.controller_started"
                } else {
                    "demo.controller_stopped"
                },
                &format!("controller:{controller}"),
                format!(
                    "{} {controller} (demo)",
                    if running { "started" } else { "stopped" }
                ),
            ),
        )
        .await?;
        tx.commit().await?;
        self.geo_event(
            None,
            format!(
                "{controller} {}",
                if running { "started" } else { "stopped" }
            ),
        );
        Ok(())
    }

    /// Demo: this controller stops or resumes answering agents and peers.
    pub fn geo_set_running(&self, running: bool) {
        if let Some(geo) = self.geo() {
            let mut st = geo.lock();
            st.running = running;
            if running {
                // Like a restart: peers are unknown until heard again.
                let now = Millis::now();
                st.started = Some(now);
                for p in st.peers.values_mut() {
                    p.last_ok = None;
                    p.missed = 0;
                }
            }
        }
        if let Some(g) = self.agent_gateway() {
            g.lock().stopped = !running;
        }
    }

    fn geo_event(&self, group: Option<String>, what: String) {
        self.events.publish(Event::GeoChanged {
            group,
            what,
            at: Millis::now(),
        });
    }

    /// This controller's heartbeat.
    async fn geo_heartbeat(&self, geo: &GeoRuntime) -> Result<Heartbeat> {
        let topo = self.geo_topology().await?;
        let managed = self.geo_managed_count(&geo.config.this).await?;
        let (hears, maintenance_until) = {
            let st = geo.lock();
            let hears = st
                .peers
                .iter()
                .filter(|(_, p)| p.availability == ControllerAvailability::Available)
                .map(|(n, _)| n.clone())
                .collect();
            (hears, st.maintenance_until)
        };
        let counts = self
            .agent_gateway()
            .map(|gw| evidence_counts(gw, &geo.config, Millis::now()))
            .unwrap_or_default();
        let evidence = topo
            .groups
            .iter()
            .filter_map(|g| {
                let (n, _) = counts.get(&g.id)?;
                (*n > 0).then(|| GroupEvidence {
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    owner_unreachable: *n,
                })
            })
            .collect();
        Ok(Heartbeat {
            from: geo.config.this.clone(),
            sent_at: Millis::now(),
            capacity: geo.config.capacity,
            reserved_capacity: geo.config.reserved_capacity,
            managed,
            maintenance_until,
            claims: topo
                .groups
                .iter()
                .map(|g| GroupClaim {
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    epoch: g.epoch,
                })
                .collect(),
            evidence,
            hears,
        })
    }

    /// A peer's heartbeat arrived (already authenticated): it is alive; adopt any higher
    /// claim; answer with this controller's heartbeat.
    pub async fn geo_receive_heartbeat(&self, hb: Heartbeat) -> Result<Heartbeat> {
        let geo = self.geo_required()?.clone();
        if !geo.lock().running {
            return Err(Error::Conflict("stopped".into()));
        }
        self.geo_heard(&geo, &hb.from, None, hb.clone()).await?;
        self.geo_heartbeat(&geo).await
    }

    /// Records an answered heartbeat from `peer`, adopts higher claims.
    async fn geo_heard(
        &self,
        geo: &GeoRuntime,
        peer: &str,
        rtt_ms: Option<u32>,
        hb: Heartbeat,
    ) -> Result<()> {
        let now = Millis::now();
        let became_available = {
            let mut st = geo.lock();
            let Some(p) = st.peers.get_mut(peer) else {
                return Err(Error::not_found("peer", peer));
            };
            p.last_ok = Some(now);
            p.missed = 0;
            if rtt_ms.is_some() {
                p.rtt_ms = rtt_ms;
            }
            p.last_heartbeat = Some(hb.clone());
            let was = p.availability;
            if was != ControllerAvailability::Available {
                p.availability = ControllerAvailability::Available;
                p.available_since = Some(now);
                true
            } else {
                false
            }
        };
        if became_available {
            self.geo_set_availability_tx(
                peer,
                ControllerAvailability::Available,
                format!("{peer} answers heartbeats"),
            )
            .await?;
            self.geo_event(None, format!("{peer} available"));
        }
        self.geo_adopt_claims(geo, peer, &hb.claims).await
    }

    async fn geo_adopt_claims(
        &self,
        geo: &GeoRuntime,
        from: &str,
        claims: &[GroupClaim],
    ) -> Result<()> {
        let topo = self.geo_topology().await?;
        let mut changed = false;
        for c in claims {
            let Some(g) = topo.group(&c.group) else {
                continue;
            };
            if c.epoch > g.epoch
                && self
                    .geo_adopt_tx(&geo.config.this, &c.group, &c.owner, c.epoch, from)
                    .await?
            {
                tracing::info!(group = %c.group, owner = %c.owner, epoch = c.epoch, from, "learned a new owner");
                self.geo_event(
                    Some(c.group.clone()),
                    format!("owner {} epoch {}", c.owner, c.epoch),
                );
                changed = true;
            }
        }
        if changed {
            self.geo_refresh_routes().await?;
            self.wake_orchestrator();
        }
        Ok(())
    }

    fn wake_orchestrator(&self) {
        if let Some(w) = self.orchestrator_wake.get() {
            w.notify_one();
        }
    }

    /// An owner's replicated copy arrived (already authenticated as `snapshot.from`).
    pub async fn geo_receive_sync(&self, snapshot: GroupSnapshot) -> Result<()> {
        let geo = self.geo_required()?.clone();
        if !geo.lock().running {
            return Err(Error::Conflict("stopped".into()));
        }
        let topo = self.geo_topology().await?;
        let before = topo
            .group(&snapshot.group)
            .map(|g| (g.owner.clone(), g.epoch));
        let creds = self
            .geo_apply_snapshot_tx(&geo.config.this, &snapshot)
            .await?;
        geo.lock()
            .latency
            .insert(snapshot.group.clone(), snapshot.agent_latency_ms.clone());
        if let Some(gateway) = self.agent_gateway() {
            load_credentials(gateway, &creds);
        }
        if before != Some((snapshot.owner.clone(), snapshot.epoch)) {
            self.geo_refresh_routes().await?;
            self.geo_event(Some(snapshot.group.clone()), "replicated".into());
        }
        Ok(())
    }

    /// A takeover order arrived (already authenticated as `order.from`).
    pub async fn geo_receive_takeover(&self, order: TakeoverOrder) -> Result<TakeoverAnswer> {
        let geo = self.geo_required()?.clone();
        let this = geo.config.this.clone();
        {
            let st = geo.lock();
            if !st.running {
                return Err(Error::Conflict("stopped".into()));
            }
            if order.handover {
                if order.from != order.owner {
                    return Err(Error::Conflict(format!(
                        "only the owner ({}) can hand {} over",
                        order.owner, order.group
                    )));
                }
            } else if geo.is_available(&st, &order.owner) {
                // The evidence rule, on the receiving side too: a controller that still hears
                // the owner does not take its group.
                return Err(Error::Conflict(format!(
                    "{this} still hears {}: not taking {}",
                    order.owner, order.group
                )));
            }
        }
        let reason = format!("{} (ordered by {})", order.reason, order.from);
        let entry = AuditEntry::system(
            "geo.takeover",
            &format!("peer-group:{}", order.group),
            format!("{this} takes {}: {reason}", order.group),
        );
        let epoch = self
            .geo_take_over_tx(
                &this,
                geo.slot(),
                &order.group,
                &order.owner,
                order.epoch,
                &reason,
                &entry,
            )
            .await?;
        self.geo_after_move(&order.group, &this, epoch).await?;
        Ok(TakeoverAnswer {
            group: order.group,
            owner: this,
            epoch,
        })
    }

    /// Records the move of `group` another controller confirmed (`answer`), learned from
    /// `from`.
    async fn geo_adopt_answer(
        &self,
        this: &str,
        group: &str,
        answer: &TakeoverAnswer,
        from: &str,
    ) -> Result<()> {
        self.geo_adopt_tx(this, group, &answer.owner, answer.epoch, from)
            .await?;
        self.geo_after_move(group, &answer.owner, answer.epoch)
            .await
    }

    async fn geo_after_move(&self, group: &str, owner: &str, epoch: u64) -> Result<()> {
        tracing::info!(group, owner, epoch, "peer group moved");
        self.geo_refresh_routes().await?;
        self.geo_event(
            Some(group.to_string()),
            format!("owner {owner} epoch {epoch}"),
        );
        if let Some(geo) = self.geo() {
            geo.wake.notify_one();
        }
        // A strategy taken over with the group re-issues its in-flight steps now.
        self.wake_orchestrator();
        Ok(())
    }

    /// A peer asks this controller (the owner) to migrate one of its groups on an operator's
    /// behalf.
    pub async fn geo_receive_migrate(
        &self,
        req: MigrateRequest,
        by: &str,
    ) -> Result<TakeoverAnswer> {
        let actor = Actor::system();
        self.migrate_as(&actor, &req, Some(by)).await
    }

    /// What migrating a group would do (nothing changes).
    pub async fn migrate_preview(&self, req: &MigrateRequest) -> Result<MigratePreview> {
        let geo = self.geo_required()?;
        let topo = self.geo_topology().await?;
        let g = topo
            .group(&req.peer_group)
            .ok_or_else(|| Error::not_found("peer group", req.peer_group.clone()))?;
        let target = topo
            .controller(&req.to)
            .ok_or_else(|| Error::not_found("system controller", req.to.clone()))?;
        let sizes = self.geo_group_sizes().await?;
        let (sites, online) = sizes.get(&g.id).copied().unwrap_or((0, 0));
        let survivors = self.geo_survivors(geo, &topo, None).await?;
        let (owner_available, target_available, evidence) = {
            let st = geo.lock();
            (
                geo.is_available(&st, &g.owner),
                geo.is_available(&st, &target.name),
                0u64,
            )
        };
        let evidence = match self.agent_gateway() {
            Some(gw) => evidence_counts(gw, &geo.config, Millis::now())
                .get(&g.id)
                .map_or(evidence, |(n, _)| *n),
            None => evidence,
        };
        let target_headroom = survivors
            .iter()
            .find(|s| s.name == target.name)
            .map_or(0, |s| {
                s.capacity
                    .saturating_sub(s.reserved_capacity)
                    .saturating_sub(s.managed)
            });
        let mut warnings = Vec::new();
        let mut allowed = true;
        if g.owner == target.name {
            warnings.push(format!("{} already owns {}", target.name, g.name));
            allowed = false;
        }
        if !g.associations.iter().any(|a| a.controller == target.name) {
            warnings.push(format!("{} is not associated with {}", target.name, g.name));
            allowed = false;
        }
        if !target_available {
            warnings.push(format!("{} does not answer heartbeats", target.name));
            allowed = false;
        }
        if target_headroom < sites {
            warnings.push(format!(
                "{} has room for {target_headroom} more sites beyond its reserve; the group has {sites}",
                target.name
            ));
        }
        if owner_available {
            warnings.push(format!("{} is available: it hands the group over", g.owner));
        } else {
            warnings.push(format!(
                "{} does not answer: {evidence} of {online} online sites' agents confirm they cannot reach it",
                g.owner
            ));
        }
        let strategies: i64 = sqlx::query_scalar(
            "SELECT COUNT(DISTINCT st.strategy_id) FROM strategy_steps st JOIN strategies x ON x.id = st.strategy_id \
             JOIN subclouds s ON s.id = st.subcloud_id WHERE s.peer_group_id = $1 \
             AND x.state IN ('applying', 'waiting for approval') AND st.state IN ('initial', 'queued', 'running')",
        )
        .bind(g.id)
        .fetch_one(self.store.pool())
        .await?;
        if strategies > 0 {
            warnings.push(format!(
                "{strategies} running strategy(ies) have steps in this group: they pause on {}",
                g.owner
            ));
        }
        Ok(MigratePreview {
            group: g.name.clone(),
            from: g.owner.clone(),
            to: target.name.clone(),
            sites,
            owner_available,
            target_headroom,
            evidence_unreachable: evidence,
            online_sites: online,
            rehoming_seconds: sites.div_ceil(u64::from(g.max_subcloud_rehoming.max(1))),
            warnings,
            allowed,
        })
    }

    /// Moves a peer group to another controller (operators). The owner hands it over; if the
    /// owner is down, the target takes it over (the operator's decision replaces evidence, as
    /// with StarlingX's `alarm` policy).
    pub async fn migrate_peer_group(
        &self,
        actor: &Actor,
        req: &MigrateRequest,
    ) -> Result<TakeoverAnswer> {
        actor.require(Permission::Failover)?;
        self.migrate_as(actor, req, None).await
    }

    /// Moves a group back to its home controller.
    pub async fn fail_back(&self, actor: &Actor, group: &str) -> Result<TakeoverAnswer> {
        actor.require(Permission::Failover)?;
        let topo = self.geo_topology().await?;
        let g = topo
            .group(group)
            .ok_or_else(|| Error::not_found("peer group", group))?;
        let req = MigrateRequest {
            peer_group: g.name.clone(),
            to: g.home.clone(),
        };
        self.migrate_as(actor, &req, None).await
    }

    async fn migrate_as(
        &self,
        actor: &Actor,
        req: &MigrateRequest,
        on_behalf: Option<&str>,
    ) -> Result<TakeoverAnswer> {
        let geo = self.geo_required()?.clone();
        let preview = self.migrate_preview(req).await?;
        if !preview.allowed {
            return Err(Error::Conflict(preview.warnings.join("; ")));
        }
        let this = geo.config.this.clone();
        let topo = self.geo_topology().await?;
        let g = topo
            .group(&req.peer_group)
            .ok_or_else(|| Error::not_found("peer group", req.peer_group.clone()))?
            .clone();
        let who = match on_behalf {
            Some(by) => format!("{} via {by}", actor.name),
            None => actor.name.clone(),
        };
        let reason = format!("migrated by {who}");
        let answer = if g.owner == this {
            // Hand over: the target takes it at a new epoch, then this controller adopts.
            let peer = geo
                .peer(&req.to)
                .ok_or_else(|| Error::not_found("peer", req.to.clone()))?
                .clone();
            let order = TakeoverOrder {
                from: this.clone(),
                group: g.name.clone(),
                owner: this.clone(),
                epoch: g.epoch,
                handover: true,
                reason: reason.clone(),
            };
            let answer =
                geo.link.takeover(&peer, &order).await.map_err(|e| {
                    Error::Conflict(format!("{} refused the handover: {e}", req.to))
                })?;
            self.geo_adopt_answer(&this, &g.name, &answer, &req.to)
                .await?;
            answer
        } else if preview.owner_available {
            if on_behalf.is_some() {
                return Err(Error::Conflict(format!("{this} does not own {}", g.name)));
            }
            let owner = geo
                .peer(&g.owner)
                .ok_or_else(|| Error::not_found("peer", g.owner.clone()))?
                .clone();
            let answer = geo
                .link
                .migrate(&owner, req, &actor.name)
                .await
                .map_err(|e| Error::Conflict(format!("{} refused: {e}", g.owner)))?;
            self.geo_adopt_answer(&this, &g.name, &answer, &g.owner)
                .await?;
            answer
        } else if req.to == this {
            let entry = actor.audit(
                "geo.migrate",
                &format!("peer-group:{}", g.name),
                format!(
                    "{this} takes {} from unavailable {}: {reason}",
                    g.name, g.owner
                ),
            );
            let epoch = self
                .geo_take_over_tx(
                    &this,
                    geo.slot(),
                    &g.name,
                    &g.owner,
                    g.epoch,
                    &reason,
                    &entry,
                )
                .await?;
            self.geo_after_move(&g.name, &this, epoch).await?;
            TakeoverAnswer {
                group: g.name.clone(),
                owner: this.clone(),
                epoch,
            }
        } else {
            let peer = geo
                .peer(&req.to)
                .ok_or_else(|| Error::not_found("peer", req.to.clone()))?
                .clone();
            let order = TakeoverOrder {
                from: this.clone(),
                group: g.name.clone(),
                owner: g.owner.clone(),
                epoch: g.epoch,
                handover: false,
                reason: reason.clone(),
            };
            let answer = geo
                .link
                .takeover(&peer, &order)
                .await
                .map_err(|e| Error::Conflict(format!("{} refused: {e}", req.to)))?;
            self.geo_adopt_answer(&this, &g.name, &answer, &req.to)
                .await?;
            answer
        };
        if g.owner != this || answer.owner != this {
            let mut tx = self.store.begin_write().await?;
            crate::audit::record(
                &mut tx,
                &actor.audit(
                    "geo.migrate",
                    &format!("peer-group:{}", g.name),
                    format!(
                        "{} -> {} at epoch {} ({reason})",
                        g.owner, answer.owner, answer.epoch
                    ),
                ),
            )
            .await?;
            tx.commit().await?;
        }
        Ok(answer)
    }

    /// Pauses (maintenance, for the configured maintenance timeout) or resumes automatic
    /// takeover by this controller. Peers see it in heartbeats and do not take this
    /// controller's groups while it lasts.
    pub async fn set_takeover_paused(&self, actor: &Actor, paused: bool) -> Result<Option<Millis>> {
        actor.require(Permission::Failover)?;
        let geo = self.geo_required()?;
        let until = paused.then(|| {
            Millis(
                Millis::now().0.saturating_add(
                    i64::try_from(
                        geo.config
                            .heartbeat
                            .maintenance_timeout_s
                            .saturating_mul(1000),
                    )
                    .unwrap_or(i64::MAX),
                ),
            )
        });
        geo.lock().maintenance_until = until;
        let mut tx = self.store.begin_write().await?;
        crate::audit::record(
            &mut tx,
            &actor.audit(
                if paused {
                    "geo.takeover_paused"
                } else {
                    "geo.takeover_resumed"
                },
                &format!("controller:{}", geo.config.this),
                match until {
                    Some(u) => format!("automatic takeover paused until {}", u.to_iso()),
                    None => "automatic takeover resumed".into(),
                },
            ),
        )
        .await?;
        tx.commit().await?;
        self.geo_event(None, "maintenance".into());
        Ok(until)
    }

    /// Controllers that could take groups now (this one and the available peers), with
    /// capacity and load; `excluding` a controller assumed failed.
    async fn geo_survivors(
        &self,
        geo: &GeoRuntime,
        topo: &Topology,
        excluding: Option<&str>,
    ) -> Result<Vec<Survivor>> {
        let own_managed = self.geo_managed_count(&geo.config.this).await?;
        let st = geo.lock();
        let mut out = Vec::new();
        for c in &topo.controllers {
            if Some(c.name.as_str()) == excluding || c.admin == AdminState::Disabled {
                continue;
            }
            if c.name == geo.config.this {
                out.push(Survivor {
                    name: c.name.clone(),
                    capacity: geo.config.capacity,
                    reserved_capacity: geo.config.reserved_capacity,
                    managed: own_managed,
                });
                continue;
            }
            if !geo.is_available(&st, &c.name) {
                continue;
            }
            let hb = st
                .peers
                .get(&c.name)
                .and_then(|p| p.last_heartbeat.as_ref());
            out.push(Survivor {
                name: c.name.clone(),
                capacity: hb.map_or(c.capacity, |h| h.capacity),
                reserved_capacity: hb.map_or(c.reserved_capacity, |h| h.reserved_capacity),
                managed: hb.map_or(0, |h| h.managed),
            });
        }
        Ok(out)
    }

    /// "What if `controller` fails now?": the plan, without changing anything.
    pub async fn takeover_drill(&self, controller: &str) -> Result<TakeoverPlan> {
        let geo = self.geo_required()?.clone();
        let topo = self.geo_topology().await?;
        let failed = topo
            .controller(controller)
            .ok_or_else(|| Error::not_found("system controller", controller))?;
        let survivors = self.geo_survivors(&geo, &topo, Some(controller)).await?;
        let sizes = self.geo_group_sizes().await?;
        let latency = geo.lock().latency.clone();
        let mut groups = Vec::new();
        for g in topo
            .groups
            .iter()
            .filter(|g| g.owner == controller && g.state == PeerGroupState::Enabled)
        {
            let measured = match latency.get(&g.name) {
                Some(l) => l.clone(),
                None => self.geo_group_latency(g.id).await?,
            };
            groups.push(orphan(g, sizes.get(&g.id).map_or(0, |s| s.0), measured));
        }
        let unprotected = self
            .geo_unprotected()
            .await?
            .into_iter()
            .find(|(n, _)| n == controller)
            .map_or(0, |(_, n)| n);
        let interval = if controller == geo.config.this {
            geo.config.heartbeat.clone()
        } else {
            failed.heartbeat.clone()
        };
        Ok(plan::place(
            &PlanContext {
                failed: controller.to_string(),
                policy: interval.failure_policy,
                unprotected_sites: unprotected,
                detection_seconds: interval.failure_after_ms() as f64 / 1000.0,
                evidence_seconds: geo.config.evidence_window_ms as f64 / 3000.0,
                now: Millis::now(),
            },
            &groups,
            &survivors,
        ))
    }

    /// Median agent round trip from a group's sites to each controller (from what its
    /// agents reported here).
    async fn geo_group_latency(&self, group_id: i64) -> Result<Vec<(String, u32)>> {
        use sqlx::Row;
        let mut by: HashMap<String, Vec<i64>> = HashMap::new();
        for r in sqlx::query(
            "SELECT r.controller, r.rtt_ms FROM subcloud_reachability r JOIN subclouds s ON s.id = r.subcloud_id \
             WHERE s.peer_group_id = $1 AND r.rtt_ms IS NOT NULL",
        )
        .bind(group_id)
        .fetch_all(self.store.pool())
        .await?
        {
            by.entry(r.try_get(0)?).or_default().push(r.try_get(1)?);
        }
        Ok(medians(by))
    }

    /// Everything the geo-redundancy pages show.
    pub async fn geo_overview(&self) -> Result<GeoOverview> {
        let topo = self.geo_topology().await?;
        let sites = self.geo_group_sites().await?;
        let alarms = self.geo_controller_alarms().await?;
        let geo = self.geo().cloned();
        let this = geo.as_ref().map_or_else(
            || {
                self.agent_gateway().map_or_else(
                    || "local".to_string(),
                    |g| g.policy().this_controller.name.clone(),
                )
            },
            |g| g.config.this.clone(),
        );
        let mut managed = HashMap::new();
        for c in &topo.controllers {
            managed.insert(c.name.clone(), self.geo_managed_count(&c.name).await?);
        }
        let (live, maintenance_until) = match &geo {
            Some(g) => {
                let st = g.lock();
                (st.peers.clone(), st.maintenance_until)
            }
            None => (HashMap::new(), None),
        };
        let peers = topo
            .controllers
            .iter()
            .map(|c| {
                let is_self = c.name == this;
                let l = live.get(&c.name);
                let hb = l.and_then(|p| p.last_heartbeat.as_ref());
                SystemPeer {
                    id: c.id,
                    uuid: c.uuid.clone(),
                    name: c.name.clone(),
                    is_self,
                    manager_endpoint: c.endpoint.clone(),
                    gateway_address: c.gateway_address.clone(),
                    administrative_state: c.admin,
                    heartbeat: c.heartbeat.clone(),
                    availability: match (is_self, l) {
                        (true, _) => ControllerAvailability::Available,
                        (false, Some(p)) => p.availability,
                        (false, None) => c.availability,
                    },
                    availability_changed_at: c.availability_changed_at,
                    region: c.region.clone(),
                    city: c.city.clone(),
                    lat: c.lat,
                    lon: c.lon,
                    capacity: hb.map_or(c.capacity, |h| h.capacity),
                    reserved_capacity: hb.map_or(c.reserved_capacity, |h| h.reserved_capacity),
                    managed: managed.get(&c.name).copied().unwrap_or(0),
                    last_seen: if is_self {
                        Some(Millis::now())
                    } else {
                        l.and_then(|p| p.last_ok)
                    },
                    latency_ms: l.and_then(|p| p.rtt_ms),
                    missed: l.map_or(0, |p| p.missed),
                    maintenance_until: if is_self {
                        maintenance_until
                    } else {
                        hb.and_then(|h| h.maintenance_until)
                    },
                    active_alarms: alarms.get(&c.id).cloned().unwrap_or_default(),
                }
            })
            .collect();
        let mut groups = Vec::with_capacity(topo.groups.len());
        for g in &topo.groups {
            groups.push(
                self.group_view(g, sites.get(&g.id).cloned().unwrap_or_default(), 5)
                    .await?,
            );
        }
        Ok(GeoOverview {
            this_controller: this,
            enabled: geo.is_some(),
            maintenance_until,
            peers,
            groups,
            unprotected: self.geo_unprotected().await?,
            as_of: Millis::now(),
        })
    }

    async fn group_view(
        &self,
        g: &GroupRow,
        sites: GroupSites,
        history: i64,
    ) -> Result<PeerGroupView> {
        Ok(PeerGroupView {
            id: g.id,
            name: g.name.clone(),
            priority: g.priority,
            state: g.state,
            max_subcloud_rehoming: g.max_subcloud_rehoming,
            owner: g.owner.clone(),
            home: g.home.clone(),
            owner_epoch: g.epoch,
            owned_since: g.owned_since,
            migration_status: g.migration_status,
            failback_hold_down_s: g.failback_hold_down_s,
            revision: g.revision,
            sites,
            associations: g
                .associations
                .iter()
                .map(|a| Association {
                    controller: a.controller.clone(),
                    priority: a.priority,
                    association_type: a.association_type,
                    sync_status: a.sync_status,
                    sync_message: a.sync_message.clone(),
                    synced_at: a.synced_at,
                })
                .collect(),
            history: self.geo_history(g.id, history).await?,
        })
    }

    /// One peer group's page.
    pub async fn peer_group_view(&self, name: &str) -> Result<PeerGroupView> {
        let topo = self.geo_topology().await?;
        let g = topo
            .group(name)
            .ok_or_else(|| Error::not_found("peer group", name))?;
        let sites = self.geo_group_sites().await?;
        self.group_view(g, sites.get(&g.id).cloned().unwrap_or_default(), 100)
            .await
    }

    /// One round of the peer loop.
    pub(crate) async fn geo_tick(&self) -> Result<()> {
        let Some(geo) = self.geo().cloned() else {
            return Ok(());
        };
        if !geo.lock().running {
            return Ok(());
        }
        let now = Millis::now();
        self.geo_send_heartbeats(&geo, now).await?;
        self.geo_update_availability(&geo, now).await?;
        self.geo_resolve_fenced(&geo).await?;
        // One read for the rest of the tick: a group taken over in `geo_decide` is ramped and
        // replicated from the next tick on.
        let topo = self.geo_topology().await?;
        self.geo_decide(&geo, &topo, now).await?;
        self.geo_ramp(&geo, &topo, now).await?;
        self.geo_replicate(&geo, &topo, now).await?;
        self.geo_replicate_strategies(&geo, now).await?;
        self.geo_failback(&geo, &topo, now).await?;
        Ok(())
    }

    /// Pushes the strategies this controller runs to every available peer: those changed
    /// since the last successful push to it (at most every [`STRATEGY_PUSH_MS`]), and all of
    /// them every `resync_ms`. A copy a little behind is safe: steps carry idempotency keys.
    async fn geo_replicate_strategies(&self, geo: &GeoRuntime, now: Millis) -> Result<()> {
        let resync = i64::try_from(geo.config.resync_ms).unwrap_or(i64::MAX);
        let due: Vec<(PeerConfig, bool)> = {
            let st = geo.lock();
            geo.config
                .peers
                .iter()
                .filter(|p| geo.is_available(&st, &p.name))
                .filter_map(|p| match st.strategies_pushed.get(&p.name) {
                    None => Some((p.clone(), true)),
                    Some((_, full)) if now.0 - full.0 >= resync => Some((p.clone(), true)),
                    Some((at, _)) if now.0 - at.0 >= STRATEGY_PUSH_MS => Some((p.clone(), false)),
                    Some(_) => None,
                })
                .collect()
        };
        if due.is_empty() {
            return Ok(());
        }
        let since = {
            let st = geo.lock();
            due.iter()
                .map(
                    |(p, full)| match (full, st.strategies_pushed.get(&p.name)) {
                        (false, Some((at, _))) => *at,
                        _ => Millis(0),
                    },
                )
                .min()
                .unwrap_or(Millis(0))
        };
        let sync = StrategySync {
            from: geo.config.this.clone(),
            strategies: self.strategy_copies(since).await?,
        };
        for (peer, full) in due {
            if sync.strategies.is_empty() && !full {
                continue;
            }
            match geo.link.sync_strategies(&peer, &sync).await {
                Ok(()) => {
                    let mut st = geo.lock();
                    let e = st
                        .strategies_pushed
                        .entry(peer.name.clone())
                        .or_insert((now, now));
                    e.0 = now;
                    if full {
                        e.1 = now;
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %peer.name, error = %e, "strategy copies not pushed");
                }
            }
        }
        Ok(())
    }

    /// A peer's copies of the strategies it runs arrived (already authenticated as
    /// `sync.from`).
    pub async fn geo_receive_strategies(
        &self,
        sync: StrategySync,
    ) -> Result<crate::orchestration::CopiesApplied> {
        let geo = self.geo_required()?.clone();
        if !geo.lock().running {
            return Err(Error::Conflict("stopped".into()));
        }
        self.apply_strategy_copies(&sync.from, sync.strategies)
            .await
    }

    async fn geo_send_heartbeats(&self, geo: &Arc<GeoRuntime>, now: Millis) -> Result<()> {
        let due: Vec<PeerConfig> = {
            let mut st = geo.lock();
            let interval = i64::try_from(geo.config.heartbeat.interval_ms).unwrap_or(i64::MAX);
            let mut due = Vec::new();
            for p in &geo.config.peers {
                if let Some(live) = st.peers.get_mut(&p.name) {
                    if live.last_sent.is_none_or(|t| now.0 - t.0 >= interval) {
                        live.last_sent = Some(now);
                        due.push(p.clone());
                    }
                }
            }
            due
        };
        if due.is_empty() {
            return Ok(());
        }
        let hb = self.geo_heartbeat(geo).await?;
        let mut set = tokio::task::JoinSet::new();
        for peer in due {
            let link = Arc::clone(&geo.link);
            let hb = hb.clone();
            set.spawn(async move {
                let started = std::time::Instant::now();
                let answer = link.heartbeat(&peer, &hb).await;
                let rtt = u32::try_from(started.elapsed().as_millis()).unwrap_or(u32::MAX);
                (peer, answer, rtt)
            });
        }
        while let Some(done) = set.join_next().await {
            let Ok((peer, answer, rtt)) = done else {
                continue;
            };
            match answer {
                Ok(theirs) if theirs.from == peer.name => {
                    if let Err(e) = self
                        .geo_heard(geo, &peer.name, Some(rtt.max(1)), theirs)
                        .await
                    {
                        tracing::warn!(peer = %peer.name, error = %e, "heartbeat answer not applied");
                    }
                }
                Ok(theirs) => {
                    tracing::warn!(peer = %peer.name, answered_as = %theirs.from, "heartbeat answered by the wrong controller");
                    if let Some(p) = geo.lock().peers.get_mut(&peer.name) {
                        p.missed = p.missed.saturating_add(1);
                    }
                }
                Err(e) => {
                    tracing::debug!(peer = %peer.name, error = %e, "heartbeat failed");
                    if let Some(p) = geo.lock().peers.get_mut(&peer.name) {
                        p.missed = p.missed.saturating_add(1);
                    }
                }
            }
        }
        Ok(())
    }

    async fn geo_update_availability(&self, geo: &GeoRuntime, now: Millis) -> Result<()> {
        let after = i64::try_from(geo.config.heartbeat.failure_after_ms()).unwrap_or(i64::MAX);
        let lost: Vec<(String, String)> = {
            let mut st = geo.lock();
            let started = st.started.unwrap_or(now);
            let mut lost = Vec::new();
            for (name, p) in st.peers.iter_mut() {
                let since = p.last_ok.unwrap_or(started);
                if p.availability != ControllerAvailability::Unavailable && now.0 - since.0 > after
                {
                    p.availability = ControllerAvailability::Unavailable;
                    p.available_since = None;
                    lost.push((
                        name.clone(),
                        format!(
                            "{name} missed {} heartbeat(s): no answer for {} ms",
                            p.missed,
                            now.0 - since.0
                        ),
                    ));
                }
            }
            lost
        };
        for (name, why) in lost {
            tracing::warn!(peer = %name, "{why}");
            self.geo_set_availability_tx(&name, ControllerAvailability::Unavailable, why)
                .await?;
            self.geo_event(None, format!("{name} unavailable"));
        }
        Ok(())
    }

    /// Groups an agent fenced this controller out of: learn the owner from the peers' claims.
    async fn geo_resolve_fenced(&self, geo: &GeoRuntime) -> Result<()> {
        let Some(gateway) = self.agent_gateway() else {
            return Ok(());
        };
        let fenced = std::mem::take(&mut gateway.lock().fenced);
        if fenced.is_empty() {
            return Ok(());
        }
        let claims: Vec<(String, Vec<GroupClaim>)> = {
            let st = geo.lock();
            st.peers
                .iter()
                .filter_map(|(n, p)| Some((n.clone(), p.last_heartbeat.as_ref()?.claims.clone())))
                .collect()
        };
        for (from, c) in claims {
            self.geo_adopt_claims(geo, &from, &c).await?;
        }
        Ok(())
    }

    /// Takeover decisions for unavailable peers.
    async fn geo_decide(&self, geo: &Arc<GeoRuntime>, topo: &Topology, now: Millis) -> Result<()> {
        let this = geo.config.this.clone();
        let (failed, maintenance_here) = {
            let st = geo.lock();
            let failed: Vec<(String, Option<Millis>)> = st
                .peers
                .iter()
                .filter(|(_, p)| p.availability == ControllerAvailability::Unavailable)
                .map(|(n, p)| {
                    (
                        n.clone(),
                        p.last_heartbeat.as_ref().and_then(|h| h.maintenance_until),
                    )
                })
                .collect();
            (failed, st.maintenance_until.is_some_and(|u| u.0 > now.0))
        };
        if failed.is_empty() {
            return Ok(());
        }
        for (peer, their_maintenance) in failed {
            let orphans: Vec<&GroupRow> = topo
                .groups
                .iter()
                .filter(|g| g.owner == peer && g.state == PeerGroupState::Enabled)
                .collect();
            if orphans.is_empty() {
                continue;
            }
            let Some(row) = topo.controller(&peer) else {
                continue;
            };
            if row.admin == AdminState::Disabled || their_maintenance.is_some_and(|u| u.0 > now.0) {
                continue;
            }
            let decider = {
                let st = geo.lock();
                match row.heartbeat.failure_policy {
                    FailurePolicy::Alarm => None,
                    FailurePolicy::Rehome => {
                        let mut alive: Vec<&str> = st
                            .peers
                            .iter()
                            .filter(|(n, p)| {
                                **n != peer && p.availability == ControllerAvailability::Available
                            })
                            .map(|(n, _)| n.as_str())
                            .collect();
                        alive.push(&this);
                        alive.into_iter().min().map(str::to_string)
                    }
                    FailurePolicy::Delegate => row
                        .heartbeat
                        .delegate_to
                        .clone()
                        .filter(|d| geo.is_available(&st, d) && *d != peer),
                }
            };
            if row.heartbeat.failure_policy == FailurePolicy::Alarm {
                let names: Vec<&str> = orphans.iter().map(|g| g.name.as_str()).collect();
                if self
                    .geo_controller_alarm(
                        &peer,
                        super::alarm_ids::GROUP_WAITING_FOR_MIGRATE,
                        "critical",
                        Some(&format!(
                            "{peer} failed; policy alarm: peer groups {} wait for an operator's migrate",
                            names.join(", ")
                        )),
                    )
                    .await?
                {
                    self.geo_event(None, format!("{peer} groups wait for migrate"));
                }
                continue;
            }
            if decider.as_deref() != Some(this.as_str()) || maintenance_here {
                continue;
            }
            self.geo_decide_for(geo, topo, &peer, &orphans, now).await?;
        }
        Ok(())
    }

    async fn geo_decide_for(
        &self,
        geo: &Arc<GeoRuntime>,
        topo: &Topology,
        peer: &str,
        orphans: &[&GroupRow],
        now: Millis,
    ) -> Result<()> {
        let this = geo.config.this.clone();
        let sizes = self.geo_group_sizes().await?;
        let (local, local_rtt) = match self.agent_gateway() {
            Some(gw) => {
                let counts = evidence_counts(gw, &geo.config, now);
                let rtt = counts
                    .iter()
                    .map(|(k, (_, r))| (*k, r.clone()))
                    .collect::<HashMap<_, _>>();
                (
                    counts
                        .into_iter()
                        .map(|(k, (n, _))| (k, n))
                        .collect::<HashMap<_, _>>(),
                    rtt,
                )
            }
            None => (HashMap::new(), HashMap::new()),
        };
        let remote: HashMap<String, u64> = {
            let st = geo.lock();
            let window = i64::try_from(geo.config.evidence_window_ms).unwrap_or(i64::MAX);
            let mut sum: HashMap<String, u64> = HashMap::new();
            for p in st.peers.values() {
                if p.availability != ControllerAvailability::Available
                    || p.last_ok.is_none_or(|t| now.0 - t.0 > window)
                {
                    continue;
                }
                if let Some(h) = &p.last_heartbeat {
                    for e in h.evidence.iter().filter(|e| e.owner == peer) {
                        *sum.entry(e.group.clone()).or_default() += e.owner_unreachable;
                    }
                }
            }
            sum
        };
        let mut eligible = Vec::new();
        for g in orphans {
            let (total, online) = sizes.get(&g.id).copied().unwrap_or((0, 0));
            let seen =
                local.get(&g.id).copied().unwrap_or(0) + remote.get(&g.name).copied().unwrap_or(0);
            let need = (online * u64::from(geo.config.quorum_percent))
                .div_ceil(100)
                .max(1);
            if seen < need {
                tracing::debug!(group = %g.name, seen, need, "not enough agent evidence yet");
                continue;
            }
            let recently = geo
                .lock()
                .ordered
                .get(&g.name)
                .is_some_and(|t| now.0 - t.0 < 5_000);
            if recently {
                continue;
            }
            let latency = local_rtt.get(&g.id).cloned().unwrap_or_default();
            eligible.push((orphan(g, total, latency), seen, need));
        }
        if eligible.is_empty() {
            return Ok(());
        }
        let survivors = self.geo_survivors(geo, topo, Some(peer)).await?;
        let groups: Vec<OrphanGroup> = eligible.iter().map(|(o, _, _)| o.clone()).collect();
        let plan = plan::place(
            &PlanContext {
                failed: peer.to_string(),
                policy: FailurePolicy::Rehome,
                unprotected_sites: 0,
                detection_seconds: 0.0,
                evidence_seconds: 0.0,
                now,
            },
            &groups,
            &survivors,
        );
        let shortfall = (!plan.shortfall.is_empty()).then(|| {
            format!(
                "takeover of {peer}: no capacity beyond reserve for {}; they wait",
                plan.shortfall.join(", ")
            )
        });
        if self
            .geo_controller_alarm(
                peer,
                super::alarm_ids::CAPACITY_SHORTFALL,
                "critical",
                shortfall.as_deref(),
            )
            .await?
        {
            self.geo_event(None, "capacity shortfall".into());
        }
        for p in plan.placements {
            let Some(to) = p.to else { continue };
            let Some(g) = orphans.iter().find(|g| g.name == p.group) else {
                continue;
            };
            let (seen, need) = eligible
                .iter()
                .find(|(o, _, _)| o.name == p.group)
                .map_or((0, 0), |(_, s, n)| (*s, *n));
            let reason = format!(
                "{peer} unreachable; {seen} agents confirm (quorum {need}); {}",
                p.reason
            );
            geo.lock().ordered.insert(g.name.clone(), now);
            if to == this {
                let entry = AuditEntry::system(
                    "geo.takeover",
                    &format!("peer-group:{}", g.name),
                    format!("{this} takes {}: {reason}", g.name),
                );
                match self
                    .geo_take_over_tx(
                        &this,
                        geo.slot(),
                        &g.name,
                        &g.owner,
                        g.epoch,
                        &reason,
                        &entry,
                    )
                    .await
                {
                    Ok(epoch) => self.geo_after_move(&g.name, &this, epoch).await?,
                    Err(e) => tracing::warn!(group = %g.name, error = %e, "takeover failed"),
                }
            } else if let Some(target) = geo.peer(&to).cloned() {
                let order = TakeoverOrder {
                    from: this.clone(),
                    group: g.name.clone(),
                    owner: g.owner.clone(),
                    epoch: g.epoch,
                    handover: false,
                    reason,
                };
                match geo.link.takeover(&target, &order).await {
                    Ok(a) => {
                        self.geo_adopt_answer(&this, &a.group, &a, &to).await?;
                    }
                    Err(e) => {
                        tracing::warn!(group = %g.name, to = %to, error = %e, "takeover order refused")
                    }
                }
            }
        }
        Ok(())
    }

    /// Admits waiting subclouds of groups moved here, `max_subcloud_rehoming` per second.
    async fn geo_ramp(&self, geo: &GeoRuntime, topo: &Topology, now: Millis) -> Result<()> {
        {
            let mut st = geo.lock();
            if st.last_ramp.is_some_and(|t| now.0 - t.0 < 1_000) {
                return Ok(());
            }
            st.last_ramp = Some(now);
        }
        for g in topo.groups.iter().filter(|g| {
            g.owner == geo.config.this && g.migration_status == MigrationStatus::Migrating
        }) {
            let (ids, left) = self
                .geo_admit_tx(&geo.config.this, g.id, g.max_subcloud_rehoming)
                .await?;
            if let Some(gw) = self.agent_gateway() {
                admit(gw, &ids, now);
            }
            if !ids.is_empty() || left == 0 {
                self.geo_event(
                    Some(g.name.clone()),
                    format!("rehomed {}, {left} waiting", ids.len()),
                );
            }
            if left == 0 {
                self.geo_mark_out_of_sync(g.id).await?;
            }
        }
        Ok(())
    }

    /// Pushes this controller's groups to their associated peers when edited, and
    /// periodically so secondary copies show current health.
    async fn geo_replicate(&self, geo: &GeoRuntime, topo: &Topology, now: Millis) -> Result<()> {
        let resync = i64::try_from(geo.config.resync_ms).unwrap_or(i64::MAX);
        for g in topo.groups.iter().filter(|g| g.owner == geo.config.this) {
            let targets: Vec<(PeerConfig, bool)> = {
                let st = geo.lock();
                g.associations
                    .iter()
                    .filter(|a| {
                        a.controller != geo.config.this && geo.is_available(&st, &a.controller)
                    })
                    .filter_map(|a| {
                        let peer = geo.peer(&a.controller)?.clone();
                        let edited = a.synced_revision < g.revision
                            || a.sync_status != AssociationSync::InSync;
                        let stale = st
                            .last_sync
                            .get(&(g.name.clone(), a.controller.clone()))
                            .is_none_or(|t| now.0 - t.0 >= resync);
                        (edited || stale).then_some((peer, edited))
                    })
                    .collect()
            };
            if targets.is_empty() {
                continue;
            }
            let latency = self.geo_group_latency(g.id).await?;
            let snapshot = self.geo_snapshot(&geo.config.this, g, latency).await?;
            for (peer, _) in targets {
                geo.lock()
                    .last_sync
                    .insert((g.name.clone(), peer.name.clone()), now);
                let (status, message) = match geo.link.sync(&peer, &snapshot).await {
                    Ok(()) => (AssociationSync::InSync, String::new()),
                    Err(e) => (AssociationSync::Failed, e),
                };
                if self
                    .geo_set_sync(g.id, &peer.name, status, &message, g.revision)
                    .await?
                {
                    self.geo_event(
                        Some(g.name.clone()),
                        format!("sync to {} {status}", peer.name),
                    );
                }
            }
        }
        Ok(())
    }

    /// Groups away from home go back once home has been available for the hold-down.
    async fn geo_failback(&self, geo: &GeoRuntime, topo: &Topology, now: Millis) -> Result<()> {
        for g in topo.groups.iter().filter(|g| {
            g.owner == geo.config.this
                && g.home != geo.config.this
                && g.failback_hold_down_s > 0
                && g.migration_status != MigrationStatus::Migrating
        }) {
            let ready = {
                let st = geo.lock();
                st.peers.get(&g.home).is_some_and(|p| {
                    p.availability == ControllerAvailability::Available
                        && p.available_since.is_some_and(|s| {
                            now.0 - s.0
                                >= i64::try_from(g.failback_hold_down_s.saturating_mul(1000))
                                    .unwrap_or(i64::MAX)
                        })
                        && p.last_heartbeat
                            .as_ref()
                            .is_none_or(|h| h.maintenance_until.is_none_or(|u| u.0 <= now.0))
                })
            };
            if !ready {
                continue;
            }
            let req = MigrateRequest {
                peer_group: g.name.clone(),
                to: g.home.clone(),
            };
            let actor = Actor::system();
            if let Err(e) = self
                .migrate_as(&actor, &req, Some("automatic failback"))
                .await
            {
                tracing::warn!(group = %g.name, error = %e, "automatic failback failed");
            }
        }
        Ok(())
    }
}

fn orphan(g: &GroupRow, sites: u64, latency: Vec<(String, u32)>) -> OrphanGroup {
    OrphanGroup {
        name: g.name.clone(),
        priority: g.priority,
        sites,
        max_subcloud_rehoming: g.max_subcloud_rehoming,
        associations: g
            .associations
            .iter()
            .map(|a| (a.controller.clone(), a.priority))
            .collect(),
        agent_latency_ms: latency,
    }
}

fn medians(by: HashMap<String, Vec<i64>>) -> Vec<(String, u32)> {
    let mut out: Vec<(String, u32)> = by
        .into_iter()
        .filter_map(|(c, mut v)| {
            if v.is_empty() {
                return None;
            }
            v.sort_unstable();
            Some((c, u32::try_from(v[v.len() / 2]).unwrap_or(u32::MAX)))
        })
        .collect();
    out.sort();
    out
}

/// Per group: agents that reported here within the window and could not reach the owner,
/// and the median round trips they measured to each controller.
fn evidence_counts(
    gateway: &AgentGateway,
    config: &GeoConfig,
    now: Millis,
) -> HashMap<i64, (u64, Vec<(String, u32)>)> {
    let window = i64::try_from(config.evidence_window_ms).unwrap_or(i64::MAX);
    let st = gateway.lock();
    // Per group: (agents that could not reach the owner, round trips by controller).
    let mut groups: HashMap<i64, (u64, HashMap<String, Vec<i64>>)> = HashMap::new();
    for e in st.evidence.values() {
        let RouteKey::Group(g) = e.route else {
            continue;
        };
        if now.0 - e.at.0 > window {
            continue;
        }
        let (unreachable, by) = groups.entry(g).or_default();
        let owner = st.routes.get(&e.route).map(|r| r.owner.as_str());
        if e.owner_unreachable.is_some() && e.owner_unreachable.as_deref() == owner {
            *unreachable += 1;
        }
        for (c, ms) in &e.rtt_ms {
            by.entry(c.clone()).or_default().push(i64::from(*ms));
        }
    }
    groups
        .into_iter()
        .map(|(g, (n, by))| (g, (n, medians(by))))
        .collect()
}

/// Replaces the gateway's routes; subclouds that start being managed here get a fresh grace
/// period (so they are not declared offline before their first report arrives).
fn apply_routes(
    gateway: &AgentGateway,
    this: &str,
    routes: HashMap<RouteKey, crate::agents::store::Route>,
    subclouds: Vec<(i64, RouteKey, bool)>,
    now: Millis,
) {
    let mut st = gateway.lock();
    let was_geo = st.geo;
    let before: HashSet<i64> = st
        .agents
        .iter()
        .filter(|(_, e)| st.owns(e, this))
        .map(|(id, _)| *id)
        .collect();
    st.geo = true;
    st.routes = routes;
    // Peers as agents should reach them now (the store's endpoints were just configured):
    // every route lists every controller.
    if let Some(r) = st.routes.values().next() {
        let mut peers: Vec<_> = r
            .controllers
            .iter()
            .filter(|c| c.name != this)
            .cloned()
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        st.peers = peers;
    }
    for (id, key, waiting) in subclouds {
        if let Some(e) = st.agents.get_mut(&id) {
            e.route = key;
            e.waiting = waiting;
        }
    }
    let crate::agents::store::GatewayState { agents, routes, .. } = &mut *st;
    for (id, e) in agents.iter_mut() {
        let owned = !e.waiting && routes.get(&e.route).is_some_and(|r| r.owner == this);
        if let Some(r) = routes.get(&e.route) {
            e.owner_epoch = r.epoch;
        }
        if owned && (!before.contains(id) || !was_geo) {
            e.tracker = AvailabilityTracker::new(e.tracker.availability, now);
            e.tracked = e.secret_hash.is_some();
            e.stored = None;
        }
        if !owned {
            e.stored = None;
        }
    }
}

/// Subclouds admitted by the rehoming ramp start being managed here.
fn admit(gateway: &AgentGateway, ids: &[i64], now: Millis) {
    let mut st = gateway.lock();
    for id in ids {
        if let Some(e) = st.agents.get_mut(id) {
            e.waiting = false;
            e.tracker = AvailabilityTracker::new(e.tracker.availability, now);
            e.tracked = e.secret_hash.is_some();
            e.stored = None;
        }
    }
}

/// Credentials replicated from an owner.
fn load_credentials(gateway: &AgentGateway, creds: &[(i64, Option<String>, i64)]) {
    let mut st = gateway.lock();
    for (id, hash, seq) in creds {
        if let Some(e) = st.agents.get_mut(id) {
            e.secret_hash = hash.as_deref().and_then(crate::agents::store::unhex32);
            e.last_seq = e.last_seq.max(u64::try_from(*seq).unwrap_or(0));
        }
    }
}

/// Runs the peer loop: heartbeats, decisions, ramp, replication, failback.
pub fn spawn_peer_loop(engine: Engine, tick: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(geo) = engine.geo().cloned() else {
            return;
        };
        loop {
            if let Err(e) = engine.geo_tick().await {
                tracing::warn!(error = %e, "geo-redundancy tick failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(tick) => {}
                _ = geo.wake.notified() => {}
            }
        }
    })
}

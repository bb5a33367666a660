//! The running side of geo-redundancy: live peer state and the peer loop. The engine knows
//! nothing of HTTP: the server hands it a [`PeerLink`] that carries the peer protocol's
//! messages.
//!
//! - this file: the live state ([`GeoRuntime`]), start-up, the agent gateway's routes, the loop;
//! - `inbound`: what peers send (heartbeats, replicated copies, takeover orders, migrate);
//! - `operator`: migrate, fail back, pause, the drill;
//! - `views`: what the pages read;
//! - `tick`: one round of the loop, carrying out [`super::decide`]'s decisions.

mod inbound;
mod operator;
mod tick;
mod views;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use super::config::{GeoConfig, PeerConfig};
use super::decide;
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

//! The fleet simulator: thousands of virtual subclouds in one process, each a real protocol
//! client of the controllers (enrollment, reports, commands, failover), with seeded
//! characteristics and behaviour and faults an operator injects at run time. Commands run
//! through their phases with seeded, configurable durations and failures ([`StepConfig`],
//! changeable at run time with [`SimHandle::update_steps`] or `POST /steps`).
//!
//! Scale: one tokio task per site sleeping until its next report (20,000 idle tasks cost a
//! few MB; the HTTP part of a cycle is boxed so an idle task stays small), a semaphore of
//! `max_in_flight` bounding concurrent requests, one pooled HTTP client. A site never has
//! two reports in flight, so its seqs reach the controller in order.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use agent::sim::{Fault, Selector, SimConfig, Simulator, SiteSpec, StepConfig, StepPatch};
//! use engine::agents::wire::ControllerRef;
//!
//! let config = SimConfig {
//!     controllers: vec![ControllerRef { name: "sc-1".into(), url: "http://127.0.0.1:3000".into() }],
//!     // Commands at a tenth of the default durations, one in ten failing.
//!     steps: StepConfig { scale: 0.1, failure_rate: 0.1, ..StepConfig::default() },
//!     ..SimConfig::default()
//! };
//! let sites = vec![SiteSpec {
//!     name: "lyon-001".into(),
//!     region: "Europe".into(),
//!     lat: 45.76,
//!     lon: 4.84,
//!     software_version: "24.09".into(),
//!     enrollment_token: "mme_…".into(),
//!     controller: Some("sc-1".into()),
//! }];
//! let sim = Simulator::start(config, sites).await?;
//! sim.apply(Fault::Down, Selector::Region("Europe".into()));
//! sim.update_steps(&StepPatch { failure_rate: Some(0.0), ..StepPatch::default() })
//!     .map_err(anyhow::Error::msg)?;
//! println!("{:?}", sim.stats());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

mod behaviour;
mod control;
mod faults;
mod profile;
mod rng;
pub(crate) use rng::fnv1a;
mod run;
mod site;
mod stats;
mod steps;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use engine::agents::wire::ControllerRef;
use engine::agents::SiteEnrollment;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use faults::{Fault, FaultState, Flap, Selector, FLAP_PERIOD_MS, MAX_LATENCY_MS};
pub use site::{EnrollState, SiteView, SIM_AGENT_VERSION};
pub use stats::{CommandCounts, Latency, SimStats};
pub use steps::{ActionKind, MeanSeconds, StepConfig, StepPatch, MAX_MEAN_SECONDS, MAX_SCALE};

use crate::transport::Transport;
use site::{SimSite, DEFAULT_INTERVAL_MS};
use stats::{SiteCounts, Stats};

/// Distinct controller lists shared between sites; beyond this (a controller sending a
/// different list to every site) lists are simply not shared.
const MAX_SHARED_LISTS: usize = 64;

/// A subcloud to simulate.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SiteSpec {
    pub name: String,
    pub region: String,
    pub lat: f64,
    pub lon: f64,
    pub software_version: String,
    /// `mme_…`, exchanged for the site's secret at start.
    pub enrollment_token: String,
    /// Name of the controller that manages the site: enrolled with first, and first in the
    /// site's list until an answer says otherwise (`None`, or a name not among
    /// [`SimConfig::controllers`]: the configured order).
    #[serde(default)]
    pub controller: Option<String>,
}

impl From<SiteEnrollment> for SiteSpec {
    fn from(e: SiteEnrollment) -> Self {
        Self {
            name: e.subcloud,
            region: e.region,
            lat: e.lat,
            lon: e.lon,
            software_version: e.software_version,
            enrollment_token: e.token,
            // Empty from controllers that do not name it (see `admin`).
            controller: Some(e.controller).filter(|c| !c.trim().is_empty()),
        }
    }
}

/// How to run a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Controllers to enroll with, in order of preference (the enrollment answer's list
    /// replaces it per site).
    pub controllers: Vec<ControllerRef>,
    /// Controller name, latitude, longitude: for modelled latency. May be empty.
    pub controller_coords: Vec<(String, f64, f64)>,
    /// Same seed, same sites (characteristics, schedule offsets, episodes).
    pub seed: u64,
    /// Where to serve the control API (`None`: no control API).
    pub control_listen: Option<SocketAddr>,
    /// Concurrent report requests at most.
    pub max_in_flight: usize,
    /// Concurrent enrollment requests at most.
    pub enroll_concurrency: usize,
    /// How commands execute: durations per action kind, their scale, the failure rate.
    /// Changeable while running ([`SimHandle::set_steps`], `POST /steps`).
    pub steps: StepConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            controllers: Vec::new(),
            controller_coords: Vec::new(),
            seed: 0,
            control_listen: None,
            max_in_flight: 256,
            enroll_concurrency: 32,
            steps: StepConfig::default(),
        }
    }
}

/// Starts simulations.
pub struct Simulator;

impl Simulator {
    /// Starts every site (enrollment begins at once, bounded by `enroll_concurrency`; each
    /// site reports as soon as it is enrolled) and the control API. Returns without waiting
    /// for enrollment: see [`SimHandle::wait_enrolled`]. Must be called within a tokio
    /// runtime.
    pub async fn start(config: SimConfig, sites: Vec<SiteSpec>) -> anyhow::Result<SimHandle> {
        if config.controllers.is_empty() {
            bail!("the simulator needs at least one controller");
        }
        if let Err(e) = config.steps.validate() {
            bail!("step configuration: {e}");
        }
        for c in &config.controllers {
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                bail!(
                    "controller {:?}: URL {:?} must start with http:// or https://",
                    c.name,
                    c.url
                );
            }
        }
        let transport = Transport::new()?;
        let shared = Arc::new(Shared::new(&config, sites, transport)?);
        let listener = match config.control_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("cannot listen on {addr} for the control API"))?,
            ),
            None => None,
        };
        let control_addr = listener.as_ref().and_then(|l| l.local_addr().ok());
        let mut tasks = JoinSet::new();
        for i in 0..shared.sites.len() {
            tasks.spawn(run::site(Arc::clone(&shared), i));
        }
        let s = Arc::clone(&shared);
        tasks.spawn(async move {
            let mut every = tokio::time::interval(stats::WINDOW);
            every.tick().await;
            loop {
                every.tick().await;
                s.stats.rotate();
            }
        });
        if let Some(listener) = listener {
            tasks.spawn(control::serve(listener, Arc::clone(&shared)));
        }
        tracing::info!(
            sites = shared.sites.len(),
            controllers = config.controllers.len(),
            seed = config.seed,
            control = ?control_addr,
            "simulator started"
        );
        Ok(SimHandle {
            shared,
            tasks: Mutex::new(tasks),
            control_addr,
        })
    }
}

/// A running simulation (`Send + Sync`: it can live in a server's shared state). Dropping it
/// stops every site, as does [`SimHandle::shutdown`].
pub struct SimHandle {
    shared: Arc<Shared>,
    tasks: Mutex<JoinSet<()>>,
    control_addr: Option<SocketAddr>,
}

impl SimHandle {
    /// The address the control API listens on (the real port when asked for port 0).
    pub fn control_addr(&self) -> Option<SocketAddr> {
        self.control_addr
    }

    /// Injects `fault` into the selected sites; returns how many were affected.
    pub fn apply(&self, fault: Fault, selector: Selector) -> usize {
        self.shared.apply(&fault, &selector)
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// How commands execute now.
    pub fn steps(&self) -> StepConfig {
        self.shared.steps()
    }

    /// Replaces the step configuration (for commands received from now on); refused, with
    /// the field named, when out of bounds.
    pub fn set_steps(&self, steps: StepConfig) -> Result<(), String> {
        steps.validate()?;
        *self
            .shared
            .steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = steps;
        tracing::info!(?steps, "step configuration changed");
        Ok(())
    }

    /// Changes part of the step configuration; returns the new one.
    pub fn update_steps(&self, patch: &StepPatch) -> Result<StepConfig, String> {
        self.shared.update_steps(patch)
    }

    /// The selected sites as they are now.
    pub fn sites(&self, selector: Selector) -> Vec<SiteView> {
        self.shared.views(&selector, usize::MAX)
    }

    /// Waits until every site has enrolled or been refused; false on timeout.
    pub async fn wait_enrolled(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self
                .shared
                .stats
                .enroll_pending
                .load(std::sync::atomic::Ordering::Relaxed)
                == 0
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops every site and the control API, and waits until they have stopped. Calling it
    /// again does nothing.
    pub async fn shutdown(&self) {
        let mut tasks =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        if tasks.is_empty() {
            return;
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        tracing::info!("simulator stopped");
    }
}

/// `list` with controller `name` moved first, the others in their order; `None` when it
/// is already first or not in the list (the list stands as it is).
fn first_at(list: &[ControllerRef], name: &str) -> Option<Vec<ControllerRef>> {
    let k = list
        .iter()
        .position(|c| c.name == name)
        .filter(|&k| k > 0)?;
    let mut v = list.to_vec();
    v[..=k].rotate_right(1);
    Some(v)
}

/// State shared by the site tasks, the control API and the handle.
pub(crate) struct Shared {
    sites: Box<[Mutex<SimSite>]>,
    /// Immutable copies for selection without locking every site.
    regions: Box<[String]>,
    by_name: HashMap<String, usize>,
    coords: Vec<(String, f64, f64)>,
    stats: Stats,
    transport: Transport,
    in_flight: Semaphore,
    enrolling: Semaphore,
    max_in_flight: usize,
    started: Instant,
    lists: Mutex<Vec<Arc<[ControllerRef]>>>,
    steps: Mutex<StepConfig>,
}

impl Shared {
    fn new(config: &SimConfig, specs: Vec<SiteSpec>, transport: Transport) -> anyhow::Result<Self> {
        let initial: Arc<[ControllerRef]> = config.controllers.clone().into();
        // One list per controller a site may be managed by (few), shared by its sites.
        let mut own_first: Vec<Arc<[ControllerRef]>> = Vec::new();
        let mut by_name = HashMap::with_capacity(specs.len());
        let mut regions = Vec::with_capacity(specs.len());
        let mut sites = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            if by_name.insert(spec.name.clone(), i).is_some() {
                bail!("site {:?} is listed twice", spec.name);
            }
            regions.push(spec.region.clone());
            let list = match spec
                .controller
                .as_deref()
                .and_then(|n| first_at(&initial, n))
            {
                Some(list) => match own_first.iter().find(|l| ***l == *list) {
                    Some(known) => Arc::clone(known),
                    None => {
                        let list: Arc<[ControllerRef]> = list.into();
                        own_first.push(Arc::clone(&list));
                        list
                    }
                },
                None => Arc::clone(&initial),
            };
            sites.push(Mutex::new(SimSite::new(
                spec,
                config.seed,
                &config.controller_coords,
                list,
                DEFAULT_INTERVAL_MS,
            )));
        }
        let mut lists = vec![initial];
        lists.extend(own_first);
        lists.truncate(MAX_SHARED_LISTS);
        let max_in_flight = config.max_in_flight.max(1);
        Ok(Self {
            stats: Stats::new(sites.len()),
            sites: sites.into(),
            regions: regions.into(),
            by_name,
            coords: config.controller_coords.clone(),
            transport,
            in_flight: Semaphore::new(max_in_flight),
            enrolling: Semaphore::new(config.enroll_concurrency.max(1)),
            max_in_flight,
            started: Instant::now(),
            lists: Mutex::new(lists),
            steps: Mutex::new(config.steps),
        })
    }

    fn steps(&self) -> StepConfig {
        *self.steps.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn update_steps(&self, patch: &StepPatch) -> Result<StepConfig, String> {
        let mut steps = self.steps.lock().unwrap_or_else(PoisonError::into_inner);
        let next = steps.patched(patch)?;
        *steps = next;
        drop(steps);
        tracing::info!(steps = ?next, "step configuration changed");
        Ok(next)
    }

    /// Milliseconds since the simulation started (the clock of faults and restarts).
    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn site(&self, i: usize) -> Option<MutexGuard<'_, SimSite>> {
        self.sites
            .get(i)
            .map(|m| m.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The shared copy of a controller list.
    fn share(&self, list: Vec<ControllerRef>) -> Arc<[ControllerRef]> {
        let mut lists = self.lists.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(known) = lists.iter().find(|l| ***l == *list) {
            return Arc::clone(known);
        }
        let list: Arc<[ControllerRef]> = list.into();
        if lists.len() < MAX_SHARED_LISTS {
            lists.push(Arc::clone(&list));
        }
        list
    }

    /// Indexes of the selected sites, each once, in site order.
    fn select(&self, selector: &Selector) -> Vec<usize> {
        match selector {
            Selector::Sites(names) => {
                let mut v: Vec<usize> = names
                    .iter()
                    .filter_map(|n| self.by_name.get(n).copied())
                    .collect();
                v.sort_unstable();
                v.dedup();
                v
            }
            Selector::Region(r) => (0..self.regions.len())
                .filter(|&i| self.regions[i].eq_ignore_ascii_case(r))
                .collect(),
            Selector::All => (0..self.sites.len()).collect(),
            Selector::Nothing => Vec::new(),
        }
    }

    fn apply(&self, fault: &Fault, selector: &Selector) -> usize {
        let now = self.now_ms();
        let chosen = self.select(selector);
        for &i in &chosen {
            if let Some(mut s) = self.site(i) {
                s.apply(fault, now);
            }
        }
        if !chosen.is_empty() {
            tracing::info!(?fault, ?selector, affected = chosen.len(), "fault applied");
        }
        chosen.len()
    }

    fn views(&self, selector: &Selector, limit: usize) -> Vec<SiteView> {
        let now = self.now_ms();
        self.select(selector)
            .into_iter()
            .take(limit)
            .filter_map(|i| self.site(i).map(|s| s.view(now)))
            .collect()
    }

    fn stats(&self) -> SimStats {
        let now = self.now_ms();
        let mut c = SiteCounts {
            sites: self.sites.len(),
            ..SiteCounts::default()
        };
        for i in 0..self.sites.len() {
            if let Some(s) = self.site(i) {
                c.down += usize::from(s.is_silent(now));
                c.faulted += usize::from(!s.faults.is_clear());
                c.with_alarms += usize::from(s.alarm_count() > 0);
                c.degraded += usize::from(s.health() != engine::agents::wire::SiteHealth::Healthy);
                c.out_of_sync += usize::from(s.out_of_sync().is_some());
                c.owner_conflicts = c.owner_conflicts.saturating_add(s.owner_conflicts());
                c.epoch_regressions = c.epoch_regressions.saturating_add(s.epoch_regressions());
                if let Some(owner) = s.owner() {
                    bump(&mut c.by_owner, owner);
                }
                if s.enroll == EnrollState::Enrolled {
                    if let Some(current) = s.controllers.current() {
                        bump(&mut c.by_controller, &current.name);
                    }
                }
            }
        }
        self.stats.snapshot(c, self.max_in_flight)
    }
}

/// Counts one more site under `name`, allocating the key only the first time.
fn bump(counts: &mut BTreeMap<String, usize>, name: &str) {
    match counts.get_mut(name) {
        Some(n) => *n += 1,
        None => {
            counts.insert(name.to_string(), 1);
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn shared(n: usize) -> Arc<Shared> {
        let config = SimConfig {
            controllers: vec![ControllerRef {
                name: "sc-a".into(),
                url: "http://127.0.0.1:9".into(),
            }],
            seed: 1,
            ..SimConfig::default()
        };
        let specs = (0..n)
            .map(|i| SiteSpec {
                name: format!("site-{i}"),
                region: if i % 2 == 0 { "Europe" } else { "Asia" }.into(),
                lat: 0.0,
                lon: 0.0,
                software_version: "24.09".into(),
                enrollment_token: format!("mme_{i}"),
                controller: None,
            })
            .collect();
        Arc::new(Shared::new(&config, specs, Transport::new().unwrap()).unwrap())
    }

    #[test]
    fn faults_hit_exactly_the_selected_sites() {
        let s = shared(10);
        assert_eq!(
            s.apply(&Fault::Down, &Selector::Region("Atlantis".into())),
            0
        );
        assert_eq!(s.apply(&Fault::Down, &Selector::Nothing), 0);
        assert_eq!(s.apply(&Fault::Down, &Selector::Sites(vec![])), 0);
        assert_eq!(
            s.stats().sites_faulted,
            0,
            "nothing selected, nothing changed"
        );
        let named = Selector::Sites(vec!["site-1".into(), "site-1".into(), "nope".into()]);
        assert_eq!(s.apply(&Fault::Down, &named), 1);
        assert_eq!(
            s.apply(
                &Fault::Latency { ms: 5 },
                &Selector::Region("EUROPE".into())
            ),
            5
        );
        let st = s.stats();
        assert_eq!((st.sites_down, st.sites_faulted), (1, 6));
        assert_eq!(s.apply(&Fault::Heal, &Selector::All), 10);
        assert_eq!(s.stats().sites_faulted, 0);
        let views = s.views(&Selector::Region("asia".into()), 2);
        assert_eq!(views.len(), 2);
        assert!(views.iter().all(|v| v.region == "Asia"));
    }

    #[test]
    fn the_handle_can_be_shared_between_tasks() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<SimHandle>();
        shareable::<SimStats>();
        shareable::<SiteView>();
    }

    #[test]
    fn duplicate_site_names_are_refused() {
        let config = SimConfig {
            controllers: vec![ControllerRef {
                name: "a".into(),
                url: "http://a".into(),
            }],
            ..SimConfig::default()
        };
        let spec = SiteSpec {
            name: "x".into(),
            region: "r".into(),
            lat: 0.0,
            lon: 0.0,
            software_version: "v".into(),
            enrollment_token: "t".into(),
            controller: None,
        };
        let r = Shared::new(&config, vec![spec.clone(), spec], Transport::new().unwrap());
        assert!(r.is_err());
    }

    #[test]
    fn controller_lists_are_shared() {
        let s = shared(1);
        let list = vec![ControllerRef {
            name: "b".into(),
            url: "http://b".into(),
        }];
        let a = s.share(list.clone());
        let b = s.share(list);
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn site_specs_come_from_enrollments() {
        let e = SiteEnrollment {
            subcloud: "oslo-3".into(),
            token: "mme_x".into(),
            expires_at: engine::time::Millis(0),
            region: "Europe".into(),
            lat: 59.9,
            lon: 10.7,
            software_version: "24.09".into(),
            controller: "sc-a".into(),
        };
        let s = SiteSpec::from(e.clone());
        assert_eq!(
            (s.name.as_str(), s.enrollment_token.as_str()),
            ("oslo-3", "mme_x")
        );
        assert_eq!(s.controller.as_deref(), Some("sc-a"));
        let unnamed = SiteEnrollment {
            controller: " ".into(),
            ..e
        };
        assert_eq!(SiteSpec::from(unnamed).controller, None);
        // Specs written before the field existed still parse.
        let mut json = serde_json::to_value(&s).unwrap();
        json.as_object_mut().unwrap().remove("controller");
        let old: SiteSpec = serde_json::from_value(json).unwrap();
        assert_eq!(old.controller, None);
    }

    fn refs(names: &[&str]) -> Vec<ControllerRef> {
        names
            .iter()
            .map(|n| ControllerRef {
                name: n.to_string(),
                url: format!("http://{n}.test"),
            })
            .collect()
    }

    fn spec(name: &str, controller: Option<&str>) -> SiteSpec {
        SiteSpec {
            name: name.into(),
            region: "Europe".into(),
            lat: 0.0,
            lon: 0.0,
            software_version: "24.09".into(),
            enrollment_token: format!("mme_{name}"),
            controller: controller.map(String::from),
        }
    }

    fn names(list: &[ControllerRef]) -> Vec<&str> {
        list.iter().map(|c| c.name.as_str()).collect()
    }

    #[test]
    fn sites_start_with_their_own_controller_first() {
        let config = SimConfig {
            controllers: refs(&["sc-a", "sc-b", "sc-c"]),
            ..SimConfig::default()
        };
        let specs = vec![
            spec("s0", Some("sc-c")),
            spec("s1", Some("sc-c")),
            spec("s2", None),
            spec("s3", Some("sc-elsewhere")),
            spec("s4", Some("sc-a")),
            spec("s5", Some("sc-b")),
        ];
        let s = Shared::new(&config, specs, Transport::new().unwrap()).unwrap();
        let list = |i| Arc::clone(s.site(i).unwrap().controllers.list());
        assert_eq!(names(&list(0)), ["sc-c", "sc-a", "sc-b"]);
        assert_eq!(names(&list(5)), ["sc-b", "sc-a", "sc-c"]);
        assert!(Arc::ptr_eq(&list(0), &list(1)), "shared between its sites");
        for i in [2, 3, 4] {
            assert_eq!(names(&list(i)), ["sc-a", "sc-b", "sc-c"], "site {i}");
            assert!(Arc::ptr_eq(&list(i), &list(2)));
        }
        // An answer repeating a site's own list gets the shared copy.
        assert!(Arc::ptr_eq(
            &s.share(refs(&["sc-c", "sc-a", "sc-b"])),
            &list(0)
        ));
        assert_eq!(first_at(&refs(&["a"]), "a"), None);
        assert_eq!(first_at(&[], "a"), None);
    }

    #[test]
    fn stats_total_owners_controllers_and_conflicts() {
        use engine::agents::wire::{Enrollment, ReportAnswer};
        let config = SimConfig {
            controllers: refs(&["sc-a", "sc-b"]),
            ..SimConfig::default()
        };
        let specs = (0..4).map(|i| spec(&format!("s{i}"), None)).collect();
        let s = Shared::new(&config, specs, Transport::new().unwrap()).unwrap();
        let answer = |seq, epoch, owners: &[&str]| ReportAnswer {
            protocol: 1,
            accepted_seq: seq,
            owner_epoch: epoch,
            controllers: refs(owners),
            commands: vec![],
            report_interval_ms: 10_000,
        };
        for i in 0..3 {
            let mut site = s.site(i).unwrap();
            let e = Enrollment {
                protocol: 1,
                subcloud: site.name.clone(),
                secret: format!("mms_1_{}", "a".repeat(64)),
                report_interval_ms: 10_000,
                controllers: vec![],
            };
            site.enrolled(&e, 0, None).unwrap();
            site.accepted(0, answer(1, 3, &["sc-a", "sc-b"]), Arc::from);
        }
        // Site 1 moves to sc-b under a new epoch; site 2 hears sc-b claim epoch 3 too.
        s.site(1)
            .unwrap()
            .accepted(0, answer(2, 4, &["sc-b", "sc-a"]), Arc::from);
        s.site(2)
            .unwrap()
            .accepted(1, answer(2, 3, &["sc-b", "sc-a"]), Arc::from);
        let st = s.stats();
        assert_eq!((st.owner_conflicts, st.epoch_regressions), (1, 0));
        let counts = |m: &BTreeMap<String, usize>| {
            m.iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect::<Vec<(String, usize)>>()
        };
        assert_eq!(
            counts(&st.sites_by_owner),
            [("sc-a".to_string(), 1), ("sc-b".to_string(), 2)]
        );
        // Site 1 still reports to sc-a until its next report; site 2 answered on sc-b;
        // site 3 never enrolled.
        assert_eq!(
            counts(&st.sites_by_controller),
            [("sc-a".to_string(), 2), ("sc-b".to_string(), 1)]
        );
        let json = serde_json::to_value(&st).unwrap();
        assert_eq!(json["sites_by_owner"]["sc-b"], 2);
        assert_eq!(json["owner_conflicts"], 1);
        // Stats from a simulator without these keys still parse.
        let mut json = json;
        for key in [
            "sites_by_owner",
            "sites_by_controller",
            "owner_conflicts",
            "epoch_regressions",
        ] {
            json.as_object_mut().unwrap().remove(key);
        }
        let old: SimStats = serde_json::from_value(json).unwrap();
        assert!(old.sites_by_owner.is_empty() && old.owner_conflicts == 0);
    }
}

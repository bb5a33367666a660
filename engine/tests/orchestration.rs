//! The orchestration engine on a real database (SQLite and PostgreSQL): validation, preview,
//! rollouts with waves and parallelism, stop-on-failure, failure budgets, canaries with soak
//! and approval, retries with backoff, rollback, maintenance windows, offline policies, abort
//! in every phase, a controller restart mid-rollout, timeouts and the read models.
//!
//! Agents are simulated by a [`Fleet`] harness that sends real reports through the agent
//! gateway, reads the commands the controller issued from the answers, and reports progress
//! on them in the next reports. Time is driven explicitly (`health_tick(now)`,
//! `orchestration_tick(now)`), starting from a fixed UTC instant, so assertions are exact.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use engine::agents::wire::*;
use engine::agents::IntakePolicy;
use engine::audit::AuditQuery;
use engine::auth::{Actor, Role};
use engine::both_backends;
use engine::events::Event;
use engine::fleet::{AvailabilityStatus, EndpointType, SyncStatus};
use engine::orchestration::*;
use engine::store::Backend;
use engine::testing::{enroll_all, TestDb};
use engine::time::Millis;
use engine::Engine;

both_backends!(
    validation_refuses_bad_requests_and_changes_nothing,
    preview_orders_waves_and_estimates_from_history,
    full_rollout_respects_max_parallel_and_completes,
    stop_on_failure_starts_nothing_new_and_fails,
    failure_budget_pauses_or_aborts,
    canary_soaks_then_waits_for_approval,
    retries_back_off_then_fail_or_roll_back,
    maintenance_windows_follow_site_time_zones,
    offline_policy_waits_skips_or_fails,
    abort_works_in_every_phase,
    restart_mid_rollout_resumes_without_duplicates,
    silent_and_stuck_steps_time_out_without_retry,
    steps_pages_filters_and_overview,
    strategies_share_sites_one_step_at_a_time,
    two_controllers_ticking_at_once_launch_each_step_once,
    peer_copies_apply_by_handover_and_stay_read_only,
);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

const INTERVAL: i64 = 1_000;
/// 2030-01-15T12:00:00Z: every test starts here.
const T0: i64 = 1_894_708_800_000;

fn policy() -> IntakePolicy {
    engine::testing::intake_policy(INTERVAL)
}

fn operator() -> Actor {
    engine::testing::user_actor("op", Role::Operator)
}

fn viewer() -> Actor {
    engine::testing::user_actor("view", Role::Viewer)
}

/// How a simulated agent handles one command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Agent {
    /// Acknowledges, reports its phases (`Fleet::work` reports), then succeeds.
    Succeed,
    /// Like `Succeed`, but fails in its second phase.
    Fail,
    /// Acknowledges and stays in its first phase until told otherwise.
    Hold,
    /// Never acknowledges.
    Silent,
}

/// A command an agent received.
#[derive(Debug)]
struct Job {
    id: i64,
    action: CommandAction,
    agent: Agent,
    /// Reports sent since it arrived.
    age: u32,
    /// The final state was reported.
    done: bool,
}

impl Job {
    fn progress(&mut self, work: u32) -> Option<CommandProgress> {
        let phases = self.action.phases();
        let phase = |i: usize| {
            phases
                .get(i.min(phases.len().saturating_sub(1)))
                .map(|p| p.to_string())
        };
        let running = |phase: Option<String>, percent: u8| CommandProgress {
            id: self.id,
            state: CommandState::Running,
            percent,
            message: String::new(),
            phase,
        };
        match self.agent {
            Agent::Silent => None,
            Agent::Hold => {
                self.age += 1;
                Some(running(phase(0), 10))
            }
            Agent::Succeed | Agent::Fail => {
                self.age += 1;
                if self.age <= work {
                    let i = self.age as usize - 1;
                    let percent = u8::try_from(self.age * 100 / (work + 1)).unwrap_or(50);
                    return Some(running(phase(i), percent));
                }
                self.done = true;
                Some(if self.agent == Agent::Succeed {
                    CommandProgress {
                        id: self.id,
                        state: CommandState::Succeeded,
                        percent: 100,
                        message: "done".into(),
                        phase: phase(phases.len()),
                    }
                } else {
                    CommandProgress {
                        id: self.id,
                        state: CommandState::Failed,
                        percent: 40,
                        message: "injected failure".into(),
                        phase: phase(1),
                    }
                })
            }
        }
    }
}

/// One simulated subcloud with its agent.
#[derive(Debug)]
struct Site {
    name: String,
    secret: String,
    /// The software version the agent reports (follows successful deploys and rollbacks).
    version: String,
    timezone: String,
    group: String,
    seq: u64,
    /// Sends no reports.
    down: bool,
    /// How the next commands are handled (then `Fleet::default`).
    plan: VecDeque<Agent>,
    jobs: Vec<Job>,
    /// Ids delivered again after the first time.
    redelivered: Vec<i64>,
}

impl Site {
    /// The next report: progress on every command in hand.
    fn report(&mut self, work: u32, now: i64) -> Report {
        let mut commands = Vec::new();
        for j in self.jobs.iter_mut().filter(|j| !j.done) {
            if let Some(p) = j.progress(work) {
                if p.state == CommandState::Succeeded {
                    match &j.action {
                        CommandAction::SoftwareDeploy { release } => self.version = release.clone(),
                        CommandAction::Rollback { to, .. } => self.version = to.clone(),
                        _ => {}
                    }
                }
                commands.push(p);
            }
        }
        self.heartbeat(commands, now)
    }

    /// A report carrying only `commands` (an agent that lost track of its work sends none).
    fn heartbeat(&mut self, commands: Vec<CommandProgress>, now: i64) -> Report {
        self.seq += 1;
        Report {
            protocol: PROTOCOL_VERSION,
            seq: self.seq,
            sent_at: Millis(now),
            health: SiteHealth::Healthy,
            software_version: self.version.clone(),
            endpoints: EndpointType::ALL
                .iter()
                .map(|e| EndpointSync {
                    endpoint_type: *e,
                    sync_status: SyncStatus::InSync,
                })
                .collect(),
            alarms: vec![],
            capacity: Capacity {
                cpu_cores: 32,
                memory_gib: 128,
                storage_gib: 2000,
                hosts: 2,
            },
            commands,
            reachability: vec![Reachability {
                controller: "local".into(),
                reachable: true,
                rtt_ms: Some(12),
            }],
            highest_epoch: 1,
            agent_version: "test".into(),
        }
    }
}

/// A command as a site received it.
#[derive(Debug, Clone)]
struct Issued {
    at: i64,
    site: String,
    id: i64,
    action: CommandAction,
}

/// A seeded fleet whose every subcloud has an enrolled, simulated agent.
struct Fleet {
    // Dropped before the database.
    engine: Engine,
    db: TestDb,
    /// In plan order: by group, then name.
    sites: Vec<Site>,
    now: i64,
    default: Agent,
    /// Running reports before a `Succeed`/`Fail` job reports its outcome.
    work: u32,
    issued: Vec<Issued>,
}

impl Fleet {
    async fn new(b: Backend, n: u32) -> Self {
        let db = TestDb::new(b).await;
        let engine = db.engine().await;
        engine.seed_demo(n).await.unwrap();
        engine.start_agent_gateway(policy()).await.unwrap();
        let mut secrets: HashMap<String, String> = enroll_all(&engine).await.into_iter().collect();
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT s.name, s.software_version, s.timezone, g.name FROM subclouds s \
             JOIN subcloud_groups g ON g.id = s.group_id ORDER BY s.group_id, s.name",
        )
        .fetch_all(engine.store().pool())
        .await
        .unwrap();
        let sites = rows
            .into_iter()
            .map(|(name, version, timezone, group)| Site {
                secret: secrets.remove(&name).expect("enrolled"),
                name,
                version,
                timezone,
                group,
                seq: 0,
                down: false,
                plan: VecDeque::new(),
                jobs: Vec::new(),
                redelivered: Vec::new(),
            })
            .collect();
        let mut f = Self {
            engine,
            db,
            sites,
            now: T0 - INTERVAL,
            default: Agent::Succeed,
            work: 1,
            issued: Vec::new(),
        };
        // Two good reports bring every site online (seeded offline ones included).
        f.tick().await;
        f.tick().await;
        for s in &f.sites {
            assert_eq!(
                f.availability(&s.name).await,
                AvailabilityStatus::Online,
                "{}",
                s.name
            );
        }
        f
    }

    /// Every site that is up reports at `t`; then the health monitor and the orchestrator tick.
    async fn tick_at(&mut self, t: i64) -> OrchestratorTick {
        self.report_at(t).await;
        self.engine.orchestration_tick(Millis(t)).await.unwrap()
    }

    /// Every site that is up reports at `t`; then the health monitor ticks (not the
    /// orchestrator).
    async fn report_at(&mut self, t: i64) {
        assert!(t > self.now, "time only moves forward");
        self.now = t;
        let g = self.engine.agent_gateway().expect("gateway").clone();
        for s in self.sites.iter_mut().filter(|s| !s.down) {
            let r = s.report(self.work, t);
            let answer = g.accept_report(&s.secret, r, Millis(t)).unwrap();
            for c in answer.commands {
                if s.jobs.iter().any(|j| j.id == c.id) {
                    s.redelivered.push(c.id);
                    continue;
                }
                let agent = s.plan.pop_front().unwrap_or(self.default);
                self.issued.push(Issued {
                    at: t,
                    site: s.name.clone(),
                    id: c.id,
                    action: c.action.clone(),
                });
                s.jobs.push(Job {
                    id: c.id,
                    action: c.action,
                    agent,
                    age: 0,
                    done: false,
                });
            }
        }
        self.engine.health_tick(Millis(t)).await.unwrap();
    }

    async fn tick(&mut self) -> OrchestratorTick {
        self.tick_at(self.now + INTERVAL).await
    }

    /// A new controller process on the same database (the old one is dropped).
    async fn restart(&mut self) {
        let engine = self.db.engine().await;
        engine.start_agent_gateway(policy()).await.unwrap();
        self.engine = engine;
    }

    fn site(&mut self, name: &str) -> &mut Site {
        self.sites
            .iter_mut()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no site {name}"))
    }

    /// The next commands `name` receives are handled like this.
    fn plan(&mut self, name: &str, agents: &[Agent]) {
        self.site(name).plan.extend(agents.iter().copied());
    }

    /// Changes how `name` handles the commands it is working on.
    fn release(&mut self, name: &str, agent: Agent) {
        for j in self.site(name).jobs.iter_mut().filter(|j| !j.done) {
            j.agent = agent;
        }
    }

    /// The largest subcloud group of the fleet and its sites in plan order.
    fn biggest_group(&self) -> (String, Vec<String>) {
        let mut by: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in &self.sites {
            by.entry(&s.group).or_default().push(s.name.clone());
        }
        let (g, names) = by.into_iter().max_by_key(|(_, v)| v.len()).unwrap();
        (g.to_string(), names)
    }

    async fn availability(&self, name: &str) -> AvailabilityStatus {
        self.engine
            .subcloud_detail(name)
            .await
            .unwrap()
            .summary
            .availability
    }

    async fn start(&self, new: &NewStrategy) -> i64 {
        let id = self.engine.create_strategy(&operator(), new).await.unwrap();
        assert_eq!(
            self.engine
                .strategy_action(&operator(), id, StrategyAction::Apply)
                .await
                .unwrap(),
            StrategyState::Applying
        );
        id
    }

    /// Created (as the operator) but not applied.
    async fn create(&self, s: &NewStrategy) -> i64 {
        self.engine.create_strategy(&operator(), s).await.unwrap()
    }

    async fn act(&self, id: i64, a: StrategyAction) -> StrategyState {
        self.engine
            .strategy_action(&operator(), id, a)
            .await
            .unwrap()
    }

    async fn detail(&self, id: i64) -> StrategyDetail {
        self.engine
            .strategy_detail(&Actor::system(), id)
            .await
            .unwrap()
    }

    async fn state(&self, id: i64) -> StrategyState {
        self.detail(id).await.summary.state
    }

    /// All steps in execution order.
    async fn steps(&self, id: i64) -> Vec<StepRow> {
        let q = StepQuery {
            per_page: StepQuery::MAX_PER_PAGE,
            ..Default::default()
        };
        self.engine
            .strategy_steps(&Actor::system(), id, &q)
            .await
            .unwrap()
            .rows
    }

    async fn step(&self, id: i64, name: &str) -> StepRow {
        self.steps(id)
            .await
            .into_iter()
            .find(|s| s.subcloud == name)
            .unwrap_or_else(|| panic!("no step for {name}"))
    }

    async fn step_names(&self, id: i64) -> Vec<String> {
        self.steps(id)
            .await
            .into_iter()
            .map(|s| s.subcloud)
            .collect()
    }

    /// Steps in flight according to the step table itself.
    async fn in_flight(&self, id: i64) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM strategy_steps WHERE strategy_id = $1 \
             AND state IN ('queued', 'running', 'rolling back')",
        )
        .bind(id)
        .fetch_one(self.engine.store().pool())
        .await
        .unwrap()
    }

    /// Commands the strategy created, per subcloud name.
    async fn commands_per_site(&self, id: i64) -> BTreeMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT s.name, COUNT(*) FROM subcloud_commands c JOIN subclouds s ON s.id = c.subcloud_id \
             WHERE c.created_by = $1 GROUP BY s.name",
        )
        .bind(format!("strategy:{id}"))
        .fetch_all(self.engine.store().pool())
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    async fn command_count(&self, id: i64) -> i64 {
        self.commands_per_site(id).await.values().sum()
    }

    /// Command ids the strategy created, oldest first.
    async fn command_ids(&self, id: i64) -> Vec<i64> {
        sqlx::query_scalar("SELECT id FROM subcloud_commands WHERE created_by = $1 ORDER BY id")
            .bind(format!("strategy:{id}"))
            .fetch_all(self.engine.store().pool())
            .await
            .unwrap()
    }

    /// What sites received of the strategy's commands.
    async fn issued_for(&self, id: i64) -> Vec<Issued> {
        let ids: HashSet<i64> = self.command_ids(id).await.into_iter().collect();
        self.issued
            .iter()
            .filter(|i| ids.contains(&i.id))
            .cloned()
            .collect()
    }

    /// Ticks until the strategy is finished; returns its final state.
    async fn run(&mut self, id: i64, max_ticks: u32) -> StrategyState {
        for _ in 0..max_ticks {
            self.tick().await;
            let s = self.state(id).await;
            if s.is_terminal() {
                return s;
            }
        }
        panic!(
            "strategy {id} still {} after {max_ticks} ticks: {:?}",
            self.state(id).await,
            self.steps(id).await
        );
    }

    /// Ticks until `pred` holds for the strategy's detail.
    async fn until(
        &mut self,
        id: i64,
        max_ticks: u32,
        what: &str,
        pred: impl Fn(&StrategyDetail) -> bool,
    ) -> StrategyDetail {
        for _ in 0..max_ticks {
            self.tick().await;
            let d = self.detail(id).await;
            if pred(&d) {
                return d;
            }
        }
        panic!("strategy {id}: never {what}: {:?}", self.detail(id).await);
    }

    /// Ticks until `pred` holds for one site's step.
    async fn until_step(
        &mut self,
        id: i64,
        name: &str,
        max_ticks: u32,
        pred: impl Fn(&StepRow) -> bool,
    ) -> StepRow {
        for _ in 0..max_ticks {
            self.tick().await;
            let st = self.step(id, name).await;
            if pred(&st) {
                return st;
            }
        }
        panic!("{name}: never reached: {:?}", self.step(id, name).await);
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.engine.store().pool())
            .await
            .unwrap()
    }
}

fn deploy(target: Target, release: &str) -> NewStrategy {
    let mut s = NewStrategy::new(StrategyType::SwDeploy, target);
    s.release = Some(release.into());
    s
}

/// sw-deploy of `release` over the sites of `group`, `max_parallel` at a time in one wave.
fn deploy_group(group: &str, release: &str, max_parallel: u32) -> NewStrategy {
    let mut s = deploy(
        Target::Filter {
            query: format!("group={group}"),
        },
        release,
    );
    s.apply_type = Some(ApplyType::Parallel);
    s.max_parallel = Some(max_parallel);
    s
}

fn subcloud(name: &str) -> Target {
    Target::Subcloud { name: name.into() }
}

fn field_of<T: std::fmt::Debug>(r: engine::error::Result<T>) -> engine::ValidationError {
    match r {
        Err(engine::Error::Validation(v)) => v,
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Site-local minute of the day at `ms`.
fn local_minute(tz: &str, ms: i64) -> u16 {
    let zone = jiff::tz::TimeZone::get(tz).unwrap_or_else(|e| panic!("{tz}: {e}"));
    let dt = zone.to_datetime(jiff::Timestamp::from_millisecond(ms).unwrap());
    u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap()
}

fn has_audit(rows: &[engine::audit::AuditRecord], action: &str) -> bool {
    rows.iter().any(|r| r.entry.action == action)
}

// ---------------------------------------------------------------------------------------------
// 1. Validation
// ---------------------------------------------------------------------------------------------

async fn validation_refuses_bad_requests_and_changes_nothing(b: Backend) {
    let f = Fleet::new(b, 6).await;
    let e = &f.engine;
    let op = operator();
    let group = f.sites[0].group.clone();
    let all = || deploy(Target::All, "26.03");
    let kube = |v: &str| {
        let mut s = NewStrategy::new(StrategyType::Kubernetes, Target::All);
        s.to_version = Some(v.into());
        s
    };
    let mut cases: Vec<(&str, NewStrategy, &str, &str)> = Vec::new();
    cases.push((
        "missing release",
        NewStrategy::new(StrategyType::SwDeploy, Target::All),
        "release",
        "needs release",
    ));
    cases.push((
        "unknown release",
        deploy(Target::All, "99.99"),
        "release",
        "unknown release",
    ));
    cases.push((
        "unknown kubernetes version",
        kube("v9.9.9"),
        "to_version",
        "unknown Kubernetes version",
    ));
    for mp in [0, 5001] {
        let mut s = all();
        s.max_parallel = Some(mp);
        cases.push((
            "max parallel out of range",
            s,
            "max_parallel",
            "between 1 and 5000",
        ));
    }
    let mut s = NewStrategy::new(StrategyType::Prestage, Target::All);
    s.release = Some("26.03".into());
    s.max_parallel = Some(251);
    cases.push((
        "prestage max parallel",
        s,
        "max_parallel",
        "between 1 and 250",
    ));
    let mut s = deploy(
        Target::Group {
            name: group.clone(),
        },
        "26.03",
    );
    s.max_parallel = Some(2);
    cases.push((
        "max parallel with a group",
        s,
        "max_parallel",
        "subcloud group",
    ));
    let mut s = deploy(
        Target::Group {
            name: group.clone(),
        },
        "26.03",
    );
    s.apply_type = Some(ApplyType::Serial);
    cases.push(("apply type with a group", s, "apply_type", "subcloud group"));
    cases.push((
        "empty target",
        deploy(
            Target::Filter {
                query: "q=no-such-site-anywhere".into(),
            },
            "26.03",
        ),
        "target",
        "matches no subcloud",
    ));
    cases.push((
        "misspelt filter",
        deploy(
            Target::Filter {
                query: "search=paris".into(),
            },
            "26.03",
        ),
        "target_query",
        "unknown filter \"search\"",
    ));
    cases.push((
        "unknown subcloud",
        deploy(subcloud("atlantis-0001"), "26.03"),
        "target_name",
        "no subcloud named",
    ));
    cases.push((
        "unknown group",
        deploy(
            Target::Group {
                name: "no-such-group".into(),
            },
            "26.03",
        ),
        "target_name",
        "no subcloud group named",
    ));
    cases.push((
        "unknown peer group",
        deploy(
            Target::PeerGroup {
                name: "pg-mars".into(),
            },
            "26.03",
        ),
        "target_name",
        "no peer group named",
    ));
    for (start, end) in [(1500, 60), (120, 120)] {
        let mut s = all();
        s.window = Some(MaintenanceWindow {
            start_minute: start,
            end_minute: end,
        });
        cases.push(("bad window", s, "window", "maintenance window"));
    }
    let mut s = all();
    s.retries = 11;
    cases.push(("too many retries", s, "retries", "between 0 and 10"));
    let mut s = kube("v1.31.5");
    s.rollback = true;
    cases.push(("rollback on kubernetes", s, "rollback", "takes no rollback"));
    let mut s = all();
    s.step_timeout_secs = 5;
    cases.push(("step timeout", s, "step_timeout_secs", "between 10"));
    for (size, message) in [
        (Amount::Sites(0), "at least 1 site"),
        (Amount::Percent(0), "at least 1 site"),
        (Amount::Percent(150), "1% to 100%"),
    ] {
        let mut s = all();
        s.canary = Some(Canary {
            size,
            soak_secs: 0,
            approval: CanaryApproval::Automatic,
        });
        cases.push(("canary size", s, "canary_size", message));
    }
    let mut s = all();
    s.failure_budget = Some(FailureBudget {
        max_failures: Amount::Percent(101),
        action: BudgetAction::Pause,
    });
    cases.push(("budget share", s, "budget_max", "1% to 100%"));
    for (label, s, field, message) in &cases {
        for v in [
            field_of(e.preview_strategy(&op, s).await),
            field_of(e.create_strategy(&op, s).await),
        ] {
            assert_eq!(v.field, *field, "{label}: {v:?}");
            assert!(v.message.contains(message), "{label}: {v:?}");
        }
    }
    // Nothing was written.
    for table in ["strategies", "strategy_waves", "strategy_steps"] {
        assert_eq!(
            f.count(&format!("SELECT COUNT(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
    assert_eq!(
        f.count("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'strategy.%'")
            .await,
        0
    );
    // The limits themselves are allowed.
    let mut s = all();
    s.max_parallel = Some(5000);
    e.preview_strategy(&op, &s).await.unwrap();
    let mut s = NewStrategy::new(StrategyType::Prestage, Target::All);
    s.release = Some("26.03".into());
    s.max_parallel = Some(250);
    e.preview_strategy(&op, &s).await.unwrap();
    // Viewers may preview but not create or act.
    e.preview_strategy(&viewer(), &all()).await.unwrap();
    assert!(matches!(
        e.create_strategy(&viewer(), &all()).await,
        Err(engine::Error::Forbidden(_))
    ));
    // One active strategy per type; another type is fine.
    let id = e.create_strategy(&op, &all()).await.unwrap();
    assert!(matches!(
        e.strategy_action(&viewer(), id, StrategyAction::Apply)
            .await,
        Err(engine::Error::Forbidden(_))
    ));
    match e.create_strategy(&op, &deploy(Target::All, "25.09")).await {
        Err(engine::Error::Conflict(m)) => assert!(m.contains("already active"), "{m}"),
        other => panic!("{other:?}"),
    }
    let kid = e.create_strategy(&op, &kube("v1.31.5")).await.unwrap();
    assert_ne!(id, kid);
    assert_eq!(f.count("SELECT COUNT(*) FROM strategies").await, 2);
    // Aborting the unapplied one frees its type; its steps are aborted.
    assert_eq!(
        f.act(id, StrategyAction::Abort).await,
        StrategyState::Aborted
    );
    let d = f.detail(id).await;
    assert_eq!(d.counts.get(StepState::Aborted), 6);
    assert_eq!(d.summary.aborted, 6);
    assert!(f
        .steps(id)
        .await
        .iter()
        .all(|s| s.state == StepState::Aborted
            && s.finished_at.is_some()
            && s.details == "aborted before the strategy was applied"));
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert!(matches!(
        e.strategy_action(&op, id, StrategyAction::Apply).await,
        Err(engine::Error::Conflict(_))
    ));
    e.create_strategy(&op, &all()).await.unwrap();
}

// ---------------------------------------------------------------------------------------------
// 2. Preview
// ---------------------------------------------------------------------------------------------

async fn preview_orders_waves_and_estimates_from_history(b: Backend) {
    let mut f = Fleet::new(b, 12).await;
    let op = operator();
    let mut s = deploy(Target::All, "26.03");
    s.apply_type = Some(ApplyType::Parallel);
    s.max_parallel = Some(2);
    s.canary = Some(Canary {
        size: Amount::Sites(2),
        soak_secs: 600,
        approval: CanaryApproval::Operator,
    });
    let p = f.engine.preview_strategy(&op, &s).await.unwrap();
    // Expected: the first two sites in plan order, then one wave per group in order.
    let names: Vec<String> = f.sites.iter().map(|s| s.name.clone()).collect();
    let mut expected: Vec<(String, Vec<String>)> = vec![("canary".into(), names[..2].to_vec())];
    for s in &f.sites[2..] {
        match expected.last_mut() {
            Some((g, v)) if *g == format!("group {}", s.group) => v.push(s.name.clone()),
            _ => expected.push((format!("group {}", s.group), vec![s.name.clone()])),
        }
    }
    assert_eq!(p.total_sites, 12);
    assert_eq!(p.waves.len(), expected.len());
    assert_eq!(p.waves.iter().map(|w| w.sites).sum::<u64>(), 12);
    assert_eq!(p.step_estimate_ms, 180_000);
    assert_eq!(p.estimate_from, 0);
    assert_eq!(p.args, "release 26.03");
    assert_eq!(p.offline_now, 0);
    let mut eta = 0;
    for (i, (w, (name, sites))) in p.waves.iter().zip(&expected).enumerate() {
        assert_eq!(w.index as usize, i);
        assert_eq!(&w.name, name);
        assert_eq!(w.sites as usize, sites.len());
        assert_eq!(w.first_sites, *sites, "{name}");
        assert_eq!(w.max_parallel, 2);
        let soak = if i == 0 { 600_000 } else { 0 };
        let wave_eta = (sites.len() as i64 + 1) / 2 * 180_000 + soak;
        assert_eq!(w.eta_ms, wave_eta, "{name}");
        eta += wave_eta;
    }
    assert_eq!(p.eta_ms, eta);
    // A group target uses the group's own apply type and parallelism.
    let group = f.sites[5].group.clone();
    let (apply, mp): (String, i64) = sqlx::query_as(
        "SELECT update_apply_type, max_parallel_subclouds FROM subcloud_groups WHERE name = $1",
    )
    .bind(&group)
    .fetch_one(f.engine.store().pool())
    .await
    .unwrap();
    let in_group = f.sites.iter().filter(|s| s.group == group).count() as u64;
    let gp = f
        .engine
        .preview_strategy(
            &op,
            &deploy(
                Target::Group {
                    name: group.clone(),
                },
                "26.03",
            ),
        )
        .await
        .unwrap();
    assert_eq!(gp.waves.len(), 1);
    assert_eq!(gp.waves[0].sites, in_group);
    assert_eq!(gp.waves[0].apply_type.as_str(), apply);
    let want_mp = if apply == "serial" { 1 } else { mp as u32 };
    assert_eq!(gp.waves[0].max_parallel, want_mp);
    assert_eq!(
        gp.eta_ms,
        in_group.div_ceil(u64::from(want_mp)) as i64 * 180_000
    );
    // Nothing was created by previews.
    assert_eq!(f.count("SELECT COUNT(*) FROM strategies").await, 0);

    // Record two step durations: 3 000 ms, then 5 001 ms.
    let a = f.sites[0].name.clone();
    let id = f.start(&deploy(subcloud(&a), "26.03")).await;
    assert_eq!(f.run(id, 20).await, StrategyState::Complete);
    let st = f.step(id, &a).await;
    assert_eq!(st.finished_at.unwrap().0 - st.started_at.unwrap().0, 3_000);
    let bsite = f.sites[1].name.clone();
    f.plan(&bsite, &[Agent::Hold]);
    let id = f.start(&deploy(subcloud(&bsite), "26.03")).await;
    f.until(id, 10, "running", |d| d.counts.get(StepState::Running) == 1)
        .await;
    f.tick().await;
    f.tick().await;
    f.release(&bsite, Agent::Succeed);
    f.tick_at(f.now + INTERVAL + 1).await;
    assert_eq!(f.state(id).await, StrategyState::Complete);
    let st = f.step(id, &bsite).await;
    assert_eq!(st.finished_at.unwrap().0 - st.started_at.unwrap().0, 5_001);
    // The estimate is now their average (rounded alike on both backends).
    let p = f.engine.preview_strategy(&op, &s).await.unwrap();
    assert_eq!(p.estimate_from, 2);
    assert_eq!(p.step_estimate_ms, 4_001);
    let eta: i64 = expected
        .iter()
        .map(|(_, v)| (v.len() as i64 + 1) / 2 * 4_001)
        .sum::<i64>()
        + 600_000;
    assert_eq!(p.eta_ms, eta);
    // Other types keep their default.
    let mut k = NewStrategy::new(StrategyType::Kubernetes, Target::All);
    k.to_version = Some("v1.31.5".into());
    let kp = f.engine.preview_strategy(&op, &k).await.unwrap();
    assert_eq!((kp.step_estimate_ms, kp.estimate_from), (120_000, 0));
    // A new strategy carries the estimate.
    let id = f.engine.create_strategy(&op, &s).await.unwrap();
    assert_eq!(f.detail(id).await.step_estimate_ms, 4_001);
}

// ---------------------------------------------------------------------------------------------
// 3. A full rollout
// ---------------------------------------------------------------------------------------------

async fn full_rollout_respects_max_parallel_and_completes(b: Backend) {
    let mut f = Fleet::new(b, 12).await;
    let mut rx = f.engine.events().subscribe();
    let mut s = deploy(Target::All, "26.03");
    s.apply_type = Some(ApplyType::Parallel);
    s.max_parallel = Some(3);
    let id = f.start(&s).await;
    let waves = f.detail(id).await.waves;
    let biggest = waves.iter().map(|w| w.sites).max().unwrap();
    let mut max_seen = 0;
    let mut state = StrategyState::Applying;
    for _ in 0..200 {
        f.tick().await;
        let n = f.in_flight(id).await;
        let d = f.detail(id).await;
        assert!(n <= 3, "{n} steps in flight");
        assert_eq!(d.summary.in_flight, n as u64);
        // Commands open on the sites (issued and not finished) never exceed it either.
        let open = f
            .count(&format!(
                "SELECT COUNT(*) FROM subcloud_commands WHERE created_by = 'strategy:{id}' \
                 AND state IN ('queued', 'running')"
            ))
            .await;
        assert!(open <= 3, "{open} commands open");
        // Waves run one after another.
        let running: Vec<_> = d
            .waves
            .iter()
            .filter(|w| w.counts.in_flight() > 0)
            .collect();
        assert!(running.len() <= 1, "{running:?}");
        max_seen = max_seen.max(n);
        state = d.summary.state;
        if state.is_terminal() {
            break;
        }
    }
    assert_eq!(state, StrategyState::Complete);
    assert_eq!(max_seen, 3.min(biggest as i64), "parallelism is used");
    // Every site got exactly one command, and it was the deploy.
    let per_site = f.commands_per_site(id).await;
    assert_eq!(per_site.len(), 12);
    assert!(per_site.values().all(|n| *n == 1), "{per_site:?}");
    let issued = f.issued_for(id).await;
    assert_eq!(issued.len(), 12);
    assert!(issued.iter().all(|i| i.action
        == CommandAction::SoftwareDeploy {
            release: "26.03".into()
        }));
    let d = f.detail(id).await;
    let sm = &d.summary;
    assert_eq!(
        (
            sm.total,
            sm.complete,
            sm.failed,
            sm.skipped,
            sm.aborted,
            sm.in_flight
        ),
        (12, 12, 0, 0, 0, 0)
    );
    assert_eq!(sm.percent(), 100);
    assert!(sm.finished_at.is_some() && sm.started_at.is_some());
    assert_eq!(sm.eta_ms, None);
    assert!(sm.reason.is_empty(), "{}", sm.reason);
    assert!(d
        .waves
        .iter()
        .all(|w| w.state == WaveState::Complete && w.finished_at.is_some()));
    assert!(d.actions.is_empty());
    let steps = f.steps(id).await;
    assert!(steps.iter().all(|s| s.state == StepState::Complete
        && s.attempt == 1
        && s.percent == 100
        && s.phase == "finish sw-deploy strategy"));
    // Steps ran in plan order: each started no earlier than the one before it.
    for w in steps.windows(2) {
        assert!(w[0].started_at <= w[1].started_at, "{w:?}");
    }
    // Audit trail.
    let audit = f
        .engine
        .audit_page(
            &operator(),
            &AuditQuery {
                target: Some(format!("strategy:{id}")),
                per_page: 200,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .rows;
    for action in ["strategy.created", "strategy.apply", "strategy.completed"] {
        assert!(has_audit(&audit, action), "{action}: {audit:?}");
    }
    let created = audit
        .iter()
        .find(|a| a.entry.action == "strategy.created")
        .unwrap();
    assert_eq!(created.entry.actor, "op");
    // Events: created, applying and complete were published.
    let mut states = Vec::new();
    loop {
        match rx.try_recv() {
            Ok(Event::StrategyChanged { id: eid, state, .. }) if eid == id => states.push(state),
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
            Err(_) => break,
        }
    }
    for s in ["initial", "applying", "complete"] {
        assert!(states.iter().any(|x| x == s), "{s}: {states:?}");
    }
    // The fleet now reports the release; the overview shows it.
    let o = f
        .engine
        .deployment_overview(&Actor::system())
        .await
        .unwrap();
    assert_eq!(o.versions, vec![("26.03".to_string(), 12)]);
    assert!(o.active.is_empty());
    assert_eq!(o.last_finished.map(|s| s.id), Some(id));
    // The per-site estimate is now this rollout's own average step time.
    let steps = f.steps(id).await;
    let total: i64 = steps
        .iter()
        .map(|st| st.finished_at.unwrap().0 - st.started_at.unwrap().0)
        .sum();
    let d = f.detail(id).await;
    assert_eq!(d.step_estimate_ms, total / steps.len() as i64);
    assert_ne!(d.step_estimate_ms, StrategyType::SwDeploy.default_step_ms());
    // More ticks change nothing.
    let before = f.command_count(id).await;
    for _ in 0..3 {
        assert_eq!(f.tick().await, OrchestratorTick::default());
    }
    assert_eq!(f.command_count(id).await, before);
}

// ---------------------------------------------------------------------------------------------
// 4. Stop on failure
// ---------------------------------------------------------------------------------------------

async fn stop_on_failure_starts_nothing_new_and_fails(b: Backend) {
    let mut f = Fleet::new(b, 16).await;
    let (group, _) = f.biggest_group();
    let mut s = deploy_group(&group, "26.03", 2);
    s.stop_on_failure = true;
    s.retries = 0;
    let id = f.create(&s).await;
    let order = f.step_names(id).await;
    assert!(order.len() >= 4, "{order:?}");
    f.plan(&order[0], &[Agent::Fail]);
    f.plan(&order[1], &[Agent::Hold]);
    f.act(id, StrategyAction::Apply).await;
    let d = f
        .until(id, 10, "a failure", |d| d.summary.failed == 1)
        .await;
    // Nothing new starts; the rest is aborted; the running step goes on.
    assert_eq!(d.summary.state, StrategyState::Applying);
    assert!(
        d.summary.reason.contains("stopped on failure"),
        "{}",
        d.summary.reason
    );
    assert_eq!(d.summary.in_flight, 1);
    assert_eq!(d.summary.aborted as usize, order.len() - 2);
    let issued = f.command_count(id).await;
    assert_eq!(issued, 2);
    let failed = f.step(id, &order[0]).await;
    assert_eq!(failed.state, StepState::Failed);
    assert!(
        failed.details.contains("injected failure"),
        "{}",
        failed.details
    );
    assert_eq!(failed.phase, "sw-deploy install license");
    for n in &order[2..] {
        let st = f.step(id, n).await;
        assert_eq!(st.state, StepState::Aborted);
        assert!(st.details.contains("stops on failure"), "{}", st.details);
    }
    for _ in 0..3 {
        f.tick().await;
        assert_eq!(f.state(id).await, StrategyState::Applying);
    }
    f.release(&order[1], Agent::Succeed);
    assert_eq!(f.run(id, 5).await, StrategyState::Failed);
    let d = f.detail(id).await;
    assert_eq!(f.command_count(id).await, issued, "no new commands");
    assert_eq!(f.step(id, &order[1]).await.state, StepState::Complete);
    assert_eq!(
        (
            d.summary.complete,
            d.summary.failed,
            d.summary.aborted as usize
        ),
        (1, 1, order.len() - 2)
    );
    assert!(
        d.summary.reason.contains("stopped on failure"),
        "{}",
        d.summary.reason
    );
    assert!(d.waves.iter().all(|w| w.state == WaveState::Stopped));
    assert_eq!(d.failures.len(), 1);
    assert_eq!(d.failures[0].subcloud, order[0]);

    // The last step failing (nothing left to abort) still fails the strategy with a reason.
    let last = f.sites[0].name.clone();
    f.plan(&last, &[Agent::Fail]);
    let mut s = deploy(subcloud(&last), "26.03");
    s.stop_on_failure = true;
    let id = f.start(&s).await;
    assert_eq!(f.run(id, 10).await, StrategyState::Failed);
    let r = f.detail(id).await.summary.reason;
    assert!(r.contains("stopped on failure") && r.contains('1'), "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// 5. Failure budget
// ---------------------------------------------------------------------------------------------

async fn failure_budget_pauses_or_aborts(b: Backend) {
    let mut f = Fleet::new(b, 16).await;
    let (group, _) = f.biggest_group();
    // Pause after more than one failure.
    let mut s = deploy_group(&group, "26.03", 2);
    s.failure_budget = Some(FailureBudget {
        max_failures: Amount::Sites(1),
        action: BudgetAction::Pause,
    });
    let id = f.create(&s).await;
    let order = f.step_names(id).await;
    let n = order.len() as u64;
    assert!(n >= 5, "{order:?}");
    f.plan(&order[0], &[Agent::Fail]);
    f.plan(&order[2], &[Agent::Fail]);
    f.plan(&order[3], &[Agent::Hold]);
    f.act(id, StrategyAction::Apply).await;
    // One failure is within the budget: the rollout goes on.
    let d = f
        .until(id, 10, "first failure", |d| d.summary.failed == 1)
        .await;
    assert_eq!(d.summary.state, StrategyState::Applying);
    let d = f
        .until(id, 10, "paused", |d| {
            d.summary.state == StrategyState::Paused
        })
        .await;
    assert_eq!(d.summary.failed, 2);
    assert!(
        d.summary.reason.contains("failure budget exceeded")
            && d.summary.reason.contains(&format!("2 of {n} sites failed")),
        "{}",
        d.summary.reason
    );
    assert_eq!(
        d.actions,
        vec![StrategyAction::Resume, StrategyAction::Abort]
    );
    let audit = f.engine.recent_audit(50).await.unwrap();
    assert!(has_audit(&audit, "strategy.budget_exceeded"));
    // Paused: the running step finishes, nothing new starts.
    let issued = f.command_count(id).await;
    assert_eq!(issued, 4);
    f.release(&order[3], Agent::Succeed);
    for _ in 0..4 {
        f.tick().await;
    }
    let d = f.detail(id).await;
    assert_eq!(d.summary.state, StrategyState::Paused);
    assert_eq!(d.summary.in_flight, 0);
    assert_eq!(f.step(id, &order[3]).await.state, StepState::Complete);
    assert_eq!(f.command_count(id).await, issued);
    // Resume: the rest runs; the failures make the strategy fail in the end.
    assert_eq!(
        f.act(id, StrategyAction::Resume).await,
        StrategyState::Applying
    );
    assert_eq!(f.run(id, 60).await, StrategyState::Failed);
    let d = f.detail(id).await;
    assert_eq!((d.summary.complete, d.summary.failed), (n - 2, 2));
    assert_eq!(d.summary.reason, format!("2 of {n} sites failed"));

    // Abort on the first failure.
    let mut s = deploy_group(&group, "25.09", 2);
    s.failure_budget = Some(FailureBudget {
        max_failures: Amount::Sites(0),
        action: BudgetAction::Abort,
    });
    let id = f.create(&s).await;
    f.plan(&order[0], &[Agent::Fail]);
    f.plan(&order[1], &[Agent::Hold]);
    f.act(id, StrategyAction::Apply).await;
    let d = f
        .until(id, 10, "abort requested", |d| {
            d.summary.state == StrategyState::AbortRequested
        })
        .await;
    assert!(
        d.summary.reason.contains("failure budget exceeded"),
        "{}",
        d.summary.reason
    );
    f.tick().await;
    assert_eq!(f.state(id).await, StrategyState::Aborting);
    f.release(&order[1], Agent::Succeed);
    assert_eq!(f.run(id, 5).await, StrategyState::Aborted);
    let d = f.detail(id).await;
    assert_eq!(
        (d.summary.failed, d.summary.complete, d.summary.aborted),
        (1, 1, n - 2)
    );
    assert_eq!(f.command_count(id).await, 2);
}

// ---------------------------------------------------------------------------------------------
// 6. Canary, soak and approval
// ---------------------------------------------------------------------------------------------

async fn canary_soaks_then_waits_for_approval(b: Backend) {
    let mut f = Fleet::new(b, 12).await;
    let canary_of = |s: &mut NewStrategy, soak: u32, approval: CanaryApproval| {
        s.apply_type = Some(ApplyType::Parallel);
        s.max_parallel = Some(3);
        s.canary = Some(Canary {
            size: Amount::Sites(2),
            soak_secs: soak,
            approval,
        });
    };
    // Operator approval after a 30 s soak.
    let mut s = deploy(Target::All, "26.03");
    canary_of(&mut s, 30, CanaryApproval::Operator);
    let id = f.start(&s).await;
    let order = f.step_names(id).await;
    let canaries: HashSet<String> = order[..2].iter().cloned().collect();
    let mut soak_from = None;
    for _ in 0..20 {
        f.tick().await;
        for i in f.issued_for(id).await {
            assert!(
                canaries.contains(&i.site),
                "{} launched during the canary",
                i.site
            );
        }
        let d = f.detail(id).await;
        if d.waves[0].state == WaveState::Soaking {
            assert_eq!(d.waves[0].counts.get(StepState::Complete), 2);
            assert_eq!(d.waves[0].soak_until, Some(Millis(f.now + 30_000)));
            soak_from = Some(f.now);
            break;
        }
    }
    let tc = soak_from.expect("the canary wave soaks");
    let issued = f.command_count(id).await;
    assert_eq!(issued, 2);
    while f.now < tc + 29_000 {
        f.tick().await;
    }
    let d = f.detail(id).await;
    assert_eq!(d.summary.state, StrategyState::Applying);
    assert_eq!(d.waves[0].state, WaveState::Soaking);
    assert_eq!(f.command_count(id).await, issued);
    f.tick().await;
    let d = f.detail(id).await;
    assert_eq!(f.now, tc + 30_000);
    assert_eq!(d.summary.state, StrategyState::WaitingApproval);
    assert_eq!(d.waves[0].state, WaveState::WaitingApproval);
    assert!(d.summary.reason.contains("approve"), "{}", d.summary.reason);
    assert!(d.actions.contains(&StrategyAction::Approve));
    for _ in 0..5 {
        f.tick().await;
    }
    assert_eq!(f.state(id).await, StrategyState::WaitingApproval);
    assert_eq!(f.command_count(id).await, issued);
    // Pausing and resuming does not skip the approval (nor soak again).
    assert_eq!(
        f.act(id, StrategyAction::Pause).await,
        StrategyState::Paused
    );
    f.tick().await;
    assert_eq!(
        f.act(id, StrategyAction::Resume).await,
        StrategyState::Applying
    );
    f.tick().await;
    let d = f.detail(id).await;
    assert_eq!(d.summary.state, StrategyState::WaitingApproval);
    assert_eq!(d.waves[0].soak_until, Some(Millis(tc + 30_000)));
    assert_eq!(f.command_count(id).await, issued);
    assert!(matches!(
        f.engine
            .strategy_action(&viewer(), id, StrategyAction::Approve)
            .await,
        Err(engine::Error::Forbidden(_))
    ));
    assert_eq!(
        f.act(id, StrategyAction::Approve).await,
        StrategyState::Applying
    );
    let d = f.detail(id).await;
    assert_eq!(d.summary.current_wave, 1);
    assert_eq!(d.waves[0].state, WaveState::Complete);
    assert_eq!(d.waves[1].state, WaveState::Running);
    let t = f.tick().await;
    assert!(t.launched > 0);
    assert_eq!(f.run(id, 100).await, StrategyState::Complete);
    assert_eq!(f.command_count(id).await, 12);
    let audit = f.engine.recent_audit(200).await.unwrap();
    for a in [
        "strategy.canary_soaking",
        "strategy.waiting_approval",
        "strategy.approve",
    ] {
        assert!(has_audit(&audit, a), "{a}");
    }

    // Automatic approval: the rollout goes on by itself right after the soak.
    let mut s = deploy(Target::All, "25.09");
    canary_of(&mut s, 5, CanaryApproval::Automatic);
    let id = f.start(&s).await;
    let d = f
        .until(id, 20, "soaking", |d| {
            d.waves[0].state == WaveState::Soaking
        })
        .await;
    let tc = d.waves[0].soak_until.unwrap().0 - 5_000;
    assert_eq!(tc, f.now);
    while f.now < tc + 4_000 {
        assert_eq!(f.tick().await.launched, 0);
    }
    let t = f.tick().await;
    assert!(t.launched > 0, "{t:?}");
    let d = f.detail(id).await;
    assert_eq!(d.summary.state, StrategyState::Applying);
    assert_eq!(d.waves[0].state, WaveState::Complete);
    assert_eq!(d.summary.current_wave, 1);
    assert_eq!(f.run(id, 100).await, StrategyState::Complete);

    // A failed canary pauses the rollout before any other site is touched.
    let mut s = deploy(Target::All, "24.09");
    canary_of(&mut s, 0, CanaryApproval::Operator);
    let id = f.create(&s).await;
    let order = f.step_names(id).await;
    f.plan(&order[0], &[Agent::Fail]);
    f.act(id, StrategyAction::Apply).await;
    let d = f
        .until(id, 10, "paused", |d| {
            d.summary.state == StrategyState::Paused
        })
        .await;
    assert!(
        d.summary.reason.contains("canary failed on 1 of 2"),
        "{}",
        d.summary.reason
    );
    for _ in 0..3 {
        f.tick().await;
    }
    assert_eq!(f.command_count(id).await, 2);
    assert_eq!(f.state(id).await, StrategyState::Paused);
    assert_eq!(
        f.act(id, StrategyAction::Abort).await,
        StrategyState::AbortRequested
    );
    assert_eq!(f.run(id, 5).await, StrategyState::Aborted);
    assert_eq!(f.detail(id).await.summary.aborted, 10);
}

// ---------------------------------------------------------------------------------------------
// 7. Retries and rollback
// ---------------------------------------------------------------------------------------------

async fn retries_back_off_then_fail_or_roll_back(b: Backend) {
    let mut f = Fleet::new(b, 6).await;
    // Two failures, then success: retried after 10 s, then after 20 s, each with a new command.
    let a = f.sites[0].name.clone();
    f.plan(&a, &[Agent::Fail, Agent::Fail, Agent::Succeed]);
    let mut s = deploy(subcloud(&a), "26.03");
    s.retries = 2;
    s.retry_backoff_secs = 10;
    let id = f.start(&s).await;
    let mut ids = Vec::new();
    for (attempt, backoff) in [(1u32, 10_000i64), (2, 20_000)] {
        let st = f
            .until_step(id, &a, 10, |st| {
                st.state == StepState::Initial && st.attempt == attempt
            })
            .await;
        let failed_at = f.now;
        assert!(
            st.details.contains(&format!("attempt {attempt} failed"))
                && st.details.contains("injected failure")
                && st.details.contains(&Millis(failed_at + backoff).to_iso()),
            "{}",
            st.details
        );
        ids = f.command_ids(id).await;
        assert_eq!(ids.len() as u32, attempt);
        while f.now < failed_at + backoff - INTERVAL {
            let t = f.tick().await;
            assert_eq!(
                t.launched,
                0,
                "retried before the backoff at {}",
                f.now - failed_at
            );
            assert_eq!(f.step(id, &a).await.state, StepState::Initial);
        }
        let t = f.tick().await;
        assert_eq!(f.now, failed_at + backoff);
        assert_eq!(t.launched, 1);
        let st = f.step(id, &a).await;
        assert_eq!((st.state, st.attempt), (StepState::Queued, attempt + 1));
        let new = f.command_ids(id).await;
        assert_eq!(new.len() as u32, attempt + 1);
        assert!(!ids.contains(new.last().unwrap()), "a new command id");
        ids = new;
    }
    assert_eq!(f.run(id, 10).await, StrategyState::Complete);
    let st = f.step(id, &a).await;
    assert_eq!((st.state, st.attempt), (StepState::Complete, 3));
    let received: Vec<i64> = f.issued_for(id).await.iter().map(|i| i.id).collect();
    assert_eq!(received, ids, "the site got each attempt's command once");

    // Retries exhausted: the step fails.
    let bsite = f.sites[1].name.clone();
    f.plan(&bsite, &[Agent::Fail, Agent::Fail]);
    let mut s = deploy(subcloud(&bsite), "26.03");
    s.retries = 1;
    s.retry_backoff_secs = 5;
    let id = f.start(&s).await;
    assert_eq!(f.run(id, 30).await, StrategyState::Failed);
    let st = f.step(id, &bsite).await;
    assert_eq!((st.state, st.attempt), (StepState::Failed, 2));
    assert!(st.details.contains("injected failure"), "{}", st.details);
    assert_eq!(f.command_count(id).await, 2);

    // With rollback: the site returns to the version it ran before.
    let c = f.sites[2].name.clone();
    let before = f.site(&c).version.clone();
    assert_ne!(before, "26.03");
    f.plan(&c, &[Agent::Fail, Agent::Fail, Agent::Succeed]);
    let mut s = deploy(subcloud(&c), "26.03");
    s.retries = 1;
    s.retry_backoff_secs = 5;
    s.rollback = true;
    let id = f.start(&s).await;
    f.until_step(id, &c, 30, |st| st.state == StepState::RollingBack)
        .await;
    assert_eq!(f.state(id).await, StrategyState::Applying);
    assert_eq!(f.run(id, 10).await, StrategyState::Failed);
    let st = f.step(id, &c).await;
    assert_eq!(st.state, StepState::RolledBack);
    assert!(
        st.details.contains(&format!("rolled back to {before}")),
        "{}",
        st.details
    );
    let got = f.issued_for(id).await;
    assert_eq!(got.len(), 3);
    assert_eq!(
        got[2].action,
        CommandAction::Rollback {
            of: "sw-deploy".into(),
            to: before.clone()
        }
    );
    assert_eq!(f.site(&c).version, before);
    let d = f.detail(id).await;
    assert_eq!(d.summary.failed, 1);
    assert_eq!(d.failures[0].state, StepState::RolledBack);

    // A rollback that fails too leaves the step `rollback failed`.
    let e = f.sites[3].name.clone();
    f.plan(&e, &[Agent::Fail, Agent::Fail]);
    let mut s = deploy(subcloud(&e), "26.03");
    s.rollback = true;
    let id = f.start(&s).await;
    assert_eq!(f.run(id, 15).await, StrategyState::Failed);
    let st = f.step(id, &e).await;
    assert_eq!((st.state, st.attempt), (StepState::RollbackFailed, 1));
    assert!(
        st.details
            .starts_with("rollback failed: rolling back: injected failure"),
        "{}",
        st.details
    );
    assert_eq!(f.command_count(id).await, 2);
}

// ---------------------------------------------------------------------------------------------
// 8. Maintenance windows
// ---------------------------------------------------------------------------------------------

async fn maintenance_windows_follow_site_time_zones(b: Backend) {
    let mut f = Fleet::new(b, 30).await;
    let first_tick = f.now + INTERVAL;
    // A group whose sites are spread over time zones: a one-hour window on the first site's
    // local hour holds some of them, not all.
    let mut groups: Vec<String> = f.sites.iter().map(|s| s.group.clone()).collect();
    groups.dedup();
    let mut chosen = None;
    for g in groups {
        let sites: Vec<(String, String)> = f
            .sites
            .iter()
            .filter(|s| s.group == g)
            .map(|s| (s.name.clone(), s.timezone.clone()))
            .collect();
        let h = local_minute(&sites[0].1, first_tick) / 60;
        let w = MaintenanceWindow {
            start_minute: h * 60,
            end_minute: (h + 1) % 24 * 60,
        };
        let inside = sites
            .iter()
            .filter(|(_, tz)| w.contains(local_minute(tz, first_tick)))
            .count();
        if inside < sites.len() {
            chosen = Some((g, sites, w));
            break;
        }
    }
    let (group, sites, window) = chosen.expect("a group spanning time zones");
    let tz: HashMap<String, String> = sites.iter().cloned().collect();
    let mut s = deploy_group(&group, "26.03", 50);
    s.window = Some(window);
    s.step_timeout_secs = 7 * 86_400;
    let id = f.start(&s).await;
    let in_window = |t: i64| -> HashSet<String> {
        sites
            .iter()
            .filter(|(_, tz)| window.contains(local_minute(tz, t)))
            .map(|(n, _)| n.clone())
            .collect()
    };
    let expected = in_window(first_tick);
    assert!(!expected.is_empty() && expected.len() < sites.len());
    let t = f.tick().await;
    assert_eq!(f.now, first_tick);
    assert_eq!(t.launched as usize, expected.len());
    for st in f.steps(id).await {
        if expected.contains(&st.subcloud) {
            assert_eq!(st.state, StepState::Queued, "{}", st.subcloud);
        } else {
            assert_eq!(st.state, StepState::Initial, "{}", st.subcloud);
            assert_eq!(
                st.details,
                format!(
                    "waiting for its maintenance window {window} ({})",
                    tz[&st.subcloud]
                )
            );
        }
    }
    // Let the others' windows come, one jump at a time; every site launches inside its own.
    for _ in 0..24 * 4 {
        for _ in 0..4 {
            f.tick().await;
        }
        let d = f.detail(id).await;
        if d.summary.state.is_terminal() {
            break;
        }
        assert_eq!(d.summary.in_flight, 0);
        // The next quarter hour at which a waiting site is inside its window.
        let waiting: HashSet<String> = f
            .steps(id)
            .await
            .into_iter()
            .filter(|s| s.state == StepState::Initial)
            .map(|s| s.subcloud)
            .collect();
        let mut t = (f.now / 900_000 + 1) * 900_000;
        while in_window(t).is_disjoint(&waiting) {
            t += 900_000;
            assert!(t < first_tick + 86_400_000, "no window within a day");
        }
        // A quarter hour earlier nothing launches.
        if t - 900_000 > f.now {
            assert_eq!(f.tick_at(t - 900_000).await.launched, 0);
        }
        let want: HashSet<String> = in_window(t).intersection(&waiting).cloned().collect();
        let tick = f.tick_at(t).await;
        assert_eq!(
            tick.launched as usize,
            want.len(),
            "at {}",
            Millis(t).to_iso()
        );
    }
    assert_eq!(f.state(id).await, StrategyState::Complete);
    for st in f.steps(id).await {
        let at = st.started_at.unwrap().0;
        assert!(
            window.contains(local_minute(&tz[&st.subcloud], at)),
            "{} started at {} outside its window",
            st.subcloud,
            Millis(at).to_iso()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Offline policy
// ---------------------------------------------------------------------------------------------

async fn offline_policy_waits_skips_or_fails(b: Backend) {
    let mut f = Fleet::new(b, 6).await;
    let x = f.sites[3].name.clone();
    f.site(&x).down = true;
    for _ in 0..5 {
        f.tick().await;
    }
    assert_eq!(f.availability(&x).await, AvailabilityStatus::Offline);
    let mut wait = deploy(subcloud(&x), "26.03");
    wait.offline_policy = OfflinePolicy::Wait;
    let mut skip = NewStrategy::new(StrategyType::Kubernetes, subcloud(&x));
    skip.to_version = Some("v1.31.5".into());
    skip.offline_policy = OfflinePolicy::Skip;
    let mut fail = NewStrategy::new(StrategyType::Firmware, subcloud(&x));
    fail.offline_policy = OfflinePolicy::Fail;
    let p = f.engine.preview_strategy(&operator(), &wait).await.unwrap();
    assert_eq!(p.offline_now, 1);
    let (w, s, fl) = (
        f.start(&wait).await,
        f.start(&skip).await,
        f.start(&fail).await,
    );
    for _ in 0..3 {
        f.tick().await;
    }
    let st = f.step(w, &x).await;
    assert_eq!(st.state, StepState::Initial);
    assert_eq!(st.details, "waiting: the site is offline");
    assert_eq!(f.state(w).await, StrategyState::Applying);
    let st = f.step(s, &x).await;
    assert_eq!(st.state, StepState::Skipped);
    assert!(st.details.contains("offline"), "{}", st.details);
    let d = f.detail(s).await;
    assert_eq!(
        (d.summary.state, d.summary.skipped),
        (StrategyState::Complete, 1)
    );
    let st = f.step(fl, &x).await;
    assert_eq!(st.state, StepState::Failed);
    assert!(st.details.contains("offline"), "{}", st.details);
    let d = f.detail(fl).await;
    assert_eq!(
        (d.summary.state, d.summary.failed),
        (StrategyState::Failed, 1)
    );
    assert!(!d.summary.reason.is_empty());
    assert_eq!(
        f.command_count(w).await + f.command_count(s).await + f.command_count(fl).await,
        0
    );
    // Back online: the waiting step runs.
    f.site(&x).down = false;
    assert_eq!(f.run(w, 10).await, StrategyState::Complete);
    assert_eq!(f.step(w, &x).await.state, StepState::Complete);
    assert_eq!(f.command_count(w).await, 1);
}

// ---------------------------------------------------------------------------------------------
// 10. Abort in every phase
// ---------------------------------------------------------------------------------------------

async fn abort_works_in_every_phase(b: Backend) {
    let mut f = Fleet::new(b, 16).await;
    let (group, _) = f.biggest_group();

    // (a) Steps queued: the agents have not picked their commands up yet.
    let id = f.start(&deploy_group(&group, "26.03", 2)).await;
    let t = f.tick().await;
    assert_eq!(t.launched, 2);
    let d = f.detail(id).await;
    assert_eq!(d.counts.get(StepState::Queued), 2);
    f.abort_and_finish(id, &[]).await;

    // (b) Steps running; one fails while aborting: it is not retried.
    let mut s = deploy_group(&group, "25.09", 2);
    s.retries = 2;
    s.retry_backoff_secs = 1;
    let id = f.create(&s).await;
    let order = f.step_names(id).await;
    f.plan(&order[0], &[Agent::Hold]);
    f.plan(&order[1], &[Agent::Hold]);
    f.act(id, StrategyAction::Apply).await;
    f.until(id, 5, "running", |d| d.counts.get(StepState::Running) == 2)
        .await;
    f.abort_and_finish(id, &[(&order[0], Agent::Fail), (&order[1], Agent::Succeed)])
        .await;
    let st = f.step(id, &order[0]).await;
    assert_eq!((st.state, st.attempt), (StepState::Failed, 1), "{st:?}");
    assert_eq!(f.step(id, &order[1]).await.state, StepState::Complete);

    // (c) Waiting for approval.
    let mut s = deploy_group(&group, "24.09", 2);
    s.canary = Some(Canary {
        size: Amount::Sites(1),
        soak_secs: 0,
        approval: CanaryApproval::Operator,
    });
    let id = f.start(&s).await;
    f.until(id, 10, "waiting", |d| {
        d.summary.state == StrategyState::WaitingApproval
    })
    .await;
    f.abort_and_finish(id, &[]).await;
    assert_eq!(f.detail(id).await.summary.complete, 1);

    // (d) Paused with a step running.
    let id = f.create(&deploy_group(&group, "26.03", 1)).await;
    let order = f.step_names(id).await;
    f.plan(&order[0], &[Agent::Hold]);
    f.act(id, StrategyAction::Apply).await;
    f.until(id, 5, "running", |d| d.counts.get(StepState::Running) == 1)
        .await;
    assert_eq!(
        f.act(id, StrategyAction::Pause).await,
        StrategyState::Paused
    );
    f.tick().await;
    assert_eq!(f.state(id).await, StrategyState::Paused);
    f.abort_and_finish(id, &[(&order[0], Agent::Succeed)]).await;

    // (e) While a rollback runs.
    let mut s = deploy_group(&group, "25.09", 1);
    s.rollback = true;
    let id = f.create(&s).await;
    let order = f.step_names(id).await;
    f.plan(&order[0], &[Agent::Fail, Agent::Hold]);
    f.act(id, StrategyAction::Apply).await;
    f.until(id, 10, "rolling back", |d| {
        d.counts.get(StepState::RollingBack) == 1
    })
    .await;
    f.tick().await;
    f.abort_and_finish(id, &[(&order[0], Agent::Succeed)]).await;
    assert_eq!(f.step(id, &order[0]).await.state, StepState::RolledBack);
}

impl Fleet {
    /// Aborts a running strategy, checks `abort requested` → `aborting` (while steps are in
    /// flight) → `aborted`, then releases `release` and checks that nothing new was issued and
    /// that every step that never started is aborted.
    async fn abort_and_finish(&mut self, id: i64, release: &[(&String, Agent)]) {
        let before = self.detail(id).await;
        let started: HashSet<String> = self
            .steps(id)
            .await
            .into_iter()
            .filter(|s| s.attempt > 0)
            .map(|s| s.subcloud)
            .collect();
        let commands = self.command_count(id).await;
        assert_eq!(
            self.act(id, StrategyAction::Abort).await,
            StrategyState::AbortRequested
        );
        let d = self.detail(id).await;
        assert_eq!(d.summary.state, StrategyState::AbortRequested);
        assert!(
            d.summary.reason.contains("abort requested by op"),
            "{}",
            d.summary.reason
        );
        assert!(d.actions.is_empty(), "{:?}", d.actions);
        self.tick().await;
        let d = self.detail(id).await;
        assert_eq!(d.summary.state, StrategyState::Aborting);
        assert_eq!(d.summary.in_flight, before.summary.in_flight);
        if before.summary.in_flight > 0 {
            for _ in 0..2 {
                self.tick().await;
            }
            let d = self.detail(id).await;
            if d.summary.in_flight > 0 {
                assert_eq!(d.summary.state, StrategyState::Aborting);
            }
        }
        for (name, agent) in release {
            self.release(name, *agent);
        }
        assert_eq!(self.run(id, 10).await, StrategyState::Aborted);
        for _ in 0..3 {
            self.tick().await;
        }
        assert_eq!(self.command_count(id).await, commands, "no new commands");
        let d = self.detail(id).await;
        assert_eq!(d.summary.in_flight, 0);
        assert!(d.summary.finished_at.is_some());
        assert!(d
            .waves
            .iter()
            .all(|w| matches!(w.state, WaveState::Stopped | WaveState::Complete)));
        for st in self.steps(id).await {
            if started.contains(&st.subcloud) {
                assert_ne!(st.state, StepState::Aborted, "{st:?}");
                assert!(st.state.is_final(), "{st:?}");
            } else {
                assert_eq!(st.state, StepState::Aborted, "{st:?}");
            }
        }
        let audit = self.engine.recent_audit(500).await.unwrap();
        let mine: Vec<_> = audit
            .iter()
            .filter(|a| a.entry.target == format!("strategy:{id}"))
            .map(|a| a.entry.action.as_str())
            .collect();
        for a in ["strategy.abort", "strategy.aborting", "strategy.aborted"] {
            assert!(mine.contains(&a), "{a}: {mine:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 11. Restart mid-rollout
// ---------------------------------------------------------------------------------------------

async fn restart_mid_rollout_resumes_without_duplicates(b: Backend) {
    let mut f = Fleet::new(b, 12).await;
    let mut s = deploy(Target::All, "26.03");
    s.apply_type = Some(ApplyType::Parallel);
    s.max_parallel = Some(3);
    let id = f.start(&s).await;
    // Crash right after a tick that issued commands no agent has received yet.
    let mut crashed = false;
    for _ in 0..60 {
        let t = f.tick().await;
        if t.launched > 0 && f.detail(id).await.summary.complete >= 3 {
            crashed = true;
            break;
        }
    }
    assert!(crashed);
    let open: Vec<(i64, String, String)> = sqlx::query_as(
        "SELECT c.id, s.name, c.state FROM subcloud_commands c JOIN subclouds s ON s.id = c.subcloud_id \
         WHERE c.created_by = $1 AND c.state IN ('queued', 'running') ORDER BY c.id",
    )
    .bind(format!("strategy:{id}"))
    .fetch_all(f.engine.store().pool())
    .await
    .unwrap();
    let undelivered: Vec<&(i64, String, String)> = open
        .iter()
        .filter(|(cid, _, _)| !f.issued.iter().any(|i| i.id == *cid))
        .collect();
    assert!(!undelivered.is_empty(), "{open:?}");
    f.restart().await;
    // An agent that lost track of what it runs gets its running command again, same id.
    if let Some((cid, name, _)) = open.iter().find(|(_, _, st)| st == "running") {
        let g = f.engine.agent_gateway().unwrap().clone();
        let at = f.now + 1;
        let site = f.site(name);
        let r = site.heartbeat(Vec::new(), at);
        let answer = g.accept_report(&site.secret, r, Millis(at)).unwrap();
        assert!(answer.commands.iter().any(|c| c.id == *cid), "{answer:?}");
    }
    f.tick().await;
    for (cid, name, _) in &undelivered {
        let got: Vec<_> = f.issued.iter().filter(|i| i.id == *cid).collect();
        assert_eq!(got.len(), 1, "{cid}");
        assert_eq!((&got[0].site, got[0].at), (name, f.now));
    }
    assert_eq!(f.run(id, 100).await, StrategyState::Complete);
    // Every step has exactly one command per attempt, and every site got each once.
    let per_site = f.commands_per_site(id).await;
    for st in f.steps(id).await {
        assert_eq!(st.state, StepState::Complete);
        assert_eq!(st.attempt, 1);
        assert_eq!(per_site.get(&st.subcloud), Some(&1), "{}", st.subcloud);
    }
    let mut ids: Vec<i64> = f.issued_for(id).await.iter().map(|i| i.id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (12, 12));
}

/// Two controller instances sharing the store tick at the same moment, again and again: the
/// strategy's revision lets only one of them write each round, so no step gets two commands.
async fn two_controllers_ticking_at_once_launch_each_step_once(b: Backend) {
    let mut f = Fleet::new(b, 12).await;
    let mut s = deploy(Target::All, "26.03");
    s.apply_type = Some(ApplyType::Parallel);
    s.max_parallel = Some(6);
    let id = f.start(&s).await;
    let other = f.db.engine().await;
    let mut both_wrote = 0;
    let mut launched = 0;
    for _ in 0..40 {
        // Progress is stored, then both instances see the same free slots.
        let t = f.now + INTERVAL;
        f.report_at(t).await;
        let at = Millis(t);
        let (a, b) = tokio::join!(
            f.engine.orchestration_tick(at),
            other.orchestration_tick(at)
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        launched += a.launched + b.launched;
        if a.launched > 0 && b.launched > 0 {
            both_wrote += 1;
        }
        let per_site = f.commands_per_site(id).await;
        assert!(per_site.values().all(|n| *n == 1), "{per_site:?}");
    }
    assert_eq!(both_wrote, 0, "both instances launched steps in one round");
    assert!(launched >= 6, "the rounds launched {launched} steps");
    // Agents report to the first instance only: it picks up the commands the second one
    // issued from the store (the monitor does this every tick on PostgreSQL), and the
    // rollout completes with one command per site.
    f.engine.refresh_queued_commands().await.unwrap();
    assert_eq!(f.run(id, 100).await, StrategyState::Complete);
    assert_eq!(f.command_count(id).await, 12);
}

// ---------------------------------------------------------------------------------------------
// 12. Timeouts
// ---------------------------------------------------------------------------------------------

async fn silent_and_stuck_steps_time_out_without_retry(b: Backend) {
    let mut f = Fleet::new(b, 6).await;
    let a = f.sites[0].name.clone();
    f.plan(&a, &[Agent::Silent]);
    let mut s = deploy(subcloud(&a), "26.03");
    s.step_timeout_secs = 10;
    s.retries = 3;
    s.retry_backoff_secs = 1;
    let id = f.start(&s).await;
    let t = f.tick().await;
    assert_eq!(t.launched, 1);
    let launched_at = f.now;
    let cid = f.command_ids(id).await[0];
    while f.now < launched_at + 10_000 {
        f.tick().await;
        assert_eq!(f.step(id, &a).await.state, StepState::Queued);
    }
    // Not acknowledged: delivered again in every answer so far.
    assert!(f.site(&a).redelivered.len() >= 5);
    f.tick().await;
    let st = f.step(id, &a).await;
    assert_eq!(st.state, StepState::Failed);
    assert_eq!(st.details, "no acknowledgement from the agent within 10 s");
    assert_eq!(f.state(id).await, StrategyState::Failed);
    let (state, message): (String, String) =
        sqlx::query_as("SELECT state, message FROM subcloud_commands WHERE id = $1")
            .bind(cid)
            .fetch_one(f.engine.store().pool())
            .await
            .unwrap();
    assert_eq!(state, "failed");
    assert!(
        message.starts_with("given up by the controller"),
        "{message}"
    );
    // No longer delivered, not retried.
    let delivered = f.site(&a).redelivered.len();
    for _ in 0..5 {
        f.tick().await;
    }
    assert_eq!(f.site(&a).redelivered.len(), delivered);
    assert_eq!(f.command_count(id).await, 1);
    assert_eq!(f.step(id, &a).await.attempt, 1);

    // A step stuck in a phase times out too, naming the phase.
    let bsite = f.sites[1].name.clone();
    f.plan(&bsite, &[Agent::Hold]);
    let mut s = NewStrategy::new(StrategyType::Kubernetes, subcloud(&bsite));
    s.to_version = Some("v1.31.5".into());
    s.step_timeout_secs = 10;
    s.retries = 2;
    let id = f.start(&s).await;
    f.tick().await;
    let launched_at = f.now;
    while f.now < launched_at + 10_000 {
        f.tick().await;
        assert_eq!(f.state(id).await, StrategyState::Applying);
    }
    assert_eq!(f.step(id, &bsite).await.state, StepState::Running);
    f.tick().await;
    let st = f.step(id, &bsite).await;
    assert_eq!(st.state, StepState::Failed);
    assert_eq!(st.details, "timed out after 10 s in kube upgrade pre check");
    assert_eq!(f.run(id, 5).await, StrategyState::Failed);
    assert_eq!(f.command_count(id).await, 1);
}

// ---------------------------------------------------------------------------------------------
// 13. Read models
// ---------------------------------------------------------------------------------------------

async fn steps_pages_filters_and_overview(b: Backend) {
    let mut f = Fleet::new(b, 12).await;
    let sys = Actor::system();
    let mut s = deploy(Target::All, "26.03");
    s.apply_type = Some(ApplyType::Parallel);
    s.max_parallel = Some(3);
    s.canary = Some(Canary {
        size: Amount::Sites(2),
        soak_secs: 0,
        approval: CanaryApproval::Automatic,
    });
    let id = f.start(&s).await;
    let d = f
        .until(id, 40, "half way", |d| {
            d.summary.complete >= 3 && d.summary.in_flight > 0
        })
        .await;
    let all = f.steps(id).await;
    assert_eq!(all.len(), 12);
    // Pages of 5 in execution order.
    let mut paged = Vec::new();
    for page in 1..=3 {
        let p = f
            .engine
            .strategy_steps(
                &sys,
                id,
                &StepQuery {
                    page,
                    per_page: 5,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(p.matching, 12);
        assert_eq!(p.rows.len(), [5, 5, 2][page as usize - 1]);
        paged.extend(p.rows);
    }
    assert_eq!(
        paged.iter().map(|r| &r.subcloud).collect::<Vec<_>>(),
        all.iter().map(|r| &r.subcloud).collect::<Vec<_>>()
    );
    let beyond = f
        .engine
        .strategy_steps(
            &sys,
            id,
            &StepQuery {
                page: 4,
                per_page: 5,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(beyond.rows.is_empty());
    assert_eq!(beyond.matching, 12);
    // State and wave filters.
    for state in [StepState::Complete, StepState::Initial, StepState::Running] {
        let p = f
            .engine
            .strategy_steps(
                &sys,
                id,
                &StepQuery {
                    state: Some(state),
                    per_page: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let want = all.iter().filter(|r| r.state == state).count();
        assert_eq!(p.matching as usize, want, "{state}");
        assert_eq!(p.rows.len(), want);
        assert!(p.rows.iter().all(|r| r.state == state));
        assert_eq!(d.counts.get(state) as usize, want, "{state}");
    }
    let canary = f
        .engine
        .strategy_steps(
            &sys,
            id,
            &StepQuery {
                wave: Some(0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(canary.matching, 2);
    assert!(canary
        .rows
        .iter()
        .all(|r| r.wave == 0 && r.state == StepState::Complete));
    let q =
        StepQuery::from_params([("state", "complete"), ("page", "1"), ("per_page", "5")]).unwrap();
    assert_eq!(q.to_query_string(), "state=complete&per_page=5");
    // Bad paging and unknown strategies.
    for (page, per_page, field) in [(0, 5, "page"), (1, 501, "per_page")] {
        let v = field_of(
            f.engine
                .strategy_steps(
                    &sys,
                    id,
                    &StepQuery {
                        page,
                        per_page,
                        ..Default::default()
                    },
                )
                .await,
        );
        assert_eq!(v.field, field);
    }
    assert!(matches!(
        f.engine
            .strategy_steps(&sys, 999_999, &StepQuery::default())
            .await,
        Err(engine::Error::NotFound { .. })
    ));
    assert!(matches!(
        f.engine.strategy_detail(&sys, 999_999).await,
        Err(engine::Error::NotFound { .. })
    ));
    // A site's steps.
    let first = &all[0];
    let site_steps = f
        .engine
        .subcloud_steps(&viewer(), &first.subcloud)
        .await
        .unwrap();
    assert_eq!(site_steps.len(), 1);
    assert_eq!(site_steps[0].strategy_id, id);
    assert_eq!(site_steps[0].strategy_type, StrategyType::SwDeploy);
    assert_eq!(site_steps[0].strategy_state, StrategyState::Applying);
    assert_eq!(site_steps[0].args, "release 26.03");
    assert_eq!(site_steps[0].step, *first);
    // The overview and the list show the active strategy.
    let o = f.engine.deployment_overview(&viewer()).await.unwrap();
    assert_eq!(o.active.len(), 1);
    assert_eq!(o.active[0].id, id);
    assert_eq!(o.active[0].state, StrategyState::Applying);
    assert!(o.active[0].eta_ms.is_some());
    assert_eq!(o.versions.iter().map(|(_, n)| n).sum::<u64>(), 12);
    assert!(o.last_finished.is_none());
    let list = f.engine.strategies(&viewer(), 1, 10).await.unwrap();
    assert_eq!(list.matching, 1);
    assert_eq!(list.items[0].id, id);
    assert_eq!(list.items[0].total, 12);
    assert!(!d.phases.is_empty());
    assert_eq!(
        d.phases.iter().map(|(_, n)| n).sum::<u64>(),
        d.summary.in_flight
    );
    // After it completes the overview has it as the last finished one.
    assert_eq!(f.run(id, 100).await, StrategyState::Complete);
    let o = f.engine.deployment_overview(&viewer()).await.unwrap();
    assert!(o.active.is_empty());
    assert_eq!(o.last_finished.map(|s| s.id), Some(id));
    let site_steps = f
        .engine
        .subcloud_steps(&viewer(), &first.subcloud)
        .await
        .unwrap();
    assert_eq!(site_steps[0].strategy_state, StrategyState::Complete);
}

// ---------------------------------------------------------------------------------------------
// 14. Strategies of different types over the same sites; manual pause and resume
// ---------------------------------------------------------------------------------------------

async fn strategies_share_sites_one_step_at_a_time(b: Backend) {
    let mut f = Fleet::new(b, 8).await;
    let mut sw = deploy(Target::All, "26.03");
    sw.apply_type = Some(ApplyType::Parallel);
    sw.max_parallel = Some(10);
    let mut kube = NewStrategy::new(StrategyType::Kubernetes, Target::All);
    kube.to_version = Some("v1.31.5".into());
    kube.apply_type = Some(ApplyType::Parallel);
    kube.max_parallel = Some(10);
    let a = f.start(&sw).await;
    let k = f.start(&kube).await;
    let first = f.sites[0].name.clone();
    f.plan(&first, &[Agent::Hold]);
    f.tick().await;
    // The deploy took the first wave's sites; the upgrade waits for them.
    let st = f.step(k, &first).await;
    assert_eq!(st.state, StepState::Initial);
    assert_eq!(
        st.details,
        format!("waiting: the site is busy with strategy {a}")
    );
    // A manual pause: the running step goes on, nothing new starts.
    f.until(a, 5, "running", |d| d.counts.get(StepState::Running) >= 1)
        .await;
    assert_eq!(f.act(a, StrategyAction::Pause).await, StrategyState::Paused);
    let d = f.detail(a).await;
    assert_eq!(d.summary.reason, "paused by op");
    assert_eq!(
        d.actions,
        vec![StrategyAction::Resume, StrategyAction::Abort]
    );
    let issued = f.command_count(a).await;
    for _ in 0..4 {
        f.tick().await;
    }
    assert_eq!(f.command_count(a).await, issued);
    assert_eq!(f.step(a, &first).await.state, StepState::Running);
    assert_eq!(f.state(a).await, StrategyState::Paused);
    f.release(&first, Agent::Succeed);
    assert_eq!(
        f.act(a, StrategyAction::Resume).await,
        StrategyState::Applying
    );
    let mut done = (false, false);
    for _ in 0..200 {
        f.tick().await;
        // Never two steps in flight on one site.
        let busiest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM strategy_steps \
             WHERE state IN ('queued', 'running', 'rolling back') GROUP BY subcloud_id) x",
        )
        .fetch_one(f.engine.store().pool())
        .await
        .unwrap();
        assert!(busiest.unwrap_or(0) <= 1, "{busiest:?}");
        done = (
            f.state(a).await.is_terminal(),
            f.state(k).await.is_terminal(),
        );
        if done == (true, true) {
            break;
        }
    }
    assert_eq!(done, (true, true));
    assert_eq!(f.state(a).await, StrategyState::Complete);
    assert_eq!(f.state(k).await, StrategyState::Complete);
    for id in [a, k] {
        let per_site = f.commands_per_site(id).await;
        assert_eq!(per_site.len(), 8);
        assert!(per_site.values().all(|n| *n == 1), "{per_site:?}");
        assert!(f
            .steps(id)
            .await
            .iter()
            .all(|s| s.state == StepState::Complete && s.details == "done"));
    }
    let list = f.engine.strategies(&viewer(), 1, 10).await.unwrap();
    assert_eq!(list.matching, 2);
    assert_eq!(list.items[0].id, k, "newest first");
}

/// A peer's copies of the strategies it runs: stored as read-only copies the runner leaves
/// alone, replaced by a newer handover, never by an older one or by a sender that does not
/// run them.
async fn peer_copies_apply_by_handover_and_stay_read_only(b: Backend) {
    let mut f = Fleet::new(b, 6).await;
    let mut s = deploy(Target::All, "26.03");
    s.max_parallel = Some(2);
    f.start(&s).await;
    f.tick().await;
    let mut copies = f.engine.strategy_copies(Millis(0)).await.unwrap();
    assert_eq!(copies.len(), 1);
    let mut c = copies.remove(0);
    assert_eq!((c.steps.len(), c.uuid.len()), (6, 32));
    assert!(c
        .steps
        .iter()
        .any(|st| st.state == "queued" || st.state == "running"));
    // Nothing changed since: an incremental push carries nothing (ticks run on test time).
    let later = Millis(i64::MAX / 2);
    assert!(f.engine.strategy_copies(later).await.unwrap().is_empty());

    // Another store (same fleet, same subcloud ids) receives it as sc-a's.
    let mut g = Fleet::new(b, 6).await;
    c.origin = "sc-a".into();
    c.run_by = "sc-a".into();
    let r = g
        .engine
        .apply_strategy_copies("sc-a", vec![c.clone()])
        .await
        .unwrap();
    assert_eq!((r.inserted, r.updated, r.ignored), (1, 0, 0));
    let held = |g: &Fleet| {
        let e = g.engine.clone();
        let uuid = c.uuid.clone();
        async move {
            e.strategies(&operator(), 1, 50)
                .await
                .unwrap()
                .items
                .into_iter()
                .find(|x| x.uuid == uuid)
                .unwrap()
        }
    };
    let copy = held(&g).await;
    assert_eq!((copy.run_by.as_str(), copy.total), ("sc-a", 6));
    match g
        .engine
        .strategy_action(&operator(), copy.id, StrategyAction::Pause)
        .await
    {
        Err(engine::Error::Conflict(m)) => assert!(m.contains("run by sc-a"), "{m}"),
        other => panic!("an action on a copy: {other:?}"),
    }
    // The runner leaves a copy alone.
    g.tick().await;
    let issued = g
        .count(&format!(
            "SELECT COUNT(*) FROM subcloud_commands WHERE created_by = 'strategy:{}'",
            copy.id
        ))
        .await;
    assert_eq!(issued, 0);

    // sc-b took it over (handover 1): its copy replaces sc-a's, and sc-a's older one no longer
    // does; nor does a copy sent by a controller that does not run it.
    let mut newer = c.clone();
    newer.run_by = "sc-b".into();
    newer.handover = 1;
    newer.state = "paused".into();
    let r = g
        .engine
        .apply_strategy_copies("sc-b", vec![newer])
        .await
        .unwrap();
    assert_eq!(r.updated, 1);
    let r = g
        .engine
        .apply_strategy_copies("sc-a", vec![c.clone()])
        .await
        .unwrap();
    assert_eq!(r.ignored, 1);
    let mut forged = c.clone();
    forged.handover = 9;
    let r = g
        .engine
        .apply_strategy_copies("sc-b", vec![forged])
        .await
        .unwrap();
    assert_eq!(r.ignored, 1);
    let now = held(&g).await;
    assert_eq!(
        (now.run_by.as_str(), now.state),
        ("sc-b", StrategyState::Paused)
    );
    assert_eq!(now.id, copy.id, "replaced in place");
    let steps = g
        .count(&format!(
            "SELECT COUNT(*) FROM strategy_steps WHERE strategy_id = {} AND command_id IS NULL",
            copy.id
        ))
        .await;
    assert_eq!(steps, 6, "copies carry no commands");
}

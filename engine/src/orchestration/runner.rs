//! The orchestrator: a persisted state machine advanced by ticks.
//!
//! Each tick reads every running strategy (outside any transaction, as SQLite requires), then
//! writes all it decided in **one transaction**: step transitions from the progress agents
//! reported, new commands with the steps that own them, wave and strategy transitions, and
//! their audit entries. Commands reach the agent gateway only after that commit, so a
//! controller killed at any moment either never issued a step's command (the step is still
//! `initial` and is launched after restart) or issued it durably (the gateway reloads open
//! commands at start and resends them; agents ignore ids they already run and re-report ids
//! they finished). A step is never lost and never executed twice.
//!
//! A step that times out is failed but **not retried**: its agent may still be working on it.
//! Retries follow only failures the agent itself reported.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;

use super::model::{
    BudgetAction, CanaryApproval, NewStrategy, OfflinePolicy, StepState, StrategyState,
    StrategyType, WaveState,
};
use crate::agents::wire::{Command, CommandAction, CommandState};
use crate::audit::{self, AuditEntry};
use crate::error::{Error, Result};
use crate::fleet::AvailabilityStatus;
use crate::store::{bulk_insert_returning, bulk_update, bulk_update_guarded, Cell};
use crate::time::Millis;
use crate::Engine;

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrchestratorTick {
    /// Strategies worked on.
    pub strategies: usize,
    /// Commands issued (steps started, retried or rolled back).
    pub launched: u64,
    /// Steps that reached a final state.
    pub finished: u64,
    /// Strategy state changes made by the runner.
    pub transitions: u64,
}

/// Site-local time of day, with time zones looked up once per name.
#[derive(Default)]
pub(super) struct LocalClock {
    zones: HashMap<String, Option<jiff::tz::TimeZone>>,
}

impl LocalClock {
    /// Minutes after local midnight at `tz` (an unknown zone counts as UTC).
    pub fn minute_of_day(&mut self, tz: &str, now: Millis) -> u16 {
        let zone = self
            .zones
            .entry(tz.to_string())
            .or_insert_with(|| jiff::tz::TimeZone::get(tz).ok());
        let ts = jiff::Timestamp::from_millisecond(now.0).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let dt = match zone {
            Some(z) => z.to_datetime(ts),
            None => jiff::tz::TimeZone::UTC.to_datetime(ts),
        };
        u16::try_from(i32::from(dt.hour()) * 60 + i32::from(dt.minute())).unwrap_or(0)
    }
}

/// One step row, all columns the runner may rewrite.
#[derive(Debug, Clone)]
struct Step {
    id: i64,
    subcloud_id: i64,
    wave: u32,
    state: StepState,
    phase: String,
    percent: i64,
    attempt: i64,
    command_id: Option<i64>,
    details: String,
    from_version: String,
    not_before: Option<i64>,
    started_at: Option<i64>,
    finished_at: Option<i64>,
}

impl Step {
    fn cells(&self, now: Millis) -> Vec<Cell> {
        vec![
            Cell::Int(self.id),
            Cell::Text(self.state.as_str().into()),
            Cell::Text(self.phase.clone()),
            Cell::Int(self.percent),
            Cell::Int(self.attempt),
            Cell::OptInt(self.command_id),
            Cell::Text(self.details.clone()),
            Cell::Text(self.from_version.clone()),
            Cell::OptInt(self.not_before),
            Cell::OptInt(self.started_at),
            Cell::OptInt(self.finished_at),
            Cell::Int(now.0),
        ]
    }
}

const STEP_SET: [&str; 11] = [
    "state",
    "phase",
    "percent",
    "attempt",
    "command_id",
    "details",
    "from_version",
    "not_before",
    "started_at",
    "finished_at",
    "updated_at",
];

/// A command to create together with the step that owns it.
struct Launch {
    step: Step,
    strategy_id: i64,
    epoch: i64,
    action: CommandAction,
    /// [`Command::key`]: the same for this attempt on every controller.
    key: String,
}

/// The controller-independent name of one attempt of a step (see [`Command::key`]).
fn step_key(uuid: &str, subcloud_id: i64, attempt: i64, rollback: bool) -> String {
    let mut k = format!("{uuid}/{subcloud_id}/{attempt}");
    if rollback {
        k.push_str("/rollback");
    }
    k
}

#[derive(Debug, Clone)]
struct Wave {
    index: u32,
    name: String,
    max_parallel: u32,
    sites: u64,
    state: WaveState,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    soak_until: Option<i64>,
    failures_accepted: u64,
    changed: bool,
}

/// Steps per (wave, state), kept current as the tick moves steps.
#[derive(Default)]
struct Counts(HashMap<(u32, StepState), u64>);

impl Counts {
    fn get(&self, wave: u32, s: StepState) -> u64 {
        self.0.get(&(wave, s)).copied().unwrap_or(0)
    }
    fn wave(&self, wave: u32, pred: impl Fn(StepState) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|((w, s), _)| *w == wave && pred(*s))
            .map(|(_, n)| n)
            .sum()
    }
    fn all(&self, pred: impl Fn(StepState) -> bool) -> u64 {
        self.0
            .iter()
            .filter(|((_, s), _)| pred(*s))
            .map(|(_, n)| n)
            .sum()
    }
    fn shift(&mut self, wave: u32, from: StepState, to: StepState, n: u64) {
        let e = self.0.entry((wave, from)).or_default();
        *e = e.saturating_sub(n);
        *self.0.entry((wave, to)).or_default() += n;
    }
}

/// Everything one tick writes.
#[derive(Default)]
struct Writes {
    steps: Vec<Step>,
    launches: Vec<Launch>,
    /// (step id, details) of steps that wait (window, offline site, busy site).
    waiting: Vec<(i64, String)>,
    /// Commands the runner gave up on: (command id, subcloud id, message).
    timeouts: Vec<(i64, i64, String)>,
    /// Strategies whose not-yet-started steps are aborted, with the reason shown on them.
    abort_initial: Vec<(i64, String)>,
    waves: Vec<(i64, Wave)>,
    strategies: Vec<StrategyWrite>,
    audits: Vec<AuditEntry>,
    finished: u64,
    transitions: u64,
    /// Per strategy: first attempts completed this tick and their summed duration (ms), so
    /// the ETA learns this rollout's real step time.
    measured: HashMap<i64, (i64, i64)>,
}

struct StrategyWrite {
    id: i64,
    read_revision: i64,
    state: StrategyState,
    current_wave: u32,
    reason: String,
    finished: bool,
    counts: [u64; 5],
    measured: (i64, i64),
}

/// A running strategy as read at the start of a tick.
struct Active {
    id: i64,
    uuid: String,
    strategy_type: StrategyType,
    state: StrategyState,
    spec: NewStrategy,
    current_wave: u32,
    wave_count: u32,
    reason: String,
    /// Bumped by every write to the strategy: a tick writes only over what it read.
    revision: i64,
}

fn backoff_ms(spec: &NewStrategy, attempt: i64) -> i64 {
    let doublings = u32::try_from((attempt - 1).clamp(0, 16)).unwrap_or(0);
    (i64::from(spec.retry_backoff_secs) * 1000).saturating_mul(1i64 << doublings)
}

impl Engine {
    /// One orchestrator tick at `now` (the loop calls it; tests drive time explicitly).
    pub async fn orchestration_tick(&self, now: Millis) -> Result<OrchestratorTick> {
        let pool = self.store.pool();
        let rows = sqlx::query(
            "SELECT id, strategy_type, state, spec, current_wave, wave_count, reason, revision, uuid FROM strategies \
             WHERE state IN ('applying', 'paused', 'waiting for approval', 'abort requested', 'aborting') \
             AND (run_by = '' OR run_by = $1) ORDER BY id",
        )
        // Copies of strategies another controller runs are that controller's business.
        .bind(self.strategy_home())
        .fetch_all(pool)
        .await?;
        if rows.is_empty() {
            return Ok(OrchestratorTick::default());
        }
        let mut active = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let bad = |e: String| Error::Internal(format!("strategy {id}: {e}"));
            active.push(Active {
                id,
                strategy_type: r
                    .try_get::<&str, _>(1)?
                    .parse()
                    .map_err(|e: crate::ValidationError| bad(e.to_string()))?,
                state: r
                    .try_get::<&str, _>(2)?
                    .parse()
                    .map_err(|e: crate::ValidationError| bad(e.to_string()))?,
                spec: serde_json::from_str(r.try_get::<&str, _>(3)?)
                    .map_err(|e| bad(e.to_string()))?,
                current_wave: u32::try_from(r.try_get::<i64, _>(4)?).unwrap_or(0),
                wave_count: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
                reason: r.try_get(6)?,
                revision: r.try_get(7)?,
                uuid: r.try_get::<Option<String>, _>(8)?.unwrap_or_default(),
            });
        }
        // Sites with a step in flight: a site runs one step at a time, whatever the strategy.
        let mut busy: HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>(
            "SELECT subcloud_id, strategy_id FROM strategy_steps \
             WHERE state IN ('queued', 'running', 'rolling back')",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .collect();
        let mut w = Writes::default();
        let mut clock = LocalClock::default();
        for a in &active {
            self.plan_strategy(a, now, &mut busy, &mut clock, &mut w)
                .await?;
        }
        let launched = w.launches.len() as u64;
        let report = OrchestratorTick {
            strategies: active.len(),
            launched,
            finished: w.finished,
            transitions: w.transitions,
        };
        let Some(issued) = self.write_orchestration(w, now).await? else {
            // An operator acted meanwhile: the next tick starts from their state.
            return Ok(OrchestratorTick {
                strategies: active.len(),
                ..OrchestratorTick::default()
            });
        };
        for a in &active {
            self.publish_strategy(a.id, a.strategy_type, issued.states[&a.id], now);
        }
        Ok(report)
    }

    async fn plan_strategy(
        &self,
        a: &Active,
        now: Millis,
        busy: &mut HashMap<i64, i64>,
        clock: &mut LocalClock,
        w: &mut Writes,
    ) -> Result<()> {
        let pool = self.store.pool();
        let mut waves: Vec<Wave> = sqlx::query(
            "SELECT wave, name, max_parallel, sites, state, started_at, finished_at, soak_until, failures_accepted \
             FROM strategy_waves WHERE strategy_id = $1 ORDER BY wave",
        )
        .bind(a.id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(Wave {
                index: u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0),
                name: r.try_get(1)?,
                max_parallel: u32::try_from(r.try_get::<i64, _>(2)?.max(1)).unwrap_or(1),
                sites: u64::try_from(r.try_get::<i64, _>(3)?).unwrap_or(0),
                state: r
                    .try_get::<&str, _>(4)?
                    .parse()
                    .map_err(|e: crate::ValidationError| Error::Internal(e.to_string()))?,
                started_at: r.try_get(5)?,
                finished_at: r.try_get(6)?,
                soak_until: r.try_get(7)?,
                failures_accepted: u64::try_from(r.try_get::<i64, _>(8)?).unwrap_or(0),
                changed: false,
            })
        })
        .collect::<Result<_>>()?;
        let mut counts = Counts::default();
        for (wave, state, n) in sqlx::query_as::<_, (i64, String, i64)>(
            "SELECT wave, state, COUNT(*) FROM strategy_steps WHERE strategy_id = $1 GROUP BY wave, state",
        )
        .bind(a.id)
        .fetch_all(pool)
        .await?
        {
            let state: StepState = state
                .parse()
                .map_err(|e: crate::ValidationError| Error::Internal(e.to_string()))?;
            counts.0.insert(
                (u32::try_from(wave).unwrap_or(0), state),
                u64::try_from(n).unwrap_or(0),
            );
        }
        self.advance_in_flight(a, now, &mut counts, w).await?;

        let spec = &a.spec;
        let mut state = a.state;
        let mut reason = a.reason.clone();
        let mut current = a.current_wave;
        let audit = |w: &mut Writes, action: &str, summary: String| {
            w.audits.push(AuditEntry::system(
                action,
                &format!("strategy:{}", a.id),
                summary,
            ));
        };
        match state {
            StrategyState::AbortRequested => {
                self.abort_not_started(a.id, "aborted before it started", &mut counts, w);
                for wave in waves
                    .iter_mut()
                    .filter(|x| !matches!(x.state, WaveState::Complete | WaveState::Stopped))
                {
                    wave.state = WaveState::Stopped;
                    wave.changed = true;
                }
                state = StrategyState::Aborting;
                audit(
                    w,
                    "strategy.aborting",
                    format!(
                        "{}: not-started steps aborted; waiting for steps in flight",
                        a.strategy_type
                    ),
                );
            }
            StrategyState::Applying => {
                let failures = counts.all(StepState::is_failure);
                let stopping = spec.stop_on_failure && failures > 0;
                if stopping && counts.all(|s| s == StepState::Initial) > 0 {
                    self.abort_not_started(
                        a.id,
                        "not started: the strategy stops on failure",
                        &mut counts,
                        w,
                    );
                    reason = format!("stopped on failure: {failures} site(s) failed");
                    audit(w, "strategy.stopping", reason.clone());
                }
                while !stopping && current < a.wave_count {
                    let Some(wave) = waves.get_mut(current as usize) else {
                        break;
                    };
                    let canary = wave.name == "canary" && spec.canary.is_some();
                    let failed = counts.wave(current, StepState::is_failure);
                    let over_budget = spec.failure_budget.as_ref().and_then(|b| {
                        let allowed = b.max_failures.of(wave.sites);
                        (failed > allowed.max(wave.failures_accepted)).then_some((b, allowed))
                    });
                    if let Some((b, allowed)) = over_budget {
                        reason = format!(
                            "failure budget exceeded in {}: {failed} of {} sites failed (allowed {allowed}, budget {})",
                            wave.name, wave.sites, b.max_failures
                        );
                        state = match b.action {
                            BudgetAction::Pause => StrategyState::Paused,
                            BudgetAction::Abort => StrategyState::AbortRequested,
                        };
                        audit(
                            w,
                            "strategy.budget_exceeded",
                            format!("{reason}; {}", state),
                        );
                        break;
                    }
                    if canary && spec.failure_budget.is_none() && failed > wave.failures_accepted {
                        reason = format!(
                            "canary failed on {failed} of {} sites; resume to go on anyway, or abort",
                            wave.sites
                        );
                        state = StrategyState::Paused;
                        audit(w, "strategy.canary_failed", reason.clone());
                        break;
                    }
                    let initial = counts.get(current, StepState::Initial);
                    let in_flight = counts.wave(current, StepState::in_flight);
                    if initial == 0 && in_flight == 0 {
                        let soak_ms = spec
                            .canary
                            .as_ref()
                            .map_or(0, |c| i64::from(c.soak_secs) * 1000);
                        if canary && soak_ms > 0 && wave.soak_until.is_none() {
                            wave.state = WaveState::Soaking;
                            wave.soak_until = Some(now.0 + soak_ms);
                            wave.changed = true;
                            audit(
                                w,
                                "strategy.canary_soaking",
                                format!(
                                    "canary wave done; soaking until {}",
                                    Millis(now.0 + soak_ms).to_iso()
                                ),
                            );
                            break;
                        }
                        if canary && wave.soak_until.is_some_and(|t| now.0 < t) {
                            break;
                        }
                        let needs_approval = spec
                            .canary
                            .as_ref()
                            .is_some_and(|c| c.approval == CanaryApproval::Operator);
                        if canary && needs_approval {
                            wave.state = WaveState::WaitingApproval;
                            wave.changed = true;
                            state = StrategyState::WaitingApproval;
                            reason = format!(
                                "canary wave complete: {} of {} sites succeeded; approve to continue",
                                counts.get(current, StepState::Complete),
                                wave.sites
                            );
                            audit(w, "strategy.waiting_approval", reason.clone());
                            break;
                        }
                        wave.state = WaveState::Complete;
                        wave.finished_at = Some(now.0);
                        wave.changed = true;
                        audit(
                            w,
                            "strategy.wave_complete",
                            format!("{} complete", wave.name),
                        );
                        current += 1;
                        if let Some(next) = waves.get_mut(current as usize) {
                            next.state = WaveState::Running;
                            next.started_at = Some(now.0);
                            next.changed = true;
                        }
                        continue;
                    }
                    if wave.state == WaveState::Pending {
                        wave.state = WaveState::Running;
                        wave.started_at = Some(now.0);
                        wave.changed = true;
                    }
                    let slots = u64::from(wave.max_parallel).saturating_sub(in_flight);
                    if slots > 0 && initial > 0 {
                        let wave_index = wave.index;
                        self.launch(a, wave_index, slots, now, busy, clock, &mut counts, w)
                            .await?;
                    }
                    break;
                }
                let settled = counts.all(|s| !s.is_final()) == 0;
                if state == StrategyState::Applying
                    && settled
                    && (stopping || current >= a.wave_count)
                {
                    let failed = counts.all(StepState::is_failure);
                    let total = counts.all(|_| true);
                    if failed > 0 {
                        state = StrategyState::Failed;
                        if !stopping {
                            reason = format!("{failed} of {total} sites failed");
                        } else if reason.is_empty() {
                            // The failure came when no step was left to abort.
                            reason = format!("stopped on failure: {failed} site(s) failed");
                        }
                    } else {
                        state = StrategyState::Complete;
                        reason.clear();
                    }
                    for wave in waves
                        .iter_mut()
                        .filter(|x| !matches!(x.state, WaveState::Complete | WaveState::Stopped))
                    {
                        wave.state = if stopping {
                            WaveState::Stopped
                        } else {
                            WaveState::Complete
                        };
                        wave.finished_at.get_or_insert(now.0);
                        wave.changed = true;
                    }
                    audit(
                        w,
                        &format!(
                            "strategy.{}",
                            if failed > 0 { "failed" } else { "completed" }
                        ),
                        format!(
                            "{}: {} complete, {failed} failed, {} skipped, {} aborted of {total}",
                            a.strategy_type,
                            counts.all(|s| s == StepState::Complete),
                            counts.all(|s| s == StepState::Skipped),
                            counts.all(|s| s == StepState::Aborted),
                        ),
                    );
                }
            }
            StrategyState::Aborting if counts.all(StepState::in_flight) == 0 => {
                state = StrategyState::Aborted;
                audit(
                    w,
                    "strategy.aborted",
                    format!(
                        "{}: {} complete, {} failed, {} aborted",
                        a.strategy_type,
                        counts.all(|s| s == StepState::Complete),
                        counts.all(StepState::is_failure),
                        counts.all(|s| s == StepState::Aborted),
                    ),
                );
            }
            _ => {}
        }
        if state != a.state {
            w.transitions += 1;
        }
        for wave in waves.into_iter().filter(|x| x.changed) {
            w.waves.push((a.id, wave));
        }
        w.strategies.push(StrategyWrite {
            id: a.id,
            read_revision: a.revision,
            state,
            current_wave: current.min(a.wave_count.saturating_sub(1)),
            reason,
            finished: state.is_terminal(),
            counts: [
                counts.all(|s| s == StepState::Complete),
                counts.all(StepState::is_failure),
                counts.all(|s| s == StepState::Skipped),
                counts.all(|s| s == StepState::Aborted),
                counts.all(StepState::in_flight),
            ],
            measured: w.measured.get(&a.id).copied().unwrap_or_default(),
        });
        Ok(())
    }

    /// Applies reported progress to the strategy's in-flight steps: completion, failure (retry,
    /// rollback or final), phase changes and timeouts.
    async fn advance_in_flight(
        &self,
        a: &Active,
        now: Millis,
        counts: &mut Counts,
        w: &mut Writes,
    ) -> Result<()> {
        let rows = sqlx::query(
            "SELECT st.id, st.subcloud_id, st.wave, st.state, st.phase, st.percent, st.attempt, st.command_id, \
             st.details, st.from_version, st.not_before, st.started_at, st.finished_at, \
             c.state, c.percent, c.message, c.phase, c.created_at, COALESCE(pg.owner_epoch, 0), \
             COALESCE(lc.name, sc.name), s.rehome_status \
             FROM strategy_steps st LEFT JOIN subcloud_commands c ON c.id = st.command_id \
             JOIN subclouds s ON s.id = st.subcloud_id LEFT JOIN peer_groups pg ON pg.id = s.peer_group_id \
             LEFT JOIN system_controllers lc ON lc.id = pg.leader_id \
             JOIN system_controllers sc ON sc.id = s.controller_id \
             WHERE st.strategy_id = $1 AND st.state IN ('queued', 'running', 'rolling back')",
        )
        .bind(a.id)
        .fetch_all(self.store.pool())
        .await?;
        let spec = &a.spec;
        let timeout_ms = i64::from(spec.step_timeout_secs) * 1000;
        // An aborted strategy issues no new command: a failure is final (no retry, whose step
        // would stay `initial` for good, and no rollback).
        let aborting = matches!(
            a.state,
            StrategyState::AbortRequested | StrategyState::Aborting
        );
        let this = self.geo_runtime().map(|g| g.config().this.clone());
        for r in &rows {
            let mut s = Step {
                id: r.try_get(0)?,
                subcloud_id: r.try_get(1)?,
                wave: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                state: r
                    .try_get::<&str, _>(3)?
                    .parse()
                    .map_err(|e: crate::ValidationError| Error::Internal(e.to_string()))?,
                phase: r.try_get(4)?,
                percent: r.try_get(5)?,
                attempt: r.try_get(6)?,
                command_id: r.try_get(7)?,
                details: r.try_get(8)?,
                from_version: r.try_get(9)?,
                not_before: r.try_get(10)?,
                started_at: r.try_get(11)?,
                finished_at: r.try_get(12)?,
            };
            let before = s.state;
            if s.command_id.is_none() {
                // In flight under the controller this strategy was taken over from: issue the
                // same attempt again under the same key, once this controller manages the
                // site. The agent reports what it did instead of running it twice.
                let managed_here = this.as_ref().is_none_or(|this| {
                    r.try_get::<&str, _>(19).is_ok_and(|o| o == this)
                        && r.try_get::<&str, _>(20).is_ok_and(|st| st != "waiting")
                });
                if managed_here {
                    let rollback = s.state == StepState::RollingBack;
                    w.launches.push(Launch {
                        action: if rollback {
                            CommandAction::Rollback {
                                of: a.strategy_type.as_str().into(),
                                to: s.from_version.clone(),
                            }
                        } else {
                            spec.command()
                        },
                        key: step_key(&a.uuid, s.subcloud_id, s.attempt, rollback),
                        step: s,
                        strategy_id: a.id,
                        epoch: r.try_get(18)?,
                    });
                }
                continue;
            }
            let cmd_state: Option<CommandState> = r
                .try_get::<Option<&str>, _>(13)?
                .and_then(|v| v.parse().ok());
            let c_percent: i64 = r.try_get::<Option<i64>, _>(14)?.unwrap_or(0);
            let c_message: String = r.try_get::<Option<String>, _>(15)?.unwrap_or_default();
            let c_phase: String = r.try_get::<Option<String>, _>(16)?.unwrap_or_default();
            let issued_at: i64 = r.try_get::<Option<i64>, _>(17)?.unwrap_or(now.0);
            let rolling_back = s.state == StepState::RollingBack;
            match cmd_state {
                Some(CommandState::Queued | CommandState::Running)
                    if now.0 - issued_at > timeout_ms =>
                {
                    let msg = if cmd_state == Some(CommandState::Queued) {
                        format!(
                            "no acknowledgement from the agent within {} s",
                            spec.step_timeout_secs
                        )
                    } else {
                        format!(
                            "timed out after {} s in {}",
                            spec.step_timeout_secs,
                            if s.phase.is_empty() {
                                "its first phase"
                            } else {
                                &s.phase
                            }
                        )
                    };
                    if let Some(cid) = s.command_id {
                        w.timeouts.push((cid, s.subcloud_id, msg.clone()));
                    }
                    s.state = if rolling_back {
                        StepState::RollbackFailed
                    } else {
                        StepState::Failed
                    };
                    s.details = if rolling_back {
                        format!("rollback {msg}; {}", s.details)
                    } else {
                        msg
                    };
                    s.finished_at = Some(now.0);
                }
                Some(CommandState::Queued) => {}
                Some(CommandState::Running) => {
                    let next = if rolling_back {
                        StepState::RollingBack
                    } else {
                        StepState::Running
                    };
                    if s.state == next && s.phase == c_phase && s.percent == c_percent {
                        continue;
                    }
                    s.state = next;
                    s.phase = c_phase;
                    s.percent = c_percent;
                }
                Some(CommandState::Succeeded) => {
                    s.finished_at = Some(now.0);
                    if rolling_back {
                        s.state = StepState::RolledBack;
                        s.details = format!("rolled back to {}; {}", s.from_version, s.details);
                    } else {
                        s.state = StepState::Complete;
                        s.percent = 100;
                        s.phase = c_phase;
                        s.details = c_message;
                        if let (1, Some(started)) = (s.attempt, s.started_at) {
                            let m = w.measured.entry(a.id).or_default();
                            m.0 += 1;
                            m.1 += (now.0 - started).max(0);
                        }
                    }
                }
                Some(CommandState::Failed) | None => {
                    let msg = if cmd_state.is_none() {
                        "the step's command is missing from the store".to_string()
                    } else {
                        c_message
                    };
                    let where_ = if c_phase.is_empty() {
                        String::new()
                    } else {
                        format!("{c_phase}: ")
                    };
                    s.phase = c_phase.clone();
                    s.percent = c_percent;
                    if rolling_back {
                        s.state = StepState::RollbackFailed;
                        s.details = format!("rollback failed: {where_}{msg}; {}", s.details);
                        s.finished_at = Some(now.0);
                    } else if aborting {
                        s.state = StepState::Failed;
                        s.details = format!(
                            "{where_}{msg}; not retried or rolled back: the strategy is aborting"
                        );
                        s.finished_at = Some(now.0);
                    } else if s.attempt <= i64::from(spec.retries) {
                        let at = now.0 + backoff_ms(spec, s.attempt);
                        s.state = StepState::Initial;
                        s.not_before = Some(at);
                        s.details = format!(
                            "attempt {} failed: {where_}{msg}; retry at {}",
                            s.attempt,
                            Millis(at).to_iso()
                        );
                    } else if spec.rollback
                        && a.strategy_type == StrategyType::SwDeploy
                        && !s.from_version.is_empty()
                    {
                        s.state = StepState::RollingBack;
                        s.phase.clear();
                        s.percent = 0;
                        s.details =
                            format!("failed: {where_}{msg}; rolling back to {}", s.from_version);
                        counts.shift(s.wave, before, s.state, 1);
                        w.launches.push(Launch {
                            action: CommandAction::Rollback {
                                of: a.strategy_type.as_str().into(),
                                to: s.from_version.clone(),
                            },
                            key: step_key(&a.uuid, s.subcloud_id, s.attempt, true),
                            step: s,
                            strategy_id: a.id,
                            epoch: r.try_get(18)?,
                        });
                        continue;
                    } else {
                        s.state = StepState::Failed;
                        s.details = format!("{where_}{msg}");
                        s.finished_at = Some(now.0);
                    }
                }
            }
            if s.state.is_final() {
                w.finished += 1;
            }
            counts.shift(s.wave, before, s.state, 1);
            w.steps.push(s);
        }
        Ok(())
    }

    /// Marks every not-yet-started step of a strategy aborted (one set-based write).
    fn abort_not_started(&self, id: i64, details: &str, counts: &mut Counts, w: &mut Writes) {
        let waiting: Vec<(u32, u64)> = counts
            .0
            .iter()
            .filter(|((_, s), n)| *s == StepState::Initial && **n > 0)
            .map(|((wave, _), n)| (*wave, *n))
            .collect();
        for (wave, n) in waiting {
            counts.shift(wave, StepState::Initial, StepState::Aborted, n);
            w.finished += n;
        }
        w.abort_initial.push((id, details.to_string()));
    }

    /// Starts up to `slots` steps of `wave`, in order, skipping sites that must wait.
    #[allow(clippy::too_many_arguments)]
    async fn launch(
        &self,
        a: &Active,
        wave: u32,
        slots: u64,
        now: Millis,
        busy: &mut HashMap<i64, i64>,
        clock: &mut LocalClock,
        counts: &mut Counts,
        w: &mut Writes,
    ) -> Result<()> {
        // Read well past the free slots: sites that must wait are passed over.
        let scan = i64::try_from(slots).unwrap_or(i64::MAX).saturating_mul(4) + 2_000;
        let rows = sqlx::query(
            "SELECT st.id, st.subcloud_id, st.attempt, st.details, st.from_version, st.started_at, \
             s.availability, s.timezone, s.software_version, COALESCE(pg.owner_epoch, 0), \
             COALESCE(lc.name, sc.name), s.rehome_status \
             FROM strategy_steps st JOIN subclouds s ON s.id = st.subcloud_id \
             LEFT JOIN peer_groups pg ON pg.id = s.peer_group_id \
             LEFT JOIN system_controllers lc ON lc.id = pg.leader_id \
             JOIN system_controllers sc ON sc.id = s.controller_id \
             WHERE st.strategy_id = $1 AND st.wave = $2 AND st.state = 'initial' \
             AND (st.not_before IS NULL OR st.not_before <= $3) \
             ORDER BY st.position LIMIT $4",
        )
        .bind(a.id)
        .bind(i64::from(wave))
        .bind(now.0)
        .bind(scan)
        .fetch_all(self.store.pool())
        .await?;
        let spec = &a.spec;
        let action = spec.command();
        let mut started = 0u64;
        // With geo-redundancy, only sites this controller manages get commands here; the
        // others wait (their agents would ignore a non-owner's commands anyway).
        let this = self.geo_runtime().map(|g| g.config().this.clone());
        for r in &rows {
            if started >= slots {
                break;
            }
            let id: i64 = r.try_get(0)?;
            let subcloud_id: i64 = r.try_get(1)?;
            let attempt: i64 = r.try_get(2)?;
            let details: String = r.try_get(3)?;
            let online = r.try_get::<&str, _>(6)? == AvailabilityStatus::Online.as_str();
            let timezone: String = r.try_get(7)?;
            let mut wait = |why: String| {
                if details != why {
                    w.waiting.push((id, why));
                }
            };
            if let Some(this) = &this {
                let owner: String = r.try_get(10)?;
                if owner != *this {
                    wait(format!("waiting: the site is managed by {owner}"));
                    continue;
                }
                if r.try_get::<&str, _>(11)? == "waiting" {
                    wait("waiting: the site is being rehomed here".into());
                    continue;
                }
            }
            if let Some(other) = busy.get(&subcloud_id).filter(|o| **o != a.id) {
                wait(format!("waiting: the site is busy with strategy {other}"));
                continue;
            }
            if !online {
                match spec.offline_policy {
                    OfflinePolicy::Wait => {
                        wait("waiting: the site is offline".into());
                        continue;
                    }
                    policy => {
                        let state = if policy == OfflinePolicy::Skip {
                            StepState::Skipped
                        } else {
                            StepState::Failed
                        };
                        counts.shift(wave, StepState::Initial, state, 1);
                        w.finished += 1;
                        w.steps.push(Step {
                            id,
                            subcloud_id,
                            wave,
                            state,
                            phase: String::new(),
                            percent: 0,
                            attempt,
                            command_id: None,
                            details: format!(
                                "{}: the site was offline when its turn came",
                                state.as_str()
                            ),
                            from_version: r.try_get(4)?,
                            not_before: None,
                            started_at: r.try_get(5)?,
                            finished_at: Some(now.0),
                        });
                        continue;
                    }
                }
            }
            if let Some(win) = spec.window {
                if !win.contains(clock.minute_of_day(&timezone, now)) {
                    wait(format!(
                        "waiting for its maintenance window {win} ({timezone})"
                    ));
                    continue;
                }
            }
            let from_version: String = if attempt == 0 {
                r.try_get(8)?
            } else {
                r.try_get(4)?
            };
            busy.insert(subcloud_id, a.id);
            counts.shift(wave, StepState::Initial, StepState::Queued, 1);
            started += 1;
            w.launches.push(Launch {
                step: Step {
                    id,
                    subcloud_id,
                    wave,
                    state: StepState::Queued,
                    phase: String::new(),
                    percent: 0,
                    attempt: attempt + 1,
                    command_id: None,
                    details: String::new(),
                    from_version,
                    not_before: None,
                    started_at: Some(r.try_get::<Option<i64>, _>(5)?.unwrap_or(now.0)),
                    finished_at: None,
                },
                strategy_id: a.id,
                epoch: r.try_get(9)?,
                action: action.clone(),
                key: step_key(&a.uuid, subcloud_id, attempt + 1, false),
            });
        }
        Ok(())
    }

    /// Writes a tick in one transaction, then hands new commands to the agent gateway. `None`
    /// when an operator changed a strategy meanwhile (nothing is written).
    async fn write_orchestration(&self, mut w: Writes, now: Millis) -> Result<Option<Issued>> {
        let backend = self.store.backend();
        let mut tx = self.store.begin_write().await?;
        let mut states = HashMap::new();
        // Strategy rows first, guarded by the revision read: an operator's action, or a tick of
        // another controller instance sharing the store, that landed since wins, and this tick
        // is dropped (so no step is launched twice).
        for s in &w.strategies {
            let changed = sqlx::query(
                "UPDATE strategies SET state = $1, current_wave = $2, reason = $3, steps_complete = $4, \
                 steps_failed = $5, steps_skipped = $6, steps_aborted = $7, steps_in_flight = $8, \
                 updated_at = $9, finished_at = CASE WHEN $10 = 1 THEN $9 ELSE finished_at END, \
                 revision = revision + 1, measured_steps = measured_steps + $13, \
                 measured_ms = measured_ms + $14 WHERE id = $11 AND revision = $12",
            )
            .bind(s.state.as_str())
            .bind(i64::from(s.current_wave))
            .bind(&s.reason)
            .bind(s.counts[0] as i64)
            .bind(s.counts[1] as i64)
            .bind(s.counts[2] as i64)
            .bind(s.counts[3] as i64)
            .bind(s.counts[4] as i64)
            .bind(now.0)
            .bind(i64::from(s.finished))
            .bind(s.id)
            .bind(s.read_revision)
            .bind(s.measured.0)
            .bind(s.measured.1)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            states.insert(s.id, s.state);
        }
        // New commands, then the steps that own them (the command id is known only now).
        let mut issued = Vec::with_capacity(w.launches.len());
        if !w.launches.is_empty() {
            let mut rows = Vec::with_capacity(w.launches.len());
            for l in &w.launches {
                let json =
                    serde_json::to_string(&l.action).map_err(|e| Error::Internal(e.to_string()))?;
                rows.push(vec![
                    Cell::Int(l.step.subcloud_id),
                    Cell::Text(json),
                    Cell::Int(l.epoch),
                    Cell::Text("queued".into()),
                    Cell::Text(format!("strategy:{}", l.strategy_id)),
                    Cell::Int(now.0),
                    Cell::Int(now.0),
                    Cell::Text(l.key.clone()),
                ]);
            }
            let created = bulk_insert_returning(
                &mut tx,
                "subcloud_commands",
                &[
                    "subcloud_id",
                    "action",
                    "epoch",
                    "state",
                    "created_by",
                    "created_at",
                    "updated_at",
                    "idempotency_key",
                ],
                rows,
                "id, subcloud_id, created_by",
            )
            .await?;
            // One step per (subcloud, strategy) in a tick: that pair names the command.
            let mut ids: HashMap<(i64, String), i64> = HashMap::with_capacity(created.len());
            for r in &created {
                ids.insert((r.try_get(1)?, r.try_get(2)?), r.try_get(0)?);
            }
            for l in w.launches.iter_mut() {
                let key = (l.step.subcloud_id, format!("strategy:{}", l.strategy_id));
                let id = ids
                    .get(&key)
                    .copied()
                    .ok_or_else(|| Error::Internal("a new command was not returned".into()))?;
                l.step.command_id = Some(id);
                issued.push((
                    l.step.subcloud_id,
                    Command {
                        id,
                        epoch: u64::try_from(l.epoch).unwrap_or(0),
                        key: Some(l.key.clone()),
                        action: l.action.clone(),
                    },
                ));
            }
        }
        let step_rows: Vec<Vec<Cell>> = w
            .steps
            .iter()
            .chain(w.launches.iter().map(|l| &l.step))
            .map(|s| s.cells(now))
            .collect();
        if !step_rows.is_empty() {
            bulk_update(
                &mut tx,
                backend,
                "strategy_steps",
                "id",
                &STEP_SET,
                step_rows,
            )
            .await?;
        }
        if !w.waiting.is_empty() {
            let rows = w
                .waiting
                .drain(..)
                .map(|(id, d)| vec![Cell::Int(id), Cell::Text(d), Cell::Int(now.0)])
                .collect();
            bulk_update_guarded(
                &mut tx,
                backend,
                "strategy_steps",
                "id",
                &["details", "updated_at"],
                &[],
                "state = 'initial'",
                rows,
            )
            .await?;
        }
        for (id, details) in &w.abort_initial {
            sqlx::query(
                "UPDATE strategy_steps SET state = 'aborted', details = $1, finished_at = $2, updated_at = $2 \
                 WHERE strategy_id = $3 AND state = 'initial'",
            )
            .bind(details)
            .bind(now.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        if !w.timeouts.is_empty() {
            let rows = w
                .timeouts
                .iter()
                .map(|(cid, sid, msg)| {
                    vec![
                        Cell::Int(*cid),
                        Cell::Text("failed".into()),
                        Cell::Text(format!("given up by the controller: {msg}")),
                        Cell::Int(now.0),
                        Cell::Int(*sid),
                    ]
                })
                .collect();
            bulk_update_guarded(
                &mut tx,
                backend,
                "subcloud_commands",
                "id",
                &["state", "message", "updated_at"],
                &["subcloud_id"],
                "state IN ('queued', 'running')",
                rows,
            )
            .await?;
        }
        if !w.waves.is_empty() {
            let rows = w
                .waves
                .iter()
                .map(|(sid, x)| {
                    vec![
                        Cell::Int(*sid),
                        Cell::Text(x.state.as_str().into()),
                        Cell::OptInt(x.started_at),
                        Cell::OptInt(x.finished_at),
                        Cell::OptInt(x.soak_until),
                        Cell::Int(i64::from(x.index)),
                    ]
                })
                .collect();
            bulk_update_guarded(
                &mut tx,
                backend,
                "strategy_waves",
                "strategy_id",
                &["state", "started_at", "finished_at", "soak_until"],
                &["wave"],
                "",
                rows,
            )
            .await?;
        }
        for e in &w.audits {
            audit::record(&mut tx, e).await?;
        }
        tx.commit().await?;
        if let Some(g) = self.agent_gateway() {
            let mut st = g.lock();
            for (cid, sid, _) in &w.timeouts {
                if let Some(list) = st.commands.get_mut(sid) {
                    list.retain(|c| c.id != *cid);
                }
            }
            for (sid, cmd) in issued {
                // The gateway may have read it from the store already (PostgreSQL refresh).
                let list = st.commands.entry(sid).or_default();
                if !list.iter().any(|c| c.id == cmd.id) {
                    list.push(cmd);
                }
            }
        }
        Ok(Some(Issued { states }))
    }
}

struct Issued {
    states: HashMap<i64, StrategyState>,
}

/// Runs orchestrator ticks every `interval`, and at once when an operator acts.
pub fn spawn_orchestrator(engine: Engine, interval: Duration) -> tokio::task::JoinHandle<()> {
    let wake = Arc::new(tokio::sync::Notify::new());
    let _ = engine.orchestrator_wake.set(wake.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = wake.notified() => {}
            }
            let started = std::time::Instant::now();
            match engine.orchestration_tick(Millis::now()).await {
                Ok(t) if t.launched > 0 || t.finished > 0 || t.transitions > 0 => {
                    tracing::debug!(
                        strategies = t.strategies,
                        launched = t.launched,
                        finished = t.finished,
                        transitions = t.transitions,
                        ms = started.elapsed().as_secs_f64() * 1000.0,
                        "orchestrator tick"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "orchestrator tick failed; retrying next tick")
                }
            }
        }
    })
}

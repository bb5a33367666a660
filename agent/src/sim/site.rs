//! One simulated site as a state machine without I/O: the runner asks it what to do
//! ([`SimSite::plan`], [`SimSite::prepare`]) and tells it what happened
//! ([`SimSite::accepted`], [`SimSite::failed`]). Everything here is deterministic given the
//! seed and the order of calls, which is what the unit tests rely on.

use std::sync::Arc;

use engine::agents::wire::{
    Capacity, CommandAction, CommandProgress, CommandState, ControllerRef, EnrollRequest,
    Enrollment, Reachability, Report, ReportAnswer, SiteHealth, MAX_REACHABILITY, PROTOCOL_VERSION,
};
use engine::fleet::EndpointType;
use engine::time::Millis;
use rand::Rng;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use super::behaviour::Behaviour;
use super::faults::{Fault, FaultState};
use super::profile::Profile;
use super::rng::{stream, SplitMix64, Stream};
use super::steps::{
    rolls_back_kubernetes, rolls_back_software, success_message, ActionKind, Course, StepConfig,
    Timetable, KIND_SLOTS,
};
use super::SiteSpec;
use crate::commands::{validate_action, CommandBook};
use crate::failover::ControllerSet;
use crate::seq::SeqGen;
use crate::transport::{bearer, TransportError};

/// What simulated agents report as their version, so operators can tell them apart.
pub const SIM_AGENT_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "-sim");

/// Bounds on the interval a controller may ask for (a 0 would spin, a day would look dead).
pub const INTERVAL_MS: (u64, u64) = (100, 3_600_000);
/// Interval assumed until the enrollment answer says otherwise.
pub const DEFAULT_INTERVAL_MS: u64 = 10_000;
/// Distinct (epoch, owner) pairs kept per site: enough to show a few ownership moves and a
/// split brain, bounded whatever controllers answer (the counters still count everything).
pub const OWNER_HISTORY: usize = 16;

/// Where a site is with its enrollment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnrollState {
    Pending,
    Enrolled,
    /// The controller refused the token: the site stays silent.
    Refused,
}

/// What the runner does when a site's report is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Nothing: not enrolled, down, or restarting.
    Idle,
    /// The report is lost on the way (the `loss` fault): nothing is sent.
    Dropped,
    /// Send, after waiting `delay_ms` (the `latency` fault).
    Send { delay_ms: u32 },
}

/// One attempt of a report on one controller.
#[derive(Debug)]
pub enum Attempt {
    /// The site is partitioned from that controller: fails without a request.
    Partitioned,
    Send {
        url: String,
        auth: HeaderValue,
        report: Box<Report>,
    },
}

/// Effects of one tick the runner counts.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickOutcome {
    pub succeeded: u32,
    pub failed: u32,
    /// Per action kind ([`ActionKind`] order, unknown actions last): succeeded, failed.
    pub by_kind: [[u32; 2]; KIND_SLOTS],
}

/// A command the site has taken on, as the simulator times it.
#[derive(Debug, Clone, PartialEq)]
struct Run {
    id: i64,
    /// Simulator clock when it arrived (the report cycle whose answer carried it).
    received_ms: u64,
    /// Drawn at the first tick after receipt.
    timetable: Option<Timetable>,
}

/// What an accepted answer changed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AnswerOutcome {
    /// Accepted by another controller than the one used before.
    pub failover: bool,
    pub fenced: usize,
    /// Work a new owner re-issued under its own id and the same key: taken over, not run.
    pub reissued: usize,
    /// The answer's epoch was already claimed by another owner (see [`OwnerHistory`]).
    pub owner_conflict: bool,
    /// Commands admitted from an answer whose epoch was below the highest seen before it.
    pub epoch_regressions: usize,
    /// The answer came from a controller that is not the owner it names, and names an owner
    /// this site was not reporting to: go there soon rather than a whole interval later (a
    /// takeover then completes in one report interval, not two).
    pub go_to_owner: bool,
}

/// Which controller claimed ownership under which epoch, as one site saw it: the raw
/// material of a split-brain check (two owners for one epoch must never happen).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OwnerHistory {
    /// Distinct (epoch, owner) pairs in the order first seen, the last [`OWNER_HISTORY`].
    pairs: Vec<(u64, String)>,
    /// Distinct pairs ever recorded (also those no longer kept).
    seen: u64,
    /// Owner named by the last answer.
    owner: Option<String>,
    /// Answers whose epoch was already seen with another owner.
    conflicts: u64,
}

impl OwnerHistory {
    /// Records an answer of `owner` under `epoch`; true when another owner already claimed
    /// that epoch. Epoch 0 means no peer group, hence no claim: it never conflicts. Only the
    /// pairs still kept can be compared, so a conflict on an epoch older than the last
    /// [`OWNER_HISTORY`] distinct pairs goes unnoticed.
    pub fn record(&mut self, epoch: u64, owner: &str) -> bool {
        let conflict = epoch != 0
            && self
                .pairs
                .iter()
                .any(|(e, o)| *e == epoch && o.as_str() != owner);
        if conflict {
            self.conflicts = self.conflicts.saturating_add(1);
        }
        if !self
            .pairs
            .iter()
            .any(|(e, o)| *e == epoch && o.as_str() == owner)
        {
            if self.pairs.len() >= OWNER_HISTORY {
                self.pairs.remove(0);
            }
            self.pairs.push((epoch, owner.to_string()));
            self.seen = self.seen.saturating_add(1);
        }
        // Answers repeat the owner: allocate only when it changes.
        if self.owner.as_deref() != Some(owner) {
            self.owner = Some(owner.to_string());
        }
        conflict
    }

    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    pub fn pairs(&self) -> &[(u64, String)] {
        &self.pairs
    }

    pub fn seen(&self) -> u64 {
        self.seen
    }

    pub fn conflicts(&self) -> u64 {
        self.conflicts
    }
}

/// A simulated site.
#[derive(Debug)]
pub struct SimSite {
    pub(crate) name: String,
    pub(crate) region: String,
    token: Option<String>,
    profile: Profile,
    schedule: SplitMix64,
    behaviour_rng: SplitMix64,
    loss: SplitMix64,
    jitter: SplitMix64,
    commands_rng: SplitMix64,
    behaviour: Behaviour,
    pub(crate) faults: FaultState,
    silent_until_ms: u64,
    seq: SeqGen,
    highest_epoch: u64,
    last_epoch: Option<u64>,
    /// Owners named by accepted answers, for split-brain checks.
    owners: OwnerHistory,
    /// Commands admitted from answers under an epoch below the highest seen before them:
    /// what fencing must keep at 0.
    epoch_regressions: u64,
    pub(crate) controllers: ControllerSet,
    book: CommandBook,
    /// Timetables of the commands still running (same ids as the book's running ones).
    runs: Vec<Run>,
    /// Simulator clock of the current report cycle (set by [`SimSite::plan`]).
    clock_ms: u64,
    /// Commands taken on and started (a resent command never counts twice).
    commands_started: u64,
    /// Kubernetes version, once a `kubernetes_upgrade` (or its rollback) set it: the report
    /// has no field for it, the site view shows it.
    kube_version: Option<String>,
    auth: Option<HeaderValue>,
    pub(crate) enroll: EnrollState,
    interval_ms: u64,
    software_version: String,
    last_error: Option<String>,
    accepted: u64,
}

impl SimSite {
    /// A site with its characteristics drawn from `seed` and its name.
    pub fn new(
        spec: SiteSpec,
        seed: u64,
        controller_coords: &[(String, f64, f64)],
        controllers: Arc<[ControllerRef]>,
        interval_ms: u64,
    ) -> Self {
        let profile = Profile::draw(seed, &spec.name, spec.lat, spec.lon, controller_coords);
        let mut behaviour_rng = stream(seed, &spec.name, Stream::Behaviour);
        let behaviour = Behaviour::warm(&mut behaviour_rng, profile.capacity.hosts);
        Self {
            schedule: stream(seed, &spec.name, Stream::Schedule),
            loss: stream(seed, &spec.name, Stream::Loss),
            jitter: stream(seed, &spec.name, Stream::Jitter),
            commands_rng: stream(seed, &spec.name, Stream::Commands),
            behaviour_rng,
            behaviour,
            profile,
            token: Some(spec.enrollment_token),
            name: spec.name,
            region: spec.region,
            faults: FaultState::default(),
            silent_until_ms: 0,
            seq: SeqGen::default(),
            highest_epoch: 0,
            last_epoch: None,
            owners: OwnerHistory::default(),
            epoch_regressions: 0,
            controllers: ControllerSet::new(controllers),
            book: CommandBook::default(),
            runs: Vec::new(),
            clock_ms: 0,
            commands_started: 0,
            kube_version: None,
            auth: None,
            enroll: EnrollState::Pending,
            interval_ms: clamp_interval(interval_ms),
            software_version: spec.software_version,
            last_error: None,
            accepted: 0,
        }
    }

    /// The enrollment request, while the site still holds its token.
    pub fn enroll_request(&self) -> Option<EnrollRequest> {
        let token = self.token.as_ref()?;
        Some(EnrollRequest {
            protocol: PROTOCOL_VERSION,
            subcloud: self.name.clone(),
            enrollment_token: token.clone(),
        })
    }

    /// Enrolled via controller `via` (an index in the current list). `list` is the
    /// enrollment's controller list, already shared (`None` when it is the one held).
    pub fn enrolled(
        &mut self,
        enrollment: &Enrollment,
        via: usize,
        list: Option<Arc<[ControllerRef]>>,
    ) -> Result<(), TransportError> {
        self.auth = Some(bearer(&enrollment.secret)?);
        self.token = None;
        self.enroll = EnrollState::Enrolled;
        self.interval_ms = clamp_interval(enrollment.report_interval_ms);
        self.controllers.succeeded(via);
        if let Some(list) = list {
            self.controllers.adopt(list, via);
        }
        self.last_error = None;
        Ok(())
    }

    pub fn enroll_refused(&mut self, e: &TransportError) {
        self.enroll = EnrollState::Refused;
        self.token = None;
        self.last_error = Some(format!("enrollment: {e}"));
    }

    pub fn note_error(&mut self, e: &TransportError) {
        self.last_error = Some(e.to_string());
    }

    /// Delay before the first report: uniform over one interval, so sites spread evenly.
    pub fn first_offset_ms(&mut self) -> u64 {
        self.schedule.gen_range(0..self.interval_ms.max(1))
    }

    /// Delay until the next report: the interval ± 10 %.
    pub fn next_delay_ms(&mut self) -> u64 {
        let spread = self.interval_ms / 10;
        self.schedule
            .gen_range(self.interval_ms - spread..=self.interval_ms + spread)
    }

    pub fn interval_ms(&self) -> u64 {
        self.interval_ms
    }

    pub fn last_seq(&self) -> u64 {
        self.seq.last()
    }

    /// A report is due at `now_ms` (simulator clock); commands execute as `steps` says.
    pub fn plan(&mut self, now_ms: u64, steps: &StepConfig) -> (Plan, TickOutcome) {
        if self.enroll != EnrollState::Enrolled
            || now_ms < self.silent_until_ms
            || self.faults.is_down(now_ms)
        {
            return (Plan::Idle, TickOutcome::default());
        }
        self.clock_ms = self.clock_ms.max(now_ms);
        let outcome = self.tick(self.clock_ms, steps);
        let lost = self.faults.loss_percent > 0
            && self.loss.gen_range(0..100u8) < self.faults.loss_percent;
        let plan = if lost {
            Plan::Dropped
        } else {
            Plan::Send {
                delay_ms: self.faults.latency_ms,
            }
        };
        (plan, outcome)
    }

    /// One interval of the site's life at `now_ms`: platform episodes advance, and each
    /// running command moves along its timetable (see [`super::steps`]).
    pub fn tick(&mut self, now_ms: u64, steps: &StepConfig) -> TickOutcome {
        self.behaviour
            .tick(&mut self.behaviour_rng, self.profile.capacity.hosts);
        let hosts = self.profile.capacity.hosts;
        let mut out = TickOutcome::default();
        let mut succeeded = Vec::new();
        for t in self.book.running_mut() {
            t.step = t.step.saturating_add(1);
            if let Err(message) = validate_action(&t.action) {
                t.enter_phase(0);
                t.fail(&message);
            } else {
                let k = match self.runs.iter().position(|r| r.id == t.id) {
                    Some(k) => k,
                    None => {
                        // Taken on without `accepted` (not through the protocol): from now.
                        self.runs.push(Run {
                            id: t.id,
                            received_ms: now_ms,
                            timetable: None,
                        });
                        self.runs.len() - 1
                    }
                };
                let run = &mut self.runs[k];
                let timetable = run.timetable.get_or_insert_with(|| {
                    Timetable::draw(&t.action, steps, t.doomed, hosts, &mut self.commands_rng)
                });
                match timetable.at(now_ms.saturating_sub(run.received_ms)) {
                    Course::Running { phase, percent } => {
                        t.enter_phase(phase);
                        t.run(percent);
                    }
                    Course::Failed {
                        phase,
                        percent,
                        message,
                    } => {
                        t.enter_phase(phase);
                        t.run(percent);
                        t.fail(&message);
                    }
                    Course::Succeeded => {
                        t.succeed(&success_message(&t.action));
                        succeeded.push(t.action.clone());
                    }
                }
            }
            let slot = ActionKind::slot(&t.action);
            match t.state {
                s if !s.is_final() => {}
                CommandState::Succeeded => {
                    out.succeeded += 1;
                    out.by_kind[slot][0] += 1;
                }
                _ => {
                    out.failed += 1;
                    out.by_kind[slot][1] += 1;
                }
            }
        }
        let book = &self.book;
        self.runs
            .retain(|r| book.active().iter().any(|t| t.id == r.id && !t.is_final()));
        for action in succeeded {
            self.succeeded(action);
        }
        out
    }

    /// The lasting effect of a command that succeeded.
    fn succeeded(&mut self, action: CommandAction) {
        match action {
            CommandAction::SoftwareDeploy { release } => self.software_version = release,
            CommandAction::KubernetesUpgrade { to_version } => {
                self.kube_version = Some(to_version);
            }
            CommandAction::Rollback { of, to } if rolls_back_software(&of) => {
                self.software_version = to;
            }
            CommandAction::Rollback { of, to } if rolls_back_kubernetes(&of) => {
                self.kube_version = Some(to);
            }
            CommandAction::SyncEndpoints => self.behaviour.sync_all(),
            // Prestage, firmware, root CA and other rollbacks change nothing reported.
            _ => {}
        }
    }

    /// Prepares the attempt on controller `i` of the current list at wall-clock `wall_ms`.
    pub fn prepare(
        &mut self,
        i: usize,
        wall_ms: u64,
        controller_coords: &[(String, f64, f64)],
    ) -> Option<Attempt> {
        let list = Arc::clone(self.controllers.list());
        let controller = list.get(i)?;
        if self.faults.is_partitioned(controller) {
            self.controllers.failed(i);
            return Some(Attempt::Partitioned);
        }
        let auth = self.auth.clone()?;
        let report = self.report(wall_ms, controller_coords);
        Some(Attempt::Send {
            url: controller.url.clone(),
            auth,
            report: Box::new(report),
        })
    }

    /// A complete report (with a fresh seq) as of `wall_ms`.
    pub fn report(&mut self, wall_ms: u64, controller_coords: &[(String, f64, f64)]) -> Report {
        let reachability = self.reachability(controller_coords);
        Report {
            protocol: PROTOCOL_VERSION,
            seq: self.seq.next(wall_ms),
            sent_at: Millis(i64::try_from(wall_ms).unwrap_or(i64::MAX)),
            health: self.behaviour.health(),
            software_version: self.software_version.clone(),
            endpoints: self.behaviour.endpoints(),
            alarms: self.behaviour.alarms(),
            capacity: self.profile.capacity,
            commands: self.book.progress(),
            reachability,
            highest_epoch: self.highest_epoch,
            agent_version: SIM_AGENT_VERSION.to_string(),
        }
    }

    /// Modelled probes: base latency by distance + access link + injected latency + jitter;
    /// unreachable when partitioned or when the last attempt there failed.
    fn reachability(&mut self, controller_coords: &[(String, f64, f64)]) -> Vec<Reachability> {
        let list = Arc::clone(self.controllers.list());
        list.iter()
            .enumerate()
            .take(MAX_REACHABILITY)
            .map(|(i, c)| {
                let reachable = !self.faults.is_partitioned(c) && !self.controllers.is_failed(i);
                let rtt_ms = reachable.then(|| {
                    let base = controller_coords
                        .iter()
                        .position(|(name, _, _)| *name == c.name)
                        .and_then(|k| self.profile.rtt_ms.get(k).copied())
                        .unwrap_or(self.profile.default_rtt_ms);
                    let u: f32 = self.jitter.gen_range(0.0..1.0);
                    let ms = base
                        + self.profile.last_mile_ms
                        + self.faults.latency_ms as f32
                        + base * 0.15 * u * u;
                    ms.round().clamp(1.0, u32::MAX as f32) as u32
                });
                Reachability {
                    controller: c.name.clone(),
                    reachable,
                    rtt_ms,
                }
            })
            .collect()
    }

    /// Controller `i` accepted a report. `share` turns a changed controller list into the
    /// shared copy (the simulator interns the few distinct lists of its thousands of sites).
    pub fn accepted(
        &mut self,
        i: usize,
        answer: ReportAnswer,
        share: impl FnOnce(Vec<ControllerRef>) -> Arc<[ControllerRef]>,
    ) -> AnswerOutcome {
        let before = self.controllers.current().map(|c| c.name.clone());
        // The owner is first in the answer's list; an answer without a list speaks for the
        // controller that gave it (an index in the list held before adopting a new one).
        let owner = answer
            .controllers
            .first()
            .or_else(|| self.controllers.list().get(i));
        let answered_by = self.controllers.list().get(i).map(|c| c.name.clone());
        let go_to_owner = owner.is_some_and(|o| {
            Some(&o.name) != answered_by.as_ref()
                && self.controllers.list().first().map(|c| &c.name) != Some(&o.name)
        });
        let owner_conflict = owner.is_some_and(|c| self.owners.record(answer.owner_epoch, &c.name));
        let regressed = answer.owner_epoch < self.highest_epoch;
        self.highest_epoch = self.highest_epoch.max(answer.owner_epoch);
        self.last_epoch = Some(answer.owner_epoch);
        self.book.acknowledge();
        self.controllers.succeeded(i);
        let failover = self.controllers.current().map(|c| &c.name) != before.as_ref();
        self.interval_ms = clamp_interval(answer.report_interval_ms);
        if !answer.controllers.is_empty() && !self.controllers.same_list(&answer.controllers) {
            self.controllers.adopt(share(answer.controllers), i);
        }
        let (faults, runs, started) =
            (&mut self.faults, &mut self.runs, &mut self.commands_started);
        let received_ms = self.clock_ms;
        let received = self
            .book
            .receive(&answer.commands, self.highest_epoch, |t| {
                if faults.fail_next_command && t.action != CommandAction::Unknown {
                    faults.fail_next_command = false;
                    t.doomed = true;
                }
                *started += 1;
                runs.push(Run {
                    id: t.id,
                    received_ms,
                    timetable: None,
                });
            });
        // Work a new owner re-issued under its own id keeps its course.
        for (old, new) in &received.relabeled {
            if let Some(run) = self.runs.iter_mut().find(|r| r.id == *old) {
                run.id = *new;
            }
        }
        // Counted from what the book admitted, not assumed from the fencing rule.
        let epoch_regressions = if regressed { received.accepted } else { 0 };
        self.epoch_regressions = self
            .epoch_regressions
            .saturating_add(epoch_regressions as u64);
        self.last_error = None;
        self.accepted += 1;
        AnswerOutcome {
            failover,
            fenced: received.fenced,
            reissued: received.relabeled.len(),
            owner_conflict,
            epoch_regressions,
            go_to_owner,
        }
    }

    /// The attempt on controller `i` failed with `e`.
    pub fn failed(&mut self, i: usize, e: &TransportError) {
        if e.is_failover() {
            self.controllers.failed(i);
        }
        self.note_error(e);
    }

    /// Applies a fault at `now_ms` (simulator clock).
    pub fn apply(&mut self, fault: &Fault, now_ms: u64) {
        if *fault == Fault::Restart {
            // The process restarts: what it held in memory is gone, it is silent while it
            // comes back, and its next seq comes from the clock (SeqGen never goes below
            // the last one used, as a real agent's persisted state guarantees).
            self.book = CommandBook::default();
            self.runs.clear();
            self.silent_until_ms = now_ms.saturating_add(self.interval_ms);
        } else {
            self.faults.apply(fault, now_ms);
        }
    }

    /// Silent now (down, flapping down, restarting).
    pub fn is_silent(&self, now_ms: u64) -> bool {
        now_ms < self.silent_until_ms || self.faults.is_down(now_ms)
    }

    pub fn health(&self) -> SiteHealth {
        self.behaviour.health()
    }

    pub fn alarm_count(&self) -> usize {
        self.behaviour.alarm_count()
    }

    pub fn out_of_sync(&self) -> Option<EndpointType> {
        self.behaviour.out_of_sync()
    }

    /// Owner named by the last accepted answer.
    pub fn owner(&self) -> Option<&str> {
        self.owners.owner()
    }

    pub fn owner_conflicts(&self) -> u64 {
        self.owners.conflicts()
    }

    pub fn epoch_regressions(&self) -> u64 {
        self.epoch_regressions
    }

    pub fn view(&self, now_ms: u64) -> SiteView {
        SiteView {
            name: self.name.clone(),
            region: self.region.clone(),
            enrollment: self.enroll,
            down: self.is_silent(now_ms),
            flap_period_ms: self.faults.flap.map(|f| f.period_ms),
            latency_ms: self.faults.latency_ms,
            loss_percent: self.faults.loss_percent,
            partitions: self.faults.partitions.clone(),
            fail_next_command: self.faults.fail_next_command,
            controller: self.controllers.current().map(|c| c.name.clone()),
            last_epoch: self.last_epoch,
            highest_epoch: self.highest_epoch,
            owner: self.owners.owner().map(String::from),
            owners: self.owners.pairs().to_vec(),
            owners_seen: self.owners.seen(),
            owner_conflicts: self.owners.conflicts(),
            epoch_regressions: self.epoch_regressions,
            last_error: self.last_error.clone(),
            software_version: self.software_version.clone(),
            health: self.behaviour.health(),
            alarms: self.behaviour.alarm_count(),
            out_of_sync: self.behaviour.out_of_sync(),
            capacity: self.profile.capacity,
            interval_ms: self.interval_ms,
            last_seq: self.seq.last(),
            reports_accepted: self.accepted,
            kube_version: self.kube_version.clone(),
            commands_started: self.commands_started,
            commands: self.book.active().iter().map(|t| t.progress()).collect(),
        }
    }
}

/// 0 (a controller that does not say) means the default.
fn clamp_interval(ms: u64) -> u64 {
    match ms {
        0 => DEFAULT_INTERVAL_MS,
        ms => ms.clamp(INTERVAL_MS.0, INTERVAL_MS.1),
    }
}

/// A site as the control API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteView {
    pub name: String,
    pub region: String,
    pub enrollment: EnrollState,
    /// Silent now: down, in the down half of a flap, or restarting.
    pub down: bool,
    pub flap_period_ms: Option<u64>,
    pub latency_ms: u32,
    pub loss_percent: u8,
    pub partitions: Vec<String>,
    pub fail_next_command: bool,
    /// The controller the site reports to now.
    pub controller: Option<String>,
    /// Owner epoch in the last accepted answer.
    pub last_epoch: Option<u64>,
    pub highest_epoch: u64,
    /// Owner named by the last accepted answer (first of its controller list).
    #[serde(default)]
    pub owner: Option<String>,
    /// Distinct (epoch, owner) pairs in the order first seen, the last 16.
    #[serde(default)]
    pub owners: Vec<(u64, String)>,
    /// Distinct (epoch, owner) pairs ever seen, also those no longer in `owners`.
    #[serde(default)]
    pub owners_seen: u64,
    /// Answers whose (non-zero) epoch another owner had already claimed: a split brain.
    #[serde(default)]
    pub owner_conflicts: u64,
    /// Commands obeyed from answers under an epoch below the highest seen before them
    /// (fencing keeps it at 0).
    #[serde(default)]
    pub epoch_regressions: u64,
    pub last_error: Option<String>,
    pub software_version: String,
    pub health: SiteHealth,
    pub alarms: usize,
    pub out_of_sync: Option<EndpointType>,
    pub capacity: Capacity,
    pub interval_ms: u64,
    pub last_seq: u64,
    pub reports_accepted: u64,
    /// Kubernetes version set by a `kubernetes_upgrade` (or its rollback); not modelled
    /// (`null`) before.
    #[serde(default)]
    pub kube_version: Option<String>,
    /// Commands taken on and started since the site started (resends never count twice).
    #[serde(default)]
    pub commands_started: u64,
    /// Commands running or awaiting acknowledgement of their final state, with their phase.
    pub commands: Vec<CommandProgress>,
}

#[cfg(test)]
mod tests {
    use engine::agents::wire::Command;

    use super::*;

    const WALL: u64 = 1_800_000_000_000;

    fn refs(names: &[&str]) -> Arc<[ControllerRef]> {
        names
            .iter()
            .map(|n| ControllerRef {
                name: n.to_string(),
                url: format!("http://{n}.test"),
            })
            .collect()
    }

    fn spec(name: &str) -> SiteSpec {
        SiteSpec {
            name: name.into(),
            region: "Europe".into(),
            lat: 48.85,
            lon: 2.35,
            software_version: "24.09".into(),
            enrollment_token: "mme_token".into(),
            controller: None,
        }
    }

    fn coords() -> Vec<(String, f64, f64)> {
        vec![("sc-a".into(), 52.37, 4.90), ("sc-b".into(), 40.71, -74.01)]
    }

    fn enrolled(name: &str, seed: u64) -> SimSite {
        let mut s = SimSite::new(spec(name), seed, &coords(), refs(&["sc-a", "sc-b"]), 10_000);
        let e = Enrollment {
            protocol: 1,
            subcloud: name.into(),
            secret: format!("mms_1_{}", "a".repeat(64)),
            report_interval_ms: 10_000,
            controllers: refs(&["sc-a", "sc-b"]).to_vec(),
        };
        s.enrolled(&e, 0, None).unwrap();
        s
    }

    fn answer(seq: u64, epoch: u64, commands: Vec<Command>) -> ReportAnswer {
        ReportAnswer {
            protocol: 1,
            accepted_seq: seq,
            owner_epoch: epoch,
            controllers: refs(&["sc-a", "sc-b"]).to_vec(),
            commands,
            report_interval_ms: 10_000,
        }
    }

    fn deploy(id: i64, epoch: u64, release: &str) -> Command {
        Command {
            id,
            epoch,
            key: None,
            action: CommandAction::SoftwareDeploy {
                release: release.into(),
            },
        }
    }

    /// Default durations, no failure by chance.
    fn steady() -> StepConfig {
        StepConfig {
            failure_rate: 0.0,
            ..StepConfig::default()
        }
    }

    /// One report cycle on controller 0: plan, build, accept with `answer`.
    fn cycle(s: &mut SimSite, now: u64, a: ReportAnswer) -> Report {
        cycle_with(s, now, a, &steady()).0
    }

    /// The same with `steps`, also returning what the tick finished.
    fn cycle_with(
        s: &mut SimSite,
        now: u64,
        a: ReportAnswer,
        steps: &StepConfig,
    ) -> (Report, TickOutcome) {
        let (plan, tick) = s.plan(now, steps);
        assert!(matches!(plan, Plan::Send { .. }), "{plan:?}");
        let Some(Attempt::Send { report, .. }) = s.prepare(0, WALL + now, &coords()) else {
            panic!("no attempt");
        };
        s.accepted(0, a, Arc::from);
        (*report, tick)
    }

    fn command(id: i64, action: CommandAction) -> Command {
        Command {
            id,
            epoch: 0,
            key: None,
            action,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_site_schedule_and_reports() {
        let run = |seed| {
            let mut s = enrolled("lyon-007", seed);
            let offset = s.first_offset_ms();
            let delays: Vec<u64> = (0..20).map(|_| s.next_delay_ms()).collect();
            let reports: Vec<Report> = (0..300)
                .map(|k| cycle(&mut s, k * 10_000, answer(k, 0, vec![])))
                .collect();
            (offset, delays, reports)
        };
        let (a, b) = (run(5), run(5));
        assert_eq!(a, b);
        assert_ne!(a, run(6));
        assert!(a.0 < 10_000 && a.1.iter().all(|d| (9_000..=11_000).contains(d)));
        // Everything a site reports is acceptable to the controller.
        for r in &a.2 {
            r.validate().unwrap();
        }
    }

    #[test]
    fn deploy_goes_through_its_phases_over_minutes_then_changes_the_version() {
        let mut s = enrolled("a", 1);
        cycle(&mut s, 0, answer(1, 3, vec![deploy(11, 3, "25.09")]));
        let phases = CommandAction::SoftwareDeploy {
            release: "25.09".into(),
        }
        .phases();
        let mut seen: Vec<(CommandState, u8, String)> = vec![];
        let mut k = 1;
        let last = loop {
            let r = cycle(&mut s, k * 10_000, answer(k + 1, 3, vec![]));
            k += 1;
            let Some(c) = r.commands.first() else {
                panic!("the final state was never reported")
            };
            seen.push((c.state, c.percent, c.phase.clone().unwrap()));
            if c.state.is_final() {
                break r;
            }
            assert_eq!(r.software_version, "24.09", "not before it succeeded");
        };
        // ~3 minutes at the default scale: many reports, each phase in order.
        assert!((10..=30).contains(&seen.len()), "{} reports", seen.len());
        assert!(seen.windows(2).all(|w| w[0].1 <= w[1].1), "percent rises");
        let mut order: Vec<&str> = seen.iter().map(|s| s.2.as_str()).collect();
        order.dedup();
        // Reports sample a wall-clock course: a phase shorter than an interval may fall
        // between two reports, but phases never go backwards.
        let positions: Vec<usize> = order
            .iter()
            .map(|p| phases.iter().position(|q| q == p).unwrap())
            .collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        assert!(order.len() >= 4, "{order:?}");
        assert!(order.contains(&"apply VIM sw-deploy strategy"));
        assert_eq!(
            seen.last().unwrap(),
            &(
                CommandState::Succeeded,
                100,
                "finish sw-deploy strategy".to_string()
            )
        );
        assert_eq!(last.commands[0].message, "25.09 deployed and active");
        let r = cycle(&mut s, k * 10_000, answer(k + 1, 3, vec![]));
        assert!(
            r.commands.is_empty(),
            "final state reported once, then remembered"
        );
        assert_eq!(r.software_version, "25.09");
    }

    #[test]
    fn zero_durations_finish_every_command_at_the_first_tick_after_receipt() {
        let mut s = enrolled("a", 1);
        let steps = StepConfig::instant();
        let actions = vec![
            CommandAction::SoftwareDeploy {
                release: "25.09".into(),
            },
            CommandAction::SyncEndpoints,
            CommandAction::KubernetesUpgrade {
                to_version: "v1.32.2".into(),
            },
            CommandAction::KubeRootcaUpdate {
                expiry_date: None,
                subject: None,
            },
            CommandAction::FirmwareUpdate,
            CommandAction::Prestage {
                release: "25.09".into(),
                for_install: true,
            },
            CommandAction::Rollback {
                of: "kubernetes".into(),
                to: "v1.29.2".into(),
            },
        ];
        let commands: Vec<Command> = actions
            .iter()
            .enumerate()
            .map(|(i, a)| command(i as i64 + 1, a.clone()))
            .collect();
        cycle_with(&mut s, 0, answer(1, 0, commands), &steps);
        // The next tick comes a whole interval later; durations would not matter anyway.
        let (r, tick) = cycle_with(&mut s, 10_000, answer(2, 0, vec![]), &steps);
        assert_eq!(r.commands.len(), actions.len());
        for (c, a) in r.commands.iter().zip(&actions) {
            assert_eq!(
                (c.state, c.percent),
                (CommandState::Succeeded, 100),
                "{c:?}"
            );
            assert_eq!(c.phase.as_deref(), a.phases().last().copied());
        }
        assert_eq!((tick.succeeded, tick.failed), (7, 0));
        assert!(tick.by_kind[..7].iter().all(|k| *k == [1, 0]), "{tick:?}");
        assert_eq!(r.software_version, "25.09");
        let v = s.view(0);
        assert_eq!(
            v.kube_version.as_deref(),
            Some("v1.29.2"),
            "upgraded, then rolled back"
        );
        assert_eq!(v.commands_started, 7);
    }

    #[test]
    fn failure_rate_one_fails_every_command_in_a_named_phase() {
        let mut s = enrolled("a", 4);
        let steps = StepConfig {
            failure_rate: 1.0,
            ..StepConfig::instant()
        };
        let mut failed = 0;
        for k in 0..40u64 {
            let a = match k % 4 {
                0 => CommandAction::SoftwareDeploy {
                    release: "25.09".into(),
                },
                1 => CommandAction::Prestage {
                    release: "25.09".into(),
                    for_install: false,
                },
                2 => CommandAction::KubeRootcaUpdate {
                    expiry_date: None,
                    subject: None,
                },
                _ => CommandAction::SyncEndpoints,
            };
            let now = k * 20_000;
            cycle_with(
                &mut s,
                now,
                answer(2 * k, 0, vec![command(k as i64, a.clone())]),
                &steps,
            );
            let (r, tick) = cycle_with(&mut s, now + 10_000, answer(2 * k + 1, 0, vec![]), &steps);
            let c = &r.commands[0];
            let phase = c
                .phase
                .as_deref()
                .expect("a failed command names its phase");
            assert!(a.phases().contains(&phase), "{phase}");
            assert_eq!(c.state, CommandState::Failed);
            assert!(
                c.message.starts_with(&format!("{phase} failed: "))
                    && c.message.ends_with("(simulated)"),
                "{}",
                c.message
            );
            assert!(crate::text::acceptable(&c.message));
            failed += tick.failed;
        }
        assert_eq!(failed, 40);
        assert_eq!(s.software_version, "24.09", "no deploy took effect");
    }

    #[test]
    fn a_deploy_failing_in_the_apply_phase_reads_like_starlingx() {
        // Find a seed whose failure lands in the apply phase and check the message shape.
        let steps = StepConfig {
            failure_rate: 1.0,
            ..StepConfig::default()
        };
        let found = (0..50).find_map(|seed| {
            let mut s = enrolled("a", seed);
            cycle_with(&mut s, 0, answer(1, 0, vec![deploy(1, 0, "25.09")]), &steps);
            let mut k = 1;
            loop {
                let (r, _) = cycle_with(&mut s, k * 10_000, answer(k + 1, 0, vec![]), &steps);
                k += 1;
                let c = r.commands.first()?;
                if c.state == CommandState::Failed {
                    return (c.phase.as_deref() == Some("apply VIM sw-deploy strategy"))
                        .then(|| c.clone());
                }
            }
        });
        let c = found.expect("some seed fails in the apply phase");
        assert!(
            c.message
                .starts_with("apply VIM sw-deploy strategy failed: host controller-")
                && c.message.ends_with("(simulated)"),
            "{}",
            c.message
        );
        assert!((20..100).contains(&c.percent), "{}", c.percent);
    }

    #[test]
    fn a_finished_command_resent_after_a_controller_crash_is_reported_again_not_rerun() {
        let mut s = enrolled("a", 1);
        let steps = StepConfig::instant();
        cycle_with(&mut s, 0, answer(1, 0, vec![deploy(5, 0, "25.09")]), &steps);
        let (first, tick) = cycle_with(&mut s, 10_000, answer(2, 0, vec![]), &steps);
        assert_eq!(tick.succeeded, 1);
        let final_progress = first.commands[0].clone();
        assert_eq!(final_progress.state, CommandState::Succeeded);
        let (r, _) = cycle_with(&mut s, 20_000, answer(3, 0, vec![]), &steps);
        assert!(r.commands.is_empty(), "delivered");
        // Meanwhile the site was rolled back by hand; a rerun would deploy again.
        s.software_version = "24.09".into();
        // The controller restarted without the final state and resends the command.
        cycle_with(
            &mut s,
            30_000,
            answer(4, 0, vec![deploy(5, 0, "25.09")]),
            &steps,
        );
        let (again, tick) = cycle_with(&mut s, 40_000, answer(5, 0, vec![]), &steps);
        assert_eq!(again.commands, vec![final_progress], "the same final state");
        assert_eq!(tick, TickOutcome::default(), "nothing ran");
        let (r, _) = cycle_with(&mut s, 50_000, answer(6, 0, vec![]), &steps);
        assert!(r.commands.is_empty(), "once, until acknowledged");
        assert_eq!(s.view(0).commands_started, 1, "executed once");
        assert_eq!(s.software_version, "24.09", "not deployed again");
    }

    #[test]
    fn rollback_restores_the_software_version() {
        let mut s = enrolled("a", 1);
        let steps = StepConfig {
            scale: 0.1,
            ..steady()
        };
        cycle_with(&mut s, 0, answer(1, 0, vec![deploy(1, 0, "25.09")]), &steps);
        for k in 1..5 {
            cycle_with(&mut s, k * 10_000, answer(k + 1, 0, vec![]), &steps);
        }
        assert_eq!(s.software_version, "25.09");
        let rollback = CommandAction::Rollback {
            of: "sw-deploy".into(),
            to: "24.09".into(),
        };
        cycle_with(
            &mut s,
            50_000,
            answer(6, 0, vec![command(2, rollback)]),
            &steps,
        );
        let mut last = None;
        for k in 6..12 {
            let (r, _) = cycle_with(&mut s, k * 10_000, answer(k + 1, 0, vec![]), &steps);
            last = r.commands.first().cloned().or(last);
        }
        let last = last.unwrap();
        assert_eq!(
            (last.state, last.phase.as_deref(), last.message.as_str()),
            (
                CommandState::Succeeded,
                Some("rolling back"),
                "sw-deploy rolled back to 24.09"
            )
        );
        assert_eq!(s.software_version, "24.09");
        // A rollback of something else leaves the release alone.
        let other = CommandAction::Rollback {
            of: "firmware".into(),
            to: "previous".into(),
        };
        cycle_with(
            &mut s,
            200_000,
            answer(20, 0, vec![command(3, other)]),
            &steps,
        );
        for k in 21..28 {
            cycle_with(&mut s, k * 10_000, answer(k + 1, 0, vec![]), &steps);
        }
        assert_eq!(s.software_version, "24.09");
    }

    #[test]
    fn invalid_arguments_fail_at_once_and_unknown_actions_are_unsupported() {
        let mut s = enrolled("a", 1);
        let cmds = vec![
            deploy(1, 0, ""),
            command(
                2,
                CommandAction::KubernetesUpgrade {
                    to_version: "newest".into(),
                },
            ),
            command(3, CommandAction::Unknown),
        ];
        cycle(&mut s, 0, answer(1, 0, cmds));
        let (r, tick) = cycle_with(&mut s, 10_000, answer(2, 0, vec![]), &steady());
        let got: Vec<(CommandState, &str, Option<&str>)> = r
            .commands
            .iter()
            .map(|c| (c.state, c.message.as_str(), c.phase.as_deref()))
            .collect();
        assert_eq!(
            got[0],
            (
                CommandState::Failed,
                "the release name is not valid",
                Some("sw-deploy pre-check")
            )
        );
        assert!(got[1].1.contains("kubernetes version"), "{:?}", got[1]);
        assert_eq!(got[2], (CommandState::Failed, "unsupported command", None));
        assert_eq!(
            tick.by_kind[KIND_SLOTS - 1],
            [0, 1],
            "unknown counted apart"
        );
    }

    #[test]
    fn fail_next_command_fails_one_deploy_and_the_next_succeeds() {
        let mut s = enrolled("a", 1);
        let steps = StepConfig::instant();
        s.apply(&Fault::FailNextCommand, 0);
        cycle_with(&mut s, 0, answer(1, 0, vec![deploy(1, 0, "25.09")]), &steps);
        let (r1, _) = cycle_with(
            &mut s,
            10_000,
            answer(2, 0, vec![deploy(2, 0, "25.09")]),
            &steps,
        );
        let failed = &r1.commands[0];
        assert_eq!((failed.id, failed.state), (1, CommandState::Failed));
        let phase = failed.phase.as_deref().unwrap();
        assert!(
            failed.message.starts_with(&format!("{phase} failed: "))
                && failed.message.contains("simulated failure"),
            "{}",
            failed.message
        );
        assert!(!s.faults.fail_next_command, "armed for one command only");
        assert_eq!(s.software_version, "24.09");
        let (r2, _) = cycle_with(&mut s, 20_000, answer(3, 0, vec![]), &steps);
        assert_eq!(
            (r2.commands[0].id, r2.commands[0].state),
            (2, CommandState::Succeeded)
        );
        assert_eq!(s.software_version, "25.09");
    }

    #[test]
    fn timetables_are_deterministic_per_seed() {
        let run = |seed| {
            let mut s = enrolled("lyon-1", seed);
            let steps = StepConfig {
                failure_rate: 0.3,
                ..StepConfig::default()
            };
            let mut seen = vec![];
            for k in 0..200u64 {
                let cmds = if k % 25 == 0 {
                    vec![deploy(k as i64, 0, "25.09")]
                } else {
                    vec![]
                };
                let (r, _) = cycle_with(&mut s, k * 10_000, answer(k + 1, 0, cmds), &steps);
                seen.extend(r.commands);
            }
            seen
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
    }

    #[test]
    fn commands_below_the_highest_epoch_are_ignored_and_duplicates_run_once() {
        let mut s = enrolled("a", 1);
        cycle(&mut s, 0, answer(1, 5, vec![]));
        // A deposed controller (epoch 4) and the owner (epoch 5) both send commands.
        let o = {
            let (plan, _) = s.plan(10_000, &steady());
            assert!(matches!(plan, Plan::Send { .. }));
            s.prepare(0, WALL + 10_000, &coords());
            s.accepted(
                0,
                answer(2, 5, vec![deploy(1, 4, "old"), deploy(2, 5, "new")]),
                Arc::from,
            )
        };
        assert_eq!(o.fenced, 1);
        // The owner resends its command while it is running: no second run.
        cycle(&mut s, 20_000, answer(3, 5, vec![deploy(2, 5, "new")]));
        let r = cycle(&mut s, 30_000, answer(4, 5, vec![]));
        assert_eq!(r.commands.len(), 1);
        let c = &r.commands[0];
        assert_eq!((c.id, c.state), (2, CommandState::Running));
        assert!((1..50).contains(&c.percent), "{c:?}");
        assert_eq!(s.view(0).commands_started, 1);
        assert_eq!(r.highest_epoch, 5);
        // An answer from a controller still on epoch 3 does not lower what the site has seen.
        cycle(&mut s, 40_000, answer(5, 3, vec![deploy(3, 3, "older")]));
        let r = cycle(&mut s, 50_000, answer(6, 5, vec![]));
        assert_eq!(r.highest_epoch, 5);
        assert!(r.commands.iter().all(|c| c.id == 2));
    }

    #[test]
    fn restart_drops_commands_goes_silent_and_never_reuses_a_seq() {
        let mut s = enrolled("a", 1);
        let r1 = cycle(&mut s, 0, answer(1, 0, vec![deploy(1, 0, "25.09")]));
        let r2 = cycle(&mut s, 10_000, answer(2, 0, vec![]));
        assert_eq!(r2.commands.len(), 1);
        s.apply(&Fault::Restart, 15_000);
        assert_eq!(
            s.plan(20_000, &steady()).0,
            Plan::Idle,
            "silent for one interval"
        );
        assert!(s.is_silent(24_999) && !s.is_silent(25_000));
        // The clock reads earlier than the seqs used before the restart.
        let (plan, _) = s.plan(30_000, &steady());
        assert!(matches!(plan, Plan::Send { .. }));
        let Some(Attempt::Send { report, .. }) = s.prepare(0, 5, &coords()) else {
            panic!("no attempt");
        };
        assert!(report.seq > r2.seq && r2.seq > r1.seq);
        assert!(
            report.commands.is_empty(),
            "in-memory command state is gone"
        );
    }

    #[test]
    fn partition_fails_over_and_reports_the_controller_unreachable() {
        let mut s = enrolled("a", 1);
        s.apply(
            &Fault::Partition {
                controller: "sc-a".into(),
            },
            0,
        );
        s.plan(0, &steady());
        let order: Vec<usize> = s.controllers.attempt_order().collect();
        assert_eq!(order, vec![0, 1]);
        assert!(matches!(
            s.prepare(0, WALL, &coords()),
            Some(Attempt::Partitioned)
        ));
        let Some(Attempt::Send { url, report, .. }) = s.prepare(1, WALL, &coords()) else {
            panic!("no attempt on sc-b");
        };
        assert_eq!(url, "http://sc-b.test");
        let r = &report.reachability;
        assert_eq!((r[0].reachable, r[0].rtt_ms), (false, None));
        assert!(
            r[1].reachable && r[1].rtt_ms.is_some_and(|ms| ms > 50),
            "{r:?}"
        );
        let o = s.accepted(1, answer(1, 0, vec![]), Arc::from);
        assert!(o.failover);
        assert_eq!(s.view(0).controller.as_deref(), Some("sc-b"));
    }

    #[test]
    fn down_loss_and_latency_shape_the_plan() {
        let mut s = enrolled("a", 1);
        s.apply(&Fault::Down, 0);
        assert_eq!(s.plan(1, &steady()).0, Plan::Idle);
        s.apply(&Fault::Up, 2);
        s.apply(&Fault::Latency { ms: 250 }, 2);
        assert_eq!(s.plan(3, &steady()).0, Plan::Send { delay_ms: 250 });
        s.apply(&Fault::Loss { percent: 100 }, 4);
        assert_eq!(s.plan(5, &steady()).0, Plan::Dropped);
        s.apply(&Fault::Loss { percent: 30 }, 6);
        let dropped = (0..1_000)
            .filter(|k| s.plan(10 + k, &steady()).0 == Plan::Dropped)
            .count();
        assert!((220..380).contains(&dropped), "{dropped}");
        let mut pending = SimSite::new(spec("b"), 1, &coords(), refs(&["sc-a"]), 10_000);
        assert_eq!(pending.plan(0, &steady()).0, Plan::Idle, "not enrolled yet");
        assert!(pending.enroll_request().is_some());
    }

    /// An answer naming `owners` (owner first) under `epoch`.
    fn owned(seq: u64, epoch: u64, owners: &[&str], commands: Vec<Command>) -> ReportAnswer {
        ReportAnswer {
            controllers: refs(owners).to_vec(),
            ..answer(seq, epoch, commands)
        }
    }

    fn history(s: &SimSite) -> Vec<(u64, String)> {
        s.view(0).owners
    }

    #[test]
    fn two_owners_claiming_one_epoch_count_a_conflict() {
        let mut s = enrolled("a", 1);
        let first = s.accepted(0, owned(1, 65, &["a", "b"], vec![]), Arc::from);
        assert!(!first.owner_conflict);
        let second = s.accepted(0, owned(2, 65, &["b", "a"], vec![]), Arc::from);
        assert!(second.owner_conflict);
        let v = s.view(0);
        assert_eq!(v.owner_conflicts, 1);
        assert_eq!(v.owner.as_deref(), Some("b"));
        assert_eq!(v.owners, vec![(65, "a".into()), (65, "b".into())]);
        // Every further answer under the disputed epoch counts, whichever owner it names.
        s.accepted(0, owned(3, 65, &["a", "b"], vec![]), Arc::from);
        assert_eq!(s.view(0).owner_conflicts, 2);
        assert_eq!(s.view(0).owners_seen, 2, "no new pair");
    }

    #[test]
    fn an_ownership_move_to_a_higher_epoch_is_no_conflict() {
        let mut s = enrolled("a", 1);
        for seq in 1..4 {
            s.accepted(0, owned(seq, 1, &["a", "b"], vec![]), Arc::from);
        }
        for seq in 4..7 {
            let o = s.accepted(0, owned(seq, 66, &["b", "a"], vec![]), Arc::from);
            assert!(!o.owner_conflict);
        }
        let v = s.view(0);
        assert_eq!(v.owners, vec![(1, "a".into()), (66, "b".into())]);
        assert_eq!((v.owner_conflicts, v.epoch_regressions), (0, 0));
        assert_eq!(v.owner.as_deref(), Some("b"));
        // A stale answer of the old owner under its old epoch is no conflict either.
        s.accepted(0, owned(7, 1, &["a", "b"], vec![]), Arc::from);
        assert_eq!(s.view(0).owner_conflicts, 0);
        assert_eq!(s.view(0).owner.as_deref(), Some("a"), "the last answer's");
    }

    #[test]
    fn epoch_zero_claims_nothing_and_a_listless_answer_speaks_for_its_controller() {
        let mut s = enrolled("a", 1);
        // No peer group: each controller may put itself first.
        s.accepted(0, owned(1, 0, &["sc-a", "sc-b"], vec![]), Arc::from);
        s.accepted(1, owned(2, 0, &["sc-b", "sc-a"], vec![]), Arc::from);
        assert_eq!(s.view(0).owner_conflicts, 0);
        // Without a list, the owner is the controller that answered (index 0 of the list
        // held: sc-b first now).
        let listless = ReportAnswer {
            controllers: vec![],
            ..answer(3, 4, vec![])
        };
        s.accepted(0, listless, Arc::from);
        let v = s.view(0);
        assert_eq!(v.owner.as_deref(), Some("sc-b"));
        assert_eq!(v.owners.last(), Some(&(4, "sc-b".to_string())));
    }

    #[test]
    fn an_answer_naming_a_new_owner_sends_the_site_there_soon_once() {
        let mut s = enrolled("a", 1);
        s.accepted(0, owned(1, 1, &["sc-a", "sc-b", "sc-c"], vec![]), Arc::from);
        // sc-a died; sc-b (index 1) answers while sc-a is still the owner: stay.
        let o = s.accepted(1, owned(2, 1, &["sc-a", "sc-b", "sc-c"], vec![]), Arc::from);
        assert!(!o.go_to_owner);
        // sc-b answers naming sc-c, the new owner: go there soon.
        let o = s.accepted(
            1,
            owned(3, 67, &["sc-c", "sc-a", "sc-b"], vec![]),
            Arc::from,
        );
        assert!(o.go_to_owner);
        // The same news again changes nothing, and the owner's own answer never does.
        let i = s
            .controllers
            .list()
            .iter()
            .position(|c| c.name == "sc-b")
            .unwrap();
        let o = s.accepted(
            i,
            owned(4, 67, &["sc-c", "sc-a", "sc-b"], vec![]),
            Arc::from,
        );
        assert!(!o.go_to_owner);
        let o = s.accepted(
            0,
            owned(5, 67, &["sc-c", "sc-a", "sc-b"], vec![]),
            Arc::from,
        );
        assert!(!o.go_to_owner);
    }

    #[test]
    fn the_owner_history_is_capped_but_counts_everything() {
        let mut s = enrolled("a", 1);
        let names: Vec<String> = (0..20).map(|k| format!("c{k}")).collect();
        for (k, name) in names.iter().enumerate() {
            let epoch = k as u64 + 1;
            s.accepted(0, owned(epoch, epoch, &[name.as_str()], vec![]), Arc::from);
        }
        let h = history(&s);
        assert_eq!(h.len(), OWNER_HISTORY);
        assert_eq!(h[0], (5, "c4".into()), "the oldest dropped");
        assert_eq!(h[OWNER_HISTORY - 1], (20, "c19".into()));
        let v = s.view(0);
        assert_eq!((v.owners_seen, v.owner_conflicts), (20, 0));
        // A dispute over a kept epoch is still seen.
        s.accepted(0, owned(21, 20, &["c0"], vec![]), Arc::from);
        assert_eq!(s.view(0).owner_conflicts, 1);
        assert_eq!(history(&s).len(), OWNER_HISTORY);
    }

    #[test]
    fn epoch_regressions_count_what_the_book_admits_from_stale_answers() {
        let mut s = enrolled("a", 1);
        s.accepted(0, answer(1, 5, vec![]), Arc::from);
        // A deposed controller (epoch 3) resends its command: fenced, nothing obeyed.
        let o = s.accepted(0, answer(2, 3, vec![deploy(1, 3, "old")]), Arc::from);
        assert_eq!((o.fenced, o.epoch_regressions), (1, 0));
        assert_eq!(s.view(0).epoch_regressions, 0);
        // The owner's commands under the current or a higher epoch are no regression.
        s.accepted(0, answer(3, 5, vec![deploy(2, 5, "new")]), Arc::from);
        s.accepted(0, answer(4, 6, vec![deploy(3, 6, "newer")]), Arc::from);
        assert_eq!(s.view(0).epoch_regressions, 0);
        // A stale answer (epoch 4 < 6) carrying a command the book does admit (its own epoch
        // is not below the highest) is counted, and a resent one only once.
        let stale = answer(5, 4, vec![deploy(4, 6, "odd"), deploy(3, 6, "newer")]);
        let o = s.accepted(0, stale, Arc::from);
        assert_eq!((o.fenced, o.epoch_regressions), (0, 1));
        assert_eq!(s.view(0).epoch_regressions, 1);
        assert_eq!(s.view(0).commands_started, 3);
    }

    #[test]
    fn views_without_the_owner_fields_still_parse() {
        let mut s = enrolled("a", 1);
        s.accepted(0, owned(1, 7, &["sc-b", "sc-a"], vec![]), Arc::from);
        let mut json = serde_json::to_value(s.view(0)).unwrap();
        assert_eq!(json["owners"], serde_json::json!([[7, "sc-b"]]));
        assert_eq!(json["owner"], "sc-b");
        for key in [
            "owner",
            "owners",
            "owners_seen",
            "owner_conflicts",
            "epoch_regressions",
        ] {
            json.as_object_mut().unwrap().remove(key);
        }
        let v: SiteView = serde_json::from_value(json).unwrap();
        assert_eq!((v.owner, v.owners.len(), v.owner_conflicts), (None, 0, 0));
    }
}

//! What a strategy is: its type, target, settings and the states it and its steps go through
//! (StarlingX's `sw-update-strategy` model, reference §1.6, plus canary, failure budget,
//! retries, rollback and maintenance windows). Plain data and validation; no store.

use serde::{Deserialize, Serialize};

use crate::agents::wire::CommandAction;
use crate::error::ValidationError;
use crate::text_enum::text_enum;
use crate::time::Millis;

text_enum! {
    /// What a strategy rolls out. One active strategy per type.
    pub enum StrategyType: "strategy type" {
        SwDeploy = "sw-deploy",
        Kubernetes = "kubernetes",
        KubeRootcaUpdate = "kube-rootca-update",
        Firmware = "firmware",
        Prestage = "prestage",
    }
}

impl StrategyType {
    /// Largest `max_parallel` this type allows (prestage pulls gigabytes per site).
    pub fn max_parallel_limit(self) -> u32 {
        match self {
            StrategyType::Prestage => 250,
            _ => 5_000,
        }
    }

    /// Typical duration of one site's step before any has been recorded (ETA fallback).
    pub fn default_step_ms(self) -> i64 {
        match self {
            StrategyType::SwDeploy => 180_000,
            StrategyType::Kubernetes => 120_000,
            StrategyType::KubeRootcaUpdate => 60_000,
            StrategyType::Firmware => 150_000,
            StrategyType::Prestage => 240_000,
        }
    }
}

text_enum! {
    /// Where a strategy stands. `paused` and `waiting for approval` are ours; the rest are
    /// StarlingX's spellings.
    pub enum StrategyState: "strategy state" {
        Initial = "initial",
        Applying = "applying",
        Paused = "paused",
        WaitingApproval = "waiting for approval",
        AbortRequested = "abort requested",
        Aborting = "aborting",
        Complete = "complete",
        Aborted = "aborted",
        Failed = "failed",
    }
}

impl StrategyState {
    /// Finished for good: the strategy is history and no longer blocks its type.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StrategyState::Complete | StrategyState::Aborted | StrategyState::Failed
        )
    }

    /// The runner works on it (in-flight steps advance).
    pub fn is_running(self) -> bool {
        !self.is_terminal() && self != StrategyState::Initial
    }
}

text_enum! {
    /// Serial forces one site at a time.
    pub enum ApplyType: "apply type" {
        Serial = "serial",
        Parallel = "parallel",
    }
}

text_enum! {
    /// One site's step. In flight: `queued` (command issued, the agent has not picked it up),
    /// `running` (the agent reports phases), `rolling back`. The StarlingX phase name the agent
    /// is in is kept next to the state.
    pub enum StepState: "step state" {
        Initial = "initial",
        Queued = "queued",
        Running = "running",
        RollingBack = "rolling back",
        Complete = "complete",
        Failed = "failed",
        RolledBack = "rolled back",
        RollbackFailed = "rollback failed",
        Skipped = "skipped",
        Aborted = "aborted",
    }
}

impl StepState {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepState::Complete
                | StepState::Failed
                | StepState::RolledBack
                | StepState::RollbackFailed
                | StepState::Skipped
                | StepState::Aborted
        )
    }

    pub fn in_flight(self) -> bool {
        matches!(
            self,
            StepState::Queued | StepState::Running | StepState::RollingBack
        )
    }

    /// Counts against the failure budget and stop-on-failure.
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            StepState::Failed | StepState::RolledBack | StepState::RollbackFailed
        )
    }
}

text_enum! {
    /// What to do with a site that is offline when its turn comes.
    pub enum OfflinePolicy: "offline policy" {
        /// Leave it pending until it is back (the wave waits for it).
        Wait = "wait",
        /// Mark it skipped and go on.
        Skip = "skip",
        /// Mark it failed (counts against the failure budget).
        Fail = "fail",
    }
}

text_enum! {
    /// What a breached failure budget does.
    pub enum BudgetAction: "budget action" {
        Pause = "pause",
        Abort = "abort",
    }
}

text_enum! {
    /// What follows the canary wave's soak time.
    pub enum CanaryApproval: "canary approval" {
        /// The rollout continues by itself.
        Automatic = "automatic",
        /// An operator must approve.
        Operator = "operator",
    }
}

text_enum! {
    pub enum WaveState: "wave state" {
        Pending = "pending",
        Running = "running",
        Soaking = "soaking",
        WaitingApproval = "waiting for approval",
        Complete = "complete",
        Stopped = "stopped",
    }
}

/// A count of sites or a share of a set: `5` or `10%`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Amount {
    Sites(u32),
    Percent(u32),
}

impl Amount {
    /// Parses `5` or `10%` (1–100 %).
    pub fn parse(field: &str, s: &str) -> Result<Self, ValidationError> {
        let s = s.trim();
        let bad = || {
            ValidationError::new(
                field,
                format!("{field} is a number of sites or a percentage such as 10%"),
            )
        };
        if let Some(p) = s.strip_suffix('%') {
            let p: u32 = p.trim().parse().map_err(|_| bad())?;
            if !(1..=100).contains(&p) {
                return Err(ValidationError::new(
                    field,
                    format!("{field} must be 1% to 100%"),
                ));
            }
            Ok(Amount::Percent(p))
        } else {
            let n: u32 = s.parse().map_err(|_| bad())?;
            Ok(Amount::Sites(n))
        }
    }

    /// Resolves against a set of `of` sites (a percentage rounds up, so 1 % of 50 is 1 site).
    pub fn of(self, of: u64) -> u64 {
        match self {
            Amount::Sites(n) => u64::from(n),
            Amount::Percent(p) => (of * u64::from(p)).div_ceil(100),
        }
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Amount::Sites(n) => write!(f, "{n}"),
            Amount::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Which subclouds a strategy covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    All,
    Subcloud {
        name: String,
    },
    Group {
        name: String,
    },
    PeerGroup {
        name: String,
    },
    /// The subclouds a fleet-list query matches (`availability=online&group=Edge-EU`).
    Filter {
        query: String,
    },
}

impl Target {
    pub fn describe(&self) -> String {
        match self {
            Target::All => "all subclouds".into(),
            Target::Subcloud { name } => format!("subcloud {name}"),
            Target::Group { name } => format!("group {name}"),
            Target::PeerGroup { name } => format!("peer group {name}"),
            Target::Filter { query } => format!("subclouds matching {query}"),
        }
    }
}

/// The first wave: a few sites first, then a soak and (optionally) an operator's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    pub size: Amount,
    /// Seconds to watch the canaries after they finish before going on.
    #[serde(default)]
    pub soak_secs: u32,
    pub approval: CanaryApproval,
}

/// Failures a wave may have before the strategy pauses or aborts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureBudget {
    /// Allowed failures per wave: more than this breaches the budget.
    pub max_failures: Amount,
    pub action: BudgetAction,
}

/// A daily window in each site's local time, `start` to `end` minutes after midnight; a
/// window with `end < start` spans midnight (22:00–04:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceWindow {
    pub start_minute: u16,
    pub end_minute: u16,
}

impl MaintenanceWindow {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                "window",
                "the maintenance window is HH:MM-HH:MM in site-local time, e.g. 01:00-05:00",
            )
        };
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let minute = |t: &str| -> Result<u16, ValidationError> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            if h.is_empty() || h.len() > 2 || m.len() != 2 {
                return Err(bad());
            }
            let h: u16 = h.parse().map_err(|_| bad())?;
            let m: u16 = m.parse().map_err(|_| bad())?;
            if h > 23 || m > 59 {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        let w = Self {
            start_minute: minute(a)?,
            end_minute: minute(b)?,
        };
        if w.start_minute == w.end_minute {
            return Err(ValidationError::new(
                "window",
                "the maintenance window must not be empty (start equals end)",
            ));
        }
        Ok(w)
    }

    /// Whether `minute_of_day` (site-local) falls inside the window.
    pub fn contains(self, minute_of_day: u16) -> bool {
        if self.start_minute < self.end_minute {
            (self.start_minute..self.end_minute).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start_minute || minute_of_day < self.end_minute
        }
    }
}

impl std::fmt::Display for MaintenanceWindow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start_minute / 60,
            self.start_minute % 60,
            self.end_minute / 60,
            self.end_minute % 60
        )
    }
}

/// What an operator asks for (REST body, or the create form's fields via
/// [`NewStrategy::from_params`]). [`NewStrategy::validate`] turns it into a [`StrategySpec`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewStrategy {
    #[serde(rename = "type")]
    pub strategy_type: StrategyType,
    pub target: Target,
    /// Defaults to parallel; rejected with a group target (the group's own is used).
    #[serde(default)]
    pub apply_type: Option<ApplyType>,
    /// Defaults to each subcloud group's own setting; rejected with a group target.
    #[serde(default)]
    pub max_parallel: Option<u32>,
    #[serde(default)]
    pub stop_on_failure: bool,
    /// sw-deploy and prestage: the release.
    #[serde(default)]
    pub release: Option<String>,
    /// kubernetes: the version to upgrade to.
    #[serde(default)]
    pub to_version: Option<String>,
    /// kube-rootca-update: `YYYY-MM-DD` expiry of the new root CA, and its subject.
    #[serde(default)]
    pub expiry_date: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// prestage: for a fresh install rather than a deploy.
    #[serde(default)]
    pub for_install: bool,
    #[serde(default)]
    pub canary: Option<Canary>,
    #[serde(default)]
    pub failure_budget: Option<FailureBudget>,
    /// Extra attempts after a failure the agent reports (0–10).
    #[serde(default)]
    pub retries: u32,
    /// Seconds before the first retry; doubled for each further one.
    #[serde(default = "default_backoff")]
    pub retry_backoff_secs: u32,
    /// A step still unfinished this long after its command was issued fails.
    #[serde(default = "default_timeout")]
    pub step_timeout_secs: u32,
    #[serde(default = "default_offline")]
    pub offline_policy: OfflinePolicy,
    /// Roll failed sites back to the release they ran before (sw-deploy only).
    #[serde(default)]
    pub rollback: bool,
    #[serde(default)]
    pub window: Option<MaintenanceWindow>,
}

fn default_backoff() -> u32 {
    30
}
fn default_timeout() -> u32 {
    3_600
}
fn default_offline() -> OfflinePolicy {
    OfflinePolicy::Wait
}

/// Bounds of the numeric settings (each refusal names them).
pub const MAX_RETRIES: u32 = 10;
pub const MAX_BACKOFF_SECS: u32 = 86_400;
pub const STEP_TIMEOUT_SECS: (u32, u32) = (10, 7 * 86_400);
pub const MAX_SOAK_SECS: u32 = 7 * 86_400;

impl NewStrategy {
    /// A strategy of `strategy_type` over `target` with every other setting at its default.
    pub fn new(strategy_type: StrategyType, target: Target) -> Self {
        Self {
            strategy_type,
            target,
            apply_type: None,
            max_parallel: None,
            stop_on_failure: false,
            release: None,
            to_version: None,
            expiry_date: None,
            subject: None,
            for_install: false,
            canary: None,
            failure_budget: None,
            retries: 0,
            retry_backoff_secs: default_backoff(),
            step_timeout_secs: default_timeout(),
            offline_policy: default_offline(),
            rollback: false,
            window: None,
        }
    }

    /// Reads the create form (field names as below; empty means "not given"). The first bad
    /// field is reported by name.
    ///
    /// `type`, `target` (all|subcloud|group|peer_group|filter), `target_name`, `target_query`,
    /// `apply_type`, `max_parallel`, `stop_on_failure` (on/true), `release`, `to_version`,
    /// `expiry_date`, `subject`, `for_install`, `canary_size` (5 or 10%), `canary_soak_secs`,
    /// `canary_approval`, `budget_max` (5 or 10%), `budget_action`, `retries`,
    /// `retry_backoff_secs`, `step_timeout_secs`, `offline_policy`, `rollback`, `window`
    /// (HH:MM-HH:MM).
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationError> {
        let mut get = std::collections::HashMap::new();
        for (k, v) in params {
            let v = v.trim();
            if !v.is_empty() {
                get.insert(k, v);
            }
        }
        let field = |k: &str| get.get(k).copied();
        let flag = |k: &str| matches!(field(k), Some("on" | "true" | "1" | "yes"));
        let number = |k: &str| -> Result<Option<u32>, ValidationError> {
            field(k)
                .map(|v| ValidationError::whole_number(k, v))
                .transpose()
        };
        let parse = |k: &str| field(k).map(str::to_string);
        let strategy_type: StrategyType = field("type")
            .ok_or_else(|| ValidationError::new("type", "choose a strategy type"))?
            .parse()
            .map_err(|e: ValidationError| e.in_field("type"))?;
        let name = || {
            parse("target_name").ok_or_else(|| {
                ValidationError::new("target_name", "name the subcloud, group or peer group")
            })
        };
        let target = match field("target").unwrap_or("all") {
            "all" => Target::All,
            "subcloud" => Target::Subcloud { name: name()? },
            "group" => Target::Group { name: name()? },
            "peer_group" => Target::PeerGroup { name: name()? },
            "filter" => Target::Filter {
                query: field("target_query").unwrap_or("").to_string(),
            },
            other => {
                return Err(ValidationError::not_one_of(
                    "target",
                    other,
                    ["all", "subcloud", "group", "peer_group", "filter"],
                ))
            }
        };
        let mut s = NewStrategy::new(strategy_type, target);
        s.apply_type = field("apply_type")
            .map(|v| {
                v.parse()
                    .map_err(|e: ValidationError| e.in_field("apply_type"))
            })
            .transpose()?;
        s.max_parallel = number("max_parallel")?;
        s.stop_on_failure = flag("stop_on_failure");
        s.release = parse("release");
        s.to_version = parse("to_version");
        s.expiry_date = parse("expiry_date");
        s.subject = parse("subject");
        s.for_install = flag("for_install");
        if let Some(size) = field("canary_size") {
            s.canary = Some(Canary {
                size: Amount::parse("canary_size", size)?,
                soak_secs: number("canary_soak_secs")?.unwrap_or(0),
                approval: field("canary_approval")
                    .unwrap_or("operator")
                    .parse()
                    .map_err(|e: ValidationError| e.in_field("canary_approval"))?,
            });
        }
        if let Some(max) = field("budget_max") {
            s.failure_budget = Some(FailureBudget {
                max_failures: Amount::parse("budget_max", max)?,
                action: field("budget_action")
                    .unwrap_or("pause")
                    .parse()
                    .map_err(|e: ValidationError| e.in_field("budget_action"))?,
            });
        }
        s.retries = number("retries")?.unwrap_or(0);
        s.retry_backoff_secs = number("retry_backoff_secs")?.unwrap_or(default_backoff());
        s.step_timeout_secs = number("step_timeout_secs")?.unwrap_or(default_timeout());
        if let Some(p) = field("offline_policy") {
            s.offline_policy = p
                .parse()
                .map_err(|e: ValidationError| e.in_field("offline_policy"))?;
        }
        s.rollback = flag("rollback");
        s.window = field("window").map(MaintenanceWindow::parse).transpose()?;
        Ok(s)
    }

    /// Checks every rule that needs no store (the store checks target, release and conflicts).
    pub fn validate_shape(&self) -> Result<(), ValidationError> {
        let t = self.strategy_type;
        let group_target = matches!(self.target, Target::Group { .. });
        if group_target && (self.apply_type.is_some() || self.max_parallel.is_some()) {
            return Err(ValidationError::new(
                if self.max_parallel.is_some() {
                    "max_parallel"
                } else {
                    "apply_type"
                },
                "a subcloud group brings its own apply type and max parallel; do not give them",
            ));
        }
        if let Some(n) = self.max_parallel {
            let limit = t.max_parallel_limit();
            if !(1..=limit).contains(&n) {
                return Err(ValidationError::new(
                    "max_parallel",
                    format!("max parallel for {t} must be between 1 and {limit}"),
                ));
            }
        }
        let text = |field: &str, v: &Option<String>, required: bool| match v {
            None if required => Err(ValidationError::new(
                field,
                format!("{t} needs {}", field.replace('_', " ")),
            )),
            None => Ok(()),
            Some(v) => {
                if v.chars().count() > 64
                    || v.chars().any(|c| {
                        c.is_control() || c.is_whitespace() || crate::fleet::is_bidi_control(c)
                    })
                {
                    Err(ValidationError::new(
                        field,
                        format!(
                            "{field} is at most 64 characters without spaces or control characters"
                        ),
                    ))
                } else {
                    Ok(())
                }
            }
        };
        let unexpected = |field: &str, given: bool| {
            if given {
                Err(ValidationError::new(
                    field,
                    format!("{t} takes no {}", field.replace('_', " ")),
                ))
            } else {
                Ok(())
            }
        };
        match t {
            StrategyType::SwDeploy => {
                text("release", &self.release, true)?;
                unexpected("to_version", self.to_version.is_some())?;
            }
            StrategyType::Prestage => {
                text("release", &self.release, true)?;
                unexpected("to_version", self.to_version.is_some())?;
                unexpected("rollback", self.rollback)?;
            }
            StrategyType::Kubernetes => {
                text("to_version", &self.to_version, true)?;
                unexpected("release", self.release.is_some())?;
                // Kubernetes cannot be downgraded; a failed upgrade is retried or repaired.
                unexpected("rollback", self.rollback)?;
            }
            StrategyType::KubeRootcaUpdate => {
                unexpected("release", self.release.is_some())?;
                unexpected("to_version", self.to_version.is_some())?;
                unexpected("rollback", self.rollback)?;
                if let Some(d) = &self.expiry_date {
                    let ok = d.len() == 10
                        && Millis::parse_iso(d).is_some_and(|m| m.0 > 0)
                        && d.as_bytes()[4] == b'-';
                    if !ok {
                        return Err(ValidationError::new(
                            "expiry_date",
                            "expiry date is YYYY-MM-DD",
                        ));
                    }
                }
                if let Some(s) = &self.subject {
                    if s.chars().count() > 128
                        || s.chars()
                            .any(|c| c.is_control() || crate::fleet::is_bidi_control(c))
                    {
                        return Err(ValidationError::new(
                            "subject",
                            "subject is at most 128 characters without control characters",
                        ));
                    }
                }
            }
            StrategyType::Firmware => {
                unexpected("release", self.release.is_some())?;
                unexpected("to_version", self.to_version.is_some())?;
                unexpected("rollback", self.rollback)?;
            }
        }
        if t != StrategyType::KubeRootcaUpdate {
            unexpected("expiry_date", self.expiry_date.is_some())?;
            unexpected("subject", self.subject.is_some())?;
        }
        if t != StrategyType::Prestage {
            unexpected("for_install", self.for_install)?;
        }
        // The form's `Amount::parse` bounds percentages; a REST body reaches here unchecked.
        let percent_ok = |a: Amount| !matches!(a, Amount::Percent(p) if !(1..=100).contains(&p));
        if let Some(c) = &self.canary {
            if matches!(c.size, Amount::Sites(0) | Amount::Percent(0)) {
                return Err(ValidationError::new(
                    "canary_size",
                    "a canary wave needs at least 1 site",
                ));
            }
            if !percent_ok(c.size) {
                return Err(ValidationError::new(
                    "canary_size",
                    "canary_size must be 1% to 100%",
                ));
            }
            if c.soak_secs > MAX_SOAK_SECS {
                return Err(ValidationError::new(
                    "canary_soak_secs",
                    format!("soak time is at most {MAX_SOAK_SECS} s (7 days)"),
                ));
            }
        }
        if let Some(b) = &self.failure_budget {
            if !percent_ok(b.max_failures) {
                return Err(ValidationError::new(
                    "budget_max",
                    "budget_max must be 1% to 100%",
                ));
            }
        }
        if self.retries > MAX_RETRIES {
            return Err(ValidationError::new(
                "retries",
                format!("retries must be between 0 and {MAX_RETRIES}"),
            ));
        }
        if self.retry_backoff_secs > MAX_BACKOFF_SECS {
            return Err(ValidationError::new(
                "retry_backoff_secs",
                format!("retry backoff is at most {MAX_BACKOFF_SECS} s"),
            ));
        }
        let (lo, hi) = STEP_TIMEOUT_SECS;
        if !(lo..=hi).contains(&self.step_timeout_secs) {
            return Err(ValidationError::new(
                "step_timeout_secs",
                format!("step timeout must be between {lo} and {hi} s"),
            ));
        }
        if let Some(w) = self.window {
            if w.start_minute >= 1440 || w.end_minute >= 1440 || w.start_minute == w.end_minute {
                return Err(ValidationError::new(
                    "window",
                    "the maintenance window is two different times of day",
                ));
            }
        }
        Ok(())
    }

    /// The command an agent runs for one site's step.
    pub fn command(&self) -> CommandAction {
        match self.strategy_type {
            StrategyType::SwDeploy => CommandAction::SoftwareDeploy {
                release: self.release.clone().unwrap_or_default(),
            },
            StrategyType::Kubernetes => CommandAction::KubernetesUpgrade {
                to_version: self.to_version.clone().unwrap_or_default(),
            },
            StrategyType::KubeRootcaUpdate => CommandAction::KubeRootcaUpdate {
                expiry_date: self.expiry_date.clone(),
                subject: self.subject.clone(),
            },
            StrategyType::Firmware => CommandAction::FirmwareUpdate,
            StrategyType::Prestage => CommandAction::Prestage {
                release: self.release.clone().unwrap_or_default(),
                for_install: self.for_install,
            },
        }
    }

    /// The type-specific arguments, for display (`release 25.09`).
    pub fn describe_args(&self) -> String {
        let mut parts = Vec::new();
        if let Some(r) = &self.release {
            parts.push(format!("release {r}"));
        }
        if let Some(v) = &self.to_version {
            parts.push(format!("to {v}"));
        }
        if let Some(d) = &self.expiry_date {
            parts.push(format!("expires {d}"));
        }
        if let Some(s) = &self.subject {
            parts.push(format!("subject {s}"));
        }
        if self.for_install {
            parts.push("for install".into());
        }
        parts.join(", ")
    }
}

/// Operator actions on a strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrategyAction {
    Apply,
    Pause,
    Resume,
    Abort,
    /// Go on after the canary wave (when it waits for an operator).
    Approve,
}

impl StrategyAction {
    pub const ALL: [StrategyAction; 5] = [
        StrategyAction::Apply,
        StrategyAction::Pause,
        StrategyAction::Resume,
        StrategyAction::Abort,
        StrategyAction::Approve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StrategyAction::Apply => "apply",
            StrategyAction::Pause => "pause",
            StrategyAction::Resume => "resume",
            StrategyAction::Abort => "abort",
            StrategyAction::Approve => "approve",
        }
    }

    pub fn parse(s: &str) -> Result<Self, ValidationError> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                ValidationError::not_one_of("action", s, Self::ALL.iter().map(|a| a.as_str()))
            })
    }

    /// The state this action leads to from `from`, or why it is not allowed there.
    pub fn transition(self, from: StrategyState) -> Result<StrategyState, String> {
        use StrategyState as S;
        let to = match (self, from) {
            (StrategyAction::Apply, S::Initial) => S::Applying,
            (StrategyAction::Pause, S::Applying | S::WaitingApproval) => S::Paused,
            (StrategyAction::Resume, S::Paused) => S::Applying,
            (StrategyAction::Approve, S::WaitingApproval) => S::Applying,
            // Nothing has run yet: nothing to wait for.
            (StrategyAction::Abort, S::Initial) => S::Aborted,
            (StrategyAction::Abort, S::Applying | S::Paused | S::WaitingApproval) => {
                S::AbortRequested
            }
            _ => {
                return Err(format!(
                    "cannot {} a strategy that is {}",
                    self.as_str(),
                    from.as_str()
                ))
            }
        };
        Ok(to)
    }

    /// Whether the action makes sense in `state` (the UI shows only those buttons).
    pub fn allowed_in(self, state: StrategyState) -> bool {
        self.transition(state).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_span_midnight() {
        let w = MaintenanceWindow::parse("22:00-04:00").unwrap();
        assert!(w.contains(23 * 60));
        assert!(w.contains(0));
        assert!(w.contains(3 * 60 + 59));
        assert!(!w.contains(4 * 60));
        assert!(!w.contains(12 * 60));
        let d = MaintenanceWindow::parse("01:00-05:30").unwrap();
        assert!(d.contains(60) && d.contains(5 * 60 + 29) && !d.contains(5 * 60 + 30));
        assert_eq!(d.to_string(), "01:00-05:30");
        for bad in [
            "",
            "1-2",
            "25:00-01:00",
            "01:00-01:00",
            "01:0-02:00",
            "aa:bb-01:00",
        ] {
            assert!(MaintenanceWindow::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn amounts_round_up() {
        assert_eq!(Amount::parse("x", "10%").unwrap().of(55), 6);
        assert_eq!(Amount::parse("x", "1%").unwrap().of(50), 1);
        assert_eq!(Amount::parse("x", "7").unwrap().of(3), 7);
        assert!(Amount::parse("x", "0%").is_err());
        assert!(Amount::parse("x", "101%").is_err());
        assert!(Amount::parse("x", "-1").is_err());
    }

    #[test]
    fn actions_follow_the_state_machine() {
        use StrategyAction as A;
        use StrategyState as S;
        assert_eq!(A::Apply.transition(S::Initial), Ok(S::Applying));
        assert!(A::Apply.transition(S::Applying).is_err());
        assert_eq!(A::Abort.transition(S::Initial), Ok(S::Aborted));
        assert_eq!(A::Abort.transition(S::Paused), Ok(S::AbortRequested));
        assert!(A::Abort.transition(S::Aborting).is_err());
        assert!(A::Resume.transition(S::Applying).is_err());
        for s in StrategyState::ALL.iter().filter(|s| s.is_terminal()) {
            for a in A::ALL {
                assert!(a.transition(*s).is_err(), "{a:?} from {s}");
            }
        }
    }
}

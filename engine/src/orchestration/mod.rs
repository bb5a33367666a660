//! Orchestration: rollout strategies over the fleet (StarlingX `sw-update-strategy`,
//! reference §1.6) with canary waves, failure budgets, pause/resume/abort, retries, rollback
//! and maintenance windows.
//!
//! - [`model`]: types, states and validation of a strategy request.
//! - [`plan`]: ordering target sites into waves and estimating durations (pure).
//! - `store`: create, preview, operator actions and the read models below.
//! - `runner`: the persisted state machine. Each tick reads the active strategies, advances
//!   their steps from the progress agents reported, launches new steps, and writes everything
//!   in one transaction; a controller killed at any point resumes from the store. A step's
//!   command is created in the same transaction that records it, so a step is never lost and
//!   never sent twice (agents de-duplicate resends by command id).
//! - `replica`: copies of the strategies this controller runs for its peers, and taking a
//!   failed peer's strategy over with its sites (paused, no step run twice).

pub mod model;
pub mod plan;
#[cfg(feature = "store")]
pub(crate) mod replica;
#[cfg(feature = "store")]
mod runner;
#[cfg(feature = "store")]
mod store;

pub use model::{
    Amount, ApplyType, BudgetAction, Canary, CanaryApproval, FailureBudget, MaintenanceWindow,
    NewStrategy, OfflinePolicy, StepState, StrategyAction, StrategyState, StrategyType, Target,
    WaveState,
};
#[cfg(feature = "store")]
pub use replica::CopiesApplied;
#[cfg(feature = "store")]
pub use runner::{spawn_orchestrator, OrchestratorTick};

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::time::Millis;

/// One strategy in lists, the overview and the head of its page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategySummary {
    pub id: i64,
    pub strategy_type: StrategyType,
    pub state: StrategyState,
    pub target: String,
    /// Type-specific arguments in words (`release 25.09`).
    pub args: String,
    pub total: u64,
    pub complete: u64,
    pub failed: u64,
    pub skipped: u64,
    pub aborted: u64,
    pub in_flight: u64,
    /// 0-based index of the wave being worked on.
    pub current_wave: u32,
    pub wave_count: u32,
    pub reason: String,
    pub created_by: String,
    pub created_at: Millis,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    /// Estimated time left (running strategies) or in all (not yet applied).
    pub eta_ms: Option<i64>,
    /// The controller running it ('' without geo-redundancy). On any other controller this
    /// row is a read-only copy.
    #[serde(default)]
    pub run_by: String,
    /// Its identity on every controller.
    #[serde(default)]
    pub uuid: String,
}

impl StrategySummary {
    /// Steps that reached a final state.
    pub fn done(&self) -> u64 {
        self.complete + self.failed + self.skipped + self.aborted
    }

    /// Whole percent of steps done (0 for an empty strategy).
    pub fn percent(&self) -> u32 {
        (self.done() * 100)
            .checked_div(self.total)
            .map_or(0, |p| u32::try_from(p).unwrap_or(100))
    }
}

/// Steps of a wave (or a strategy) by state, in [`StepState::ALL`] order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCounts(pub Vec<(StepState, u64)>);

impl StepCounts {
    pub fn get(&self, s: StepState) -> u64 {
        self.0.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n)
    }

    pub fn add(&mut self, s: StepState, n: u64) {
        match self.0.iter_mut().find(|(k, _)| *k == s) {
            Some((_, v)) => *v += n,
            None => {
                self.0.push((s, n));
                self.0.sort_by_key(|(k, _)| *k);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.0.iter().map(|(_, n)| n).sum()
    }

    pub fn failures(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.is_failure())
            .map(|(_, n)| n)
            .sum()
    }

    pub fn in_flight(&self) -> u64 {
        self.0
            .iter()
            .filter(|(k, _)| k.in_flight())
            .map(|(_, n)| n)
            .sum()
    }
}

/// One wave on the strategy page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaveView {
    pub index: u32,
    pub name: String,
    pub apply_type: ApplyType,
    pub max_parallel: u32,
    pub sites: u64,
    pub state: WaveState,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub soak_until: Option<Millis>,
    pub counts: StepCounts,
}

/// One site's step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRow {
    pub subcloud: String,
    pub wave: u32,
    pub state: StepState,
    /// The StarlingX phase the agent reported last.
    pub phase: String,
    pub percent: u8,
    pub attempt: u32,
    pub details: String,
    pub started_at: Option<Millis>,
    pub finished_at: Option<Millis>,
    pub updated_at: Millis,
}

/// Everything the strategy page shows above the step table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyDetail {
    pub summary: StrategySummary,
    pub spec: NewStrategy,
    pub waves: Vec<WaveView>,
    pub counts: StepCounts,
    /// Running steps by the phase their agent reports.
    pub phases: Vec<(String, u64)>,
    /// The most recent failures with their reasons.
    pub failures: Vec<StepRow>,
    pub step_estimate_ms: i64,
    /// Actions allowed in the current state (none on a copy).
    pub actions: Vec<StrategyAction>,
    /// The controller that runs this strategy, when this row is its read-only copy.
    #[serde(default)]
    pub copy_of: Option<String>,
}

/// Filter and page of the per-site step table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepQuery {
    pub state: Option<StepState>,
    pub wave: Option<u32>,
    pub page: u32,
    pub per_page: u32,
}

impl Default for StepQuery {
    fn default() -> Self {
        Self {
            state: None,
            wave: None,
            page: 1,
            per_page: Self::DEFAULT_PER_PAGE,
        }
    }
}

impl StepQuery {
    pub const DEFAULT_PER_PAGE: u32 = 50;
    pub const MAX_PER_PAGE: u32 = 500;
    pub const MAX_PAGE: u32 = 1_000_000;

    /// Reads `state`, `wave`, `page`, `per_page`; empty values mean "any".
    pub fn from_params<'a>(
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ValidationError> {
        let mut q = Self::default();
        for (key, value) in params {
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            match key {
                "state" => {
                    q.state = Some(
                        value
                            .parse()
                            .map_err(|e: ValidationError| e.in_field("state"))?,
                    )
                }
                "wave" => q.wave = Some(ValidationError::whole_number(key, value)?),
                "page" => q.page = ValidationError::whole_number(key, value)?,
                "per_page" => q.per_page = ValidationError::whole_number(key, value)?,
                _ => {}
            }
        }
        q.validate()?;
        Ok(q)
    }

    pub fn validate(&self) -> Result<(), ValidationError> {
        ValidationError::paging(self.page, self.per_page, Self::MAX_PAGE, Self::MAX_PER_PAGE)
    }

    /// The query string that reproduces this filter (without `page` when it is 1).
    pub fn to_query_string(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.state {
            parts.push(format!(
                "state={}",
                crate::url::encode_query_value(s.as_str())
            ));
        }
        if let Some(w) = self.wave {
            parts.push(format!("wave={w}"));
        }
        if self.page != 1 {
            parts.push(format!("page={}", self.page));
        }
        if self.per_page != Self::DEFAULT_PER_PAGE {
            parts.push(format!("per_page={}", self.per_page));
        }
        parts.join("&")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPage {
    pub rows: Vec<StepRow>,
    pub matching: u64,
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyPage {
    pub items: Vec<StrategySummary>,
    pub matching: u64,
    pub page: u32,
    pub per_page: u32,
}

/// One wave of a dry run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WavePreview {
    pub index: u32,
    pub name: String,
    pub apply_type: ApplyType,
    pub max_parallel: u32,
    pub sites: u64,
    /// The first sites in execution order (at most [`StrategyPreview::SAMPLE`]).
    pub first_sites: Vec<String>,
    pub eta_ms: i64,
}

/// What applying a strategy would do, computed without changing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyPreview {
    pub strategy_type: StrategyType,
    pub target: String,
    pub args: String,
    pub total_sites: u64,
    pub waves: Vec<WavePreview>,
    /// Estimated duration of one site's step.
    pub step_estimate_ms: i64,
    /// How many recorded steps the estimate averages (0: the type's default).
    pub estimate_from: u64,
    /// Sum of the waves' estimates plus the canary soak.
    pub eta_ms: i64,
    /// Target sites offline right now (handled by the offline policy).
    pub offline_now: u64,
    /// Target sites outside their maintenance window right now (they wait; not in the ETA).
    pub outside_window_now: u64,
    /// Target sites another controller manages (geo-redundancy): this controller gives them
    /// no commands, so their steps wait.
    #[serde(default)]
    pub managed_elsewhere: u64,
}

impl StrategyPreview {
    pub const SAMPLE: usize = 12;
}

/// One of a subcloud's steps, for its page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteStep {
    pub strategy_id: i64,
    pub strategy_type: StrategyType,
    pub strategy_state: StrategyState,
    pub args: String,
    pub step: StepRow,
}

/// Deployment status for the overview: running strategies and the software versions the
/// fleet reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentOverview {
    pub active: Vec<StrategySummary>,
    pub last_finished: Option<StrategySummary>,
    /// (version, subclouds), most common first.
    pub versions: Vec<(String, u64)>,
}

/// A release or Kubernetes version strategies may roll out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SoftwareRelease {
    /// `software` or `kubernetes`.
    pub kind: String,
    pub version: String,
    pub description: String,
}

/// Formats a duration in ms as `1 h 05 min`, `4 min 10 s` or `12 s`.
pub fn format_duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    if s >= 3600 {
        format!("{} h {:02} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

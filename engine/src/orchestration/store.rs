//! Creating, previewing and acting on strategies, and the read models of the orchestration
//! pages. The runner (`runner.rs`) does the rest.

use std::collections::HashMap;

use sqlx::Row;

use super::model::{NewStrategy, StepState, StrategyAction, StrategyState, StrategyType, Target};
use super::plan::{plan_waves, wave_eta_ms, PlanSite, PlannedWave};
use super::{
    DeploymentOverview, SiteStep, SoftwareRelease, StepCounts, StepPage, StepQuery, StepRow,
    StrategyDetail, StrategyPage, StrategyPreview, StrategySummary, WavePreview, WaveView,
};
use crate::audit;
use crate::auth::{Actor, Permission};
use crate::error::{Error, Result, ValidationError};
use crate::events::Event;
use crate::fleet::{AvailabilityStatus, SubcloudQuery};
use crate::store::{bulk_insert, Cell, Sql};
use crate::time::Millis;
use crate::Engine;

/// A target site with what the preview and the runner need beyond the plan.
pub(super) struct TargetSite {
    pub plan: PlanSite,
    pub online: bool,
    pub timezone: String,
}

/// Columns of a [`StrategySummary`], in [`summary_of`]'s order.
pub(super) const SUMMARY_COLS: &str = "id, strategy_type, state, target, args, steps_total, \
     steps_complete, steps_failed, steps_skipped, steps_aborted, steps_in_flight, current_wave, \
     wave_count, reason, created_by, created_at, started_at, finished_at, \
     CASE WHEN measured_steps > 0 THEN measured_ms / measured_steps ELSE step_estimate_ms END, \
     run_by, uuid";

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn parse_col<T: std::str::FromStr<Err = ValidationError>>(col: &str, v: &str) -> Result<T> {
    v.parse()
        .map_err(|e: ValidationError| Error::Internal(format!("bad {col} in store: {e}")))
}

/// Reads a summary row; the ETA uses the remaining steps, the waves' parallelism and the step
/// estimate (`max_parallel` of the current wave, or 1 for a strategy not applied yet).
pub(super) fn summary_of(
    r: &sqlx::any::AnyRow,
    max_parallel: Option<u32>,
) -> Result<StrategySummary> {
    let state: StrategyState = parse_col("state", r.try_get::<&str, _>(2)?)?;
    let total = count(r.try_get(5)?);
    let mut s = StrategySummary {
        id: r.try_get(0)?,
        strategy_type: parse_col("strategy_type", r.try_get::<&str, _>(1)?)?,
        state,
        target: r.try_get(3)?,
        args: r.try_get(4)?,
        total,
        complete: count(r.try_get(6)?),
        failed: count(r.try_get(7)?),
        skipped: count(r.try_get(8)?),
        aborted: count(r.try_get(9)?),
        in_flight: count(r.try_get(10)?),
        current_wave: u32::try_from(r.try_get::<i64, _>(11)?).unwrap_or(0),
        wave_count: u32::try_from(r.try_get::<i64, _>(12)?).unwrap_or(0),
        reason: r.try_get(13)?,
        created_by: r.try_get(14)?,
        created_at: Millis(r.try_get(15)?),
        started_at: r.try_get::<Option<i64>, _>(16)?.map(Millis),
        finished_at: r.try_get::<Option<i64>, _>(17)?.map(Millis),
        eta_ms: None,
        run_by: r.try_get(19)?,
        uuid: r.try_get::<Option<String>, _>(20)?.unwrap_or_default(),
    };
    if !state.is_terminal() {
        let step_ms: i64 = r.try_get(18)?;
        let remaining = s.total.saturating_sub(s.done());
        s.eta_ms = Some(wave_eta_ms(remaining, max_parallel.unwrap_or(1), step_ms));
    }
    Ok(s)
}

pub(super) fn step_row(r: &sqlx::any::AnyRow) -> Result<StepRow> {
    Ok(StepRow {
        subcloud: r.try_get(0)?,
        wave: u32::try_from(r.try_get::<i64, _>(1)?).unwrap_or(0),
        state: parse_col("step state", r.try_get::<&str, _>(2)?)?,
        phase: r.try_get(3)?,
        percent: u8::try_from(r.try_get::<i64, _>(4)?.clamp(0, 100)).unwrap_or(0),
        attempt: u32::try_from(r.try_get::<i64, _>(5)?).unwrap_or(0),
        details: r.try_get(6)?,
        started_at: r.try_get::<Option<i64>, _>(7)?.map(Millis),
        finished_at: r.try_get::<Option<i64>, _>(8)?.map(Millis),
        updated_at: Millis(r.try_get(9)?),
    })
}

const STEP_COLS: &str = "s.name, st.wave, st.state, st.phase, st.percent, st.attempt, st.details, \
     st.started_at, st.finished_at, st.updated_at";

/// The fleet-list filters a `Target::Filter` may use.
const FILTER_KEYS: [&str; 9] = [
    "q",
    "availability",
    "management",
    "deploy",
    "deploy_class",
    "sync",
    "alarm",
    "group",
    "peer_group",
];

/// Parses a `Target::Filter` query string into the fleet list's filter.
fn filter_query(query: &str) -> Result<SubcloudQuery, ValidationError> {
    let pairs = crate::url::parse_query(query).ok_or_else(|| {
        ValidationError::new("target_query", "the filter is not a valid query string")
    })?;
    // The fleet list ignores keys it does not know; a rollout must not: a misspelt filter
    // would silently target the whole fleet.
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, _)| !FILTER_KEYS.contains(&k.as_str()))
    {
        let shown: String = k.chars().take(40).collect();
        return Err(ValidationError::new(
            "target_query",
            format!(
                "unknown filter {shown:?}; the filters are: {}",
                FILTER_KEYS.join(", ")
            ),
        ));
    }
    SubcloudQuery::from_params(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .map_err(|e| ValidationError::new("target_query", e.to_string()))
}

impl Engine {
    /// The target's subclouds ordered by group, then name.
    pub(super) async fn target_sites(&self, target: &Target) -> Result<Vec<TargetSite>> {
        let mut b = Sql::new(
            "SELECT s.id, s.name, s.group_id, g.name, g.update_apply_type, g.max_parallel_subclouds, \
             s.availability, s.timezone FROM subclouds s \
             JOIN subcloud_groups g ON g.id = s.group_id \
             LEFT JOIN peer_groups pg ON pg.id = s.peer_group_id",
        );
        let exists = |table: &'static str, what: &'static str, name: String| async move {
            let found: Option<i64> =
                sqlx::query_scalar(&format!("SELECT id FROM {table} WHERE name = $1"))
                    .bind(&name)
                    .fetch_optional(self.store.pool())
                    .await?;
            match found {
                Some(_) => Ok(()),
                None => Err(Error::from(ValidationError::new(
                    "target_name",
                    format!("no {what} named {name:?}"),
                ))),
            }
        };
        match target {
            Target::All => {}
            Target::Subcloud { name } => {
                exists("subclouds", "subcloud", name.clone()).await?;
                b.push(" WHERE s.name = ").bind(name.clone());
            }
            Target::Group { name } => {
                exists("subcloud_groups", "subcloud group", name.clone()).await?;
                b.push(" WHERE g.name = ").bind(name.clone());
            }
            Target::PeerGroup { name } => {
                exists("peer_groups", "peer group", name.clone()).await?;
                b.push(" WHERE pg.name = ").bind(name.clone());
            }
            Target::Filter { query } => {
                let q = filter_query(query)?;
                crate::fleet::push_subcloud_filters(&mut b, &q, self.store.backend());
            }
        }
        b.push(" ORDER BY s.group_id, s.name");
        let (sql, args) = b.finish()?;
        let rows = sqlx::query_with(&sql, args)
            .fetch_all(self.store.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(TargetSite {
                    plan: PlanSite {
                        subcloud_id: r.try_get(0)?,
                        name: r.try_get(1)?,
                        group_id: r.try_get(2)?,
                        group_name: r.try_get(3)?,
                        group_apply_type: parse_col("apply type", r.try_get::<&str, _>(4)?)?,
                        group_max_parallel: u32::try_from(r.try_get::<i64, _>(5)?.max(1))
                            .unwrap_or(1),
                    },
                    online: r.try_get::<&str, _>(6)? == AvailabilityStatus::Online.as_str(),
                    timezone: r.try_get(7)?,
                })
            })
            .collect()
    }

    /// Average duration of this type's recently completed steps, or the type's default. The
    /// average is rounded in SQL: a bare cast truncates on SQLite but rounds on PostgreSQL.
    pub(super) async fn step_estimate(&self, t: StrategyType) -> Result<(i64, u64)> {
        let row = sqlx::query(
            "SELECT CAST(ROUND(AVG(d)) AS BIGINT), COUNT(*) FROM (SELECT st.finished_at - st.started_at AS d \
             FROM strategy_steps st JOIN strategies s ON s.id = st.strategy_id \
             WHERE s.strategy_type = $1 AND st.state = 'complete' AND st.attempt = 1 \
             ORDER BY st.finished_at DESC LIMIT 1000) recent",
        )
        .bind(t.as_str())
        .fetch_one(self.store.pool())
        .await?;
        let n = count(row.try_get(1)?);
        match row.try_get::<Option<i64>, _>(0)? {
            Some(avg) if n > 0 => Ok((avg.max(0), n)),
            _ => Ok((t.default_step_ms(), 0)),
        }
    }

    /// Checks everything about a request and plans it, changing nothing.
    async fn validate_and_plan(
        &self,
        new: &NewStrategy,
    ) -> Result<(Vec<TargetSite>, Vec<PlannedWave>)> {
        new.validate_shape()?;
        let release = match new.strategy_type {
            StrategyType::SwDeploy | StrategyType::Prestage => {
                new.release.as_deref().map(|r| ("software", "release", r))
            }
            StrategyType::Kubernetes => new
                .to_version
                .as_deref()
                .map(|v| ("kubernetes", "to_version", v)),
            _ => None,
        };
        if let Some((kind, field, version)) = release {
            let known: Vec<String> = sqlx::query_scalar(
                "SELECT version FROM software_releases WHERE kind = $1 ORDER BY version",
            )
            .bind(kind)
            .fetch_all(self.store.pool())
            .await?;
            if !known.iter().any(|k| k == version) {
                return Err(ValidationError::new(
                    field,
                    format!(
                        "unknown {} {version:?}; known: {}",
                        if kind == "software" {
                            "release"
                        } else {
                            "Kubernetes version"
                        },
                        known.join(", ")
                    ),
                )
                .into());
            }
        }
        let sites = self.target_sites(&new.target).await?;
        if sites.is_empty() {
            return Err(ValidationError::new("target", "the target matches no subcloud").into());
        }
        let plan: Vec<PlanSite> = sites.iter().map(|s| s.plan.clone()).collect();
        let waves = plan_waves(new, &plan);
        Ok((sites, waves))
    }

    /// How many of `ids` this controller does not manage now (0 without geo-redundancy).
    fn managed_elsewhere(&self, ids: impl Iterator<Item = i64>) -> u64 {
        let (Some(gateway), Some(geo)) = (self.agent_gateway(), self.geo_runtime()) else {
            return 0;
        };
        let this = geo.config().this.as_str();
        let st = gateway.lock();
        ids.filter(|id| st.agents.get(id).is_none_or(|e| !st.owns(e, this)))
            .count() as u64
    }

    /// Dry run: the ordered waves, the sites in each and an ETA from recorded step durations.
    pub async fn preview_strategy(
        &self,
        actor: &Actor,
        new: &NewStrategy,
    ) -> Result<StrategyPreview> {
        actor.require(Permission::Read)?;
        let (sites, waves) = self.validate_and_plan(new).await?;
        let (step_ms, estimate_from) = self.step_estimate(new.strategy_type).await?;
        let now = Millis::now();
        let mut clock = super::runner::LocalClock::default();
        let outside_window_now = match new.window {
            Some(w) => sites
                .iter()
                .filter(|s| !w.contains(clock.minute_of_day(&s.timezone, now)))
                .count() as u64,
            None => 0,
        };
        let soak_ms = new
            .canary
            .as_ref()
            .map_or(0, |c| i64::from(c.soak_secs) * 1000);
        let waves: Vec<WavePreview> = waves
            .iter()
            .map(|w| {
                let soak = if w.name == "canary" { soak_ms } else { 0 };
                WavePreview {
                    index: w.index,
                    name: w.name.clone(),
                    apply_type: w.apply_type,
                    max_parallel: w.max_parallel,
                    sites: w.sites.len() as u64,
                    first_sites: w
                        .sites
                        .iter()
                        .take(StrategyPreview::SAMPLE)
                        .map(|i| sites[*i].plan.name.clone())
                        .collect(),
                    eta_ms: wave_eta_ms(w.sites.len() as u64, w.max_parallel, step_ms) + soak,
                }
            })
            .collect();
        Ok(StrategyPreview {
            strategy_type: new.strategy_type,
            target: new.target.describe(),
            args: new.describe_args(),
            total_sites: sites.len() as u64,
            eta_ms: waves.iter().map(|w| w.eta_ms).sum(),
            waves,
            step_estimate_ms: step_ms,
            estimate_from,
            offline_now: sites.iter().filter(|s| !s.online).count() as u64,
            outside_window_now,
            managed_elsewhere: self.managed_elsewhere(sites.iter().map(|s| s.plan.subcloud_id)),
        })
    }

    /// Creates a strategy in state `initial` with its waves and one step per target site.
    /// Refused while another strategy of the same type is active.
    pub async fn create_strategy(&self, actor: &Actor, new: &NewStrategy) -> Result<i64> {
        actor.require(Permission::Orchestrate)?;
        let (sites, waves) = self.validate_and_plan(new).await?;
        let t = new.strategy_type;
        let home = self.strategy_home();
        let active: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, state FROM strategies WHERE strategy_type = $1 AND origin = $2 \
             AND state NOT IN ('complete', 'aborted', 'failed')",
        )
        .bind(t.as_str())
        .bind(&home)
        .fetch_optional(self.store.pool())
        .await?;
        if let Some((id, state)) = active {
            return Err(Error::Conflict(format!(
                "a {t} strategy is already active (#{id}, {state}); abort it or let it finish first"
            )));
        }
        let (step_ms, _) = self.step_estimate(t).await?;
        let spec = serde_json::to_string(new).map_err(|e| Error::Internal(e.to_string()))?;
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO strategies (strategy_type, state, spec, target, args, wave_count, steps_total, \
             step_estimate_ms, created_by, created_at, updated_at, uuid, origin, run_by) \
             VALUES ($1, 'initial', $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11, $11) RETURNING id",
        )
        .bind(t.as_str())
        .bind(&spec)
        .bind(new.target.describe())
        .bind(new.describe_args())
        .bind(waves.len() as i64)
        .bind(sites.len() as i64)
        .bind(step_ms)
        .bind(&actor.name)
        .bind(now.0)
        .bind(&crate::agents::store::random_hex()[..32])
        .bind(&home)
        .fetch_one(&mut *tx)
        .await;
        let id: i64 = match inserted {
            Ok(r) => r.try_get(0)?,
            // The partial unique index: someone created one in the meantime.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(Error::Conflict(format!(
                    "a {t} strategy is already active; abort it or let it finish first"
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let wave_rows = waves
            .iter()
            .map(|w| {
                vec![
                    Cell::Int(id),
                    Cell::Int(i64::from(w.index)),
                    Cell::Text(w.name.clone()),
                    Cell::Text(w.apply_type.as_str().into()),
                    Cell::Int(i64::from(w.max_parallel)),
                    Cell::Int(w.sites.len() as i64),
                ]
            })
            .collect();
        bulk_insert(
            &mut tx,
            "strategy_waves",
            &[
                "strategy_id",
                "wave",
                "name",
                "apply_type",
                "max_parallel",
                "sites",
            ],
            wave_rows,
            "",
        )
        .await?;
        let mut position = 0i64;
        let mut step_rows = Vec::with_capacity(sites.len());
        for w in &waves {
            for i in &w.sites {
                step_rows.push(vec![
                    Cell::Int(id),
                    Cell::Int(sites[*i].plan.subcloud_id),
                    Cell::Int(i64::from(w.index)),
                    Cell::Int(position),
                    Cell::Int(now.0),
                ]);
                position += 1;
            }
        }
        bulk_insert(
            &mut tx,
            "strategy_steps",
            &[
                "strategy_id",
                "subcloud_id",
                "wave",
                "position",
                "updated_at",
            ],
            step_rows,
            "",
        )
        .await?;
        audit::record(
            &mut tx,
            &actor.audit(
                "strategy.created",
                &format!("strategy:{id}"),
                format!(
                    "{t} over {} ({} sites in {} waves){}",
                    new.target.describe(),
                    sites.len(),
                    waves.len(),
                    match new.describe_args() {
                        a if a.is_empty() => String::new(),
                        a => format!(": {a}"),
                    }
                ),
            ),
        )
        .await?;
        tx.commit().await?;
        self.publish_strategy(id, t, StrategyState::Initial, now);
        Ok(id)
    }

    /// The name strategies run here carry in `origin` and `run_by`: this controller's with
    /// geo-redundancy, empty without.
    pub(crate) fn strategy_home(&self) -> String {
        self.geo_runtime()
            .map(|g| g.config().this.clone())
            .unwrap_or_default()
    }

    pub(super) fn publish_strategy(
        &self,
        id: i64,
        t: StrategyType,
        state: StrategyState,
        at: Millis,
    ) {
        self.events.publish(Event::StrategyChanged {
            id,
            strategy_type: t.as_str().to_string(),
            state: state.as_str().to_string(),
            at,
        });
    }

    /// Apply, pause, resume, abort or approve (operators and admins). Returns the new state.
    pub async fn strategy_action(
        &self,
        actor: &Actor,
        id: i64,
        action: StrategyAction,
    ) -> Result<StrategyState> {
        actor.require(Permission::Orchestrate)?;
        let row: Option<(String, String, i64, String)> = sqlx::query_as(
            "SELECT strategy_type, state, current_wave, run_by FROM strategies WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        let (t, from, wave, run_by) =
            row.ok_or_else(|| Error::not_found("strategy", id.to_string()))?;
        if !run_by.is_empty() && run_by != self.strategy_home() {
            return Err(Error::Conflict(format!(
                "strategy {id} is run by {run_by}; this is its copy: act on it there"
            )));
        }
        let t: StrategyType = parse_col("strategy_type", &t)?;
        let from: StrategyState = parse_col("state", &from)?;
        let to = action.transition(from).map_err(Error::Conflict)?;
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        // Guarded by the state read: a concurrent action or runner tick that moved it first wins.
        let mut b = Sql::new("UPDATE strategies SET state = ");
        b.bind(to.as_str())
            .push(", revision = revision + 1, updated_at = ")
            .bind(now.0);
        match action {
            StrategyAction::Apply => {
                b.push(", started_at = ").bind(now.0).push(", reason = ''");
            }
            StrategyAction::Abort if to == StrategyState::Aborted => {
                b.push(", finished_at = ")
                    .bind(now.0)
                    .push(", steps_aborted = steps_total, reason = ")
                    .bind(format!("aborted by {} before it was applied", actor.name));
            }
            StrategyAction::Abort => {
                b.push(", reason = ")
                    .bind(format!("abort requested by {}", actor.name));
            }
            StrategyAction::Pause => {
                b.push(", reason = ")
                    .bind(format!("paused by {}", actor.name));
            }
            StrategyAction::Resume => {
                b.push(", reason = ''");
            }
            StrategyAction::Approve => {
                b.push(", reason = '', current_wave = current_wave + 1");
            }
        }
        b.push(" WHERE id = ")
            .bind(id)
            .push(" AND state = ")
            .bind(from.as_str());
        let (sql, args) = b.finish()?;
        let changed = sqlx::query_with(&sql, args)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(Error::Conflict(format!(
                "strategy {id} changed meanwhile; reload and try again"
            )));
        }
        match action {
            StrategyAction::Apply => {
                sqlx::query("UPDATE strategy_waves SET state = 'running', started_at = $1 WHERE strategy_id = $2 AND wave = 0")
                    .bind(now.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            StrategyAction::Approve => {
                sqlx::query("UPDATE strategy_waves SET state = 'complete', finished_at = $1 WHERE strategy_id = $2 AND wave = $3")
                    .bind(now.0)
                    .bind(id)
                    .bind(wave)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE strategy_waves SET state = 'running', started_at = $1 WHERE strategy_id = $2 AND wave = $3")
                    .bind(now.0)
                    .bind(id)
                    .bind(wave + 1)
                    .execute(&mut *tx)
                    .await?;
            }
            StrategyAction::Resume => {
                // Failures so far are accepted: the budget trips again on the next one.
                sqlx::query(
                    "UPDATE strategy_waves SET failures_accepted = (SELECT COUNT(*) FROM strategy_steps st \
                     WHERE st.strategy_id = strategy_waves.strategy_id AND st.wave = strategy_waves.wave \
                     AND st.state IN ('failed', 'rolled back', 'rollback failed')) \
                     WHERE strategy_id = $1 AND wave = $2",
                )
                .bind(id)
                .bind(wave)
                .execute(&mut *tx)
                .await?;
            }
            StrategyAction::Abort if to == StrategyState::Aborted => {
                sqlx::query("UPDATE strategy_steps SET state = 'aborted', details = 'aborted before the strategy was applied', finished_at = $1, updated_at = $1 WHERE strategy_id = $2")
                    .bind(now.0)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("UPDATE strategy_waves SET state = 'stopped' WHERE strategy_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            _ => {}
        }
        audit::record(
            &mut tx,
            &actor.audit(
                &format!("strategy.{}", action.as_str()),
                &format!("strategy:{id}"),
                format!("{t} strategy {id}: {from} → {to}"),
            ),
        )
        .await?;
        tx.commit().await?;
        self.publish_strategy(id, t, to, now);
        if let Some(wake) = self.orchestrator_wake.get() {
            wake.notify_one();
        }
        Ok(to)
    }

    /// Strategies, active first, then newest first.
    pub async fn strategies(
        &self,
        actor: &Actor,
        page: u32,
        per_page: u32,
    ) -> Result<StrategyPage> {
        actor.require(Permission::Read)?;
        ValidationError::paging(page, per_page, 1_000_000, 200)?;
        let matching: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM strategies")
            .fetch_one(self.store.pool())
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT {SUMMARY_COLS} FROM strategies ORDER BY \
             CASE WHEN state IN ('complete', 'aborted', 'failed') THEN 1 ELSE 0 END, created_at DESC, id DESC \
             LIMIT $1 OFFSET $2"
        ))
        .bind(i64::from(per_page))
        .bind(i64::from(page - 1) * i64::from(per_page))
        .fetch_all(self.store.pool())
        .await?;
        let parallel = self.current_parallelism().await?;
        let items = rows
            .iter()
            .map(|r| {
                let id: i64 = r.try_get(0)?;
                summary_of(r, parallel.get(&id).copied())
            })
            .collect::<Result<_>>()?;
        Ok(StrategyPage {
            items,
            matching: count(matching),
            page,
            per_page,
        })
    }

    /// Max parallel of each active strategy's current wave (for ETAs).
    async fn current_parallelism(&self) -> Result<HashMap<i64, u32>> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT w.strategy_id, w.max_parallel FROM strategy_waves w JOIN strategies s \
             ON s.id = w.strategy_id AND w.wave = s.current_wave \
             WHERE s.state NOT IN ('complete', 'aborted', 'failed')",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, mp)| (id, u32::try_from(mp.max(1)).unwrap_or(1)))
            .collect())
    }

    /// One strategy with its waves, counts by state and phase, and its latest failures.
    pub async fn strategy_detail(&self, actor: &Actor, id: i64) -> Result<StrategyDetail> {
        actor.require(Permission::Read)?;
        let pool = self.store.pool();
        let row = sqlx::query(&format!(
            "SELECT {SUMMARY_COLS}, spec FROM strategies WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| Error::not_found("strategy", id.to_string()))?;
        let spec: NewStrategy = serde_json::from_str(row.try_get::<&str, _>(21)?)
            .map_err(|e| Error::Internal(format!("strategy {id} spec: {e}")))?;
        let step_estimate_ms: i64 = row.try_get(18)?;
        let by_state = sqlx::query(
            "SELECT wave, state, COUNT(*) FROM strategy_steps WHERE strategy_id = $1 GROUP BY wave, state",
        )
        .bind(id)
        .fetch_all(pool)
        .await?;
        let mut per_wave: HashMap<u32, StepCounts> = HashMap::new();
        let mut counts = StepCounts::default();
        for r in &by_state {
            let wave = u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0);
            let state: StepState = parse_col("step state", r.try_get::<&str, _>(1)?)?;
            let n = count(r.try_get(2)?);
            per_wave.entry(wave).or_default().add(state, n);
            counts.add(state, n);
        }
        let waves = sqlx::query(
            "SELECT wave, name, apply_type, max_parallel, sites, state, started_at, finished_at, soak_until \
             FROM strategy_waves WHERE strategy_id = $1 ORDER BY wave",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let index = u32::try_from(r.try_get::<i64, _>(0)?).unwrap_or(0);
            Ok(WaveView {
                index,
                name: r.try_get(1)?,
                apply_type: parse_col("apply type", r.try_get::<&str, _>(2)?)?,
                max_parallel: u32::try_from(r.try_get::<i64, _>(3)?).unwrap_or(1),
                sites: count(r.try_get(4)?),
                state: parse_col("wave state", r.try_get::<&str, _>(5)?)?,
                started_at: r.try_get::<Option<i64>, _>(6)?.map(Millis),
                finished_at: r.try_get::<Option<i64>, _>(7)?.map(Millis),
                soak_until: r.try_get::<Option<i64>, _>(8)?.map(Millis),
                counts: per_wave.remove(&index).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let current = u32::try_from(row.try_get::<i64, _>(11)?).unwrap_or(0);
        let mp = waves
            .iter()
            .find(|w| w.index == current)
            .map(|w| w.max_parallel);
        let summary = summary_of(&row, mp)?;
        let phases: Vec<(String, u64)> = sqlx::query_as::<_, (String, i64)>(
            "SELECT phase, COUNT(*) FROM strategy_steps WHERE strategy_id = $1 \
             AND state IN ('queued', 'running', 'rolling back') GROUP BY phase ORDER BY phase",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(p, n)| {
            (
                if p.is_empty() {
                    "waiting for the agent".into()
                } else {
                    p
                },
                count(n),
            )
        })
        .collect();
        let failures = sqlx::query(&format!(
            "SELECT {STEP_COLS} FROM strategy_steps st JOIN subclouds s ON s.id = st.subcloud_id \
             WHERE st.strategy_id = $1 AND st.state IN ('failed', 'rolled back', 'rollback failed') \
             ORDER BY st.finished_at DESC, st.id DESC LIMIT 20"
        ))
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(step_row)
        .collect::<Result<_>>()?;
        let home = self.strategy_home();
        let copy_of =
            (!summary.run_by.is_empty() && summary.run_by != home).then(|| summary.run_by.clone());
        // A copy is acted on where it runs.
        let actions = StrategyAction::ALL
            .into_iter()
            .filter(|a| copy_of.is_none() && a.allowed_in(summary.state))
            .collect();
        Ok(StrategyDetail {
            copy_of,
            summary,
            spec,
            waves,
            counts,
            phases,
            failures,
            step_estimate_ms,
            actions,
        })
    }

    /// A page of a strategy's per-site steps in execution order.
    pub async fn strategy_steps(&self, actor: &Actor, id: i64, q: &StepQuery) -> Result<StepPage> {
        actor.require(Permission::Read)?;
        q.validate()?;
        let filter = |b: &mut Sql<'_>| {
            b.push(" FROM strategy_steps st JOIN subclouds s ON s.id = st.subcloud_id WHERE st.strategy_id = ")
                .bind(id);
            if let Some(s) = q.state {
                b.push(" AND st.state = ").bind(s.as_str());
            }
            if let Some(w) = q.wave {
                b.push(" AND st.wave = ").bind(i64::from(w));
            }
        };
        let mut c = Sql::new("SELECT COUNT(*)");
        filter(&mut c);
        let (sql, args) = c.finish()?;
        let matching: i64 = sqlx::query_scalar_with(&sql, args)
            .fetch_one(self.store.pool())
            .await?;
        if matching == 0 {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM strategies WHERE id = $1")
                .bind(id)
                .fetch_optional(self.store.pool())
                .await?;
            if exists.is_none() {
                return Err(Error::not_found("strategy", id.to_string()));
            }
        }
        let mut b = Sql::new(format!("SELECT {STEP_COLS}"));
        filter(&mut b);
        b.push(" ORDER BY st.position LIMIT ")
            .bind(i64::from(q.per_page))
            .push(" OFFSET ")
            .bind(i64::from(q.page - 1) * i64::from(q.per_page));
        let (sql, args) = b.finish()?;
        let rows = sqlx::query_with(&sql, args)
            .fetch_all(self.store.pool())
            .await?
            .iter()
            .map(step_row)
            .collect::<Result<_>>()?;
        Ok(StepPage {
            rows,
            matching: count(matching),
            page: q.page,
            per_page: q.per_page,
        })
    }

    /// A subcloud's steps in its latest strategies (newest first).
    pub async fn subcloud_steps(&self, actor: &Actor, subcloud: &str) -> Result<Vec<SiteStep>> {
        actor.require(Permission::Read)?;
        let rows = sqlx::query(&format!(
            "SELECT {STEP_COLS}, x.id, x.strategy_type, x.state, x.args FROM strategy_steps st \
             JOIN subclouds s ON s.id = st.subcloud_id JOIN strategies x ON x.id = st.strategy_id \
             WHERE s.name = $1 ORDER BY x.created_at DESC, x.id DESC LIMIT 10"
        ))
        .bind(subcloud)
        .fetch_all(self.store.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SiteStep {
                    step: step_row(r)?,
                    strategy_id: r.try_get(10)?,
                    strategy_type: parse_col("strategy_type", r.try_get::<&str, _>(11)?)?,
                    strategy_state: parse_col("state", r.try_get::<&str, _>(12)?)?,
                    args: r.try_get(13)?,
                })
            })
            .collect()
    }

    /// Active strategies, the last finished one and the fleet's software versions.
    pub async fn deployment_overview(&self, actor: &Actor) -> Result<DeploymentOverview> {
        actor.require(Permission::Read)?;
        let pool = self.store.pool();
        let parallel = self.current_parallelism().await?;
        let active = sqlx::query(&format!(
            "SELECT {SUMMARY_COLS} FROM strategies WHERE state NOT IN ('complete', 'aborted', 'failed') \
             ORDER BY created_at, id"
        ))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| summary_of(r, parallel.get(&r.try_get::<i64, _>(0)?).copied()))
        .collect::<Result<_>>()?;
        let last_finished = sqlx::query(&format!(
            "SELECT {SUMMARY_COLS} FROM strategies WHERE state IN ('complete', 'aborted', 'failed') \
             ORDER BY finished_at DESC, id DESC LIMIT 1"
        ))
        .fetch_optional(pool)
        .await?
        .map(|r| summary_of(&r, None))
        .transpose()?;
        let versions = sqlx::query_as::<_, (String, i64)>(
            "SELECT software_version, COUNT(*) FROM subclouds GROUP BY software_version \
             ORDER BY COUNT(*) DESC, software_version",
        )
        .fetch_all(pool)
        .await?
        .into_iter()
        .map(|(v, n)| (if v.is_empty() { "unknown".into() } else { v }, count(n)))
        .collect();
        Ok(DeploymentOverview {
            active,
            last_finished,
            versions,
        })
    }

    /// Releases and Kubernetes versions strategies may roll out.
    pub async fn software_releases(&self) -> Result<Vec<SoftwareRelease>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(
            "SELECT kind, version, description FROM software_releases ORDER BY kind, version",
        )
        .fetch_all(self.store.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(kind, version, description)| SoftwareRelease {
                kind,
                version,
                description,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_queries_are_strict() {
        let q = filter_query("availability=online&group=Edge%20EU").unwrap();
        assert_eq!(q.group.as_deref(), Some("Edge EU"));
        assert!(filter_query("availability=nope").is_err());
        assert!(filter_query("group=%ZZ").is_err());
        assert!(filter_query("group=%C3").is_err());
        // Unknown (misspelt) keys are refused rather than ignored.
        assert_eq!(filter_query("grop=Edge").unwrap_err().field, "target_query");
        assert!(filter_query("sort=name").is_err());
    }
}

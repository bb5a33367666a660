//! Strategies across controllers: copies for peers, and taking a strategy over with its sites.
//!
//! The controller that runs a strategy (`run_by`) pushes whole copies of it to every peer.
//! A strategy follows its sites: when a group moves to a controller (a takeover, a migrate, a
//! failback) that then manages every site with an unfinished step of a strategy another
//! controller ran, it adopts its copy in the same transaction: `run_by` becomes this
//! controller, `handover` grows by one (a copy from an older handover never overwrites a
//! newer one), an applying strategy is paused for an operator to resume, and steps that were
//! in flight lose their command. The runner re-issues those attempts under the same key
//! ([`crate::agents::wire::Command::key`]), so an agent that already ran one reports it
//! instead of running it again; a step the copy shows as not started but the old owner had
//! launched gets the same key too. No step runs twice, however stale the copy was.

use std::collections::HashSet;

use sqlx::Row;

use crate::audit::{self, AuditEntry};
use crate::error::Result;
use crate::georedundancy::{StepCopy, StrategyCopy, WaveCopy};
use crate::store::{bulk_insert, Cell};
use crate::time::Millis;
use crate::Engine;

/// How long a finished strategy is still pushed, so peers see how it ended.
const FINISHED_PUSHED_MS: i64 = 3_600_000;

const FINAL_STATES: &str = "('complete', 'aborted', 'failed')";
const UNFINISHED_STEPS: &str = "('initial', 'queued', 'running', 'rolling back')";

/// What applying a peer's copies did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CopiesApplied {
    pub inserted: u64,
    pub updated: u64,
    /// Older than the copy held here (an earlier handover), or run here.
    pub ignored: u64,
}

impl Engine {
    /// Copies of the strategies this controller runs that changed at or after `since` (all
    /// with `since` 0), active or finished within the last hour.
    pub async fn strategy_copies(&self, since: Millis) -> Result<Vec<StrategyCopy>> {
        let home = self.strategy_home();
        let pool = self.store.pool();
        let now = Millis::now().0;
        let rows = sqlx::query(&format!(
            "SELECT id, uuid, strategy_type, state, spec, target, args, current_wave, wave_count, \
             steps_total, steps_complete, steps_failed, steps_skipped, steps_aborted, steps_in_flight, \
             step_estimate_ms, measured_steps, measured_ms, reason, created_by, created_at, updated_at, \
             started_at, finished_at, origin, handover FROM strategies s \
             WHERE (run_by = '' OR run_by = $1) \
             AND (state NOT IN {FINAL_STATES} OR finished_at >= $2) \
             AND (updated_at >= $3 OR EXISTS (SELECT 1 FROM strategy_steps st \
                  WHERE st.strategy_id = s.id AND st.updated_at >= $3)) \
             ORDER BY id"
        ))
        .bind(&home)
        .bind(now - FINISHED_PUSHED_MS)
        .bind(since.0)
        .fetch_all(pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let Some(uuid) = r.try_get::<Option<String>, _>(1)? else {
                continue;
            };
            let waves = sqlx::query(
                "SELECT wave, name, apply_type, max_parallel, sites, state, started_at, finished_at, \
                 soak_until, failures_accepted FROM strategy_waves WHERE strategy_id = $1 ORDER BY wave",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|w| {
                Ok(WaveCopy {
                    wave: w.try_get(0)?,
                    name: w.try_get(1)?,
                    apply_type: w.try_get(2)?,
                    max_parallel: w.try_get(3)?,
                    sites: w.try_get(4)?,
                    state: w.try_get(5)?,
                    started_at: w.try_get(6)?,
                    finished_at: w.try_get(7)?,
                    soak_until: w.try_get(8)?,
                    failures_accepted: w.try_get(9)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            let steps = sqlx::query(
                "SELECT subcloud_id, wave, position, state, phase, percent, attempt, details, \
                 from_version, not_before, started_at, finished_at, updated_at \
                 FROM strategy_steps WHERE strategy_id = $1 ORDER BY position",
            )
            .bind(id)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|s| {
                Ok(StepCopy {
                    subcloud_id: s.try_get(0)?,
                    wave: s.try_get(1)?,
                    position: s.try_get(2)?,
                    state: s.try_get(3)?,
                    phase: s.try_get(4)?,
                    percent: s.try_get(5)?,
                    attempt: s.try_get(6)?,
                    details: s.try_get(7)?,
                    from_version: s.try_get(8)?,
                    not_before: s.try_get(9)?,
                    started_at: s.try_get(10)?,
                    finished_at: s.try_get(11)?,
                    updated_at: s.try_get(12)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
            let origin: String = r.try_get(24)?;
            out.push(StrategyCopy {
                uuid,
                strategy_type: r.try_get(2)?,
                state: r.try_get(3)?,
                spec: r.try_get(4)?,
                target: r.try_get(5)?,
                args: r.try_get(6)?,
                current_wave: r.try_get(7)?,
                wave_count: r.try_get(8)?,
                counts: [
                    r.try_get(9)?,
                    r.try_get(10)?,
                    r.try_get(11)?,
                    r.try_get(12)?,
                    r.try_get(13)?,
                    r.try_get(14)?,
                ],
                step_estimate_ms: r.try_get(15)?,
                measured_steps: r.try_get(16)?,
                measured_ms: r.try_get(17)?,
                reason: r.try_get(18)?,
                created_by: r.try_get(19)?,
                created_at: r.try_get(20)?,
                updated_at: r.try_get(21)?,
                started_at: r.try_get(22)?,
                finished_at: r.try_get(23)?,
                // Created before geo-redundancy was configured: it is this controller's.
                origin: if origin.is_empty() {
                    home.clone()
                } else {
                    origin
                },
                run_by: home.clone(),
                handover: r.try_get(25)?,
                waves,
                steps,
            });
        }
        Ok(out)
    }

    /// Stores `from`'s copies of the strategies it runs, in one transaction. A copy replaces
    /// the one held here unless this controller holds a newer handover of it.
    pub async fn apply_strategy_copies(
        &self,
        from: &str,
        mut copies: Vec<StrategyCopy>,
    ) -> Result<CopiesApplied> {
        let home = self.strategy_home();
        let pool = self.store.pool();
        let known: HashSet<i64> = sqlx::query_scalar::<_, i64>("SELECT id FROM subclouds")
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect();
        let held: Vec<(String, i64, i64, String, String)> = sqlx::query_as(
            "SELECT uuid, id, handover, run_by, state FROM strategies WHERE uuid IS NOT NULL",
        )
        .fetch_all(pool)
        .await?;
        let held: std::collections::HashMap<String, (i64, i64, String, String)> = held
            .into_iter()
            .map(|(u, id, h, r, s)| (u, (id, h, r, s)))
            .collect();
        // Finished ones first: a strategy that ended frees its (type, origin) for the next.
        copies.sort_by_key(|c| !is_final(&c.state));
        let now = Millis::now();
        let mut out = CopiesApplied::default();
        let mut changed = Vec::new();
        let mut tx = self.store.begin_write().await?;
        for c in &copies {
            if c.run_by != from || c.run_by == home || c.uuid.is_empty() {
                out.ignored += 1;
                continue;
            }
            let id = match held.get(&c.uuid) {
                Some((_, handover, _, _)) if *handover > c.handover => {
                    out.ignored += 1;
                    continue;
                }
                Some((_, handover, run_by, _)) if *handover == c.handover && *run_by == home => {
                    // Both claim the same handover: never happens with one decider per group;
                    // keep ours and say so.
                    tracing::warn!(strategy = %c.uuid, %from, "a peer claims a strategy this controller runs");
                    out.ignored += 1;
                    continue;
                }
                Some((id, _, _, state)) => {
                    if !is_final(&c.state) {
                        supersede_other_copies(&mut tx, c, *id, now).await?;
                    }
                    update_row(&mut tx, *id, c).await?;
                    sqlx::query("DELETE FROM strategy_waves WHERE strategy_id = $1")
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM strategy_steps WHERE strategy_id = $1")
                        .bind(*id)
                        .execute(&mut *tx)
                        .await?;
                    out.updated += 1;
                    if *state != c.state {
                        changed.push((*id, c.clone()));
                    }
                    *id
                }
                None => {
                    if !is_final(&c.state) {
                        supersede_other_copies(&mut tx, c, 0, now).await?;
                    }
                    let id = insert_row(&mut tx, c).await?;
                    out.inserted += 1;
                    changed.push((id, c.clone()));
                    id
                }
            };
            insert_children(&mut tx, id, c, &known).await?;
        }
        for (id, c) in &changed {
            audit::record(
                &mut tx,
                &AuditEntry::system(
                    "strategy.replicated",
                    &format!("strategy:{id}"),
                    format!(
                        "copy of {}'s {} strategy {} ({}): {}",
                        from, c.strategy_type, c.uuid, c.target, c.state
                    ),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        for (id, c) in changed {
            if let (Ok(t), Ok(s)) = (c.strategy_type.parse(), c.state.parse()) {
                self.publish_strategy(id, t, s, now);
            }
        }
        Ok(out)
    }
}

fn is_final(state: &str) -> bool {
    matches!(state, "complete" | "aborted" | "failed")
}

/// Another active copy of the same (type, origin) is stale: its runner has moved on to `c`.
async fn supersede_other_copies(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    c: &StrategyCopy,
    keep: i64,
    now: Millis,
) -> Result<()> {
    sqlx::query(&format!(
        "UPDATE strategies SET state = 'aborted', finished_at = $1, updated_at = $1, \
         revision = revision + 1, reason = $2 WHERE strategy_type = $3 AND origin = $4 \
         AND id <> $5 AND run_by <> '' AND run_by = $6 AND state NOT IN {FINAL_STATES}"
    ))
    .bind(now.0)
    .bind(format!(
        "copy superseded: {} now runs strategy {}",
        c.run_by, c.uuid
    ))
    .bind(&c.strategy_type)
    .bind(&c.origin)
    .bind(keep)
    .bind(&c.run_by)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The strategy columns a copy carries, in the order [`bind_copy`] binds them.
const COPY_COLUMNS: [&str; 25] = [
    "strategy_type",
    "state",
    "spec",
    "target",
    "args",
    "current_wave",
    "wave_count",
    "steps_total",
    "steps_complete",
    "steps_failed",
    "steps_skipped",
    "steps_aborted",
    "steps_in_flight",
    "step_estimate_ms",
    "measured_steps",
    "measured_ms",
    "reason",
    "created_by",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "origin",
    "run_by",
    "handover",
];

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds `c`'s values for [`COPY_COLUMNS`], in order.
fn bind_copy<'q>(q: AnyQuery<'q>, c: &'q StrategyCopy) -> AnyQuery<'q> {
    q.bind(&c.strategy_type)
        .bind(&c.state)
        .bind(&c.spec)
        .bind(&c.target)
        .bind(&c.args)
        .bind(c.current_wave)
        .bind(c.wave_count)
        .bind(c.counts[0])
        .bind(c.counts[1])
        .bind(c.counts[2])
        .bind(c.counts[3])
        .bind(c.counts[4])
        .bind(c.counts[5])
        .bind(c.step_estimate_ms)
        .bind(c.measured_steps)
        .bind(c.measured_ms)
        .bind(&c.reason)
        .bind(&c.created_by)
        .bind(c.created_at)
        .bind(c.updated_at)
        .bind(c.started_at)
        .bind(c.finished_at)
        .bind(&c.origin)
        .bind(&c.run_by)
        .bind(c.handover)
}

async fn update_row(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    c: &StrategyCopy,
) -> Result<()> {
    let set: Vec<String> = COPY_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, col)| format!("{col} = ${}", i + 1))
        .collect();
    let sql = format!(
        "UPDATE strategies SET {}, revision = revision + 1 WHERE id = ${}",
        set.join(", "),
        COPY_COLUMNS.len() + 1
    );
    bind_copy(sqlx::query(&sql), c)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn insert_row(tx: &mut sqlx::Transaction<'_, sqlx::Any>, c: &StrategyCopy) -> Result<i64> {
    let values: Vec<String> = (1..=COPY_COLUMNS.len() + 1)
        .map(|i| format!("${i}"))
        .collect();
    let sql = format!(
        "INSERT INTO strategies ({}, uuid) VALUES ({}) RETURNING id",
        COPY_COLUMNS.join(", "),
        values.join(", ")
    );
    let r = bind_copy(sqlx::query(&sql), c)
        .bind(&c.uuid)
        .fetch_one(&mut **tx)
        .await?;
    Ok(r.try_get(0)?)
}

async fn insert_children(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: i64,
    c: &StrategyCopy,
    known: &HashSet<i64>,
) -> Result<()> {
    let waves = c
        .waves
        .iter()
        .map(|w| {
            vec![
                Cell::Int(id),
                Cell::Int(w.wave),
                Cell::Text(w.name.clone()),
                Cell::Text(w.apply_type.clone()),
                Cell::Int(w.max_parallel),
                Cell::Int(w.sites),
                Cell::Text(w.state.clone()),
                Cell::OptInt(w.started_at),
                Cell::OptInt(w.finished_at),
                Cell::OptInt(w.soak_until),
                Cell::Int(w.failures_accepted),
            ]
        })
        .collect();
    bulk_insert(
        tx,
        "strategy_waves",
        &[
            "strategy_id",
            "wave",
            "name",
            "apply_type",
            "max_parallel",
            "sites",
            "state",
            "started_at",
            "finished_at",
            "soak_until",
            "failures_accepted",
        ],
        waves,
        "",
    )
    .await?;
    // A site this store does not hold has no step here (its group is not replicated here).
    let steps = c
        .steps
        .iter()
        .filter(|s| known.contains(&s.subcloud_id))
        .map(|s| {
            vec![
                Cell::Int(id),
                Cell::Int(s.subcloud_id),
                Cell::Int(s.wave),
                Cell::Int(s.position),
                Cell::Text(s.state.clone()),
                Cell::Text(s.phase.clone()),
                Cell::Int(s.percent),
                Cell::Int(s.attempt),
                Cell::Text(s.details.clone()),
                Cell::Text(s.from_version.clone()),
                Cell::OptInt(s.not_before),
                Cell::OptInt(s.started_at),
                Cell::OptInt(s.finished_at),
                Cell::Int(s.updated_at),
            ]
        })
        .collect();
    bulk_insert(
        tx,
        "strategy_steps",
        &[
            "strategy_id",
            "subcloud_id",
            "wave",
            "position",
            "state",
            "phase",
            "percent",
            "attempt",
            "details",
            "from_version",
            "not_before",
            "started_at",
            "finished_at",
            "updated_at",
        ],
        steps,
        "",
    )
    .await?;
    Ok(())
}

/// Takes over, inside the transaction that moved a group here, the active strategies another
/// controller runs whose unfinished steps are now all on sites `this` manages: a strategy
/// follows its sites. Returns their ids.
pub(crate) async fn adopt_strategies(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    this: &str,
    why: &str,
    now: i64,
) -> Result<Vec<i64>> {
    let found: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT s.id, s.run_by FROM strategies s WHERE s.run_by <> '' AND s.run_by <> $1 \
         AND s.state NOT IN {FINAL_STATES} \
         AND NOT EXISTS (SELECT 1 FROM strategy_steps st JOIN subclouds sc ON sc.id = st.subcloud_id \
             LEFT JOIN peer_groups pg ON pg.id = sc.peer_group_id \
             LEFT JOIN system_controllers lc ON lc.id = pg.leader_id \
             JOIN system_controllers c ON c.id = sc.controller_id \
             WHERE st.strategy_id = s.id AND st.state IN {UNFINISHED_STEPS} \
             AND COALESCE(lc.name, c.name) <> $1) \
         ORDER BY s.id"
    ))
    .bind(this)
    .fetch_all(&mut **tx)
    .await?;
    for (id, from) in &found {
        sqlx::query(
            "UPDATE strategies SET run_by = $1, handover = handover + 1, revision = revision + 1, \
             updated_at = $2, reason = $3, \
             state = CASE WHEN state IN ('applying', 'waiting for approval') THEN 'paused' ELSE state END \
             WHERE id = $4",
        )
        .bind(this)
        .bind(now)
        .bind(format!(
            "taken over from {from} ({why}); steps in flight go on here, resume to start new ones"
        ))
        .bind(id)
        .execute(&mut **tx)
        .await?;
        // Commands this store issued for it before (a strategy coming back) are superseded:
        // the runner re-issues in-flight attempts under their keys.
        sqlx::query(
            "UPDATE subcloud_commands SET state = 'failed', message = 'superseded: the strategy was taken over', \
             updated_at = $1 WHERE created_by = $2 AND state IN ('queued', 'running')",
        )
        .bind(now)
        .bind(format!("strategy:{id}"))
        .execute(&mut **tx)
        .await?;
        sqlx::query(&format!(
            "UPDATE strategy_steps SET command_id = NULL, updated_at = $1 \
             WHERE strategy_id = $2 AND state IN {UNFINISHED_STEPS} AND command_id IS NOT NULL"
        ))
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    }
    for (id, from) in &found {
        audit::record(
            tx,
            &AuditEntry::system(
                "strategy.taken_over",
                &format!("strategy:{id}"),
                format!("{this} took strategy {id} over from {from} ({why})"),
            ),
        )
        .await?;
    }
    Ok(found.into_iter().map(|(id, _)| id).collect())
}

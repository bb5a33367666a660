//! The health monitor: once per tick it writes every report received since the last tick and
//! the availability transitions they (or their absence) cause, in one transaction; raises and
//! clears the controller's alarms (280.001 offline, 280.002 out-of-sync) and mirrors the
//! alarms agents report; records availability history; then publishes one event.

use std::collections::{HashMap, HashSet};

use sqlx::Row;

use super::alarm_ids;
use crate::agents::wire::{self, SiteHealth};
use crate::audit::{self, AuditEntry};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::fleet::{roll_up_sync, AvailabilityStatus, SyncStatus};
use crate::health::{AlarmCounts, AlarmSeverity, AvailabilityTracker};
use crate::store::{
    bulk_insert, bulk_update, bulk_update_guarded, execute_for_ids, fetch_for_ids, Cell,
};
use crate::time::Millis;
use crate::Engine;

use crate::agents::store::{AgentEntry, StoredView};

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    pub at: Millis,
    /// Reports written.
    pub reports: usize,
    pub went_offline: Vec<String>,
    pub went_online: Vec<String>,
    pub alarms_raised: u64,
    pub alarms_cleared: u64,
    /// Subclouds whose stored state changed.
    pub changed: Vec<String>,
}

/// One subcloud's part of a tick.
struct Plan {
    id: i64,
    name: String,
    managed: bool,
    flip: Option<AvailabilityStatus>,
    /// New facts to store, when they differ from what is stored.
    view: Option<StoredView>,
    commands: Vec<wire::CommandProgress>,
    before: (AvailabilityTracker, Option<StoredView>),
}

impl StoredView {
    fn of(r: &wire::Report, online: bool) -> Self {
        let mut endpoints = r.endpoints.clone();
        endpoints.sort_by_key(|e| e.endpoint_type);
        let mut alarms = r.alarms.clone();
        alarms.sort_by(|a, b| (&a.alarm_id, &a.entity).cmp(&(&b.alarm_id, &b.entity)));
        let mut reachability: Vec<(String, bool, Option<u32>)> = r
            .reachability
            .iter()
            .map(|x| {
                (
                    x.controller.clone(),
                    x.reachable,
                    x.rtt_ms.map(|v| v / 10 * 10),
                )
            })
            .collect();
        reachability.sort();
        Self {
            software_version: r.software_version.clone(),
            health: r.health,
            agent_version: r.agent_version.clone(),
            highest_epoch: r.highest_epoch,
            capacity: r.capacity,
            // Endpoint sync of an offline subcloud is unknown, whatever it says.
            endpoints: if online { endpoints } else { Vec::new() },
            alarms,
            reachability,
        }
    }

    /// Keeps the stored round-trip times while the new ones are within jitter of them, so
    /// RTT noise alone neither writes nor counts as a change; the same controllers with the
    /// same reachability, and each RTT within `max(10 ms, 25 %)`.
    fn settle_reachability(&mut self, stored: Option<&StoredView>) {
        let Some(old) = stored else { return };
        let close = old.reachability.len() == self.reachability.len()
            && old
                .reachability
                .iter()
                .zip(&self.reachability)
                .all(|(a, b)| {
                    a.0 == b.0
                        && a.1 == b.1
                        && match (a.2, b.2) {
                            (Some(x), Some(y)) => x.abs_diff(y) <= (x / 4).max(10),
                            (None, None) => true,
                            _ => false,
                        }
                });
        if close {
            self.reachability = old.reachability.clone();
        }
    }
}

fn i(v: u64) -> Cell {
    Cell::Int(i64::try_from(v).unwrap_or(i64::MAX))
}

impl Engine {
    /// Runs the health monitor until the process ends: one [`Engine::health_tick`] per policy
    /// tick. A failed tick is logged and retried at the next (its reports are re-sent by agents).
    pub fn spawn_health_monitor(&self) -> Result<tokio::task::JoinHandle<()>> {
        let gateway = self
            .agent_gateway()
            .ok_or_else(|| Error::Conflict("start the agent gateway first".into()))?;
        let period = gateway.policy().tick;
        let engine = self.clone();
        Ok(tokio::spawn(async move {
            let mut every = tokio::time::interval(period);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let started = std::time::Instant::now();
                match engine.health_tick(Millis::now()).await {
                    Ok(t) => {
                        if !t.went_offline.is_empty() || !t.went_online.is_empty() {
                            tracing::info!(
                                reports = t.reports,
                                offline = t.went_offline.len(),
                                online = t.went_online.len(),
                                ms = started.elapsed().as_millis() as u64,
                                "health tick"
                            );
                        } else {
                            tracing::debug!(
                                reports = t.reports,
                                ms = started.elapsed().as_millis() as u64,
                                "health tick"
                            );
                        }
                    }
                    Err(e) => tracing::error!(error = %e, "health tick failed"),
                }
                // After the tick has stored what agents acknowledged, so only commands no
                // agent has taken yet are added.
                if engine.store.backend() == crate::store::Backend::Postgres {
                    if let Err(e) = engine.refresh_queued_commands().await {
                        tracing::warn!(error = %e, "reading queued commands failed");
                    }
                }
            }
        }))
    }

    /// One tick at `now`: writes what arrived, derives transitions, raises and clears alarms.
    pub async fn health_tick(&self, now: Millis) -> Result<TickReport> {
        let gateway = self
            .agent_gateway()
            .ok_or_else(|| Error::Conflict("the agent gateway is not running".into()))?
            .clone();
        let policy = gateway.policy().hysteresis;
        // 1. Plan under the lock (in memory, no I/O).
        let (plans, seqs) = {
            let mut st = gateway.lock();
            let pending = std::mem::take(&mut st.pending);
            let mut plans = Vec::new();
            let mut seqs = Vec::with_capacity(pending.len());
            let mut reported = HashSet::with_capacity(pending.len());
            for (id, acc) in pending {
                let Some(e) = st.agents.get_mut(&id) else {
                    continue;
                };
                reported.insert(id);
                e.tracked = true;
                seqs.push(vec![
                    Cell::Int(id),
                    i(acc.report.seq),
                    Cell::Int(acc.received_at.0),
                ]);
                let before = (e.tracker, e.stored.clone());
                let good = acc.report.health != SiteHealth::Failed;
                let mut flip = e.tracker.on_report(acc.received_at, good, &policy);
                if flip.is_none() {
                    flip = e.tracker.on_tick(now, &policy);
                }
                let online = e.tracker.availability == AvailabilityStatus::Online;
                let mut view = StoredView::of(&acc.report, online);
                view.settle_reachability(e.stored.as_ref());
                let view = (e.stored.as_ref() != Some(&view) || flip.is_some()).then_some(view);
                if flip.is_some() || view.is_some() || !acc.report.commands.is_empty() {
                    plans.push(plan(id, e, flip, view, acc.report.commands, before));
                }
            }
            let this = gateway.policy().this_controller.name.clone();
            let crate::agents::store::GatewayState {
                agents,
                routes,
                geo,
                ..
            } = &mut *st;
            for (id, e) in agents.iter_mut() {
                if !e.tracked || reported.contains(id) {
                    continue;
                }
                // Subclouds managed by another controller: their health comes from the owner.
                if *geo && (e.waiting || routes.get(&e.route).is_none_or(|r| r.owner != this)) {
                    continue;
                }
                let before = (e.tracker, e.stored.clone());
                if let Some(flip) = e.tracker.on_tick(now, &policy) {
                    plans.push(plan(*id, e, Some(flip), None, Vec::new(), before));
                }
            }
            (plans, seqs)
        };
        let reports = seqs.len();
        // 2. Write it all in one transaction; on failure put the in-memory state back.
        match self.write_tick(now, seqs, &plans).await {
            Ok(report) => {
                let mut st = gateway.lock();
                for p in &plans {
                    if let Some(e) = st.agents.get_mut(&p.id) {
                        if let Some(v) = &p.view {
                            e.stored = Some(v.clone());
                        }
                        if p.flip == Some(AvailabilityStatus::Offline) {
                            // Rewrite everything from the first report after recovery.
                            e.stored = None;
                        }
                    }
                }
                drop(st);
                if !report.changed.is_empty() {
                    let truncated = report.changed.len() > Event::MAX_NAMES;
                    self.events.publish(Event::HealthChanged {
                        subclouds: report
                            .changed
                            .iter()
                            .take(Event::MAX_NAMES)
                            .cloned()
                            .collect(),
                        truncated,
                        went_offline: report.went_offline.len() as u64,
                        went_online: report.went_online.len() as u64,
                        alarms_raised: report.alarms_raised,
                        alarms_cleared: report.alarms_cleared,
                        at: now,
                    });
                }
                Ok(TickReport { reports, ..report })
            }
            Err(e) => {
                let mut st = gateway.lock();
                for p in plans {
                    if let Some(entry) = st.agents.get_mut(&p.id) {
                        (entry.tracker, entry.stored) = p.before;
                    }
                }
                Err(e)
            }
        }
    }

    async fn write_tick(
        &self,
        now: Millis,
        seqs: Vec<Vec<Cell>>,
        plans: &[Plan],
    ) -> Result<TickReport> {
        let mut out = TickReport {
            at: now,
            ..TickReport::default()
        };
        if seqs.is_empty() && plans.is_empty() {
            return Ok(out);
        }
        let backend = self.store.backend();
        let mut tx = self.store.begin_write().await?;
        bulk_update(
            &mut tx,
            backend,
            "subcloud_agents",
            "subcloud_id",
            &["last_seq", "last_report_at"],
            seqs,
        )
        .await?;
        let mut availability = Vec::new();
        let mut history = Vec::new();
        let mut agent_rows = Vec::new();
        let mut versions = Vec::new();
        let mut endpoint_rows = Vec::new();
        let mut sync_rows = Vec::new();
        let mut reach_rows = Vec::new();
        let mut reach_ids = Vec::new();
        let mut raise: Vec<(i64, &str, AlarmSeverity, String, String, &str)> = Vec::new();
        let mut clear: Vec<(i64, &str)> = Vec::new();
        let mut alarm_sync: Vec<(i64, &[wire::ReportedAlarm])> = Vec::new();
        let mut touched: Vec<i64> = Vec::new();
        for p in plans {
            let entity = format!("subcloud={}", p.name);
            if let Some(to) = p.flip {
                // Offline: sync becomes unknown until the site reports again (set here for
                // both directions; a site coming online gets its endpoints' sync below).
                availability.push(vec![
                    Cell::Int(p.id),
                    Cell::Text(to.as_str().into()),
                    Cell::Text(SyncStatus::Unknown.as_str().into()),
                    Cell::Int(now.0),
                ]);
                history.push(vec![
                    Cell::Int(p.id),
                    Cell::Int(now.0),
                    Cell::Text(to.as_str().into()),
                    Cell::Text(
                        match to {
                            AvailabilityStatus::Offline => "no report within the offline window",
                            AvailabilityStatus::Online => "consecutive good reports",
                        }
                        .into(),
                    ),
                ]);
                touched.push(p.id);
            }
            match p.flip {
                Some(AvailabilityStatus::Offline) => {
                    out.went_offline.push(p.name.clone());
                    if p.managed {
                        raise.push((
                            p.id,
                            alarm_ids::SUBCLOUD_OFFLINE,
                            AlarmSeverity::Critical,
                            format!("Subcloud {} is offline", p.name),
                            entity.clone(),
                            "controller",
                        ));
                    }
                    clear.push((p.id, alarm_ids::SUBCLOUD_OUT_OF_SYNC));
                }
                Some(AvailabilityStatus::Online) => {
                    out.went_online.push(p.name.clone());
                    clear.push((p.id, alarm_ids::SUBCLOUD_OFFLINE));
                }
                None => {}
            }
            let Some(v) = &p.view else { continue };
            agent_rows.push(vec![
                Cell::Int(p.id),
                Cell::Text(v.health.as_str().into()),
                Cell::Text(v.agent_version.clone()),
                i(v.highest_epoch),
                Cell::Int(i64::from(v.capacity.cpu_cores)),
                Cell::Int(i64::from(v.capacity.memory_gib)),
                Cell::Int(i64::from(v.capacity.storage_gib)),
                Cell::Int(i64::from(v.capacity.hosts)),
                Cell::Int(now.0),
            ]);
            let old = p.before.1.as_ref();
            if old.map(|o| &o.software_version) != Some(&v.software_version) {
                versions.push(vec![
                    Cell::Int(p.id),
                    Cell::Text(v.software_version.clone()),
                    Cell::Int(now.0),
                ]);
                touched.push(p.id);
            }
            if old.map(|o| &o.reachability) != Some(&v.reachability) {
                reach_ids.push(p.id);
                for (c, ok, rtt) in &v.reachability {
                    reach_rows.push(vec![
                        Cell::Int(p.id),
                        Cell::Text(c.clone()),
                        Cell::Int(i64::from(*ok)),
                        Cell::OptInt(rtt.map(i64::from)),
                        Cell::Int(now.0),
                    ]);
                }
            }
            let online_now = p.before.0.availability == AvailabilityStatus::Online
                || p.flip == Some(AvailabilityStatus::Online);
            let online_now = online_now && p.flip != Some(AvailabilityStatus::Offline);
            if online_now && old.map(|o| &o.endpoints) != Some(&v.endpoints) {
                for e in &v.endpoints {
                    endpoint_rows.push(vec![
                        Cell::Int(p.id),
                        Cell::Text(e.endpoint_type.as_str().into()),
                        Cell::Text(e.sync_status.as_str().into()),
                        Cell::Int(now.0),
                    ]);
                }
                let rolled = roll_up_sync(v.endpoints.iter().map(|e| e.sync_status));
                sync_rows.push(vec![
                    Cell::Int(p.id),
                    Cell::Text(rolled.as_str().into()),
                    Cell::Int(now.0),
                ]);
                if rolled == SyncStatus::OutOfSync && p.managed {
                    raise.push((
                        p.id,
                        alarm_ids::SUBCLOUD_OUT_OF_SYNC,
                        AlarmSeverity::Major,
                        format!("Subcloud {} is out-of-sync", p.name),
                        entity.clone(),
                        "controller",
                    ));
                } else {
                    clear.push((p.id, alarm_ids::SUBCLOUD_OUT_OF_SYNC));
                }
                touched.push(p.id);
            }
            if old.map(|o| &o.alarms) != Some(&v.alarms) {
                alarm_sync.push((p.id, &v.alarms));
                touched.push(p.id);
            }
            // Whether the site observes its platform decides OK versus unknown, even when no
            // alarm changed.
            if old.map(|o| o.health.observed()) != Some(v.health.observed()) {
                touched.push(p.id);
            }
        }
        // Availability first: a subcloud coming online then gets its endpoints' sync below.
        bulk_update(
            &mut tx,
            backend,
            "subclouds",
            "id",
            &["availability", "sync_status", "updated_at"],
            availability,
        )
        .await?;
        let offline_ids: Vec<i64> = plans
            .iter()
            .filter(|p| p.flip == Some(AvailabilityStatus::Offline))
            .map(|p| p.id)
            .collect();
        execute_for_ids(&mut tx, &offline_ids, |b| {
            b.push("UPDATE subcloud_endpoints SET sync_status = 'unknown', updated_at = ")
                .bind(now.0)
                .push(" WHERE subcloud_id IN");
        })
        .await?;
        bulk_insert(
            &mut tx,
            "availability_history",
            &["subcloud_id", "at", "availability", "reason"],
            history,
            "",
        )
        .await?;
        bulk_update(
            &mut tx,
            backend,
            "subcloud_agents",
            "subcloud_id",
            &[
                "health",
                "agent_version",
                "highest_epoch",
                "cpu_cores",
                "memory_gib",
                "storage_gib",
                "hosts",
                "updated_at",
            ],
            agent_rows,
        )
        .await?;
        bulk_update(
            &mut tx,
            backend,
            "subclouds",
            "id",
            &["software_version", "updated_at"],
            versions,
        )
        .await?;
        bulk_insert(
            &mut tx,
            "subcloud_endpoints",
            &["subcloud_id", "endpoint_type", "sync_status", "updated_at"],
            endpoint_rows,
            " ON CONFLICT (subcloud_id, endpoint_type) DO UPDATE SET \
             sync_status = excluded.sync_status, updated_at = excluded.updated_at",
        )
        .await?;
        bulk_update(
            &mut tx,
            backend,
            "subclouds",
            "id",
            &["sync_status", "updated_at"],
            sync_rows,
        )
        .await?;
        execute_for_ids(&mut tx, &reach_ids, |b| {
            b.push("DELETE FROM subcloud_reachability WHERE subcloud_id IN");
        })
        .await?;
        bulk_insert(
            &mut tx,
            "subcloud_reachability",
            &[
                "subcloud_id",
                "controller",
                "reachable",
                "rtt_ms",
                "updated_at",
            ],
            reach_rows,
            " ON CONFLICT (subcloud_id, controller) DO NOTHING",
        )
        .await?;
        // Agent alarms: the report lists every active alarm; clear what is gone, raise what is new.
        let ids: Vec<i64> = alarm_sync.iter().map(|(id, _)| *id).collect();
        let mut active: HashMap<i64, Vec<(i64, String, String, String)>> = HashMap::new();
        let rows = fetch_for_ids(
            &mut tx,
            &ids,
            "SELECT subcloud_id, id, alarm_id, entity, severity FROM alarms \
             WHERE source = 'agent' AND cleared_at IS NULL AND subcloud_id IN",
        )
        .await?;
        for r in rows {
            active.entry(r.try_get(0)?).or_default().push((
                r.try_get(1)?,
                r.try_get(2)?,
                r.try_get(3)?,
                r.try_get(4)?,
            ));
        }
        let mut clear_ids: Vec<i64> = Vec::new();
        let mut agent_raise: Vec<Vec<Cell>> = Vec::new();
        for (sid, reported) in &alarm_sync {
            let current = active.remove(sid).unwrap_or_default();
            for (aid, alarm_id, entity, severity) in &current {
                let still = reported.iter().any(|a| {
                    &a.alarm_id == alarm_id
                        && &a.entity == entity
                        && a.severity.as_str() == severity
                });
                if !still {
                    clear_ids.push(*aid);
                }
            }
            for a in reported.iter() {
                let exists = current.iter().any(|(_, alarm_id, entity, severity)| {
                    &a.alarm_id == alarm_id
                        && &a.entity == entity
                        && a.severity.as_str() == severity
                });
                if !exists {
                    agent_raise.push(vec![
                        Cell::Int(*sid),
                        Cell::Text(a.alarm_id.clone()),
                        Cell::Text(a.severity.as_str().into()),
                        Cell::Text(a.reason.clone()),
                        Cell::Text(a.entity.clone()),
                        Cell::Int(now.0),
                        Cell::Text("agent".into()),
                    ]);
                }
            }
        }
        // Clears first, so a severity change (clear + raise of the same key) keeps the
        // one-active-alarm-per-key rule.
        out.alarms_cleared += execute_for_ids(&mut tx, &clear_ids, |b| {
            b.push("UPDATE alarms SET cleared_at = ")
                .bind(now.0)
                .push(" WHERE cleared_at IS NULL AND id IN");
        })
        .await?;
        for (sid, alarm_id) in &clear {
            out.alarms_cleared += sqlx::query(
                "UPDATE alarms SET cleared_at = $1 WHERE subcloud_id = $2 AND alarm_id = $3 \
                 AND source = 'controller' AND cleared_at IS NULL",
            )
            .bind(now.0)
            .bind(*sid)
            .bind(*alarm_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let mut raise_rows: Vec<Vec<Cell>> = raise
            .into_iter()
            .map(|(sid, alarm_id, sev, reason, entity, source)| {
                vec![
                    Cell::Int(sid),
                    Cell::Text(alarm_id.into()),
                    Cell::Text(sev.as_str().into()),
                    Cell::Text(reason),
                    Cell::Text(entity),
                    Cell::Int(now.0),
                    Cell::Text(source.into()),
                ]
            })
            .collect();
        raise_rows.extend(agent_raise);
        // ON CONFLICT DO NOTHING: raising an active alarm again is a no-op (unique index on
        // subcloud, alarm id and entity among active alarms) and is not counted.
        out.alarms_raised += bulk_insert(
            &mut tx,
            "alarms",
            &[
                "subcloud_id",
                "alarm_id",
                "severity",
                "reason",
                "entity",
                "raised_at",
                "source",
            ],
            raise_rows,
            " ON CONFLICT DO NOTHING",
        )
        .await?;
        // Roll-up (reference §1.7) of every subcloud whose alarms may have changed.
        touched.sort_unstable();
        touched.dedup();
        let mut counts: HashMap<i64, Vec<AlarmSeverity>> =
            touched.iter().map(|id| (*id, Vec::new())).collect();
        let rows = fetch_for_ids(
            &mut tx,
            &touched,
            "SELECT subcloud_id, severity FROM alarms WHERE cleared_at IS NULL AND subcloud_id IN",
        )
        .await?;
        for r in rows {
            let sev: AlarmSeverity = crate::store::parse_col("severity", r.try_get::<&str, _>(1)?)?;
            counts.entry(r.try_get(0)?).or_default().push(sev);
        }
        // A site that does not observe its platform is `unknown`, not `OK`, without alarms.
        let observed: HashMap<i64, bool> = plans
            .iter()
            .filter_map(|p| {
                let v = p.view.as_ref().or(p.before.1.as_ref())?;
                Some((p.id, v.health.observed()))
            })
            .collect();
        let rollup: Vec<Vec<Cell>> = counts
            .iter()
            .map(|(id, sevs)| {
                let c = AlarmCounts::of(sevs.iter());
                let status = c.status_when(observed.get(id).copied().unwrap_or(true));
                vec![
                    Cell::Int(*id),
                    Cell::Text(status.as_str().into()),
                    Cell::Int(status.rank()),
                    Cell::Int(i64::from(c.critical)),
                    Cell::Int(i64::from(c.major)),
                    Cell::Int(i64::from(c.minor)),
                    Cell::Int(i64::from(c.warnings)),
                ]
            })
            .collect();
        bulk_update(
            &mut tx,
            backend,
            "subclouds",
            "id",
            &[
                "alarm_status",
                "alarm_rank",
                "critical_alarms",
                "major_alarms",
                "minor_alarms",
                "warnings",
            ],
            rollup,
        )
        .await?;
        // Command progress, guarded by the reporting site (an agent cannot touch another
        // site's commands) and by the command still being open.
        let progress: Vec<Vec<Cell>> = plans
            .iter()
            .flat_map(|p| {
                p.commands.iter().map(move |c| {
                    vec![
                        Cell::Int(c.id),
                        Cell::Text(c.state.as_str().into()),
                        Cell::Int(i64::from(c.percent)),
                        Cell::Text(c.message.clone()),
                        Cell::Text(c.phase.clone().unwrap_or_default()),
                        Cell::Int(now.0),
                        Cell::Int(p.id),
                    ]
                })
            })
            .collect();
        if !progress.is_empty() {
            bulk_update_guarded(
                &mut tx,
                backend,
                "subcloud_commands",
                "id",
                &["state", "percent", "message", "phase", "updated_at"],
                &["subcloud_id"],
                "state IN ('queued', 'running')",
                progress,
            )
            .await?;
        }
        if !out.went_offline.is_empty() || !out.went_online.is_empty() {
            audit::record(
                &mut tx,
                &AuditEntry::system(
                    "health.availability",
                    "subclouds",
                    format!(
                        "{} went offline{}, {} came online{}",
                        out.went_offline.len(),
                        sample(&out.went_offline),
                        out.went_online.len(),
                        sample(&out.went_online),
                    ),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        // Step progress is in the store now: let the orchestrator act on it without waiting
        // for its own tick.
        if plans.iter().any(|p| !p.commands.is_empty()) {
            if let Some(wake) = self.orchestrator_wake.get() {
                wake.notify_one();
            }
        }
        let names: HashMap<i64, &str> = plans.iter().map(|p| (p.id, p.name.as_str())).collect();
        out.changed = touched
            .iter()
            .filter_map(|id| names.get(id).map(|n| n.to_string()))
            .collect();
        Ok(out)
    }
}

fn plan(
    id: i64,
    e: &AgentEntry,
    flip: Option<AvailabilityStatus>,
    view: Option<StoredView>,
    commands: Vec<wire::CommandProgress>,
    before: (AvailabilityTracker, Option<StoredView>),
) -> Plan {
    Plan {
        id,
        name: e.name.clone(),
        managed: e.managed,
        flip,
        view,
        commands,
        before,
    }
}

/// ` (a, b, c …)`: the first few names of a list for an audit summary.
fn sample(names: &[String]) -> String {
    if names.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = names.iter().take(5).map(String::as_str).collect();
    let more = if names.len() > 5 { ", …" } else { "" };
    format!(" ({}{more})", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(rtts: &[(&str, bool, Option<u32>)]) -> StoredView {
        StoredView {
            software_version: "25.09".into(),
            health: SiteHealth::Healthy,
            agent_version: String::new(),
            highest_epoch: 0,
            capacity: Default::default(),
            endpoints: Vec::new(),
            alarms: Vec::new(),
            reachability: rtts
                .iter()
                .map(|(c, ok, r)| (c.to_string(), *ok, *r))
                .collect(),
        }
    }

    #[test]
    fn rtt_jitter_is_not_a_change_but_a_real_shift_or_a_lost_link_is() {
        let stored = view(&[("a", true, Some(40)), ("b", true, Some(200))]);
        let mut jitter = view(&[("a", true, Some(50)), ("b", true, Some(240))]);
        jitter.settle_reachability(Some(&stored));
        assert_eq!(jitter, stored, "within max(10 ms, 25 %)");
        let mut shift = view(&[("a", true, Some(60)), ("b", true, Some(200))]);
        shift.settle_reachability(Some(&stored));
        assert_ne!(shift, stored);
        let mut lost = view(&[("a", true, Some(40)), ("b", false, None)]);
        lost.settle_reachability(Some(&stored));
        assert_ne!(lost, stored);
        let mut first = view(&[("a", true, Some(40))]);
        first.settle_reachability(None);
        assert_eq!(first.reachability.len(), 1);
    }
}

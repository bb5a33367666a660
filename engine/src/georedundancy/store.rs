//! Geo-redundancy in the store: topology reads, the takeover and adoption transactions,
//! rehoming admissions, replication snapshots and the read models of the pages. Every change
//! is one transaction with its audit entry; the caller publishes the event.

use std::collections::HashMap;

use sqlx::Row;

use super::model::*;
use crate::agents::store::{route_key, Route, RouteKey};
use crate::agents::wire::ControllerRef;
use crate::audit::{self, AuditEntry};
use crate::error::{Error, Result};
use crate::fleet::{ControllerAvailability, MigrationStatus, PeerGroupState};
use crate::store::{count, parse_col};
use crate::time::Millis;
use crate::Engine;

/// A controller row.
#[derive(Debug, Clone)]
pub(crate) struct ControllerRow {
    pub id: i64,
    pub name: String,
    pub uuid: String,
    pub endpoint: String,
    pub gateway_address: String,
    pub admin: AdminState,
    pub heartbeat: HeartbeatSettings,
    pub availability: ControllerAvailability,
    pub availability_changed_at: Option<Millis>,
    pub region: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    pub capacity: u64,
    pub reserved_capacity: u64,
}

/// A peer group row with its associations.
#[derive(Debug, Clone)]
pub(crate) struct GroupRow {
    pub id: i64,
    pub name: String,
    pub priority: u32,
    pub state: PeerGroupState,
    pub max_subcloud_rehoming: u32,
    pub owner: String,
    pub home: String,
    pub epoch: u64,
    pub owned_since: Millis,
    pub migration_status: MigrationStatus,
    pub failback_hold_down_s: u64,
    pub revision: u64,
    pub associations: Vec<AssociationRow>,
}

#[derive(Debug, Clone)]
pub(crate) struct AssociationRow {
    pub controller: String,
    pub priority: u32,
    pub association_type: AssociationType,
    pub sync_status: AssociationSync,
    pub sync_message: String,
    pub synced_revision: u64,
    pub synced_at: Option<Millis>,
}

/// Everything about controllers and groups, read at once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Topology {
    pub controllers: Vec<ControllerRow>,
    pub groups: Vec<GroupRow>,
}

impl Topology {
    pub fn controller(&self, name: &str) -> Option<&ControllerRow> {
        self.controllers.iter().find(|c| c.name == name)
    }
    pub fn group(&self, name: &str) -> Option<&GroupRow> {
        self.groups.iter().find(|g| g.name == name)
    }

    /// Agents' controller list for a group: owner first, then by association priority, then
    /// any other controller by name.
    pub fn controller_list(
        &self,
        owner: &str,
        associations: &[AssociationRow],
    ) -> Vec<ControllerRef> {
        let mut names: Vec<&str> = vec![owner];
        let mut assoc: Vec<&AssociationRow> = associations.iter().collect();
        assoc.sort_by_key(|a| (a.priority, a.controller.clone()));
        for a in assoc {
            if !names.contains(&a.controller.as_str()) {
                names.push(&a.controller);
            }
        }
        for c in &self.controllers {
            if !names.contains(&c.name.as_str()) {
                names.push(&c.name);
            }
        }
        names
            .into_iter()
            .filter_map(|n| self.controller(n))
            .map(|c| ControllerRef {
                name: c.name.clone(),
                url: c.endpoint.clone(),
            })
            .collect()
    }
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Engine {
    pub(crate) async fn geo_topology(&self) -> Result<Topology> {
        let pool = self.store.pool();
        let controllers = sqlx::query(
            "SELECT c.id, c.name, c.uuid, c.endpoint, c.gateway_address, c.administrative_state, \
             c.heartbeat_interval_ms, c.heartbeat_failure_threshold, c.heartbeat_failure_policy, \
             c.delegate_to, c.heartbeat_maintenance_timeout_s, c.availability, \
             c.availability_changed_at, r.name, c.city, c.lat, c.lon, c.capacity, c.reserved_capacity \
             FROM system_controllers c JOIN regions r ON r.id = c.region_id ORDER BY c.name",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ControllerRow {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                uuid: r.try_get(2)?,
                endpoint: r.try_get(3)?,
                gateway_address: r.try_get(4)?,
                admin: parse_col("administrative_state", r.try_get::<&str, _>(5)?)?,
                heartbeat: HeartbeatSettings {
                    interval_ms: u(r.try_get(6)?),
                    failure_threshold: u32::try_from(r.try_get::<i64, _>(7)?).unwrap_or(3),
                    failure_policy: parse_col("heartbeat_failure_policy", r.try_get::<&str, _>(8)?)?,
                    delegate_to: r.try_get(9)?,
                    maintenance_timeout_s: u(r.try_get(10)?),
                },
                availability: parse_col("availability", r.try_get::<&str, _>(11)?)?,
                availability_changed_at: r.try_get::<Option<i64>, _>(12)?.map(Millis),
                region: r.try_get(13)?,
                city: r.try_get(14)?,
                lat: r.try_get(15)?,
                lon: r.try_get(16)?,
                capacity: u(r.try_get(17)?),
                reserved_capacity: u(r.try_get(18)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let mut associations: HashMap<i64, Vec<AssociationRow>> = HashMap::new();
        for r in sqlx::query(
            "SELECT a.peer_group_id, c.name, a.priority, a.association_type, a.sync_status, \
             a.sync_message, a.synced_revision, a.synced_at FROM peer_group_associations a \
             JOIN system_controllers c ON c.id = a.controller_id ORDER BY a.priority, c.name",
        )
        .fetch_all(pool)
        .await?
        {
            associations
                .entry(r.try_get(0)?)
                .or_default()
                .push(AssociationRow {
                    controller: r.try_get(1)?,
                    priority: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(u32::MAX),
                    association_type: parse_col("association_type", r.try_get::<&str, _>(3)?)?,
                    sync_status: parse_col("sync_status", r.try_get::<&str, _>(4)?)?,
                    sync_message: r.try_get(5)?,
                    synced_revision: u(r.try_get(6)?),
                    synced_at: r.try_get::<Option<i64>, _>(7)?.map(Millis),
                });
        }
        let groups = sqlx::query(
            "SELECT p.id, p.name, p.priority, p.state, p.max_subcloud_rehoming, l.name, \
             COALESCE(h.name, l.name), p.owner_epoch, p.owned_since, p.migration_status, \
             p.failback_hold_down_s, p.revision FROM peer_groups p \
             JOIN system_controllers l ON l.id = p.leader_id \
             LEFT JOIN system_controllers h ON h.id = p.home_controller_id ORDER BY p.name",
        )
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            Ok(GroupRow {
                id,
                name: r.try_get(1)?,
                priority: u32::try_from(r.try_get::<i64, _>(2)?).unwrap_or(0),
                state: parse_col("state", r.try_get::<&str, _>(3)?)?,
                max_subcloud_rehoming: u32::try_from(r.try_get::<i64, _>(4)?).unwrap_or(10),
                owner: r.try_get(5)?,
                home: r.try_get(6)?,
                epoch: u(r.try_get(7)?),
                owned_since: Millis(r.try_get(8)?),
                migration_status: parse_col("migration_status", r.try_get::<&str, _>(9)?)?,
                failback_hold_down_s: u(r.try_get(10)?),
                revision: u(r.try_get(11)?),
                associations: associations.remove(&id).unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Topology {
            controllers,
            groups,
        })
    }

    /// The routes agents follow, and each subcloud's route and rehoming wait.
    pub(crate) async fn geo_routes(
        &self,
        topo: &Topology,
    ) -> Result<(HashMap<RouteKey, Route>, Vec<(i64, RouteKey, bool)>)> {
        let mut routes = HashMap::new();
        for g in &topo.groups {
            routes.insert(
                RouteKey::Group(g.id),
                Route {
                    owner: g.owner.clone(),
                    epoch: g.epoch,
                    controllers: topo.controller_list(&g.owner, &g.associations),
                },
            );
        }
        for c in &topo.controllers {
            routes.insert(
                RouteKey::Ungrouped(c.id),
                Route {
                    owner: c.name.clone(),
                    epoch: 0,
                    controllers: topo.controller_list(&c.name, &[]),
                },
            );
        }
        let subclouds =
            sqlx::query("SELECT id, peer_group_id, controller_id, rehome_status FROM subclouds")
                .fetch_all(self.store.pool())
                .await?
                .iter()
                .map(|r| {
                    Ok((
                        r.try_get::<i64, _>(0)?,
                        route_key(r.try_get(1)?, r.try_get(2)?),
                        r.try_get::<&str, _>(3)? == RehomeStatus::Waiting.as_str(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
        Ok((routes, subclouds))
    }

    /// Subclouds `controller` manages: its groups' and its ungrouped ones.
    pub(crate) async fn geo_managed_count(&self, controller: &str) -> Result<u64> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subclouds s JOIN system_controllers c ON c.name = $1 \
             LEFT JOIN peer_groups p ON p.id = s.peer_group_id \
             WHERE (p.id IS NOT NULL AND p.leader_id = c.id) OR (p.id IS NULL AND s.controller_id = c.id)",
        )
        .bind(controller)
        .fetch_one(self.store.pool())
        .await?;
        Ok(count(n))
    }

    /// Sites per peer group (id → (total, online)).
    pub(crate) async fn geo_group_sizes(&self) -> Result<HashMap<i64, (u64, u64)>> {
        let mut out = HashMap::new();
        for r in sqlx::query(
            "SELECT peer_group_id, COUNT(*), SUM(CASE WHEN availability = 'online' THEN 1 ELSE 0 END) \
             FROM subclouds WHERE peer_group_id IS NOT NULL GROUP BY peer_group_id",
        )
        .fetch_all(self.store.pool())
        .await?
        {
            let total: i64 = r.try_get(1)?;
            let online: Option<i64> = r.try_get(2)?;
            out.insert(r.try_get::<i64, _>(0)?, (count(total), count(online.unwrap_or(0))));
        }
        Ok(out)
    }

    /// Subclouds in no peer group whose controller is `controller`.
    pub(crate) async fn geo_unprotected(&self) -> Result<Vec<(String, u64)>> {
        sqlx::query(
            "SELECT c.name, COUNT(s.id) FROM system_controllers c \
             LEFT JOIN subclouds s ON s.controller_id = c.id AND s.peer_group_id IS NULL \
             GROUP BY c.name ORDER BY c.name",
        )
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, count(r.try_get(1)?))))
        .collect()
    }

    /// Writes this controller's and its peers' settings from the configuration.
    pub(crate) async fn geo_store_config(&self, cfg: &super::config::GeoConfig) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let now = Millis::now().0;
        let this = sqlx::query(
            "UPDATE system_controllers SET endpoint = $1, capacity = $2, reserved_capacity = $3, \
             uuid = CASE WHEN uuid = '' THEN $4 ELSE uuid END, updated_at = $5 WHERE name = $6",
        )
        .bind(&cfg.url)
        .bind(i(cfg.capacity))
        .bind(i(cfg.reserved_capacity))
        .bind(uuid_of(&cfg.this))
        .bind(now)
        .bind(&cfg.this)
        .execute(&mut *tx)
        .await?;
        if this.rows_affected() == 0 {
            return Err(Error::not_found("system controller", cfg.this.clone()));
        }
        // The home controller decides its groups' failback hold-down; replication carries it
        // to whoever owns them.
        sqlx::query(
            "UPDATE peer_groups SET failback_hold_down_s = $1, revision = revision + 1 \
             WHERE failback_hold_down_s <> $1 AND home_controller_id = \
             (SELECT id FROM system_controllers WHERE name = $2)",
        )
        .bind(i(cfg.failback_hold_down_s))
        .bind(&cfg.this)
        .execute(&mut *tx)
        .await?;
        for p in &cfg.peers {
            let hb = &cfg.heartbeat;
            let done = sqlx::query(
                "UPDATE system_controllers SET endpoint = $1, heartbeat_interval_ms = $2, \
                 heartbeat_failure_threshold = $3, heartbeat_failure_policy = $4, delegate_to = $5, \
                 heartbeat_maintenance_timeout_s = $6, \
                 uuid = CASE WHEN uuid = '' THEN $7 ELSE uuid END, updated_at = $8 WHERE name = $9",
            )
            .bind(&p.url)
            .bind(i(hb.interval_ms))
            .bind(i64::from(hb.failure_threshold))
            .bind(hb.failure_policy.as_str())
            .bind(hb.delegate_to.as_deref())
            .bind(i(hb.maintenance_timeout_s))
            .bind(uuid_of(&p.name))
            .bind(now)
            .bind(&p.name)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(Error::not_found("system controller (peer)", p.name.clone()));
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Moves `group` to this controller (`this`) at a new epoch, if its owner and epoch are
    /// still `owner` and `epoch`. The subclouds wait for the rehoming ramp.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn geo_take_over_tx(
        &self,
        this: &str,
        slot: u64,
        group: &str,
        owner: &str,
        epoch: u64,
        reason: &str,
        entry: &AuditEntry,
    ) -> Result<u64> {
        let topo = self.geo_topology().await?;
        let g = topo
            .group(group)
            .ok_or_else(|| Error::not_found("peer group", group))?;
        if g.owner != owner || g.epoch != epoch {
            return Err(Error::Conflict(format!(
                "peer group {group} is owned by {} at epoch {}, not {owner} at {epoch}",
                g.owner, g.epoch
            )));
        }
        if g.owner == this {
            return Err(Error::Conflict(format!("{this} already owns {group}")));
        }
        let me = topo
            .controller(this)
            .ok_or_else(|| Error::not_found("system controller", this))?;
        let new_epoch = next_epoch(epoch, slot);
        let now = Millis::now().0;
        let mut tx = self.store.begin_write().await?;
        let moved = sqlx::query(
            "UPDATE peer_groups SET leader_id = $1, owner_epoch = $2, migration_status = 'migrating', \
             owned_since = $3, revision = revision + 1, updated_at = $3 WHERE id = $4 AND owner_epoch = $5",
        )
        .bind(me.id)
        .bind(i(new_epoch))
        .bind(now)
        .bind(g.id)
        .bind(i(epoch))
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(Error::Conflict(format!(
                "peer group {group} changed meanwhile"
            )));
        }
        sqlx::query("UPDATE subclouds SET rehome_status = 'waiting', updated_at = $1 WHERE peer_group_id = $2")
            .bind(now)
            .bind(g.id)
            .execute(&mut *tx)
            .await?;
        set_association_types(&mut tx, g.id, me.id, now).await?;
        record_ownership(
            &mut tx,
            g.id,
            now,
            owner,
            this,
            new_epoch,
            reason,
            &entry.actor,
        )
        .await?;
        crate::orchestration::replica::adopt_strategies(
            &mut tx,
            this,
            &format!("peer group {group}, epoch {new_epoch}"),
            now,
        )
        .await?;
        audit::record(&mut tx, entry).await?;
        tx.commit().await?;
        Ok(new_epoch)
    }

    /// Records that `owner` owns `group` at `epoch` (higher than what this store holds),
    /// learned from a peer or an agent. Returns whether anything changed.
    pub(crate) async fn geo_adopt_tx(
        &self,
        this: &str,
        group: &str,
        owner: &str,
        epoch: u64,
        learned_from: &str,
    ) -> Result<bool> {
        let topo = self.geo_topology().await?;
        let Some(g) = topo.group(group) else {
            return Ok(false);
        };
        if epoch <= g.epoch {
            return Ok(false);
        }
        let Some(new_owner) = topo.controller(owner) else {
            return Ok(false);
        };
        let now = Millis::now().0;
        let mut tx = self.store.begin_write().await?;
        let done = sqlx::query(
            "UPDATE peer_groups SET leader_id = $1, owner_epoch = $2, owned_since = $3, \
             migration_status = CASE WHEN $4 THEN migration_status ELSE 'complete' END, \
             updated_at = $3 WHERE id = $5 AND owner_epoch < $2",
        )
        .bind(new_owner.id)
        .bind(i(epoch))
        .bind(now)
        .bind(owner == this)
        .bind(g.id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if owner != this {
            sqlx::query(
                "UPDATE subclouds SET controller_id = $1, rehome_status = 'none', updated_at = $2 \
                 WHERE peer_group_id = $3",
            )
            .bind(new_owner.id)
            .bind(now)
            .bind(g.id)
            .execute(&mut *tx)
            .await?;
        }
        set_association_types(&mut tx, g.id, new_owner.id, now).await?;
        let reason = format!("learned from {learned_from}");
        record_ownership(
            &mut tx, g.id, now, &g.owner, owner, epoch, &reason, "system",
        )
        .await?;
        let mut summary = format!(
            "{group}: owner {} (epoch {}) -> {owner} (epoch {epoch}), {reason}",
            g.owner, g.epoch
        );
        if g.owner == this && owner != this {
            let paused = pause_strategies_of(&mut tx, g.id, this, owner, now).await?;
            if paused > 0 {
                summary.push_str(&format!("; paused {paused} strategy(ies) with steps in it"));
            }
        }
        if owner == this {
            let taken = crate::orchestration::replica::adopt_strategies(
                &mut tx,
                this,
                &format!("peer group {group}, epoch {epoch}"),
                now,
            )
            .await?;
            if !taken.is_empty() {
                summary.push_str(&format!("; took over {} strategy(ies)", taken.len()));
            }
        }
        audit::record(
            &mut tx,
            &AuditEntry::system(
                "geo.ownership_learned",
                &format!("peer-group:{group}"),
                summary,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Admits up to `n` waiting subclouds of `group` (owned here); completes the migration
    /// when none is left. Returns the ids admitted and how many still wait.
    pub(crate) async fn geo_admit_tx(
        &self,
        this: &str,
        group_id: i64,
        n: u32,
    ) -> Result<(Vec<i64>, u64)> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT s.id FROM subclouds s JOIN peer_groups p ON p.id = s.peer_group_id \
             JOIN system_controllers c ON c.id = p.leader_id \
             WHERE s.peer_group_id = $1 AND s.rehome_status = 'waiting' AND c.name = $2 \
             ORDER BY s.id LIMIT $3",
        )
        .bind(group_id)
        .bind(this)
        .bind(i64::from(n))
        .fetch_all(self.store.pool())
        .await?;
        let now = Millis::now().0;
        // Reads before the transaction: on SQLite a transaction that reads before it writes
        // can fail to upgrade under concurrent writers.
        let me: i64 = sqlx::query_scalar("SELECT id FROM system_controllers WHERE name = $1")
            .bind(this)
            .fetch_one(self.store.pool())
            .await?;
        let name: String = sqlx::query_scalar("SELECT name FROM peer_groups WHERE id = $1")
            .bind(group_id)
            .fetch_one(self.store.pool())
            .await?;
        if ids.is_empty() {
            let left: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM subclouds WHERE peer_group_id = $1 AND rehome_status = 'waiting'",
            )
            .bind(group_id)
            .fetch_one(self.store.pool())
            .await?;
            if left > 0 {
                return Ok((ids, count(left)));
            }
        }
        let mut tx = self.store.begin_write().await?;
        if !ids.is_empty() {
            let mut q = crate::store::Sql::new(
                "UPDATE subclouds SET rehome_status = 'rehomed', controller_id = ",
            );
            q.bind(me)
                .push(", updated_at = ")
                .bind(now)
                .push(" WHERE rehome_status = 'waiting' AND id IN (");
            for (k, id) in ids.iter().enumerate() {
                if k > 0 {
                    q.push(", ");
                }
                q.bind(*id);
            }
            q.push(")");
            let (sql, args) = q.finish()?;
            sqlx::query_with(&sql, args).execute(&mut *tx).await?;
        }
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM subclouds WHERE peer_group_id = $1 AND rehome_status = 'waiting'",
        )
        .bind(group_id)
        .fetch_one(&mut *tx)
        .await?;
        if left == 0 {
            sqlx::query("UPDATE peer_groups SET migration_status = 'complete', updated_at = $1 WHERE id = $2 AND migration_status = 'migrating'")
                .bind(now)
                .bind(group_id)
                .execute(&mut *tx)
                .await?;
        }
        if !ids.is_empty() || left == 0 {
            audit::record(
                &mut tx,
                &AuditEntry::system(
                    "geo.rehomed",
                    &format!("peer-group:{name}"),
                    format!(
                        "{this} admitted {} subcloud(s) of {name}; {left} still waiting",
                        ids.len()
                    ),
                ),
            )
            .await?;
        }
        tx.commit().await?;
        Ok((ids, count(left)))
    }

    /// The owner's copy of a group for replication.
    pub(crate) async fn geo_snapshot(
        &self,
        this: &str,
        g: &GroupRow,
        latency: Vec<(String, u32)>,
    ) -> Result<GroupSnapshot> {
        let rows = sqlx::query(
            "SELECT s.id, s.name, s.description, s.location, s.city, s.country, r.name, s.lat, s.lon, \
             s.timezone, s.management_state, s.availability, s.deploy_status, s.sync_status, \
             s.software_version, sg.name, s.alarm_status, s.alarm_rank, s.critical_alarms, \
             s.major_alarms, s.minor_alarms, s.warnings, s.rehome_status, a.secret_hash, a.revoked_at, \
             COALESCE(a.last_seq, 0) \
             FROM subclouds s JOIN regions r ON r.id = s.region_id \
             JOIN subcloud_groups sg ON sg.id = s.group_id \
             LEFT JOIN subcloud_agents a ON a.subcloud_id = s.id \
             WHERE s.peer_group_id = $1 ORDER BY s.id",
        )
        .bind(g.id)
        .fetch_all(self.store.pool())
        .await?;
        let subclouds = rows
            .iter()
            .map(|r| {
                let revoked: Option<i64> = r.try_get(24)?;
                Ok(SubcloudCopy {
                    id: r.try_get(0)?,
                    name: r.try_get(1)?,
                    description: r.try_get(2)?,
                    location: r.try_get(3)?,
                    city: r.try_get(4)?,
                    country: r.try_get(5)?,
                    region: r.try_get(6)?,
                    lat: r.try_get(7)?,
                    lon: r.try_get(8)?,
                    timezone: r.try_get(9)?,
                    management_state: r.try_get(10)?,
                    availability: r.try_get(11)?,
                    deploy_status: r.try_get(12)?,
                    sync_status: r.try_get(13)?,
                    software_version: r.try_get(14)?,
                    group: r.try_get(15)?,
                    alarm_status: r.try_get(16)?,
                    alarm_rank: r.try_get(17)?,
                    critical_alarms: r.try_get(18)?,
                    major_alarms: r.try_get(19)?,
                    minor_alarms: r.try_get(20)?,
                    warnings: r.try_get(21)?,
                    rehome_status: r.try_get(22)?,
                    secret_hash: if revoked.is_some() {
                        None
                    } else {
                        r.try_get(23)?
                    },
                    last_seq: r.try_get(25)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(GroupSnapshot {
            from: this.to_string(),
            group: g.name.clone(),
            priority: g.priority,
            state: g.state,
            max_subcloud_rehoming: g.max_subcloud_rehoming,
            owner: g.owner.clone(),
            home: g.home.clone(),
            epoch: g.epoch,
            migration_status: g.migration_status,
            failback_hold_down_s: g.failback_hold_down_s,
            revision: g.revision,
            associations: g
                .associations
                .iter()
                .map(|a| (a.controller.clone(), a.priority))
                .collect(),
            agent_latency_ms: latency,
            subclouds,
        })
    }

    /// Applies an owner's snapshot to this secondary copy, in one transaction. Refused unless
    /// the sender is the owner it names and its epoch is not below this copy's. Returns the
    /// credentials to load into the gateway: (id, secret hash, last seq).
    pub(crate) async fn geo_apply_snapshot_tx(
        &self,
        this: &str,
        snap: &GroupSnapshot,
    ) -> Result<Vec<(i64, Option<String>, i64)>> {
        if snap.from != snap.owner {
            return Err(Error::Conflict(format!(
                "{} is not the owner it names ({})",
                snap.from, snap.owner
            )));
        }
        if snap.owner == this {
            return Err(Error::Conflict(
                "a snapshot cannot name the receiver as owner".into(),
            ));
        }
        let topo = self.geo_topology().await?;
        let g = topo
            .group(&snap.group)
            .ok_or_else(|| Error::not_found("peer group", snap.group.clone()))?;
        if snap.epoch < g.epoch {
            return Err(Error::Conflict(format!(
                "stale snapshot of {}: epoch {} is below {} here",
                snap.group, snap.epoch, g.epoch
            )));
        }
        let owner = topo
            .controller(&snap.owner)
            .ok_or_else(|| Error::not_found("system controller", snap.owner.clone()))?;
        let home = topo.controller(&snap.home).map_or(owner.id, |c| c.id);
        // Ids must match: agent credentials carry them.
        let mut clash = None;
        for s in &snap.subclouds {
            let here: Option<i64> = sqlx::query_scalar("SELECT id FROM subclouds WHERE name = $1")
                .bind(&s.name)
                .fetch_optional(self.store.pool())
                .await?;
            if let Some(id) = here {
                if id != s.id {
                    clash = Some(format!(
                        "subcloud {} has id {id} here but {} on {}",
                        s.name, s.id, snap.from
                    ));
                    break;
                }
            }
        }
        if let Some(c) = clash {
            return Err(Error::Conflict(c));
        }
        let now = Millis::now().0;
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "UPDATE peer_groups SET priority = $1, state = $2, max_subcloud_rehoming = $3, \
             leader_id = $4, home_controller_id = $5, owner_epoch = $6, migration_status = $7, \
             failback_hold_down_s = $8, revision = $9, updated_at = $10 WHERE id = $11",
        )
        .bind(i64::from(snap.priority))
        .bind(snap.state.as_str())
        .bind(i64::from(snap.max_subcloud_rehoming))
        .bind(owner.id)
        .bind(home)
        .bind(i(snap.epoch))
        .bind(snap.migration_status.as_str())
        .bind(i(snap.failback_hold_down_s))
        .bind(i(snap.revision))
        .bind(now)
        .bind(g.id)
        .execute(&mut *tx)
        .await?;
        if snap.epoch > g.epoch {
            record_ownership(
                &mut tx,
                g.id,
                now,
                &g.owner,
                &snap.owner,
                snap.epoch,
                &format!("replicated from {}", snap.from),
                "system",
            )
            .await?;
        }
        for (c, prio) in &snap.associations {
            let Some(cid) = topo.controller(c).map(|c| c.id) else {
                continue;
            };
            sqlx::query(
                "INSERT INTO peer_group_associations (peer_group_id, controller_id, priority, \
                 association_type, sync_status, created_at, updated_at) VALUES ($1, $2, $3, $4, 'in-sync', $5, $5) \
                 ON CONFLICT (peer_group_id, controller_id) DO UPDATE SET priority = excluded.priority, \
                 association_type = excluded.association_type, updated_at = excluded.updated_at",
            )
            .bind(g.id)
            .bind(cid)
            .bind(i64::from(*prio))
            .bind(if *c == snap.owner { "primary" } else { "non-primary" })
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        // This controller's copy is now the owner's revision.
        if let Some(me) = topo.controller(this) {
            sqlx::query(
                "UPDATE peer_group_associations SET sync_status = 'in-sync', sync_message = '', \
                 synced_revision = $1, synced_at = $2 WHERE peer_group_id = $3 AND controller_id = $4",
            )
            .bind(i(snap.revision))
            .bind(now)
            .bind(g.id)
            .bind(me.id)
            .execute(&mut *tx)
            .await?;
        }
        let mut creds = Vec::with_capacity(snap.subclouds.len());
        let regions: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM regions")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        let groups: HashMap<String, i64> = sqlx::query_as("SELECT name, id FROM subcloud_groups")
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .collect();
        for s in &snap.subclouds {
            let region = regions.get(&s.region).copied();
            let group = groups.get(&s.group).copied();
            sqlx::query(
                "INSERT INTO subclouds (id, name, description, location, city, country, region_id, lat, lon, \
                 timezone, management_state, availability, deploy_status, sync_status, software_version, \
                 group_id, peer_group_id, controller_id, alarm_status, alarm_rank, critical_alarms, \
                 major_alarms, minor_alarms, warnings, rehome_status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
                 $19, $20, $21, $22, $23, $24, $25, $26, $26) \
                 ON CONFLICT (id) DO UPDATE SET description = excluded.description, \
                 location = excluded.location, management_state = excluded.management_state, \
                 availability = excluded.availability, deploy_status = excluded.deploy_status, \
                 sync_status = excluded.sync_status, software_version = excluded.software_version, \
                 group_id = excluded.group_id, peer_group_id = excluded.peer_group_id, \
                 controller_id = excluded.controller_id, alarm_status = excluded.alarm_status, \
                 alarm_rank = excluded.alarm_rank, critical_alarms = excluded.critical_alarms, \
                 major_alarms = excluded.major_alarms, minor_alarms = excluded.minor_alarms, \
                 warnings = excluded.warnings, rehome_status = 'none', updated_at = excluded.updated_at",
            )
            .bind(s.id)
            .bind(&s.name)
            .bind(&s.description)
            .bind(&s.location)
            .bind(&s.city)
            .bind(&s.country)
            .bind(region.unwrap_or(1))
            .bind(s.lat)
            .bind(s.lon)
            .bind(&s.timezone)
            .bind(&s.management_state)
            .bind(&s.availability)
            .bind(&s.deploy_status)
            .bind(&s.sync_status)
            .bind(&s.software_version)
            .bind(group.unwrap_or(1))
            .bind(g.id)
            .bind(owner.id)
            .bind(&s.alarm_status)
            .bind(s.alarm_rank)
            .bind(s.critical_alarms)
            .bind(s.major_alarms)
            .bind(s.minor_alarms)
            .bind(s.warnings)
            .bind(&s.rehome_status)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO subcloud_agents (subcloud_id, secret_hash, last_seq, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (subcloud_id) DO UPDATE SET secret_hash = excluded.secret_hash, \
                 revoked_at = NULL, \
                 last_seq = CASE WHEN excluded.last_seq > subcloud_agents.last_seq THEN excluded.last_seq ELSE subcloud_agents.last_seq END, \
                 updated_at = excluded.updated_at",
            )
            .bind(s.id)
            .bind(s.secret_hash.as_deref())
            .bind(s.last_seq)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            creds.push((s.id, s.secret_hash.clone(), s.last_seq));
        }
        tx.commit().await?;
        Ok(creds)
    }

    /// Records how a sync to `controller` went; writes only when something changed.
    pub(crate) async fn geo_set_sync(
        &self,
        group_id: i64,
        controller: &str,
        status: AssociationSync,
        message: &str,
        revision: u64,
    ) -> Result<bool> {
        let now = Millis::now().0;
        let done = sqlx::query(
            "UPDATE peer_group_associations SET sync_status = $1, sync_message = $2, \
             synced_revision = CASE WHEN $1 = 'in-sync' THEN $3 ELSE synced_revision END, \
             synced_at = CASE WHEN $1 = 'in-sync' THEN $4 ELSE synced_at END, updated_at = $4 \
             WHERE peer_group_id = $5 AND controller_id = (SELECT id FROM system_controllers WHERE name = $6) \
             AND (sync_status <> $1 OR sync_message <> $2 OR ($1 = 'in-sync' AND synced_revision <> $3))",
        )
        .bind(status.as_str())
        .bind(message)
        .bind(i(revision))
        .bind(now)
        .bind(group_id)
        .bind(controller)
        .execute(self.store.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Marks the associations of `group_id` whose copy is older than its revision out of sync.
    pub(crate) async fn geo_mark_out_of_sync(&self, group_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE peer_group_associations SET sync_status = 'out-of-sync' \
             WHERE peer_group_id = $1 AND association_type = 'non-primary' AND sync_status = 'in-sync' \
             AND synced_revision < (SELECT revision FROM peer_groups WHERE id = $1)",
        )
        .bind(group_id)
        .execute(self.store.pool())
        .await?;
        Ok(())
    }

    /// Stores a peer's availability transition with its alarm, audit entry.
    pub(crate) async fn geo_set_availability_tx(
        &self,
        peer: &str,
        availability: ControllerAvailability,
        summary: String,
    ) -> Result<()> {
        let now = Millis::now().0;
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM system_controllers WHERE name = $1")
                .bind(peer)
                .fetch_optional(self.store.pool())
                .await?;
        let Some(id) = id else {
            return Ok(());
        };
        let mut tx = self.store.begin_write().await?;
        sqlx::query("UPDATE system_controllers SET availability = $1, availability_changed_at = $2 WHERE id = $3")
            .bind(availability.as_str())
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        match availability {
            ControllerAvailability::Unavailable => {
                raise_alarm(
                    &mut tx,
                    id,
                    super::alarm_ids::PEER_UNREACHABLE,
                    "major",
                    &summary,
                    now,
                )
                .await?;
            }
            _ => {
                clear_alarm(&mut tx, id, super::alarm_ids::PEER_UNREACHABLE, now).await?;
                clear_alarm(
                    &mut tx,
                    id,
                    super::alarm_ids::GROUP_WAITING_FOR_MIGRATE,
                    now,
                )
                .await?;
                clear_alarm(&mut tx, id, super::alarm_ids::CAPACITY_SHORTFALL, now).await?;
            }
        }
        audit::record(
            &mut tx,
            &AuditEntry::system(
                "geo.peer_availability",
                &format!("controller:{peer}"),
                summary,
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Raises (or, with `reason` `None`, clears) an alarm about `controller`. Returns whether
    /// anything changed.
    pub(crate) async fn geo_controller_alarm(
        &self,
        controller: &str,
        alarm_id: &str,
        severity: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let now = Millis::now().0;
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM system_controllers WHERE name = $1")
                .bind(controller)
                .fetch_optional(self.store.pool())
                .await?;
        let Some(id) = id else {
            return Ok(false);
        };
        // Nothing to do is the common case (every tick while a peer is down): check first,
        // outside a transaction.
        let active: Option<String> = sqlx::query_scalar(
            "SELECT reason FROM controller_alarms WHERE controller_id = $1 AND alarm_id = $2 AND cleared_at IS NULL",
        )
        .bind(id)
        .bind(alarm_id)
        .fetch_optional(self.store.pool())
        .await?;
        match (&active, reason) {
            (None, None) => return Ok(false),
            (Some(a), Some(r)) if a == r => return Ok(false),
            _ => {}
        }
        let mut tx = self.store.begin_write().await?;
        let changed = match reason {
            Some(r) => raise_alarm(&mut tx, id, alarm_id, severity, r, now).await?,
            None => clear_alarm(&mut tx, id, alarm_id, now).await?,
        };
        if changed {
            let summary = match reason {
                Some(r) => format!("raised {alarm_id}: {r}"),
                None => format!("cleared {alarm_id}"),
            };
            audit::record(
                &mut tx,
                &AuditEntry::system("geo.alarm", &format!("controller:{controller}"), summary),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(changed)
    }

    pub(crate) async fn geo_controller_alarms(&self) -> Result<HashMap<i64, Vec<ControllerAlarm>>> {
        let mut out: HashMap<i64, Vec<ControllerAlarm>> = HashMap::new();
        for r in sqlx::query(
            "SELECT controller_id, alarm_id, severity, reason, raised_at, cleared_at FROM controller_alarms \
             WHERE cleared_at IS NULL ORDER BY raised_at",
        )
        .fetch_all(self.store.pool())
        .await?
        {
            out.entry(r.try_get(0)?).or_default().push(ControllerAlarm {
                alarm_id: r.try_get(1)?,
                severity: r.try_get(2)?,
                reason: r.try_get(3)?,
                raised_at: Millis(r.try_get(4)?),
                cleared_at: r.try_get::<Option<i64>, _>(5)?.map(Millis),
            });
        }
        Ok(out)
    }

    pub(crate) async fn geo_group_sites(&self) -> Result<HashMap<i64, GroupSites>> {
        let mut out = HashMap::new();
        for r in sqlx::query(
            "SELECT peer_group_id, COUNT(*), \
             SUM(CASE WHEN availability = 'online' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN alarm_status = 'critical' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN alarm_status = 'degraded' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN rehome_status = 'waiting' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN rehome_status = 'rehomed' THEN 1 ELSE 0 END), \
             SUM(CASE WHEN alarm_status = 'unknown' THEN 1 ELSE 0 END) \
             FROM subclouds WHERE peer_group_id IS NOT NULL GROUP BY peer_group_id",
        )
        .fetch_all(self.store.pool())
        .await?
        {
            let total = count(r.try_get(1)?);
            let n = |k: usize| -> Result<u64> {
                Ok(count(r.try_get::<Option<i64>, _>(k)?.unwrap_or(0)))
            };
            let online = n(2)?;
            out.insert(
                r.try_get::<i64, _>(0)?,
                GroupSites {
                    total,
                    online,
                    offline: total.saturating_sub(online),
                    critical: n(3)?,
                    degraded: n(4)?,
                    rehome_waiting: n(5)?,
                    rehomed: n(6)?,
                    health_unknown: n(7)?,
                },
            );
        }
        Ok(out)
    }

    pub(crate) async fn geo_history(
        &self,
        group_id: i64,
        limit: i64,
    ) -> Result<Vec<OwnershipChange>> {
        sqlx::query(
            "SELECT at, from_controller, to_controller, epoch, reason, actor FROM peer_group_ownership \
             WHERE peer_group_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(group_id)
        .bind(limit)
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(OwnershipChange {
                at: Millis(r.try_get(0)?),
                from_controller: r.try_get(1)?,
                to_controller: r.try_get(2)?,
                epoch: u(r.try_get(3)?),
                reason: r.try_get(4)?,
                actor: r.try_get(5)?,
            })
        })
        .collect()
    }
}

/// An edit of a subcloud in a peer group (enrollment, revocation, addition): the group's
/// revision moves and its secondary copies are out of sync until the owner re-syncs them.
pub(crate) async fn bump_revision_of_subcloud(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    subcloud_id: i64,
) -> Result<()> {
    let group: Option<Option<i64>> =
        sqlx::query_scalar("SELECT peer_group_id FROM subclouds WHERE id = $1")
            .bind(subcloud_id)
            .fetch_optional(&mut **tx)
            .await?;
    let Some(Some(group)) = group else {
        return Ok(());
    };
    sqlx::query("UPDATE peer_groups SET revision = revision + 1 WHERE id = $1")
        .bind(group)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "UPDATE peer_group_associations SET sync_status = 'out-of-sync' \
         WHERE peer_group_id = $1 AND association_type = 'non-primary' AND sync_status = 'in-sync'",
    )
    .bind(group)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A stable uuid-shaped identifier derived from a controller's name (StarlingX peers have a
/// uuid; ours must agree across controllers without coordination).
fn uuid_of(name: &str) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(name.as_bytes());
    let h: String = d.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

async fn set_association_types(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    group_id: i64,
    owner_id: i64,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE peer_group_associations SET association_type = CASE WHEN controller_id = $1 \
         THEN 'primary' ELSE 'non-primary' END, \
         sync_status = CASE WHEN controller_id = $1 THEN 'in-sync' ELSE 'out-of-sync' END, \
         updated_at = $2 WHERE peer_group_id = $3",
    )
    .bind(owner_id)
    .bind(now)
    .bind(group_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn record_ownership(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    group_id: i64,
    now: i64,
    from: &str,
    to: &str,
    epoch: u64,
    reason: &str,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO peer_group_ownership (peer_group_id, at, from_controller, to_controller, epoch, reason, actor) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(group_id)
    .bind(now)
    .bind(from)
    .bind(to)
    .bind(i(epoch))
    .bind(reason)
    .bind(actor)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Pauses active strategies with unfinished steps in the group this controller just lost:
/// their remaining steps belong to the new owner.
async fn pause_strategies_of(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    group_id: i64,
    this: &str,
    new_owner: &str,
    now: i64,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE strategies SET state = 'paused', reason = $1, revision = revision + 1, updated_at = $2 \
         WHERE state IN ('applying', 'waiting for approval') AND (run_by = '' OR run_by = $4) \
         AND id IN (SELECT st.strategy_id FROM strategy_steps st \
         JOIN subclouds s ON s.id = st.subcloud_id WHERE s.peer_group_id = $3 \
         AND st.state IN ('initial', 'queued', 'running'))",
    )
    .bind(format!("a peer group with steps in this strategy moved to {new_owner}"))
    .bind(now)
    .bind(group_id)
    .bind(this)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

async fn raise_alarm(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    controller_id: i64,
    alarm_id: &str,
    severity: &str,
    reason: &str,
    now: i64,
) -> Result<bool> {
    let active: Option<String> = sqlx::query_scalar(
        "SELECT reason FROM controller_alarms WHERE controller_id = $1 AND alarm_id = $2 AND cleared_at IS NULL",
    )
    .bind(controller_id)
    .bind(alarm_id)
    .fetch_optional(&mut **tx)
    .await?;
    match active {
        Some(r) if r == reason => Ok(false),
        Some(_) => {
            sqlx::query("UPDATE controller_alarms SET reason = $1 WHERE controller_id = $2 AND alarm_id = $3 AND cleared_at IS NULL")
                .bind(reason)
                .bind(controller_id)
                .bind(alarm_id)
                .execute(&mut **tx)
                .await?;
            Ok(true)
        }
        None => {
            sqlx::query(
                "INSERT INTO controller_alarms (controller_id, alarm_id, severity, reason, raised_at) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(controller_id)
            .bind(alarm_id)
            .bind(severity)
            .bind(reason)
            .bind(now)
            .execute(&mut **tx)
            .await?;
            Ok(true)
        }
    }
}

async fn clear_alarm(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    controller_id: i64,
    alarm_id: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE controller_alarms SET cleared_at = $1 WHERE controller_id = $2 AND alarm_id = $3 AND cleared_at IS NULL",
    )
    .bind(now)
    .bind(controller_id)
    .bind(alarm_id)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() > 0)
}

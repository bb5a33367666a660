//! Fleet reads: the subcloud list, one subcloud's detail, the overview and the filter
//! choices. Queries are written once for both backends (see `store`).

use sqlx::any::AnyRow;
use sqlx::Row;

use super::*;
use crate::error::{Error, Result};
use crate::health::{Alarm, AlarmCounts, AlarmSeverity};
use crate::store::{count, escape_like, fold_case, parse_col, small, Backend, Sql};
use crate::time::Millis;
use crate::Engine;

/// Columns of a [`SubcloudSummary`], in the order `summary_from_row` reads them.
const SUMMARY_COLUMNS: &str = "s.name, s.management_state, s.availability, s.deploy_status, \
     s.sync_status, s.alarm_status, s.critical_alarms, s.major_alarms, s.minor_alarms, \
     s.warnings, s.software_version, g.name, pg.name, c.name, s.city, s.country, r.name";

const SUMMARY_FROM: &str = " FROM subclouds s \
     JOIN subcloud_groups g ON g.id = s.group_id \
     LEFT JOIN peer_groups pg ON pg.id = s.peer_group_id \
     JOIN system_controllers c ON c.id = s.controller_id \
     JOIN regions r ON r.id = s.region_id";

fn summary_from_row(row: &AnyRow) -> Result<SubcloudSummary> {
    Ok(SubcloudSummary {
        name: row.try_get(0)?,
        management: parse_col("management_state", row.try_get::<&str, _>(1)?)?,
        availability: parse_col("availability", row.try_get::<&str, _>(2)?)?,
        deploy_status: parse_col("deploy_status", row.try_get::<&str, _>(3)?)?,
        sync_status: parse_col("sync_status", row.try_get::<&str, _>(4)?)?,
        alarm_status: parse_col("alarm_status", row.try_get::<&str, _>(5)?)?,
        alarms: AlarmCounts {
            critical: small(row.try_get(6)?),
            major: small(row.try_get(7)?),
            minor: small(row.try_get(8)?),
            warnings: small(row.try_get(9)?),
        },
        software_version: row.try_get(10)?,
        group: row.try_get(11)?,
        peer_group: row.try_get(12)?,
        controller: row.try_get(13)?,
        city: row.try_get(14)?,
        country: row.try_get(15)?,
        region: row.try_get(16)?,
    })
}

/// Appends the WHERE clause of `q` (all filters ANDed).
pub(crate) fn push_filters(b: &mut Sql<'_>, q: &SubcloudQuery, backend: Backend) {
    b.push(" WHERE 1 = 1");
    if let Some(v) = q.availability {
        b.push(" AND s.availability = ").bind(v.as_str());
    }
    if let Some(v) = q.management {
        b.push(" AND s.management_state = ").bind(v.as_str());
    }
    if let Some(v) = q.deploy {
        b.push(" AND s.deploy_status = ").bind(v.as_str());
    }
    if let Some(class) = q.deploy_class {
        // Fixed enumeration spellings, never user text.
        b.push(" AND ").push(&in_list(
            "s.deploy_status",
            DeployStatus::ALL.iter().filter(|s| class.contains(**s)),
        ));
    }
    if let Some(v) = q.sync {
        b.push(" AND s.sync_status = ").bind(v.as_str());
    }
    if let Some(v) = q.alarm {
        b.push(" AND s.alarm_status = ").bind(v.as_str());
    }
    if let Some(v) = &q.group {
        b.push(" AND g.name = ").bind(v.clone());
    }
    if let Some(v) = &q.peer_group {
        b.push(" AND pg.name = ").bind(v.clone());
    }
    if let Some(v) = &q.search {
        let pattern = format!("%{}%", escape_like(&fold_case(backend, v)));
        b.push(" AND (LOWER(s.name) LIKE ")
            .bind(pattern.clone())
            .push(" ESCAPE '\\' OR LOWER(s.city) LIKE ")
            .bind(pattern)
            .push(" ESCAPE '\\')");
    }
}

/// The ORDER BY expression of a sort key. Only these fixed strings ever reach the SQL.
fn sort_expr(key: SortKey) -> &'static str {
    match key {
        SortKey::Name => "s.name",
        SortKey::Availability => "s.availability",
        SortKey::Management => "s.management_state",
        SortKey::Deploy => "s.deploy_status",
        SortKey::Sync => "s.sync_status",
        SortKey::Alarm => "s.alarm_rank",
        SortKey::Version => "s.software_version",
        SortKey::Group => "g.name",
        SortKey::PeerGroup => "pg.name",
        SortKey::Controller => "c.name",
        SortKey::City => "s.city",
    }
}

impl Engine {
    /// One page of subclouds matching `q`, and how many match in all.
    pub async fn list_subclouds(&self, q: &SubcloudQuery) -> Result<SubcloudPage> {
        q.validate()?;
        let pool = self.store.pool();

        // The count joins only what the filters need: it runs over every matching row.
        let mut count_q = Sql::new("SELECT COUNT(*) FROM subclouds s");
        if q.group.is_some() {
            count_q.push(" JOIN subcloud_groups g ON g.id = s.group_id");
        }
        if q.peer_group.is_some() {
            count_q.push(" JOIN peer_groups pg ON pg.id = s.peer_group_id");
        }
        push_filters(&mut count_q, q, self.store.backend());
        let (sql, args) = count_q.finish()?;
        let matching: i64 = sqlx::query_scalar_with(&sql, args).fetch_one(pool).await?;

        let dir = match q.dir {
            SortDir::Asc => "ASC",
            SortDir::Desc => "DESC",
        };
        let mut list_q = Sql::new("SELECT ");
        list_q.push(SUMMARY_COLUMNS).push(SUMMARY_FROM);
        push_filters(&mut list_q, q, self.store.backend());
        // NULLs (no peer group) sort last either way; the name breaks ties so pages are stable.
        list_q.push(&format!(" ORDER BY {} {dir}", sort_expr(q.sort)));
        if q.sort != SortKey::Name {
            list_q.push(", s.name ASC");
        }
        let offset = (i64::from(q.page) - 1) * i64::from(q.per_page);
        list_q
            .push(" LIMIT ")
            .bind(i64::from(q.per_page))
            .push(" OFFSET ")
            .bind(offset);
        let (sql, args) = list_q.finish()?;
        let rows = sqlx::query_with(&sql, args).fetch_all(pool).await?;
        let rows = rows.iter().map(summary_from_row).collect::<Result<_>>()?;
        Ok(SubcloudPage {
            rows,
            matching: count(matching),
            page: q.page,
            per_page: q.per_page,
        })
    }

    /// Everything about one subcloud, by name.
    pub async fn subcloud_detail(&self, name: &str) -> Result<SubcloudDetail> {
        let name = SubcloudName::parse(name)?;
        let pool = self.store.pool();
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS}, s.id, s.description, s.location, s.lat, s.lon, \
             s.created_at, s.updated_at {SUMMARY_FROM} WHERE s.name = $1"
        );
        let row = sqlx::query(&sql)
            .bind(name.as_str())
            .fetch_optional(pool)
            .await?
            .ok_or_else(|| Error::not_found("subcloud", name.as_str()))?;
        let summary = summary_from_row(&row)?;
        let id: i64 = row.try_get(17)?;

        let endpoints = sqlx::query(
            "SELECT endpoint_type, sync_status, updated_at FROM subcloud_endpoints \
             WHERE subcloud_id = $1",
        )
        .bind(id)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok(EndpointSync {
                endpoint: parse_col("endpoint_type", r.try_get::<&str, _>(0)?)?,
                status: parse_col("sync_status", r.try_get::<&str, _>(1)?)?,
                updated_at: Millis(r.try_get(2)?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
        let mut endpoints = endpoints;
        endpoints.sort_by_key(|e| e.endpoint);

        let alarms = self.subcloud_alarms(id, 50).await?;
        let timeline = self.availability_timeline(id, Millis::now()).await?;
        let agent = self.agent_status(id).await?;
        Ok(SubcloudDetail {
            timeline,
            agent,
            id,
            summary,
            description: row.try_get(18)?,
            location: row.try_get(19)?,
            lat: row.try_get(20)?,
            lon: row.try_get(21)?,
            endpoints,
            alarms,
            created_at: Millis(row.try_get(22)?),
            updated_at: Millis(row.try_get(23)?),
        })
    }

    /// Active alarms (most severe first) then the `cleared_limit` most recently cleared.
    async fn subcloud_alarms(&self, subcloud_id: i64, cleared_limit: i64) -> Result<Vec<Alarm>> {
        let pool = self.store.pool();
        const COLS: &str =
            "SELECT id, alarm_id, severity, reason, entity, raised_at, cleared_at, acknowledged \
             FROM alarms WHERE subcloud_id = $1";
        let active = sqlx::query(&format!("{COLS} AND cleared_at IS NULL"))
            .bind(subcloud_id)
            .fetch_all(pool)
            .await?;
        let cleared = sqlx::query(&format!(
            "{COLS} AND cleared_at IS NOT NULL ORDER BY cleared_at DESC LIMIT $2"
        ))
        .bind(subcloud_id)
        .bind(cleared_limit)
        .fetch_all(pool)
        .await?;
        let to_alarm = |r: &AnyRow| -> Result<Alarm> {
            Ok(Alarm {
                id: r.try_get(0)?,
                alarm_id: r.try_get(1)?,
                severity: parse_col::<AlarmSeverity>("severity", r.try_get::<&str, _>(2)?)?,
                reason: r.try_get(3)?,
                entity: r.try_get(4)?,
                raised_at: Millis(r.try_get(5)?),
                cleared_at: r.try_get::<Option<i64>, _>(6)?.map(Millis),
                acknowledged: r.try_get::<i64, _>(7)? != 0,
            })
        };
        let mut out: Vec<Alarm> = active.iter().map(to_alarm).collect::<Result<_>>()?;
        out.sort_by(|a, b| {
            a.severity
                .cmp(&b.severity)
                .then(b.raised_at.cmp(&a.raised_at))
        });
        for r in &cleared {
            out.push(to_alarm(r)?);
        }
        Ok(out)
    }

    /// Fleet-wide key figures, read in one snapshot.
    /// Served from a cache shared by all callers while no event has been published and it is
    /// younger than [`crate::engine::OVERVIEW_MAX_AGE`]; concurrent callers wait for one
    /// computation instead of each running it.
    pub async fn overview(&self) -> Result<Overview> {
        let mut cache = self.overview_cache.entry.lock().await;
        let generation = self.events.generation();
        if let Some((g, at, o)) = cache.as_ref() {
            if *g == generation && at.elapsed() < crate::engine::OVERVIEW_MAX_AGE {
                return Ok(o.clone());
            }
        }
        let fresh = self.compute_overview().await?;
        *cache = Some((generation, std::time::Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// Fleet-wide key figures straight from the store, read in one snapshot.
    pub async fn compute_overview(&self) -> Result<Overview> {
        let mut tx = self.store.begin_write().await?;
        if self.store.backend() == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                .execute(&mut *tx)
                .await?;
        }
        let sum = |cond: &str| {
            format!("CAST(COALESCE(SUM(CASE WHEN {cond} THEN 1 ELSE 0 END), 0) AS BIGINT)")
        };
        let sql = format!(
            "SELECT COUNT(*), {}, {}, {}, {}, {}, {}, {}, {}, {} FROM subclouds",
            sum("availability = 'online'"),
            sum("management_state = 'managed'"),
            sum("alarm_status = 'critical'"),
            sum("alarm_status = 'degraded'"),
            sum("alarm_status = 'unknown'"),
            sum("sync_status = 'out-of-sync'"),
            sum("sync_status = 'unknown'"),
            sum(&in_list(
                "deploy_status",
                DeployStatus::ALL.iter().filter(|s| s.is_failure())
            )),
            sum(&in_list(
                "deploy_status",
                DeployStatus::ALL.iter().filter(|s| s.is_in_progress())
            )),
        );
        let row = sqlx::query(&sql).fetch_one(&mut *tx).await?;
        let g = |i: usize| -> Result<u64> { Ok(count(row.try_get::<i64, _>(i)?)) };
        let (total, online, managed) = (g(0)?, g(1)?, g(2)?);

        let mut active_alarms = AlarmCounts::default();
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT severity, COUNT(*) FROM alarms WHERE cleared_at IS NULL GROUP BY severity",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (sev, n) in rows {
            let n = small(n);
            match parse_col::<AlarmSeverity>("severity", &sev)? {
                AlarmSeverity::Critical => active_alarms.critical = n,
                AlarmSeverity::Major => active_alarms.major = n,
                AlarmSeverity::Minor => active_alarms.minor = n,
                AlarmSeverity::Warning => active_alarms.warnings = n,
            }
        }

        let controllers = sqlx::query(&format!(
            "SELECT c.name, r.name, c.availability, c.capacity, COUNT(s.id), {} \
             FROM system_controllers c JOIN regions r ON r.id = c.region_id \
             LEFT JOIN subclouds s ON s.controller_id = c.id \
             GROUP BY c.id, c.name, r.name, c.availability, c.capacity ORDER BY c.name",
            sum("s.availability = 'online'")
        ))
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|r| {
            let subclouds = count(r.try_get(4)?);
            let online = count(r.try_get(5)?);
            Ok(ControllerLoad {
                name: r.try_get(0)?,
                region: r.try_get(1)?,
                availability: parse_col("availability", r.try_get::<&str, _>(2)?)?,
                capacity: count(r.try_get(3)?),
                subclouds,
                online,
                offline: subclouds - online.min(subclouds),
            })
        })
        .collect::<Result<Vec<_>>>()?;

        let software_versions: Vec<(String, i64)> = sqlx::query_as(
            "SELECT software_version, COUNT(*) AS n FROM subclouds \
             GROUP BY software_version ORDER BY n DESC, software_version",
        )
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;

        Ok(Overview {
            total,
            online,
            offline: total - online.min(total),
            managed,
            unmanaged: total - managed.min(total),
            alarm_critical: g(3)?,
            alarm_degraded: g(4)?,
            alarm_unknown: g(5)?,
            out_of_sync: g(6)?,
            sync_unknown: g(7)?,
            deploy_failed: g(8)?,
            deploy_in_progress: g(9)?,
            active_alarms,
            controllers,
            software_versions: software_versions
                .into_iter()
                .map(|(v, n)| (v, count(n)))
                .collect(),
            as_of: Millis::now(),
        })
    }

    /// Group and peer-group names for the list filters.
    pub async fn filter_choices(&self) -> Result<FilterChoices> {
        let pool = self.store.pool();
        let groups: Vec<String> =
            sqlx::query_scalar("SELECT name FROM subcloud_groups ORDER BY name")
                .fetch_all(pool)
                .await?;
        let peer_groups: Vec<String> =
            sqlx::query_scalar("SELECT name FROM peer_groups ORDER BY name")
                .fetch_all(pool)
                .await?;
        Ok(FilterChoices {
            groups,
            peer_groups,
        })
    }

    /// All system controllers, by name.
    pub async fn controllers(&self) -> Result<Vec<SystemController>> {
        sqlx::query(
            "SELECT c.id, c.name, r.name, c.city, c.lat, c.lon, c.endpoint, c.availability, \
             c.capacity, c.reserved_capacity FROM system_controllers c \
             JOIN regions r ON r.id = c.region_id ORDER BY c.name",
        )
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(SystemController {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                region: r.try_get(2)?,
                city: r.try_get(3)?,
                lat: r.try_get(4)?,
                lon: r.try_get(5)?,
                endpoint: r.try_get(6)?,
                availability: parse_col("availability", r.try_get::<&str, _>(7)?)?,
                capacity: count(r.try_get(8)?),
                reserved_capacity: count(r.try_get(9)?),
            })
        })
        .collect()
    }

    /// All subcloud groups, by id (Default first).
    pub async fn subcloud_groups(&self) -> Result<Vec<SubcloudGroup>> {
        sqlx::query(
            "SELECT id, name, description, update_apply_type, max_parallel_subclouds \
             FROM subcloud_groups ORDER BY id",
        )
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(SubcloudGroup {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                description: r.try_get(2)?,
                update_apply_type: parse_col("update_apply_type", r.try_get::<&str, _>(3)?)?,
                max_parallel_subclouds: small(r.try_get(4)?),
            })
        })
        .collect()
    }

    /// All peer groups, by name.
    pub async fn peer_groups(&self) -> Result<Vec<PeerGroup>> {
        sqlx::query(
            "SELECT p.id, p.name, p.priority, p.state, p.max_subcloud_rehoming, c.name, \
             p.migration_status, p.owner_epoch FROM peer_groups p \
             JOIN system_controllers c ON c.id = p.leader_id ORDER BY p.name",
        )
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(PeerGroup {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                priority: small(r.try_get(2)?),
                state: parse_col("state", r.try_get::<&str, _>(3)?)?,
                max_subcloud_rehoming: small(r.try_get(4)?),
                leader: r.try_get(5)?,
                migration_status: parse_col("migration_status", r.try_get::<&str, _>(6)?)?,
                owner_epoch: r.try_get(7)?,
            })
        })
        .collect()
    }
}

/// `col IN ('a', 'b')` from known enumeration spellings (never user text).
fn in_list<'a>(col: &str, values: impl Iterator<Item = &'a DeployStatus>) -> String {
    let list: Vec<String> = values.map(|v| format!("'{}'", v.as_str())).collect();
    format!("{col} IN ({})", list.join(", "))
}

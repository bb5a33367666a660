//! Health reads.

use sqlx::Row;

use super::{
    AlarmCounts, AlarmPage, AlarmQuery, AlarmRow, AlarmSeverity, AlarmState, AlarmSummaryRow,
    AvailabilityTimeline,
};
use crate::audit;
use crate::auth::{Actor, Permission};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::fleet::AvailabilityStatus;
use crate::store::{parse_col, small, Sql};
use crate::time::Millis;
use crate::Engine;

impl Engine {
    /// The alarm summary of every subcloud, by name (StarlingX `GET /v1.0/alarms`).
    pub async fn alarm_summary(&self) -> Result<Vec<AlarmSummaryRow>> {
        sqlx::query(
            "SELECT name, critical_alarms, major_alarms, minor_alarms, warnings, alarm_status \
             FROM subclouds ORDER BY name",
        )
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| {
            Ok(AlarmSummaryRow {
                region_name: r.try_get(0)?,
                critical_alarms: small(r.try_get(1)?),
                major_alarms: small(r.try_get(2)?),
                minor_alarms: small(r.try_get(3)?),
                warnings: small(r.try_get(4)?),
                cloud_status: parse_col("alarm_status", r.try_get::<&str, _>(5)?)?,
            })
        })
        .collect()
    }
}

/// The detail page's timeline window.
pub const TIMELINE_WINDOW_MS: i64 = 24 * 3600 * 1000;

impl Engine {
    /// A filtered page of alarms across the fleet, most severe and newest first.
    pub async fn alarm_page(&self, q: &AlarmQuery) -> Result<AlarmPage> {
        q.validate()?;
        let filter = |b: &mut Sql<'_>| {
            b.push(" FROM alarms a JOIN subclouds s ON s.id = a.subcloud_id WHERE 1 = 1");
            match q.state {
                AlarmState::Active => {
                    b.push(" AND a.cleared_at IS NULL");
                }
                AlarmState::Cleared => {
                    b.push(" AND a.cleared_at IS NOT NULL");
                }
                AlarmState::All => {}
            }
            if !q.severities.is_empty() {
                b.push(" AND a.severity IN (");
                for s in &q.severities {
                    b.item(s.as_str());
                }
                b.push(")");
            }
            if let Some(name) = &q.subcloud {
                b.push(" AND s.name = ").bind(name.clone());
            }
            if let Some(ack) = q.acknowledged {
                b.push(" AND a.acknowledged = ").bind(i64::from(ack));
            }
        };
        let mut count_q = Sql::new("SELECT COUNT(*)");
        filter(&mut count_q);
        let (sql, args) = count_q.finish()?;
        let matching: i64 = sqlx::query_scalar_with(&sql, args)
            .fetch_one(self.store.pool())
            .await?;
        let mut list_q = Sql::new(
            "SELECT a.id, s.name, a.alarm_id, a.severity, a.reason, a.entity, a.source, \
             a.raised_at, a.cleared_at, a.acknowledged, a.acknowledged_by, a.acknowledged_at",
        );
        filter(&mut list_q);
        list_q
            .push(
                " ORDER BY CASE a.severity WHEN 'critical' THEN 0 WHEN 'major' THEN 1 \
                 WHEN 'minor' THEN 2 ELSE 3 END, a.raised_at DESC, a.id DESC LIMIT ",
            )
            .bind(i64::from(q.per_page))
            .push(" OFFSET ")
            .bind((i64::from(q.page) - 1) * i64::from(q.per_page));
        let (sql, args) = list_q.finish()?;
        let rows = sqlx::query_with(&sql, args)
            .fetch_all(self.store.pool())
            .await?
            .iter()
            .map(|r| {
                Ok(AlarmRow {
                    id: r.try_get(0)?,
                    subcloud: r.try_get(1)?,
                    alarm_id: r.try_get(2)?,
                    severity: parse_col("severity", r.try_get::<&str, _>(3)?)?,
                    reason: r.try_get(4)?,
                    entity: r.try_get(5)?,
                    source: r.try_get(6)?,
                    raised_at: Millis(r.try_get(7)?),
                    cleared_at: r.try_get::<Option<i64>, _>(8)?.map(Millis),
                    acknowledged: r.try_get::<i64, _>(9)? != 0,
                    acknowledged_by: r.try_get(10)?,
                    acknowledged_at: r.try_get::<Option<i64>, _>(11)?.map(Millis),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut active = AlarmCounts::default();
        for r in sqlx::query(
            "SELECT severity, COUNT(*) FROM alarms WHERE cleared_at IS NULL GROUP BY severity",
        )
        .fetch_all(self.store.pool())
        .await?
        {
            let n = small(r.try_get(1)?);
            match parse_col::<AlarmSeverity>("severity", r.try_get::<&str, _>(0)?)? {
                AlarmSeverity::Critical => active.critical = n,
                AlarmSeverity::Major => active.major = n,
                AlarmSeverity::Minor => active.minor = n,
                AlarmSeverity::Warning => active.warnings = n,
            }
        }
        Ok(AlarmPage {
            rows,
            matching: crate::store::count(matching),
            page: q.page,
            per_page: q.per_page,
            active,
            as_of: Millis::now(),
        })
    }

    /// Acknowledges active alarms (operators): they stay active until their cause clears, but
    /// the NOC knows someone owns them. Already acknowledged or cleared alarms are skipped;
    /// returns how many changed.
    pub async fn acknowledge_alarms(&self, actor: &Actor, ids: &[i64]) -> Result<u64> {
        actor.require(Permission::OperateFleet)?;
        if ids.is_empty() {
            return Err(crate::ValidationError::new("alarms", "choose at least one alarm").into());
        }
        if ids.len() > 500 {
            return Err(crate::ValidationError::new("alarms", "at most 500 alarms at once").into());
        }
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        let mut b = Sql::new("UPDATE alarms SET acknowledged = 1, acknowledged_by = ");
        b.bind(actor.name.clone())
            .push(", acknowledged_at = ")
            .bind(now.0)
            .push(" WHERE acknowledged = 0 AND cleared_at IS NULL AND id IN (");
        for id in ids {
            b.item(*id);
        }
        b.push(")");
        let (sql, args) = b.finish()?;
        let changed = sqlx::query_with(&sql, args)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if changed == 0 {
            return Err(Error::Conflict(
                "no active, unacknowledged alarm among those chosen".into(),
            ));
        }
        let shown: Vec<String> = ids.iter().take(10).map(|i| i.to_string()).collect();
        audit::record(
            &mut tx,
            &actor.audit(
                "alarm.acknowledged",
                &format!("alarms:{}", shown.join(",")),
                format!("acknowledged {changed} alarm(s)"),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::AlarmsAcknowledged {
            ids: ids.to_vec(),
            at: now,
        });
        Ok(changed)
    }

    /// Availability of one subcloud over the `TIMELINE_WINDOW_MS` before `now`.
    pub async fn availability_timeline(
        &self,
        subcloud_id: i64,
        now: Millis,
    ) -> Result<AvailabilityTimeline> {
        let from = Millis(now.0 - TIMELINE_WINDOW_MS);
        let pool = self.store.pool();
        let before: Option<String> = sqlx::query_scalar(
            "SELECT availability FROM availability_history WHERE subcloud_id = $1 AND at < $2 \
             ORDER BY at DESC, id DESC LIMIT 1",
        )
        .bind(subcloud_id)
        .bind(from.0)
        .fetch_optional(pool)
        .await?;
        let state_at_from = before
            .as_deref()
            .map(|s| parse_col::<AvailabilityStatus>("availability", s))
            .transpose()?;
        let transitions = sqlx::query(
            "SELECT at, availability FROM availability_history WHERE subcloud_id = $1 \
             AND at >= $2 AND at <= $3 ORDER BY at, id",
        )
        .bind(subcloud_id)
        .bind(from.0)
        .bind(now.0)
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| {
            Ok((
                Millis(r.try_get(0)?),
                parse_col("availability", r.try_get::<&str, _>(1)?)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(AvailabilityTimeline::build(
            from,
            now,
            state_at_from,
            &transitions,
        ))
    }
}

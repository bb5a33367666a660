//! Health reads.

use sqlx::Row;

use super::AlarmSummaryRow;
use crate::error::Result;
use crate::store::{parse_col, small};
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

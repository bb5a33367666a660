//! Health over REST.

use axum::extract::State;
use axum::Json;
use engine::health::AlarmSummaryRow;
use serde::Serialize;

use crate::error::HttpError;
use crate::startup::AppState;

#[derive(Serialize)]
pub struct AlarmSummary {
    alarm_summary: Vec<AlarmSummaryRow>,
}

/// `GET /api/v1/alarms`: StarlingX's alarm summary shape, one row per subcloud.
pub async fn alarm_summary(State(s): State<AppState>) -> Result<Json<AlarmSummary>, HttpError> {
    Ok(Json(AlarmSummary {
        alarm_summary: s.engine.alarm_summary().await?,
    }))
}

//! Health over REST.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use engine::auth::Actor;
use engine::health::{AlarmPage, AlarmQuery, AlarmSummaryRow, AvailabilityTimeline};
use serde::{Deserialize, Serialize};

use super::JsonBody;

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

/// `GET /api/v1/alarms/list?severity=critical&state=active&ack=no&page=2`: alarms across the
/// fleet, most severe and newest first (the dashboard's alarms page).
pub async fn alarm_list(
    State(s): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<AlarmPage>, HttpError> {
    let Query(params) = params.map_err(|e| HttpError::BadRequest {
        field: "query".into(),
        message: e.body_text(),
    })?;
    let q = AlarmQuery::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(Json(s.engine.alarm_page(&q).await?))
}

#[derive(Deserialize)]
pub struct Acknowledge {
    ids: Vec<i64>,
}

#[derive(Serialize)]
pub struct Acknowledged {
    acknowledged: u64,
}

/// `POST /api/v1/alarms/acknowledge` `{"ids": [..]}` (operators and admins).
pub async fn acknowledge(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<Acknowledge>,
) -> Result<Json<Acknowledged>, HttpError> {
    Ok(Json(Acknowledged {
        acknowledged: s.engine.acknowledge_alarms(&actor, &body.ids).await?,
    }))
}

/// `GET /api/v1/subclouds/{name}/timeline`: availability over the last 24 h.
pub async fn timeline(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<AvailabilityTimeline>, HttpError> {
    let detail = s.engine.subcloud_detail(&name).await?;
    Ok(Json(detail.timeline))
}

//! Geo-redundancy over REST: system peers, peer groups, the failure drill, migrate (with a
//! preview), failback, maintenance. Reads need any role; moves need operators or admins (the
//! engine checks).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use engine::auth::Actor;
use engine::georedundancy::{
    GeoOverview, MigratePreview, MigrateRequest, PeerGroupView, SystemPeer, TakeoverAnswer,
    TakeoverPlan,
};
use engine::time::Millis;
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::error::HttpError;
use crate::startup::AppState;

/// `GET /api/v1/geo`: peers, groups and what is unprotected, as this controller sees them.
pub async fn overview(State(s): State<AppState>) -> Result<Json<GeoOverview>, HttpError> {
    Ok(Json(s.engine.geo_overview().await?))
}

/// `GET /api/v1/system-peers`.
pub async fn system_peers(State(s): State<AppState>) -> Result<Json<Vec<SystemPeer>>, HttpError> {
    Ok(Json(s.engine.geo_overview().await?.peers))
}

/// `GET /api/v1/peer-groups/{name}`.
pub async fn peer_group(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<PeerGroupView>, HttpError> {
    Ok(Json(s.engine.peer_group_view(&name).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrateBody {
    to: String,
}

/// `POST /api/v1/peer-groups/{name}/migrate-preview` `{"to": NAME}`: nothing changes.
pub async fn migrate_preview(
    State(s): State<AppState>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<MigrateBody>,
) -> Result<Json<MigratePreview>, HttpError> {
    let req = MigrateRequest {
        peer_group: name,
        to: body.to,
    };
    Ok(Json(s.engine.migrate_preview(&req).await?))
}

/// `POST /api/v1/peer-groups/{name}/migrate` `{"to": NAME}`.
pub async fn migrate(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<MigrateBody>,
) -> Result<Json<TakeoverAnswer>, HttpError> {
    let req = MigrateRequest {
        peer_group: name,
        to: body.to,
    };
    Ok(Json(s.engine.migrate_peer_group(&actor, &req).await?))
}

/// `POST /api/v1/peer-groups/{name}/failback`: back to its home controller.
pub async fn failback(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<Json<TakeoverAnswer>, HttpError> {
    Ok(Json(s.engine.fail_back(&actor, &name).await?))
}

/// `GET /api/v1/geo/drill?controller=NAME`: what happens if it fails now (nothing changes).
pub async fn drill(
    State(s): State<AppState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<TakeoverPlan>, HttpError> {
    let params = q.map(|Query(p)| p).map_err(|e| HttpError::BadRequest {
        field: "query".into(),
        message: e.body_text(),
    })?;
    let controller = params
        .into_iter()
        .find(|(k, _)| k == "controller")
        .map(|(_, v)| v)
        .ok_or_else(|| HttpError::BadRequest {
            field: "controller".into(),
            message: "name the controller that would fail".into(),
        })?;
    Ok(Json(s.engine.takeover_drill(&controller).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceBody {
    paused: bool,
}

#[derive(Debug, Serialize)]
pub struct Maintenance {
    maintenance_until: Option<Millis>,
}

/// `POST /api/v1/geo/maintenance` `{"paused": true}`: pause or resume automatic takeover.
pub async fn maintenance(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(body): JsonBody<MaintenanceBody>,
) -> Result<Json<Maintenance>, HttpError> {
    Ok(Json(Maintenance {
        maintenance_until: s.engine.set_takeover_paused(&actor, body.paused).await?,
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerBody {
    running: bool,
}

/// `POST /api/v1/controllers/{name}/demo-power` `{"running": false}` (demo, admins).
pub async fn demo_power(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(body): JsonBody<PowerBody>,
) -> Result<Json<serde_json::Value>, HttpError> {
    s.engine
        .demo_set_controller_running(&actor, &name, body.running)
        .await?;
    Ok(Json(
        serde_json::json!({ "controller": name, "running": body.running }),
    ))
}

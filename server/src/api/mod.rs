//! The REST API for scripts and other systems, under `/api/v1`, by feature.

mod fleet;
mod health;

use axum::routing::get;
use axum::Router;

use crate::startup::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/overview", get(fleet::overview))
        .route("/subclouds", get(fleet::list))
        .route("/subclouds/{name}", get(fleet::detail))
        .route("/controllers", get(fleet::controllers))
        .route("/subcloud-groups", get(fleet::groups))
        .route("/peer-groups", get(fleet::peer_groups))
        .route("/alarms", get(health::alarm_summary))
}

//! The REST API for scripts and other systems, under `/api/v1`, by feature.

mod agents;
mod events;
mod fleet;
mod georedundancy;
mod health;
mod orchestration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::routing::{delete, get, post};
use axum::Router;

use crate::error::HttpError;
use crate::startup::AppState;

/// A JSON request body whose refusal is the API's JSON 400, naming what was wrong.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    axum::Json<T>: FromRequest<S, Rejection = JsonRejection>,
    S: Send + Sync,
{
    type Rejection = HttpError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(JsonBody(v)),
            Err(e) => Err(HttpError::BadRequest {
                field: "body".into(),
                message: e.body_text(),
            }),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/overview", get(fleet::overview))
        .route("/subclouds", get(fleet::list).post(agents::add_subcloud))
        .route("/subclouds/{name}", get(fleet::detail))
        .route("/controllers", get(fleet::controllers))
        .route("/subcloud-groups", get(fleet::groups))
        .route("/peer-groups", get(fleet::peer_groups))
        .route("/alarms", get(health::alarm_summary))
        .route("/alarms/list", get(health::alarm_list))
        .route("/alarms/acknowledge", post(health::acknowledge))
        .route("/subclouds/{name}/timeline", get(health::timeline))
        .route("/enrollments", post(agents::issue))
        .route("/subclouds/{name}/agent", delete(agents::revoke))
        .route("/subclouds/{name}/commands", post(agents::queue_command))
        .route(
            "/strategies",
            get(orchestration::list).post(orchestration::create),
        )
        .route("/strategies/preview", post(orchestration::preview))
        .route("/strategies/{id}", get(orchestration::detail))
        .route("/strategies/{id}/steps", get(orchestration::steps))
        .route("/strategies/{id}/actions", post(orchestration::act))
        .route("/releases", get(orchestration::releases))
        .route("/events", get(events::stream))
        .route("/geo", get(georedundancy::overview))
        .route("/geo/drill", get(georedundancy::drill))
        .route("/geo/maintenance", post(georedundancy::maintenance))
        .route("/system-peers", get(georedundancy::system_peers))
        .route("/peer-groups/{name}", get(georedundancy::peer_group))
        .route(
            "/peer-groups/{name}/migrate-preview",
            post(georedundancy::migrate_preview),
        )
        .route("/peer-groups/{name}/migrate", post(georedundancy::migrate))
        .route(
            "/peer-groups/{name}/failback",
            post(georedundancy::failback),
        )
        .route(
            "/controllers/{name}/demo-power",
            post(georedundancy::demo_power),
        )
}

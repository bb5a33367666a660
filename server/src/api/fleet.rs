//! Fleet inventory over REST: thin adapters from HTTP to the engine.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use engine::fleet::{
    Overview, PeerGroup, SubcloudDetail, SubcloudGroup, SubcloudPage, SubcloudQuery,
    SystemController,
};

use crate::error::HttpError;
use crate::startup::AppState;

type ApiResult<T> = Result<Json<T>, HttpError>;

pub async fn overview(State(s): State<AppState>) -> ApiResult<Overview> {
    Ok(Json(s.engine.overview().await?))
}

/// `GET /api/v1/subclouds?availability=offline&sort=alarm&dir=desc&page=2` — the same
/// parameters as the dashboard's list.
pub async fn list(
    State(s): State<AppState>,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> ApiResult<SubcloudPage> {
    let Query(params) = params.map_err(|e| HttpError::BadRequest {
        field: "query".into(),
        message: e.body_text(),
    })?;
    let query = SubcloudQuery::from_params(params.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(Json(s.engine.list_subclouds(&query).await?))
}

pub async fn detail(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<SubcloudDetail> {
    Ok(Json(s.engine.subcloud_detail(&name).await?))
}

pub async fn controllers(State(s): State<AppState>) -> ApiResult<Vec<SystemController>> {
    Ok(Json(s.engine.controllers().await?))
}

pub async fn groups(State(s): State<AppState>) -> ApiResult<Vec<SubcloudGroup>> {
    Ok(Json(s.engine.subcloud_groups().await?))
}

pub async fn peer_groups(State(s): State<AppState>) -> ApiResult<Vec<PeerGroup>> {
    Ok(Json(s.engine.peer_groups().await?))
}

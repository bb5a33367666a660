//! Rollout strategies over REST: create (with a dry-run preview), act, and read progress.
//! Reading needs any role; creating and acting need operators or admins (the engine checks).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::auth::Actor;
use engine::orchestration::{
    NewStrategy, SoftwareRelease, StepPage, StepQuery, StrategyAction, StrategyDetail,
    StrategyPage, StrategyPreview,
};
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::error::HttpError;
use crate::startup::AppState;

fn params(
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Vec<(String, String)>, HttpError> {
    q.map(|Query(p)| p).map_err(|e| HttpError::BadRequest {
        field: "query".into(),
        message: e.body_text(),
    })
}

/// A strategy id from the path: a positive whole number, else a JSON 400 naming `id`.
fn strategy_id(raw: &str) -> Result<i64, HttpError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| HttpError::BadRequest {
            field: "id".into(),
            message: "a strategy id is a positive whole number".into(),
        })
}

/// `GET /api/v1/strategies?page=&per_page=`: active first, then newest first.
pub async fn list(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<StrategyPage>, HttpError> {
    let (mut page, mut per_page) = (1, 50);
    for (k, v) in params(q)? {
        match k.as_str() {
            "page" => page = engine::ValidationError::whole_number("page", &v)?,
            "per_page" => per_page = engine::ValidationError::whole_number("per_page", &v)?,
            _ => {}
        }
    }
    Ok(Json(s.engine.strategies(&actor, page, per_page).await?))
}

#[derive(Serialize)]
pub struct Created {
    id: i64,
}

/// `POST /api/v1/strategies` with a [`NewStrategy`]: 201 `{"id"}`; the strategy is `initial`
/// until applied.
pub async fn create(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(new): JsonBody<NewStrategy>,
) -> Result<(StatusCode, Json<Created>), HttpError> {
    let id = s.engine.create_strategy(&actor, &new).await?;
    Ok((StatusCode::CREATED, Json(Created { id })))
}

/// `POST /api/v1/strategies/preview` with a [`NewStrategy`]: the waves and ETA, nothing saved.
pub async fn preview(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(new): JsonBody<NewStrategy>,
) -> Result<Json<StrategyPreview>, HttpError> {
    Ok(Json(s.engine.preview_strategy(&actor, &new).await?))
}

/// `GET /api/v1/strategies/{id}`.
pub async fn detail(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<StrategyDetail>, HttpError> {
    Ok(Json(
        s.engine.strategy_detail(&actor, strategy_id(&id)?).await?,
    ))
}

/// `GET /api/v1/strategies/{id}/steps?state=&wave=&page=&per_page=`.
pub async fn steps(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<StepPage>, HttpError> {
    let p = params(q)?;
    let q = StepQuery::from_params(p.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    Ok(Json(
        s.engine
            .strategy_steps(&actor, strategy_id(&id)?, &q)
            .await?,
    ))
}

#[derive(Deserialize)]
pub struct ActionBody {
    action: String,
}

#[derive(Serialize)]
pub struct ActionDone {
    state: String,
}

/// `POST /api/v1/strategies/{id}/actions` `{"action": "apply"|"pause"|"resume"|"abort"|"approve"}`.
pub async fn act(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ActionBody>,
) -> Result<Json<ActionDone>, HttpError> {
    let action = StrategyAction::parse(&body.action)?;
    let state = s
        .engine
        .strategy_action(&actor, strategy_id(&id)?, action)
        .await?;
    Ok(Json(ActionDone {
        state: state.as_str().to_string(),
    }))
}

/// `GET /api/v1/releases`: releases and Kubernetes versions strategies may roll out.
pub async fn releases(State(s): State<AppState>) -> Result<Json<Vec<SoftwareRelease>>, HttpError> {
    Ok(Json(s.engine.software_releases().await?))
}

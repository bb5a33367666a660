//! Agent administration over REST (admins): enrollment tokens, revocation, commands.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use engine::agents::wire::CommandAction;
use engine::agents::{EnrollmentRequest, SiteEnrollment};
use engine::auth::Actor;
use serde::{Deserialize, Serialize};

use super::JsonBody;
use crate::error::HttpError;
use crate::startup::AppState;

#[derive(Serialize)]
pub struct Enrollments {
    enrollments: Vec<SiteEnrollment>,
}

/// `POST /api/v1/enrollments` `{"all": true}` or `{"subclouds": [...]}`: one-time enrollment
/// tokens (shown once) with what an installer or the simulator needs to bring each site up.
pub async fn issue(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(req): JsonBody<EnrollmentRequest>,
) -> Result<Json<Enrollments>, HttpError> {
    Ok(Json(Enrollments {
        enrollments: s.engine.issue_enrollments(&actor, &req).await?,
    }))
}

/// `POST /api/v1/subclouds`: adds a subcloud; the answer (201) carries its agent's one-time
/// enrollment token.
pub async fn add_subcloud(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    JsonBody(new): JsonBody<engine::fleet::NewSubcloud>,
) -> Result<(StatusCode, Json<SiteEnrollment>), HttpError> {
    Ok((
        StatusCode::CREATED,
        Json(s.engine.add_subcloud(&actor, &new).await?),
    ))
}

/// `DELETE /api/v1/subclouds/{name}/agent`: revokes the subcloud's agent credential.
pub async fn revoke(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
) -> Result<StatusCode, HttpError> {
    s.engine.revoke_agent(&actor, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct NewCommand {
    action: CommandAction,
}

#[derive(Serialize)]
pub struct Queued {
    id: i64,
}

/// `POST /api/v1/subclouds/{name}/commands` `{"action": {"kind": "sync_endpoints"}}`.
pub async fn queue_command(
    State(s): State<AppState>,
    Extension(actor): Extension<Actor>,
    Path(name): Path<String>,
    JsonBody(cmd): JsonBody<NewCommand>,
) -> Result<(StatusCode, Json<Queued>), HttpError> {
    let id = s.engine.queue_command(&actor, &name, cmd.action).await?;
    Ok((StatusCode::ACCEPTED, Json(Queued { id })))
}

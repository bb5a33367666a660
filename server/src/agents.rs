//! The agent surface, `/agent/v1`: enrollment, reports and ping. Agents authenticate with
//! their subcloud secret, not a user session, so these routes sit outside the dashboard's
//! gate and request log (2,000 reports a second would drown it); they keep the body limit,
//! the timeout and the panic catcher.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::agents::wire::{
    EnrollRequest, Ping, Report, ENROLL_PATH, PING_PATH, PROTOCOL_VERSION, REPORT_PATH,
};
use engine::agents::IntakeError;
use engine::time::Millis;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::startup::AppState;

/// A report with the maximum alarms and texts is about 80 KiB of JSON.
const MAX_AGENT_BODY: usize = 256 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(ENROLL_PATH, post(enroll))
        .route(REPORT_PATH, post(report))
        .route(PING_PATH, get(ping))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_AGENT_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(10),
        ))
        .layer(CatchPanicLayer::new())
}

/// The REST API's refusal body, which is also the protocol's `wire::Refusal`.
fn refusal(status: StatusCode, code: &str, message: impl AsRef<str>) -> Response {
    crate::error::json_error(status, code, None, message.as_ref())
}

impl IntoResponse for AgentRefusal {
    fn into_response(self) -> Response {
        match self.0 {
            IntakeError::Unauthorized => {
                let mut r = refusal(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "credential refused",
                );
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"murmur-agent\""),
                );
                r
            }
            IntakeError::Invalid { field, message } => refusal(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("{field}: {message}"),
            ),
            e @ IntakeError::Replayed { .. } => {
                refusal(StatusCode::CONFLICT, "replayed", e.to_string())
            }
            IntakeError::Overloaded { retry_after_secs } => {
                let mut r = refusal(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "the controller is shedding load; retry later",
                );
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            IntakeError::NotRunning => refusal(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_running",
                "this controller does not take agent reports",
            ),
            // What a proxy in front of a dead controller answers: agents fail over.
            IntakeError::Stopped => refusal(
                StatusCode::BAD_GATEWAY,
                "stopped",
                "this controller is stopped (demo)",
            ),
            IntakeError::Internal => refusal(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the controller could not take the request; it has been logged",
            ),
        }
    }
}

struct AgentRefusal(IntakeError);

/// JSON body of an agent request: malformed input is a 400 naming what serde found.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AgentRefusal> {
    serde_json::from_slice(body).map_err(|e| {
        AgentRefusal(IntakeError::Invalid {
            field: "body".into(),
            message: e.to_string(),
        })
    })
}

async fn enroll(State(s): State<AppState>, body: Bytes) -> Result<Response, AgentRefusal> {
    let req: EnrollRequest = parse(&body)?;
    let enrollment = s.engine.enroll_agent(&req).await.map_err(AgentRefusal)?;
    Ok(Json(enrollment).into_response())
}

async fn report(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AgentRefusal> {
    let received_at = Millis::now();
    let gateway = s
        .engine
        .agent_gateway()
        .ok_or(AgentRefusal(IntakeError::NotRunning))?;
    let bearer = crate::auth::bearer(&headers).ok_or(AgentRefusal(IntakeError::Unauthorized))?;
    let report: Report = parse(&body)?;
    let answer = gateway
        .accept_report(bearer, report, received_at)
        .map_err(AgentRefusal)?;
    Ok(Json(answer).into_response())
}

async fn ping(State(s): State<AppState>) -> Json<Ping> {
    Json(Ping {
        protocol: PROTOCOL_VERSION,
        controller: s
            .engine
            .agent_gateway()
            .map(|g| g.policy().this_controller.name.clone())
            .unwrap_or_default(),
        at: Millis::now(),
    })
}

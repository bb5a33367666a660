//! The simulator's control API (JSON over HTTP, no authentication: bind it to loopback).
//!
//! - `GET /sites?site=a,b&region=Europe&limit=1000` — site views (default limit 1,000).
//! - `GET /stats` — [`SimStats`](super::SimStats).
//! - `POST /faults` `{"fault": {...}, "selector": {...}}` → `{"affected": n}`.
//! - `GET /steps` — the [`StepConfig`](super::StepConfig) commands execute with.
//! - `POST /steps` `{"scale": 0.1, "failure_rate": 0.2, "mean_seconds": {"prestage": 600}}`
//!   (every field optional) → the new configuration; it applies to commands received from
//!   then on.
//!
//! Errors are `{"error": {"code", "message"}}` (the shape of the agent protocol's refusals)
//! with 400 for bad input and 404 for unknown paths.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::agents::wire::{Refusal, RefusalBody};
use serde::{Deserialize, Serialize};

use super::{Fault, Selector, Shared, StepPatch};

/// Sites listed by `GET /sites` unless `limit` says otherwise.
const DEFAULT_LIMIT: usize = 1_000;

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/sites", get(sites))
        .route("/stats", get(stats))
        .route("/faults", post(faults))
        .route("/steps", get(steps).post(set_steps))
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                "not_found",
                "no such endpoint; see GET /sites, GET /stats, POST /faults, GET or POST /steps",
            )
        })
        .with_state(shared)
}

pub(super) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    if let Err(e) = axum::serve(listener, router(shared)).await {
        tracing::error!(error = %e, "control API stopped");
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SitesQuery {
    /// Comma-separated site names.
    site: Option<String>,
    region: Option<String>,
    limit: Option<usize>,
}

async fn sites(
    State(shared): State<Arc<Shared>>,
    query: Result<Query<SitesQuery>, QueryRejection>,
) -> Response {
    let Query(q) = match query {
        Ok(q) => q,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_query", &e.body_text()),
    };
    let selector = match (q.site, q.region) {
        (Some(_), Some(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "give site or region, not both",
            )
        }
        (Some(names), None) => Selector::Sites(
            names
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(String::from)
                .collect(),
        ),
        (None, Some(region)) => Selector::Region(region),
        (None, None) => Selector::All,
    };
    Json(shared.views(&selector, q.limit.unwrap_or(DEFAULT_LIMIT))).into_response()
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.stats()).into_response()
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FaultRequest {
    pub fault: Fault,
    pub selector: Selector,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct FaultAnswer {
    pub affected: usize,
}

/// Takes the raw body so every malformed request gets the same JSON 400 (axum's own
/// extractor answers 415/422 in plain text).
async fn faults(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request: FaultRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                &format!(
                    "expected {{\"fault\": {{\"kind\": ...}}, \"selector\": {{\"sites\"|\"region\"|\"all\": ...}}}}: {e}"
                ),
            )
        }
    };
    if let Err(message) = request.fault.validate() {
        return error(StatusCode::BAD_REQUEST, "invalid_fault", &message);
    }
    let affected = shared.apply(&request.fault, &request.selector);
    Json(FaultAnswer { affected }).into_response()
}

async fn steps(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.steps()).into_response()
}

async fn set_steps(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: StepPatch = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                &format!(
                    "expected {{\"scale\": f, \"failure_rate\": f, \"mean_seconds\": {{\"software_deploy\": s, ...}}}} (all optional): {e}"
                ),
            )
        }
    };
    match shared.update_steps(&patch) {
        Ok(steps) => Json(steps).into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, "invalid_steps", &message),
    }
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = Refusal {
        error: RefusalBody {
            code: code.into(),
            message: message.into(),
        },
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{to_bytes, Body};
    use axum::http::Request;
    use tower::ServiceExt;

    use super::super::tests::shared;
    use super::*;

    async fn call(
        router: Router,
        method: &str,
        uri: &str,
        body: &str,
    ) -> (StatusCode, serde_json::Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bad_fault_requests_get_a_json_400() {
        let s = shared(4);
        for body in [
            "",
            "not json",
            "{}",
            r#"{"fault":{"kind":"down"}}"#,
            r#"{"fault":{"kind":"explode"},"selector":{"all":true}}"#,
            r#"{"fault":{"kind":"down"},"selector":{"regoin":"Europe"}}"#,
            r#"{"fault":{"kind":"down"},"selector":{"region":"Europe","all":true}}"#,
            r#"{"fault":{"kind":"loss","percent":101},"selector":{"all":true}}"#,
            r#"{"fault":{"kind":"loss","percent":1000},"selector":{"all":true}}"#,
            r#"{"fault":{"kind":"flap","period_ms":0},"selector":{"all":true}}"#,
        ] {
            let (status, json) = call(router(Arc::clone(&s)), "POST", "/faults", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                json["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "{body}"
            );
        }
        assert_eq!(
            s.stats().sites_faulted,
            0,
            "no bad request changed anything"
        );
    }

    #[tokio::test]
    async fn faults_apply_and_report_the_count() {
        let s = shared(4);
        let body =
            r#"{"fault":{"kind":"partition","controller":"sc-a"},"selector":{"region":"Europe"}}"#;
        let (status, json) = call(router(Arc::clone(&s)), "POST", "/faults", body).await;
        assert_eq!(
            (status, json["affected"].as_u64()),
            (StatusCode::OK, Some(2))
        );
        let body = r#"{"fault":{"kind":"down"},"selector":{"region":"Atlantis"}}"#;
        let (_, json) = call(router(Arc::clone(&s)), "POST", "/faults", body).await;
        assert_eq!(json["affected"].as_u64(), Some(0));
        let (status, json) = call(router(Arc::clone(&s)), "GET", "/sites?region=europe", "").await;
        assert_eq!(status, StatusCode::OK);
        let views = json.as_array().unwrap();
        assert_eq!(views.len(), 2);
        assert_eq!(views[0]["partitions"][0], "sc-a");
        let (_, json) = call(
            router(Arc::clone(&s)),
            "GET",
            "/sites?site=site-1,site-3,nope",
            "",
        )
        .await;
        assert_eq!(json.as_array().map(Vec::len), Some(2));
        let (_, json) = call(router(Arc::clone(&s)), "GET", "/stats", "").await;
        assert_eq!(
            (json["sites"].as_u64(), json["sites_faulted"].as_u64()),
            (Some(4), Some(2))
        );
    }

    #[tokio::test]
    async fn steps_are_read_and_changed() {
        let s = shared(2);
        let (status, json) = call(router(Arc::clone(&s)), "GET", "/steps", "").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["scale"], 1.0);
        assert_eq!(json["mean_seconds"]["software_deploy"], 180.0);
        let body = r#"{"scale":0,"failure_rate":0.5,"mean_seconds":{"prestage":600}}"#;
        let (status, json) = call(router(Arc::clone(&s)), "POST", "/steps", body).await;
        assert_eq!(status, StatusCode::OK, "{json}");
        assert_eq!(
            (
                json["scale"].as_f64(),
                json["failure_rate"].as_f64(),
                json["mean_seconds"]["prestage"].as_f64()
            ),
            (Some(0.0), Some(0.5), Some(600.0))
        );
        assert_eq!(s.steps().failure_rate, 0.5);
        for body in [
            "nope",
            r#"{"failure_rate":2}"#,
            r#"{"scale":-1}"#,
            r#"{"speed":1}"#,
            r#"{"mean_seconds":{"reboot":1}}"#,
        ] {
            let (status, json) = call(router(Arc::clone(&s)), "POST", "/steps", body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(json["error"]["message"].as_str().is_some(), "{body}");
        }
        assert_eq!(
            s.steps().failure_rate,
            0.5,
            "refused changes change nothing"
        );
    }

    #[tokio::test]
    async fn bad_queries_and_paths_get_json_errors() {
        let s = shared(2);
        let (status, json) = call(router(Arc::clone(&s)), "GET", "/sites?limit=many", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(json["error"]["code"], "invalid_query");
        let (status, _) = call(router(Arc::clone(&s)), "GET", "/sites?site=a&region=b", "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, json) = call(router(s), "GET", "/nope", "").await;
        assert_eq!(
            (status, json["error"]["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
    }
}

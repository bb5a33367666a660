//! The peer surface, `/peer/v1`: heartbeats, replication, takeover orders and migrations
//! between system controllers, and the HTTP client that sends them ([`HttpPeerLink`]).
//!
//! Every request names its sender (`X-Murmur-Peer`) and carries the secret this controller
//! shares with that peer as a bearer token; anything else is refused with 401 before the
//! body is read. There is no unauthenticated peer endpoint.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use engine::georedundancy::{
    GroupSnapshot, Heartbeat, MigrateRequest, PeerConfig, PeerFuture, PeerLink, StrategySync,
    TakeoverAnswer, TakeoverOrder,
};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;

use crate::startup::AppState;

pub const PEER_HEADER: &str = "x-murmur-peer";
/// A 20,000-site group's snapshot is about 10 MiB of JSON.
const MAX_PEER_BODY: usize = 64 * 1024 * 1024;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/peer/v1/heartbeat", post(heartbeat))
        .route("/peer/v1/sync", post(sync))
        .route("/peer/v1/strategies", post(strategies))
        .route("/peer/v1/takeover", post(takeover))
        .route("/peer/v1/migrate", post(migrate))
        .route("/peer/v1/demo-power", post(demo_power))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(MAX_PEER_BODY))
        .layer(CatchPanicLayer::new())
}

/// Why a peer request was refused: by this surface (credentials, body, sender) or by the
/// engine. Either way the REST API's JSON error body.
#[derive(Debug)]
enum Refusal {
    Peer {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    Engine(crate::error::HttpError),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Peer {
                status,
                code,
                message,
            } => crate::error::json_error(status, code, None, &message),
            Refusal::Engine(e) => e.into_response(),
        }
    }
}

fn refuse(status: StatusCode, code: &'static str, message: impl Into<String>) -> Refusal {
    Refusal::Peer {
        status,
        code,
        message: message.into(),
    }
}

/// The authenticated sender's name, or the refusal.
fn authenticate(s: &AppState, headers: &HeaderMap) -> Result<String, Refusal> {
    let unauthorized = || {
        refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "peer credential refused",
        )
    };
    let Some(geo) = s.engine.geo_runtime() else {
        return Err(refuse(
            StatusCode::NOT_FOUND,
            "not_found",
            "geo-redundancy is not configured on this controller",
        ));
    };
    let name = headers
        .get(PEER_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(unauthorized)?;
    let presented = crate::auth::bearer(headers).ok_or_else(unauthorized)?;
    let peer = geo.peer(name).ok_or_else(|| {
        tracing::warn!(peer = name, "peer request refused: unknown peer");
        unauthorized()
    })?;
    if !same_secret(&peer.secret, presented) {
        tracing::warn!(peer = name, "peer request refused: wrong secret");
        return Err(unauthorized());
    }
    Ok(peer.name.clone())
}

fn same_secret(a: &str, b: &str) -> bool {
    use sha2::{Digest, Sha256};
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter()
        .zip(y.iter())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q))
        == 0
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|e| refuse(StatusCode::BAD_REQUEST, "invalid", format!("body: {e}")))
}

fn engine_error(e: engine::Error) -> Refusal {
    Refusal::Engine(e.into())
}

/// The message must come from the authenticated peer it names.
fn check_sender(authenticated: &str, claimed: &str) -> Result<(), Refusal> {
    if authenticated == claimed {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("authenticated as {authenticated} but the message is from {claimed}"),
        ))
    }
}

fn stopped(s: &AppState) -> Result<(), Refusal> {
    if s.engine.geo_running() {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "stopped",
            "this controller is stopped (demo)",
        ))
    }
}

async fn heartbeat(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let from = authenticate(&s, &headers)?;
        stopped(&s)?;
        let hb: Heartbeat = parse(&body)?;
        check_sender(&from, &hb.from)?;
        s.engine
            .geo_receive_heartbeat(hb)
            .await
            .map_err(engine_error)
    };
    match run.await {
        Ok(answer) => Json(answer).into_response(),
        Err(r) => r.into_response(),
    }
}

async fn sync(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let from = authenticate(&s, &headers)?;
        stopped(&s)?;
        let snap: GroupSnapshot = parse(&body)?;
        check_sender(&from, &snap.from)?;
        s.engine.geo_receive_sync(snap).await.map_err(engine_error)
    };
    match run.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

async fn strategies(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let from = authenticate(&s, &headers)?;
        stopped(&s)?;
        let sync: StrategySync = parse(&body)?;
        check_sender(&from, &sync.from)?;
        s.engine
            .geo_receive_strategies(sync)
            .await
            .map_err(engine_error)
    };
    match run.await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

async fn takeover(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let from = authenticate(&s, &headers)?;
        stopped(&s)?;
        let order: TakeoverOrder = parse(&body)?;
        check_sender(&from, &order.from)?;
        s.engine
            .geo_receive_takeover(order)
            .await
            .map_err(engine_error)
    };
    match run.await {
        Ok(a) => Json(a).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct MigrateBody {
    request: MigrateRequest,
    /// The operator on whose behalf the peer asks.
    by: String,
}

async fn migrate(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        let from = authenticate(&s, &headers)?;
        stopped(&s)?;
        let m: MigrateBody = parse(&body)?;
        let by = format!("{} on {from}", m.by);
        s.engine
            .geo_receive_migrate(m.request, &by)
            .await
            .map_err(engine_error)
    };
    match run.await {
        Ok(a) => Json(a).into_response(),
        Err(r) => r.into_response(),
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PowerBody {
    running: bool,
}

/// Demo only: a peer's admin stops or starts this controller. Answered even while stopped.
async fn demo_power(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let run = async {
        authenticate(&s, &headers)?;
        if !s.engine.demo_mode() {
            return Err(refuse(
                StatusCode::NOT_FOUND,
                "not_found",
                "not a demo controller",
            ));
        }
        let p: PowerBody = parse(&body)?;
        s.engine.geo_set_running(p.running);
        Ok(())
    };
    match run.await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(r) => r.into_response(),
    }
}

/// Sends the peer protocol over HTTP.
#[derive(Debug, Clone)]
pub struct HttpPeerLink {
    client: reqwest::Client,
    this: String,
    /// Heartbeats give up after this (the heartbeat interval).
    heartbeat_timeout: Duration,
}

impl HttpPeerLink {
    pub fn new(this: &str, heartbeat_timeout: Duration) -> anyhow::Result<Arc<Self>> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            .build()?;
        Ok(Arc::new(Self {
            client,
            this: this.to_string(),
            heartbeat_timeout,
        }))
    }

    async fn call<B: serde::Serialize + ?Sized>(
        &self,
        peer: &PeerConfig,
        path: &str,
        body: &B,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, String> {
        let url = format!("{}{path}", peer.url.trim_end_matches('/'));
        let mut req = self
            .client
            .post(&url)
            .header(PEER_HEADER, &self.this)
            .bearer_auth(&peer.secret)
            .json(body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let resp = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        if resp.status().is_success() {
            Ok(resp)
        } else {
            let status = resp.status();
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .and_then(|m| m.as_str())
                        .map(str::to_string)
                })
                .unwrap_or(text);
            Err(format!("{status}: {message}"))
        }
    }
}

impl PeerLink for HttpPeerLink {
    fn heartbeat<'a>(
        &'a self,
        peer: &'a PeerConfig,
        hb: &'a Heartbeat,
    ) -> PeerFuture<'a, Heartbeat> {
        Box::pin(async move {
            let r = self
                .call(peer, "/peer/v1/heartbeat", hb, Some(self.heartbeat_timeout))
                .await?;
            r.json().await.map_err(|e| e.to_string())
        })
    }

    fn sync<'a>(&'a self, peer: &'a PeerConfig, snapshot: &'a GroupSnapshot) -> PeerFuture<'a, ()> {
        Box::pin(async move {
            self.call(peer, "/peer/v1/sync", snapshot, None).await?;
            Ok(())
        })
    }

    fn sync_strategies<'a>(
        &'a self,
        peer: &'a PeerConfig,
        sync: &'a StrategySync,
    ) -> PeerFuture<'a, ()> {
        Box::pin(async move {
            self.call(peer, "/peer/v1/strategies", sync, None).await?;
            Ok(())
        })
    }

    fn takeover<'a>(
        &'a self,
        peer: &'a PeerConfig,
        order: &'a TakeoverOrder,
    ) -> PeerFuture<'a, TakeoverAnswer> {
        Box::pin(async move {
            let r = self.call(peer, "/peer/v1/takeover", order, None).await?;
            r.json().await.map_err(|e| e.to_string())
        })
    }

    fn migrate<'a>(
        &'a self,
        peer: &'a PeerConfig,
        req: &'a MigrateRequest,
        by: &'a str,
    ) -> PeerFuture<'a, TakeoverAnswer> {
        Box::pin(async move {
            let body = MigrateBody {
                request: req.clone(),
                by: by.to_string(),
            };
            let r = self.call(peer, "/peer/v1/migrate", &body, None).await?;
            r.json().await.map_err(|e| e.to_string())
        })
    }

    fn demo_power<'a>(&'a self, peer: &'a PeerConfig, running: bool) -> PeerFuture<'a, ()> {
        Box::pin(async move {
            self.call(
                peer,
                "/peer/v1/demo-power",
                &PowerBody { running },
                Some(Duration::from_secs(5)),
            )
            .await?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secrets_compare_exactly() {
        assert!(super::same_secret(
            "a-long-shared-secret",
            "a-long-shared-secret"
        ));
        assert!(!super::same_secret(
            "a-long-shared-secret",
            "a-long-shared-secreT"
        ));
        assert!(!super::same_secret("a-long-shared-secret", ""));
    }
}

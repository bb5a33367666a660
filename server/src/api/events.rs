//! `GET /api/v1/events`: the engine's event bus as server-sent events, for hydrated pages.
//!
//! Each client first gets `snapshot` (`{"generation": N}`: re-read everything), then `change`
//! messages (`{"generation": N, "event": <the latest Event>, "coalesced": k}`), at most one per
//! `COALESCE` window, so a busy fleet costs each browser two messages a second at most. A
//! client that falls behind the bus gets a new `snapshot` instead of the events it missed;
//! a reconnecting client (EventSource does it by itself) starts with one. The stream ends
//! once its session or API token is no longer valid (checked every `RECHECK` at most), so a signed-out
//! browser stops receiving fleet news.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use app::auth::SessionToken;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Extension;
use engine::auth::SessionPolicy;
use engine::events::{Event, EventBus};
use engine::Engine;
use futures::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use crate::startup::AppState;

const COALESCE: Duration = Duration::from_millis(500);
/// Longest time between credential checks (shorter with a shorter session idle limit).
const RECHECK: Duration = Duration::from_secs(30);

/// How the client proved who it is; re-checked while the stream lasts.
#[derive(Clone)]
enum Credential {
    Session(String),
    ApiToken(String),
}

impl Credential {
    async fn still_valid(&self, engine: &Engine, policy: SessionPolicy) -> bool {
        match self {
            // Not a touch: an open stream is not user activity.
            Credential::Session(t) => engine.check_session(t, policy).await.is_ok(),
            Credential::ApiToken(t) => engine.authenticate_api_token(t).await.is_ok(),
        }
    }
}

struct Client {
    rx: Receiver<Event>,
    bus: EventBus,
    engine: Engine,
    policy: SessionPolicy,
    credential: Option<Credential>,
    recheck: Duration,
    checked_at: Instant,
    snapshot_next: bool,
}

impl Client {
    fn snapshot(&self) -> SseEvent {
        SseEvent::default()
            .event("snapshot")
            .data(json!({ "generation": self.bus.generation() }).to_string())
    }

    /// False once the credential has lapsed (checked at most every `RECHECK`).
    async fn signed_in(&mut self) -> bool {
        if self.checked_at.elapsed() < self.recheck {
            return true;
        }
        self.checked_at = Instant::now();
        match &self.credential {
            Some(c) => c.still_valid(&self.engine, self.policy).await,
            None => false,
        }
    }

    /// The next message, or `None` to end the stream.
    async fn next(&mut self) -> Option<SseEvent> {
        if self.snapshot_next {
            self.snapshot_next = false;
            return Some(self.snapshot());
        }
        loop {
            let first = match tokio::time::timeout(self.recheck, self.rx.recv()).await {
                Err(_) => {
                    if !self.signed_in().await {
                        return None;
                    }
                    continue;
                }
                Ok(Ok(e)) => e,
                Ok(Err(RecvError::Lagged(_))) => return Some(self.resync()),
                Ok(Err(RecvError::Closed)) => return None,
            };
            if !self.signed_in().await {
                return None;
            }
            // Let a burst settle, then send only its latest event.
            tokio::time::sleep(COALESCE).await;
            let (last, coalesced, lagged_behind) = drain(&mut self.rx, first);
            if lagged_behind {
                return Some(self.resync());
            }
            return Some(
                SseEvent::default().event("change").data(
                    json!({
                        "generation": self.bus.generation(),
                        "event": last,
                        "coalesced": coalesced,
                    })
                    .to_string(),
                ),
            );
        }
    }

    /// Skips what is queued (the snapshot covers it) and says so.
    fn resync(&mut self) -> SseEvent {
        self.rx = self.rx.resubscribe();
        self.snapshot()
    }
}

pub async fn stream(
    State(s): State<AppState>,
    session: Option<Extension<SessionToken>>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // The gate has already authenticated the request one way or the other.
    let credential = match session {
        Some(Extension(SessionToken(t))) => Some(Credential::Session(t)),
        None => crate::auth::bearer(&headers).map(|t| Credential::ApiToken(t.to_string())),
    };
    let bus = s.engine.events().clone();
    let client = Client {
        rx: bus.subscribe(),
        bus,
        engine: s.engine.clone(),
        policy: s.session_policy,
        credential,
        recheck: RECHECK.min(s.session_policy.idle / 2),
        checked_at: Instant::now(),
        snapshot_next: true,
    };
    let messages = stream::unfold(client, |mut c| async move {
        let msg = c.next().await?;
        Some((Ok(msg), c))
    });
    Sse::new(messages).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Takes every event already queued; returns the latest, how many were merged and whether
/// the receiver fell behind the bus.
fn drain(rx: &mut Receiver<Event>, first: Event) -> (Event, u64, bool) {
    let mut last = first;
    let mut n = 1;
    loop {
        match rx.try_recv() {
            Ok(e) => {
                last = e;
                n += 1;
            }
            Err(TryRecvError::Lagged(_)) => return (last, n, true),
            Err(TryRecvError::Empty) | Err(TryRecvError::Closed) => return (last, n, false),
        }
    }
}

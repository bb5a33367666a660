//! `GET /api/v1/events`: the engine's event bus as server-sent events, for hydrated pages.
//!
//! Each client first gets `snapshot` (`{"generation": N}`: re-read everything), then `change`
//! messages (`{"generation": N, "event": <the latest Event>, "coalesced": k}`), at most one per
//! `COALESCE` window, so a busy fleet costs each browser two messages a second at most. A
//! client that falls behind the bus gets a new `snapshot` instead of the events it missed;
//! a reconnecting client (EventSource does it by itself) starts with one.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use engine::events::Event;
use futures::stream::{self, Stream};
use serde_json::json;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;

use crate::startup::AppState;

const COALESCE: Duration = Duration::from_millis(500);

enum Next {
    Snapshot,
    Listen,
}

/// One step of the stream: the message and the state for the next.
type Step = Option<(Result<SseEvent, Infallible>, (Receiver<Event>, Next))>;

pub async fn stream(
    State(s): State<AppState>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let bus = s.engine.events().clone();
    let rx = bus.subscribe();
    let messages = stream::unfold((rx, Next::Snapshot), move |(mut rx, next)| {
        let bus = bus.clone();
        async move {
            match next {
                Next::Snapshot => {
                    let msg = SseEvent::default()
                        .event("snapshot")
                        .data(json!({ "generation": bus.generation() }).to_string());
                    Some((Ok(msg), (rx, Next::Listen)))
                }
                Next::Listen => {
                    let first = match rx.recv().await {
                        Ok(e) => e,
                        Err(RecvError::Lagged(_)) => return lagged(rx, &bus),
                        Err(RecvError::Closed) => return None,
                    };
                    // Let a burst settle, then send only its latest event.
                    tokio::time::sleep(COALESCE).await;
                    let (last, coalesced, lagged_behind) = drain(&mut rx, first);
                    if lagged_behind {
                        return lagged(rx, &bus);
                    }
                    let msg = SseEvent::default().event("change").data(
                        json!({
                            "generation": bus.generation(),
                            "event": last,
                            "coalesced": coalesced,
                        })
                        .to_string(),
                    );
                    Some((Ok(msg), (rx, Next::Listen)))
                }
            }
        }
    });
    Sse::new(messages).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

fn lagged(rx: Receiver<Event>, bus: &engine::events::EventBus) -> Step {
    // Skip what is queued; the snapshot covers it.
    let rx = rx.resubscribe();
    let msg = SseEvent::default()
        .event("snapshot")
        .data(json!({ "generation": bus.generation() }).to_string());
    Some((Ok(msg), (rx, Next::Listen)))
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

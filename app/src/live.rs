//! Live updates: in the browser, one server-sent-event stream (`GET /api/v1/events`) per page
//! load, opened once someone is signed in. Every message (`snapshot` on connect or after
//! falling behind, `change` for each engine event; the server sends at most a few per second)
//! bumps a counter that pages put in their resources' sources, so their data is fetched again
//! in place. On the server, and without JavaScript, the counter stays 0 and pages are simply
//! rendered complete.
//!
//! A refresh that fails must not blank a page that was showing good data: [`LastGood`] keeps
//! the last value shown for the same request and the page shows it with a notice.

use leptos::prelude::*;

use crate::ApiError;

/// The page's view of the event stream, provided by [`provide_live_updates`].
#[derive(Clone, Copy, Debug)]
pub struct LiveUpdates {
    /// Messages received since the page loaded; 0 on the server and without JavaScript.
    pub generation: ReadSignal<u64>,
    /// The stream is open.
    pub connected: ReadSignal<bool>,
    /// The browser has opened (or is opening) the stream; false on the server and without
    /// JavaScript, where the header shows no indicator.
    pub started: ReadSignal<bool>,
    /// The server's event generation in the latest message (0 before any).
    pub server_generation: ReadSignal<u64>,
}

/// The writing half, for the stream's handlers (which exist in the browser build only).
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "hydrate"), allow(dead_code))]
struct LiveWriters {
    generation: WriteSignal<u64>,
    connected: WriteSignal<bool>,
    started: WriteSignal<bool>,
    server_generation: WriteSignal<u64>,
}

/// Creates the live-update signals and provides them to the app (once, at its root).
pub fn provide_live_updates() -> LiveUpdates {
    let (generation, set_generation) = signal(0u64);
    let (connected, set_connected) = signal(false);
    let (started, set_started) = signal(false);
    let (server_generation, set_server_generation) = signal(0u64);
    let live = LiveUpdates {
        generation,
        connected,
        started,
        server_generation,
    };
    provide_context(live);
    provide_context(LiveWriters {
        generation: set_generation,
        connected: set_connected,
        started: set_started,
        server_generation: set_server_generation,
    });
    live
}

/// The live-update signals (constant ones outside the app, e.g. in a test).
pub fn use_live() -> LiveUpdates {
    use_context::<LiveUpdates>().unwrap_or_else(|| LiveUpdates {
        generation: signal(0).0,
        connected: signal(false).0,
        started: signal(false).0,
        server_generation: signal(0).0,
    })
}

/// Opens the event stream if this page has not yet (browser only; does nothing on the server).
/// The frame calls it once it knows someone is signed in: the stream needs a session.
pub fn start() {
    let Some(w) = use_context::<LiveWriters>() else {
        return;
    };
    #[cfg(feature = "hydrate")]
    {
        let live = use_live();
        if live.started.get_untracked() {
            return;
        }
        w.started.set(true);
        browser::open(w, 0);
    }
    #[cfg(not(feature = "hydrate"))]
    let _ = w;
}

#[cfg(feature = "hydrate")]
mod browser {
    use std::time::Duration;

    use leptos::prelude::*;
    use leptos::wasm_bindgen::closure::Closure;
    use leptos::wasm_bindgen::JsCast;
    use web_sys::{js_sys, EventSource, MessageEvent};

    use super::LiveWriters;

    const URL: &str = "/api/v1/events";

    /// Opens the stream. The browser reconnects by itself after a dropped connection; only
    /// when it gives up (the answer was not an event stream, e.g. the session ended or the
    /// server restarted mid-answer) is a new one opened here, after a growing pause.
    pub(super) fn open(w: LiveWriters, failures: u32) {
        let Ok(es) = EventSource::new(URL) else {
            retry(w, failures + 1);
            return;
        };
        let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| w.connected.set(true));
        es.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        // One stream per page load: its handlers live as long as the page.
        on_open.forget();

        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if let Some(g) = server_generation(&ev) {
                w.server_generation.set(g);
            }
            w.connected.set(true);
            w.generation.update(|n| *n += 1);
        });
        for kind in ["snapshot", "change", "message"] {
            let _ = es.add_event_listener_with_callback(kind, on_message.as_ref().unchecked_ref());
        }
        on_message.forget();

        let source = es.clone();
        let mut retried = false;
        let on_error = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
            w.connected.set(false);
            if source.ready_state() == EventSource::CLOSED && !retried {
                retried = true;
                retry(w, failures + 1);
            }
        });
        es.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        on_error.forget();
    }

    fn retry(w: LiveWriters, failures: u32) {
        let secs = (5u64 << failures.min(4)).min(60);
        set_timeout(move || open(w, failures), Duration::from_secs(secs));
    }

    /// `generation` of a message's JSON data, if it has one.
    fn server_generation(ev: &MessageEvent) -> Option<u64> {
        let text = ev.data().as_string()?;
        let data = js_sys::JSON::parse(&text).ok()?;
        let g = js_sys::Reflect::get(&data, &"generation".into()).ok()?;
        g.as_f64().filter(|g| *g >= 0.0).map(|g| g as u64)
    }
}

/// The header's indicator: whether live updates arrive. Hidden until the browser starts the
/// stream (so it never claims anything without JavaScript).
#[component]
pub fn LiveIndicator() -> impl IntoView {
    let live = use_live();
    let state = move || match (live.started.get(), live.connected.get()) {
        (false, _) => "off",
        (true, true) => "connected",
        (true, false) => "disconnected",
    };
    let label = move || match state() {
        "connected" => "Live updates: connected",
        "disconnected" => "Live updates: disconnected, reconnecting",
        _ => "Live updates: off",
    };
    let text = move || match state() {
        "connected" => "live",
        "disconnected" => "offline",
        _ => "",
    };
    view! {
        <span
            class="live-indicator"
            role="status"
            data-state=state
            data-generation=move || live.generation.get().to_string()
            aria-label=label
            title=label
        >
            <span class="live-dot" aria-hidden="true"></span>
            <span class="live-text" aria-hidden="true">{text}</span>
        </span>
    }
}

/// What a live page shows after a fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum Shown<T> {
    /// The answer to this fetch.
    Fresh(T),
    /// This fetch failed; the last good answer to the same request, with the failure.
    Stale(T, ApiError),
    /// This fetch failed and there is nothing good to show for the same request.
    Failed(ApiError),
}

/// Remembers the last good answer per request key, so that a failed live refresh keeps
/// showing it instead of an error panel. A different key (another filter, another
/// subcloud) never falls back: its error is shown.
pub struct LastGood<K: Send + Sync + 'static, T: Send + Sync + 'static> {
    last: StoredValue<Option<(K, T)>>,
}

impl<K: Send + Sync + 'static, T: Send + Sync + 'static> Clone for LastGood<K, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Send + Sync + 'static, T: Send + Sync + 'static> Copy for LastGood<K, T> {}

impl<K, T> Default for LastGood<K, T>
where
    K: PartialEq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    fn default() -> Self {
        Self::new()
    }
}

impl<K, T> LastGood<K, T>
where
    K: PartialEq + Clone + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    pub fn new() -> Self {
        Self {
            last: StoredValue::new(None),
        }
    }

    /// Records a good answer, or falls back to the last good one for the same key.
    pub fn settle(&self, key: K, result: Result<T, ApiError>) -> Shown<T> {
        match result {
            Ok(v) => {
                self.last.set_value(Some((key, v.clone())));
                Shown::Fresh(v)
            }
            Err(e) => match self.last.get_value() {
                Some((k, v)) if k == key => Shown::Stale(v, e),
                _ => Shown::Failed(e),
            },
        }
    }
}

/// The notice above data that a live refresh could not update.
#[component]
pub fn StaleNotice(error: ApiError) -> impl IntoView {
    view! {
        <p class="notice notice-stale" role="status" data-stale="">
            "Could not refresh; showing the last data received. (" {error.to_string()} ")"
        </p>
    }
}

/// Tells a resource's fetches apart: one caused only by a live update (same inputs as the
/// previous fetch, a newer generation) is a background refresh. Background refreshes are sent
/// with `background=true`, which the server's gate does not count as user activity, so an
/// unattended dashboard still reaches its session's idle timeout.
pub struct Refresh<K: Send + Sync + 'static>(StoredValue<Option<K>>);

impl<K: Send + Sync + 'static> Clone for Refresh<K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Send + Sync + 'static> Copy for Refresh<K> {}

impl<K: PartialEq + Clone + Send + Sync + 'static> Refresh<K> {
    pub fn new() -> Self {
        Self(StoredValue::new(None))
    }

    /// Records the inputs of a fetch; true when it is a background refresh.
    pub fn is_background(&self, key: &K, generation: u64) -> bool {
        let same = self.0.with_value(|k| k.as_ref() == Some(key));
        self.0.set_value(Some(key.clone()));
        same && generation > 0
    }
}

impl<K: PartialEq + Clone + Send + Sync + 'static> Default for Refresh<K> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_refresh_keeps_the_last_good_answer_for_the_same_request_only() {
        let owner = Owner::new();
        owner.with(|| {
            let lg = LastGood::<&'static str, u32>::new();
            assert_eq!(
                lg.settle("a", Err(ApiError::Internal)),
                Shown::Failed(ApiError::Internal)
            );
            assert_eq!(lg.settle("a", Ok(1)), Shown::Fresh(1));
            assert_eq!(
                lg.settle("a", Err(ApiError::Internal)),
                Shown::Stale(1, ApiError::Internal)
            );
            // Another request (e.g. a new filter) shows its own error.
            assert_eq!(
                lg.settle("b", Err(ApiError::Internal)),
                Shown::Failed(ApiError::Internal)
            );
            assert_eq!(lg.settle("a", Ok(2)), Shown::Fresh(2));
            assert_eq!(
                lg.settle("a", Err(ApiError::Unauthenticated)),
                Shown::Stale(2, ApiError::Unauthenticated)
            );
        });
    }
}

#![recursion_limit = "256"]
//! Murmuration's dashboard: server-rendered Leptos pages that hydrate in the browser.
//!
//! Organised by feature (`fleet`: overview, subcloud list and detail; `alarms`; `orchestration`:
//! rollout strategies; `georedundancy`: controllers, peer groups, failure drill; `auth`;
//! `embeds`: portal embeds and their admin page) with
//! shared pieces in `components`, the page frame in `layout` and live updates in `live`. Server functions live next to the pages
//! that use them and only adapt the engine: authorise, call, map errors. The engine is a
//! dependency only under the `ssr` feature, so nothing server-side reaches the wasm bundle.

pub mod alarms;
pub mod auth;
pub mod components;
pub mod embeds;
pub mod error;
pub mod fleet;
pub mod georedundancy;
pub mod kiosk;
pub mod layout;
pub mod live;
pub mod orchestration;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, Html, Link, Meta, MetaTags, Stylesheet, Title};
use leptos_router::components::{Route, Router, Routes};
use leptos_router::{path, SsrMode};

pub use error::ApiError;

/// The cookie holding the colour theme chosen in this browser (`light` or `dark`; absent:
/// follow the system).
pub const THEME_COOKIE: &str = "murmur_theme";

/// The forced theme of this request (server) or of the rendered document (browser).
fn forced_theme() -> Option<String> {
    #[cfg(feature = "ssr")]
    {
        let parts = use_context::<http::request::Parts>()?;
        let cookies = parts.headers.get(http::header::COOKIE)?.to_str().ok()?;
        cookies
            .split(';')
            .filter_map(|c| c.trim().split_once('='))
            .find(|(k, _)| *k == THEME_COOKIE)
            .map(|(_, v)| v.to_string())
            .filter(|v| v == "light" || v == "dark")
    }
    #[cfg(not(feature = "ssr"))]
    {
        document()
            .document_element()?
            .get_attribute("data-theme")
            .filter(|v| v == "light" || v == "dark")
    }
}

/// The HTML document around the app (server only renders this).
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <AutoReload options=options.clone()/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The dashboard: router and pages.
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    live::provide_live_updates();
    // Hand this response's script nonce to the server's security-headers layer, which puts
    // it in the Content-Security-Policy.
    #[cfg(feature = "ssr")]
    if let (Some(nonce), Some(res)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) {
        if let Ok(v) = http::HeaderValue::from_str(&nonce.to_string()) {
            res.insert_header(http::HeaderName::from_static("x-murmur-nonce"), v);
        }
    }
    let theme = forced_theme();
    layout::provide_theme(theme.clone());
    view! {
        <Html {..} data-theme=theme/>
        <Stylesheet id="leptos" href="/pkg/murmur.css"/>
        <Link rel="icon" href="/favicon.ico"/>
        <Meta name="color-scheme" content="light dark"/>
        <Title formatter=|page: String| format!("{page} · Murmuration")/>
        <Router>
            <layout::Frame>
                // Async: every page is rendered complete on the server (no streaming
                // placeholders), so it reads the same with JavaScript off, on a phone or in
                // a portal.
                <Routes fallback=layout::NotFound>
                    <Route path=path!("/") view=fleet::OverviewPage ssr=SsrMode::Async/>
                    <Route path=path!("/subclouds") view=fleet::SubcloudsPage ssr=SsrMode::Async/>
                    <Route path=path!("/map") view=fleet::MapPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/subclouds/:name")
                        view=fleet::SubcloudPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/alarms") view=alarms::AlarmsPage ssr=SsrMode::Async/>
                    <Route path=path!("/status") view=alarms::StatusPage ssr=SsrMode::Async/>
                    <Route
                        path=path!("/orchestration")
                        view=orchestration::StrategiesPage
                        ssr=SsrMode::Async
                    />
                    // Before the strategy page: "new" is not a strategy id.
                    <Route
                        path=path!("/orchestration/new")
                        view=orchestration::NewStrategyPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/orchestration/:id")
                        view=orchestration::StrategyPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/controllers")
                        view=georedundancy::ControllersPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/peer-groups")
                        view=georedundancy::PeerGroupsPage
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/peer-groups/:name")
                        view=georedundancy::PeerGroupPage
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/drill") view=georedundancy::DrillPage ssr=SsrMode::Async/>
                    <Route path=path!("/login") view=auth::LoginPage ssr=SsrMode::Async/>
                    <Route path=path!("/setup") view=auth::SetupPage ssr=SsrMode::Async/>
                    <Route path=path!("/users") view=auth::UsersPage ssr=SsrMode::Async/>
                    <Route path=path!("/account") view=auth::AccountPage ssr=SsrMode::Async/>
                    <Route path=path!("/audit") view=auth::AuditPage ssr=SsrMode::Async/>
                    <Route path=path!("/embeds") view=embeds::EmbedsPage ssr=SsrMode::Async/>
                    // Portal embeds: no session, no navigation (see layout::Frame).
                    <Route path=path!("/embed/status") view=embeds::StatusEmbed ssr=SsrMode::Async/>
                    <Route path=path!("/embed/map") view=embeds::MapEmbed ssr=SsrMode::Async/>
                    <Route path=path!("/embed/strategy") view=embeds::StrategyEmbed ssr=SsrMode::Async/>
                    <Route path=path!("/embed/peer-group") view=embeds::PeerGroupEmbed ssr=SsrMode::Async/>
                </Routes>
            </layout::Frame>
        </Router>
    }
}

/// Browser entry point: attaches to the server-rendered page.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}

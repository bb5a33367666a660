//! Builds the HTTP application around an [`Engine`] and runs it until a shutdown signal.
//! Tests call [`Application::build`] with port 0 and talk to the real server over HTTP.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use anyhow::Context;
use app::{shell, App};
use axum::extract::{FromRef, State};
use axum::http::{header, HeaderValue};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use engine::auth::SessionPolicy;
use engine::Engine;
use leptos::prelude::*;
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use tokio::net::TcpListener;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::Config;

/// State shared by every handler and, as Leptos context, by every render and server function.
#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub engine: Engine,
    /// `scheme://host[:port]` browsers use; cross-site checks compare against it.
    pub public_origin: String,
    pub session_policy: SessionPolicy,
    /// Cookies get `Secure` (and responses HSTS) when the public URL is https.
    pub secure_cookies: bool,
}

/// A bound, ready-to-run controller.
pub struct Application {
    listener: TcpListener,
    router: Router,
    public_origin: String,
}

impl Application {
    pub async fn build(config: &Config, engine: Engine) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let addr = listener.local_addr()?;
        let site_root = config.site_root.to_string_lossy().to_string();
        let leptos_options = LeptosOptions::builder()
            .output_name(Arc::<str>::from("murmur"))
            .site_root(Arc::<str>::from(site_root.as_str()))
            .site_pkg_dir(Arc::<str>::from("pkg"))
            .site_addr(addr)
            .build();
        let public_origin = match &config.public_url {
            Some(u) => crate::config::origin_of(u).with_context(|| format!("public_url {u:?}"))?,
            None => format!("http://{addr}"),
        };
        let state = AppState {
            leptos_options: leptos_options.clone(),
            engine: engine.clone(),
            secure_cookies: public_origin.starts_with("https://"),
            public_origin,
            session_policy: config.session,
        };
        Ok(Self {
            listener,
            public_origin: state.public_origin.clone(),
            router: router(state, &config.site_root),
        })
    }

    /// `scheme://host[:port]` that browsers use to reach this controller.
    pub fn public_origin(&self) -> &str {
        &self.public_origin
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until Ctrl-C or SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        // Small responses go out at once: without TCP_NODELAY, Nagle's algorithm and delayed
        // ACKs add ~40 ms to every keep-alive response.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        });
        axum::serve(
            listener,
            self.router
                .into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("serving HTTP")
    }
}

/// The dashboard's page routes, generated once per process.
///
/// Why once: generating the list renders the app while leptos_server's process-wide "suppress
/// resource loads" flag is set, and a resource whose loader is first polled meanwhile, in any
/// request of any app in the process, waits forever: its page stalls until the request
/// timeout (upstream leptos issue #4773). Generated once, before the first server of the
/// process can serve, the flag is never set while a page renders, however many apps the
/// process builds later (the demo's peer controllers, the tests).
pub fn page_routes() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn router(state: AppState, site_root: &std::path::Path) -> Router {
    let routes = page_routes();
    let engine = state.engine.clone();
    let origin = app::embeds::PublicOrigin(state.public_origin.clone());
    let context = move || {
        provide_context(engine.clone());
        provide_context(origin.clone());
    };
    let options = state.leptos_options.clone();
    // The browser bundle's file names are stable (not hashed), so browsers revalidate it;
    // precompressed .br/.gz siblings are used when present.
    let pkg = Router::new()
        .fallback_service(
            ServeDir::new(site_root.join("pkg"))
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ));
    let security = crate::middleware::SecurityHeaders {
        hsts: state.secure_cookies,
    };
    let app = Router::new()
        .nest("/api/v1", crate::api::router())
        .route("/healthz", get(health))
        .route("/map/world.svg", get(crate::map::world_svg))
        .route("/login", post(crate::auth::login))
        .route("/logout", post(crate::auth::logout))
        .route("/theme", post(crate::preferences::set_theme))
        .route("/setup", post(crate::auth::setup))
        .nest_service("/pkg", pkg)
        .route_service(
            "/favicon.ico",
            ServeFile::new(site_root.join("favicon.ico")),
        )
        .leptos_routes_with_context(&state, routes, context.clone(), move || {
            shell(options.clone())
        })
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(context, shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::gate,
        ))
        .with_state(state.clone());
    crate::middleware::apply(app, security)
        .merge(crate::agents::router(state.clone()))
        .merge(crate::peers::router(state))
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    store: &'static str,
}

/// Liveness and store reachability, for load balancers and scripts.
async fn health(State(s): State<AppState>) -> Result<Json<Health>, crate::error::HttpError> {
    s.engine.store().ping().await?;
    Ok(Json(Health {
        status: "ok",
        store: s.engine.store().backend().as_str(),
    }))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}

//! The authentication gate in front of every route, and the login, logout and setup form
//! handlers. Authorization of each action happens in the engine (`Actor::require`); the gate
//! decides who the actor is, refuses anonymous and cross-site requests, and keeps viewers
//! from posting anything but their own account changes.

use std::net::SocketAddr;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use engine::auth::{safe_next_path, Actor, Role};
use engine::url::encode_query_value;
use serde::Deserialize;

use app::auth::SessionToken;

use crate::startup::AppState;

pub const SESSION_COOKIE: &str = "murmur_session";
/// The hydrated pages' live-update stream (`crate::api::events`).
const EVENT_STREAM: &str = "/api/v1/events";

/// What kind of route a path is, for the access rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteClass {
    /// Bundle, icons, health: no session needed.
    Static,
    /// The login and setup pages and their form posts.
    PreAuth,
    /// Portal embeds and their server functions: no session, read only; the token in each
    /// request is the credential, checked by the engine.
    Embed,
    /// REST API: bearer token or session; refusals are JSON 401/403.
    Api,
    /// Dashboard server functions: session only; refusals are JSON 401/403.
    ServerFn,
    /// Everything else is a dashboard page: session only; anonymous users go to /login.
    Page,
}

impl RouteClass {
    fn of(path: &str) -> Self {
        match path {
            // The world outline is public geography, and embeds draw it without a session.
            "/favicon.ico" | "/healthz" | "/map/world.svg" => RouteClass::Static,
            "/login" | "/setup" => RouteClass::PreAuth,
            p if p.starts_with("/pkg/") => RouteClass::Static,
            p if p.starts_with("/embed/") || p.starts_with("/ui/embed/") => RouteClass::Embed,
            p if p.starts_with("/api/") => RouteClass::Api,
            p if p.starts_with("/ui/") => RouteClass::ServerFn,
            _ => RouteClass::Page,
        }
    }
}

/// Posts a viewer may make: their own session, account and display preferences.
fn self_service(path: &str) -> bool {
    matches!(path, "/logout" | "/theme") || path.starts_with("/ui/account/")
}

/// POSTs that change nothing (their body is too rich for a query string): viewers may send
/// them. The engine still checks the read permission.
fn read_only_post(path: &str) -> bool {
    path == "/api/v1/strategies/preview"
        || (path.starts_with("/api/v1/peer-groups/") && path.ends_with("/migrate-preview"))
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut res = crate::error::json_error(status, code, None, message);
    if status == StatusCode::UNAUTHORIZED {
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"murmur\""),
        );
    }
    res
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// The credential of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

/// `Set-Cookie` for a session (or, with `None`, one that deletes it).
pub fn session_cookie(state: &AppState, token: Option<&str>, max_age_secs: u64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let v = match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"),
    };
    HeaderValue::from_str(&v)
        .unwrap_or_else(|_| HeaderValue::from_static("murmur_session=; Path=/; Max-Age=0"))
}

/// A redirect to `to` that sets the new session's cookie.
fn signed_in(state: &AppState, to: &str, token: &str) -> Response {
    let mut res = Redirect::to(to).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        session_cookie(state, Some(token), state.session_policy.absolute.as_secs()),
    );
    res
}

/// Refuses state-changing requests that a browser says come from another site. Browsers send
/// `Sec-Fetch-Site` (trusted: pages cannot forge it) or at least `Origin` on every POST.
fn cross_site_refusal(headers: &HeaderMap, public_origin: &str) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return match site {
            "same-origin" | "none" => None,
            _ => Some("cross-site request refused"),
        };
    }
    match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        Some(o) if o.eq_ignore_ascii_case(public_origin) => None,
        Some(_) => Some("cross-origin request refused"),
        None => Some("request without Origin refused; browsers send one, scripts use an API token"),
    }
}

fn client_addr(req: &Request) -> String {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn login_redirect(path_and_query: &str, expired: bool) -> String {
    let next = safe_next_path(path_and_query);
    let mut url = format!("/login?next={}", encode_query_value(&next));
    if expired {
        url.push_str("&expired=1");
    }
    url
}

/// The gate: identifies the actor and applies the access rules before any handler runs.
pub async fn gate(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let class = RouteClass::of(&path);
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if class == RouteClass::Static {
        return next.run(req).await;
    }
    if class == RouteClass::Embed {
        return embed(&state, req, next, mutating).await;
    }
    let addr = client_addr(&req);

    // Scripts: a bearer API token, on the REST API only. No cookies are involved, so no
    // cross-site check is needed.
    if let Some(secret) = bearer(req.headers()) {
        if class != RouteClass::Api {
            return json_error(
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "API tokens are accepted on /api/v1 only",
            );
        }
        return match state.engine.authenticate_api_token(secret).await {
            Ok(user) => {
                let actor = Actor::user(&user, Some(addr));
                if mutating && user.role == Role::Viewer && !read_only_post(&path) {
                    return json_error(
                        StatusCode::FORBIDDEN,
                        "forbidden",
                        "the viewer role is read-only",
                    );
                }
                req.extensions_mut().insert(actor);
                next.run(req).await
            }
            Err(engine::Error::Unauthenticated(m)) => {
                json_error(StatusCode::UNAUTHORIZED, "unauthenticated", &m)
            }
            Err(e) => {
                tracing::error!(error = %e, "authenticating an API token");
                json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "the server could not check the token",
                )
            }
        };
    }

    if mutating {
        if let Some(why) = cross_site_refusal(req.headers(), &state.public_origin) {
            tracing::warn!(path = %path, client = %addr, why, "refused a cross-site request");
            return match class {
                RouteClass::Api | RouteClass::ServerFn => {
                    json_error(StatusCode::FORBIDDEN, "cross_site", why)
                }
                _ => (StatusCode::FORBIDDEN, format!("Forbidden: {why}.")).into_response(),
            };
        }
    }

    // A page refreshing itself after a live update, or its event stream reconnecting, is not
    // the user being active: it must not keep an unattended session alive past its idle limit,
    // nor use up the "session expired" notice that the user's next page load should show.
    let background = req.method() == Method::GET
        && ((class == RouteClass::ServerFn
            && req
                .uri()
                .query()
                .is_some_and(|q| q.split('&').any(|p| p == "background=true")))
            || path == EVENT_STREAM);
    let mut expired = false;
    if let Some(token) = cookie_value(req.headers(), SESSION_COOKIE) {
        let checked = if background {
            state
                .engine
                .check_session(&token, state.session_policy)
                .await
        } else {
            state
                .engine
                .authenticate_session(&token, state.session_policy)
                .await
        };
        match checked {
            Ok(user) => {
                req.extensions_mut()
                    .insert(Actor::user(&user, Some(addr.clone())));
                req.extensions_mut().insert(SessionToken(token));
            }
            Err(engine::Error::Unauthenticated(_)) => expired = true,
            Err(e) => {
                tracing::error!(error = %e, "checking a session");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the server could not check the session",
                )
                    .into_response();
            }
        }
    }
    let actor = req.extensions().get::<Actor>().cloned();
    let mut res = match (actor, class) {
        (_, RouteClass::PreAuth) => next.run(req).await,
        (None, RouteClass::Page) if !mutating => {
            let pq = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            Redirect::to(&login_redirect(pq, expired)).into_response()
        }
        (None, _) => {
            let msg = if expired {
                "the session has expired; sign in again"
            } else {
                "sign in, or send an API token"
            };
            json_error(StatusCode::UNAUTHORIZED, "unauthenticated", msg)
        }
        (Some(a), _)
            if mutating
                && a.role == Some(Role::Viewer)
                && !self_service(&path)
                && !read_only_post(&path) =>
        {
            json_error(
                StatusCode::FORBIDDEN,
                "forbidden",
                "the viewer role is read-only",
            )
        }
        (Some(_), _) => next.run(req).await,
    };
    // The dead cookie is cleared by the next request the user makes, which also says why.
    if expired && !background {
        res.headers_mut()
            .append(header::SET_COOKIE, session_cookie(&state, None, 0));
    }
    res
}

/// Embeds: GET only, no session (cookies are ignored, none is set), and the page may be
/// framed by the admin-managed origins: the security-headers layer puts them in the
/// Content-Security-Policy's `frame-ancestors`.
async fn embed(state: &AppState, req: Request, next: Next, mutating: bool) -> Response {
    if mutating {
        return json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "embeds are read-only",
        );
    }
    let page = req.uri().path().starts_with("/embed/");
    let mut res = next.run(req).await;
    if page {
        let ancestors = match state.engine.embed_origins().await {
            Ok(origins) => engine::embeds::frame_ancestors(&origins),
            Err(e) => {
                tracing::error!(error = %e, "reading the embed origins; framing refused");
                "'none'".to_string()
            }
        };
        if let Ok(v) = HeaderValue::from_str(&ancestors) {
            res.headers_mut()
                .insert(crate::middleware::FRAME_ANCESTORS_HEADER, v);
        }
    }
    res
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`: a plain form post (works without JavaScript).
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Result<Form<LoginForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return Redirect::to("/login?error=invalid").into_response();
    };
    let next = safe_next_path(&form.next);
    let back = |error: &str, extra: String| {
        format!(
            "/login?error={error}{extra}&next={}&user={}",
            encode_query_value(&next),
            encode_query_value(&form.username.chars().take(64).collect::<String>())
        )
    };
    let addr = addr.ip().to_string();
    match state
        .engine
        .login(&form.username, &form.password, &addr, state.session_policy)
        .await
    {
        Ok(outcome) => {
            // Rotate: the session the browser held before (if any) ends now.
            if let Some(old) = cookie_value(&headers, SESSION_COOKIE) {
                let actor = Actor::user(&outcome.user, Some(addr));
                let _ = state.engine.logout(&actor, &old).await;
            }
            signed_in(&state, &next, &outcome.session_token)
        }
        Err(engine::Error::Throttled { retry_after_secs }) => {
            let mut res = Redirect::to(&back("throttled", format!("&retry={retry_after_secs}")))
                .into_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            res
        }
        Err(engine::Error::Unauthenticated(_)) => {
            Redirect::to(&back("invalid", String::new())).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "login failed");
            Redirect::to(&back("server", String::new())).into_response()
        }
    }
}

/// `POST /logout`: ends the session and clears the cookie.
pub async fn logout(State(state): State<AppState>, req: Request) -> Response {
    if let (Some(actor), Some(token)) = (
        req.extensions().get::<Actor>(),
        req.extensions().get::<SessionToken>(),
    ) {
        if let Err(e) = state.engine.logout(actor, &token.0).await {
            tracing::error!(error = %e, "logout failed");
        }
    }
    let mut res = Redirect::to("/login?loggedout=1").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, session_cookie(&state, None, 0));
    res
}

#[derive(Deserialize)]
pub struct SetupForm {
    token: String,
    username: String,
    password: String,
    confirm: String,
}

/// `POST /setup`: creates the first admin from the one-time link, then signs them in.
pub async fn setup(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    form: Result<Form<SetupForm>, FormRejection>,
) -> Response {
    let Ok(Form(f)) = form else {
        return Redirect::to("/setup?error=invalid").into_response();
    };
    let back = |msg: &str| {
        Redirect::to(&format!(
            "/setup?token={}&error={}",
            encode_query_value(&f.token),
            encode_query_value(msg)
        ))
        .into_response()
    };
    if f.password != f.confirm {
        return back("the two passwords differ");
    }
    let addr = addr.ip().to_string();
    match state
        .engine
        .complete_setup(&f.token, &f.username, &f.password, &addr)
        .await
    {
        Ok(_) => match state
            .engine
            .login(&f.username, &f.password, &addr, state.session_policy)
            .await
        {
            Ok(outcome) => signed_in(&state, "/", &outcome.session_token),
            Err(_) => Redirect::to("/login").into_response(),
        },
        Err(engine::Error::Validation(v)) => back(&v.message),
        Err(engine::Error::Unauthenticated(m)) => back(&m),
        Err(e) => {
            tracing::error!(error = %e, "setup failed");
            back("the server could not complete the setup")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn cross_site_rules() {
        let o = "http://127.0.0.1:3000";
        assert!(cross_site_refusal(&headers(&[("sec-fetch-site", "same-origin")]), o).is_none());
        assert!(cross_site_refusal(
            &headers(&[("sec-fetch-site", "cross-site"), ("origin", o)]),
            o
        )
        .is_some());
        assert!(cross_site_refusal(&headers(&[("sec-fetch-site", "same-site")]), o).is_some());
        assert!(cross_site_refusal(&headers(&[("origin", o)]), o).is_none());
        assert!(cross_site_refusal(&headers(&[("origin", "http://evil.example")]), o).is_some());
        assert!(cross_site_refusal(&headers(&[("origin", "null")]), o).is_some());
        assert!(cross_site_refusal(&headers(&[]), o).is_some());
    }

    #[test]
    fn route_classes_and_cookies() {
        assert_eq!(RouteClass::of("/pkg/murmur.wasm"), RouteClass::Static);
        assert_eq!(RouteClass::of("/api/v1/subclouds"), RouteClass::Api);
        assert_eq!(RouteClass::of("/ui/fleet/overview"), RouteClass::ServerFn);
        assert_eq!(RouteClass::of("/login"), RouteClass::PreAuth);
        assert_eq!(RouteClass::of("/subclouds"), RouteClass::Page);
        assert_eq!(RouteClass::of("/embed/status"), RouteClass::Embed);
        assert_eq!(RouteClass::of("/ui/embed/map"), RouteClass::Embed);
        assert_eq!(RouteClass::of("/embeds"), RouteClass::Page);
        assert_eq!(RouteClass::of("/ui/embeds/list"), RouteClass::ServerFn);
        assert_eq!(RouteClass::of("/map/world.svg"), RouteClass::Static);
        let h = headers(&[("cookie", "a=1; murmur_session=abc; b=2")]);
        assert_eq!(cookie_value(&h, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(
            cookie_value(&headers(&[("cookie", "murmur_session=")]), SESSION_COOKIE),
            None
        );
        assert_eq!(login_redirect("//evil.example", false), "/login?next=/");
        assert_eq!(
            login_redirect("/subclouds?alarm=critical", true),
            "/login?next=/subclouds%3Falarm%3Dcritical&expired=1"
        );
    }
}

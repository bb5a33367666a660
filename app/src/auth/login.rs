//! The login page and the first-start setup page: plain HTML forms posted to the server
//! (`POST /login`, `POST /setup`), so they work before and without the browser bundle.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

#[component]
pub fn LoginPage() -> impl IntoView {
    let q = use_query_map();
    let param = move |k: &str| q.with_untracked(|m| m.get(k)).unwrap_or_default();
    let error = param("error");
    let retry: u64 = param("retry").parse().unwrap_or(0);
    let next = engine::auth::safe_next_path(&param("next"));
    let user: String = param("user").chars().take(64).collect();
    let (notice, alert): (Option<String>, bool) = match error.as_str() {
        "invalid" => (Some("Wrong user name or password.".into()), true),
        "throttled" => (
            Some(format!(
                "Too many failed sign-ins. Try again in {}.",
                if retry >= 120 {
                    format!("{} minutes", retry.div_ceil(60))
                } else {
                    format!("{} seconds", retry.max(1))
                }
            )),
            true,
        ),
        "server" => (
            Some("The server could not sign you in; try again.".into()),
            true,
        ),
        _ if !param("expired").is_empty() => (
            Some("Your session has expired. Sign in again.".into()),
            false,
        ),
        _ if !param("loggedout").is_empty() => (Some("You are signed out.".into()), false),
        _ => (None, false),
    };
    #[cfg(feature = "ssr")]
    if error == "throttled" {
        if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
            r.set_status(http::StatusCode::TOO_MANY_REQUESTS);
            if let Ok(v) = http::HeaderValue::from_str(&retry.max(1).to_string()) {
                r.insert_header(http::header::RETRY_AFTER, v);
            }
        }
    }
    view! {
        <Title text="Sign in"/>
        <div class="auth-card">
            <h1>"Sign in to Murmuration"</h1>
            {notice.map(|text| {
                if alert {
                    view! { <p class="notice notice-error" role="alert">{text}</p> }.into_any()
                } else {
                    view! { <p class="notice" role="status">{text}</p> }.into_any()
                }
            })}
            <form method="post" action="/login" class="stacked-form">
                <input type="hidden" name="next" value=next/>
                <label for="login-username">"User name"</label>
                <input id="login-username" name="username" autocomplete="username" required maxlength="64" value=user autofocus/>
                <label for="login-password">"Password"</label>
                <input id="login-password" name="password" type="password" autocomplete="current-password" required maxlength="1024"/>
                <button type="submit">"Sign in"</button>
            </form>
        </div>
    }
}

#[component]
pub fn SetupPage() -> impl IntoView {
    let q = use_query_map();
    let param = move |k: &str| q.with_untracked(|m| m.get(k)).unwrap_or_default();
    let token = param("token");
    let error: String = param("error").chars().take(200).collect();
    view! {
        <Title text="First start"/>
        <div class="auth-card">
            <h1>"Create the first admin"</h1>
            <p>"This one-time link was printed in the controller's log because no user exists yet."</p>
            {(!error.is_empty()).then(|| view! { <p class="notice notice-error" role="alert">{error}</p> })}
            <form method="post" action="/setup" class="stacked-form">
                <input type="hidden" name="token" value=token/>
                <label for="setup-username">"User name"</label>
                <input id="setup-username" name="username" autocomplete="username" required maxlength="64"/>
                <label for="setup-password">"Password (at least 12 characters)"</label>
                <input id="setup-password" name="password" type="password" autocomplete="new-password" required minlength="12" maxlength="256"/>
                <label for="setup-confirm">"Password again"</label>
                <input id="setup-confirm" name="confirm" type="password" autocomplete="new-password" required minlength="12" maxlength="256"/>
                <button type="submit">"Create admin and sign in"</button>
            </form>
        </div>
    }
}

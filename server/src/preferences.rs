//! Per-browser display preferences: the colour theme. A cookie rather than an account
//! setting: the wall screen and the phone of one operator may want different ones. The page
//! frame reads it to render `<html data-theme>`, so the first paint has the right colours.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use engine::auth::safe_next_path;
use serde::Deserialize;

use crate::startup::AppState;

pub use app::THEME_COOKIE;

#[derive(Deserialize)]
pub struct ThemeForm {
    theme: String,
    /// The page to return to (named apart from the sign-in form's `next`).
    #[serde(default)]
    back: String,
}

/// `POST /theme` (`theme` = system, light or dark; `back` = the page to return to): a plain form,
/// so it works without JavaScript.
pub async fn set_theme(State(state): State<AppState>, Form(form): Form<ThemeForm>) -> Response {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    let cookie = match form.theme.as_str() {
        "light" | "dark" => format!(
            "{THEME_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000{secure}",
            form.theme
        ),
        "system" => format!("{THEME_COOKIE}=; Path=/; SameSite=Lax; Max-Age=0{secure}"),
        _ => {
            return (
                StatusCode::BAD_REQUEST,
                "theme must be system, light or dark",
            )
                .into_response()
        }
    };
    let next = safe_next_path(&form.back);
    let mut res = StatusCode::SEE_OTHER.into_response();
    let h = res.headers_mut();
    if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&next), HeaderValue::from_str(&cookie)) {
        h.insert(header::LOCATION, loc);
        h.insert(header::SET_COOKIE, c);
    }
    res
}

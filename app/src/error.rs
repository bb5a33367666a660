//! The one error type of the dashboard's server functions: what the browser may see. Engine
//! errors map onto it in one place (below), which also sets the HTTP status.

use leptos::server_fn::codec::JsonEncoding;
use leptos::server_fn::error::{FromServerFnError, ServerFnErrorErr};
use serde::{Deserialize, Serialize};

/// A failure the user can act on, or an opaque internal one (details go to the server log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    NotFound(String),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("you are not signed in, or your session has expired")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the server could not complete the request; it has been logged")]
    Internal,
    #[error("could not reach the server: {0}")]
    Transport(String),
}

impl FromServerFnError for ApiError {
    type Encoder = JsonEncoding;

    fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
        ApiError::Transport(value.to_string())
    }
}

impl From<engine::ValidationError> for ApiError {
    fn from(e: engine::ValidationError) -> Self {
        ApiError::Invalid {
            field: e.field,
            message: e.message,
        }
    }
}

#[cfg(feature = "ssr")]
impl From<engine::Error> for ApiError {
    fn from(e: engine::Error) -> Self {
        use leptos::prelude::use_context;
        use leptos_axum::ResponseOptions;

        let (status, err) = match e {
            engine::Error::Validation(v) => (400, v.into()),
            engine::Error::NotFound { what, key } => {
                (404, ApiError::NotFound(format!("{what} {key:?} not found")))
            }
            engine::Error::Conflict(m) => (409, ApiError::Conflict(m)),
            engine::Error::Forbidden(m) => (403, ApiError::Forbidden(m)),
            engine::Error::Unauthenticated(_) => (401, ApiError::Unauthenticated),
            engine::Error::Throttled { retry_after_secs } => (
                429,
                ApiError::Conflict(format!(
                    "too many failed attempts; try again in {retry_after_secs} s"
                )),
            ),
            other => {
                tracing::error!(error = %other, "engine error in a server function");
                (500, ApiError::Internal)
            }
        };
        if let Some(r) = use_context::<ResponseOptions>() {
            if let Ok(code) = http_status(status) {
                r.set_status(code);
            }
        }
        err
    }
}

#[cfg(feature = "ssr")]
fn http_status(code: u16) -> Result<http::StatusCode, http::status::InvalidStatusCode> {
    http::StatusCode::from_u16(code)
}

/// The engine handle provided to every render and server function by the server.
#[cfg(feature = "ssr")]
pub fn engine() -> Result<engine::Engine, ApiError> {
    leptos::prelude::use_context::<engine::Engine>().ok_or_else(|| {
        tracing::error!("no Engine in context: the server must provide it");
        ApiError::Internal
    })
}

/// The request is a plain HTML form post (no JavaScript): it wants a page, not JSON.
#[cfg(feature = "ssr")]
pub fn plain_form() -> bool {
    leptos::prelude::use_context::<http::request::Parts>().is_some_and(|p| {
        p.headers
            .get(http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// Redirects a plain form post to `back` (a path on this site) with `err` encoded the way
/// Leptos reads it into the server action's value on the next render.
#[cfg(feature = "ssr")]
pub fn redirect_with_error(fn_path: &str, back: &str, err: &ApiError) {
    use leptos::server_fn::error::ServerFnUrlError;
    let target = ServerFnUrlError::new(fn_path, err.clone())
        .to_url(&format!("http://localhost{back}"))
        .map(|u| match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        })
        .unwrap_or_else(|_| back.to_string());
    // After the error's own status: a form post must be redirected, or the browser shows the
    // raw answer.
    leptos_axum::redirect(&target);
}

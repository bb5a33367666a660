//! Every layer the HTTP surface gets, assembled in one place (outermost first in reading
//! order): request ids, tracing, panic catching, security headers, compression, body limit
//! and timeouts.

use std::time::Duration;

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

/// Largest request body accepted anywhere (forms and JSON are small; nothing uploads yet).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request that takes longer is answered 408.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The header through which a rendered page tells this layer its script nonce.
pub const NONCE_HEADER: &str = "x-murmur-nonce";
/// The header through which the gate tells this layer which origins may frame an embed.
pub const FRAME_ANCESTORS_HEADER: &str = "x-murmur-frame-ancestors";

/// Security headers for every response.
#[derive(Clone, Copy)]
pub struct SecurityHeaders {
    /// Send HSTS (the public URL is https).
    pub hsts: bool,
}

/// Content-Security-Policy: only our own scripts, plus the inline hydration bootstrap that
/// carries this response's nonce; framing only by `frame_ancestors` (embeds: the allowed
/// portal origins; everything else: nobody).
fn content_security_policy(nonce: Option<&str>, frame_ancestors: &str) -> String {
    let scripts = match nonce {
        Some(n) => format!("script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_string(),
    };
    format!(
        "default-src 'self'; {scripts}; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors {frame_ancestors}"
    )
}

async fn security_headers(
    axum::extract::State(cfg): axum::extract::State<SecurityHeaders>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    let nonce = h
        .remove(NONCE_HEADER)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .filter(|n| {
            n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
    // Only origins the gate vouched for: the source list is rebuilt from safe characters.
    let ancestors = h
        .remove(FRAME_ANCESTORS_HEADER)
        .and_then(|v| v.to_str().ok().map(str::to_string))
        .filter(|a| {
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || " :/.-*[]'".contains(c))
        })
        .unwrap_or_else(|| "'none'".to_string());
    // A handler that set its own policy (the map's world image) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        if let Ok(v) = HeaderValue::from_str(&content_security_policy(nonce.as_deref(), &ancestors))
        {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
        ),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if cfg.hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    // Pages and API answers are per-user: never cached by shared caches or the back button.
    let personal = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html") || ct.starts_with("application/json"));
    if personal && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// Strict decoding of a form body: every `%` starts two hex digits and the decoded bytes
/// are UTF-8. (The form parser behind server functions would keep `%2` literally and turn
/// bad bytes into U+FFFD, storing something the user never typed.)
fn form_is_well_formed(body: &[u8]) -> bool {
    body.split(|b| *b == b'&').all(|pair| {
        let mut out = Vec::with_capacity(pair.len());
        let mut i = 0;
        while i < pair.len() {
            if pair[i] == b'%' {
                let hex = |at: usize| pair.get(at).and_then(|b| char::from(*b).to_digit(16));
                match (hex(i + 1), hex(i + 2)) {
                    (Some(h), Some(l)) => out.push(u8::try_from(h * 16 + l).unwrap_or(0)),
                    _ => return false,
                }
                i += 3;
            } else {
                out.push(pair[i]);
                i += 1;
            }
        }
        std::str::from_utf8(&out).is_ok()
    })
}

/// The HTTP status an error answer of a server function deserves, from its `ApiError`.
fn server_fn_status(err: &app::ApiError) -> StatusCode {
    use app::ApiError::*;
    match err {
        NotFound(_) => StatusCode::NOT_FOUND,
        Invalid { .. } => StatusCode::BAD_REQUEST,
        Unauthenticated => StatusCode::UNAUTHORIZED,
        Forbidden(_) => StatusCode::FORBIDDEN,
        Conflict(_) => StatusCode::CONFLICT,
        Internal => StatusCode::INTERNAL_SERVER_ERROR,
        // Arguments that did not decode: the client sent something malformed.
        Transport(m) if m.contains("length limit") => StatusCode::PAYLOAD_TOO_LARGE,
        Transport(_) => StatusCode::BAD_REQUEST,
    }
}

fn api_error_json(status: StatusCode, message: &str) -> Response {
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        StatusCode::REQUEST_TIMEOUT => "timeout",
        s if s.is_server_error() => "internal",
        _ => "invalid",
    };
    crate::error::json_error(status, code, None, message)
}

/// A server function's answer to a body over the limit.
fn ui_too_large() -> Response {
    let e = app::ApiError::Invalid {
        field: "body".into(),
        message: format!(
            "the request body is larger than {} KiB",
            MAX_BODY_BYTES / 1024
        ),
    };
    (StatusCode::PAYLOAD_TOO_LARGE, axum::Json(e)).into_response()
}

/// Error answers in the shape each surface promises: server functions get the status their
/// `ApiError` means (server_fn answers every error 500) and refuse malformed form bodies;
/// the REST API answers every refusal as JSON, including those made outside its handlers
/// (unknown path, wrong method, body too large).
async fn error_shapes(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (is_ui, is_api) = (path.starts_with("/ui/"), path.starts_with("/api/"));
    if !is_ui && !is_api {
        return next.run(req).await;
    }
    let announced = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES) {
        // Refused before reading a byte of it.
        return if is_api {
            api_error_json(
                StatusCode::PAYLOAD_TOO_LARGE,
                "the request body is too large",
            )
        } else {
            ui_too_large()
        };
    }
    let req = if is_ui && req.method() == axum::http::Method::POST {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
            return ui_too_large();
        };
        let form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if form && !form_is_well_formed(&bytes) {
            let e = app::ApiError::Invalid {
                field: "form".into(),
                message: "the form data is not valid percent-encoded UTF-8".into(),
            };
            return (StatusCode::BAD_REQUEST, axum::Json(e)).into_response();
        }
        Request::from_parts(parts, axum::body::Body::from(bytes))
    } else {
        req
    };
    let res = next.run(req).await;
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let json = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_api {
        if json {
            return res;
        }
        let text = axum::body::to_bytes(res.into_body(), 4096)
            .await
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&text);
        let text = text.trim();
        let message = if text.is_empty() || text.starts_with('<') {
            status.canonical_reason().unwrap_or("error")
        } else {
            text
        };
        return api_error_json(status, message);
    }
    // A server function's error: derive the status from the ApiError in the body.
    if status != StatusCode::INTERNAL_SERVER_ERROR {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, 64 * 1024)
        .await
        .unwrap_or_default();
    let Ok(err) = serde_json::from_slice::<app::ApiError>(&bytes) else {
        return Response::from_parts(parts, axum::body::Body::from(bytes));
    };
    parts.status = server_fn_status(&err);
    // Arguments that did not decode are the caller's mistake: say which, as a validation error.
    let err = match err {
        app::ApiError::Transport(_) if parts.status == StatusCode::PAYLOAD_TOO_LARGE => {
            return ui_too_large();
        }
        app::ApiError::Transport(m) if parts.status == StatusCode::BAD_REQUEST => {
            app::ApiError::Invalid {
                field: "request".into(),
                message: m.replace(
                    "error deserializing server function arguments: ",
                    "malformed arguments: ",
                ),
            }
        }
        other => other,
    };
    let body = serde_json::to_vec(&err).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, axum::body::Body::from(body))
}

pub fn apply(router: Router, security: SecurityHeaders) -> Router {
    // Split into several `.layer` calls rather than one ServiceBuilder: deeply nested layer
    // types make compile times explode. Each call wraps the ones before it.
    router
        .layer(axum::middleware::from_fn_with_state(
            security,
            security_headers,
        ))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
        .layer(CatchPanicLayer::new())
        // Outside the limits and the panic catcher, so it reshapes their refusals (413, 408,
        // 500) too; inside compression, so it reads bodies uncompressed.
        .layer(axum::middleware::from_fn(error_shapes))
        .layer(CompressionLayer::new())
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(
            X_REQUEST_ID.clone(),
            MakeRequestUuid,
        ))
}

#[cfg(test)]
mod tests {
    use super::form_is_well_formed;

    #[test]
    fn strict_form_decoding() {
        assert!(form_is_well_formed(b"name=grafana&x=%C3%BCber+token"));
        assert!(form_is_well_formed(b""));
        for bad in [
            &b"name=%2"[..],
            b"name=%ZZ",
            b"name=%FF%FE",
            b"name=%E2%82",
            b"name=%C0%AF",
            b"a=\xff",
        ] {
            assert!(
                !form_is_well_formed(bad),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

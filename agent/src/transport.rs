//! HTTP to the controllers. One pooled, keep-alive [`reqwest::Client`] serves every request
//! of a process (an agent, or a simulator's 20,000 sites), and every refusal becomes a
//! [`TransportError`] the caller can act on: fail over, back off, or give up.

use std::time::{Duration, Instant};

use engine::agents::wire::{self, EnrollRequest, Enrollment, Ping, Refusal, Report, ReportAnswer};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::text::bounded;

/// Per-request budget: a controller slower than this counts as unreachable.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Answers are small; anything bigger is refused rather than buffered.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// A `Retry-After` longer than this is treated as this (a typo must not park a site for days).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// Why a request to a controller did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// 400: the controller found the request malformed or invalid.
    #[error("refused as invalid: {0}")]
    Invalid(String),
    /// 401/403: unknown, wrong or revoked credential or enrollment token.
    #[error("credential refused: {0}")]
    Unauthorized(String),
    /// 409: `seq` not above the last accepted one.
    #[error("refused as replayed: {0}")]
    Replayed(String),
    /// 413: the request was too large.
    #[error("refused as too large: {0}")]
    TooLarge(String),
    /// 503: the controller sheds load; come back after `retry_after`.
    #[error("controller overloaded")]
    Overloaded { retry_after: Option<Duration> },
    /// Any other 5xx.
    #[error("controller error {status}: {message}")]
    Server { status: u16, message: String },
    /// A status the protocol does not use (e.g. 404 from something that is not a controller).
    #[error("unexpected answer {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// No answer: connection refused, timeout, TLS failure, undecodable body.
    #[error("unreachable: {0}")]
    Transport(String),
}

impl TransportError {
    /// Whether the controller is unusable right now and the next one in the list should be
    /// tried. Refusals about the request itself (400, 401, 409, 413) would be the same
    /// anywhere; an overloaded controller asks to be waited for, not routed around.
    pub fn is_failover(&self) -> bool {
        matches!(
            self,
            Self::Transport(_) | Self::Server { .. } | Self::Unexpected { .. }
        )
    }

    /// A short stable name, for counters and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Unauthorized(_) => "unauthorized",
            Self::Replayed(_) => "replayed",
            Self::TooLarge(_) => "too_large",
            Self::Overloaded { .. } => "overloaded",
            Self::Server { .. } => "server_error",
            Self::Unexpected { .. } => "unexpected",
            Self::Transport(_) => "transport",
        }
    }
}

/// The agent side of the protocol over one shared HTTP client (cheap to clone).
#[derive(Debug, Clone)]
pub struct Transport {
    client: Client,
}

impl Transport {
    /// A client with [`DEFAULT_TIMEOUT`].
    pub fn new() -> Result<Self, TransportError> {
        Self::with_timeout(DEFAULT_TIMEOUT)
    }

    pub fn with_timeout(timeout: Duration) -> Result<Self, TransportError> {
        let client = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .user_agent(concat!("murmur-agent/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| TransportError::Transport(format!("cannot build HTTP client: {e}")))?;
        Ok(Self { client })
    }

    /// The underlying client, for the admin REST calls of the simulator CLI.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `POST /agent/v1/enroll`: exchanges the one-time token for the subcloud's secret.
    pub async fn enroll(
        &self,
        base: &str,
        request: &EnrollRequest,
    ) -> Result<Enrollment, TransportError> {
        let response = self
            .client
            .post(url(base, wire::ENROLL_PATH))
            .header(CONTENT_TYPE, JSON)
            .body(to_json(request)?)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        decode(response).await
    }

    /// `POST /agent/v1/report` with the subcloud's credential ([`bearer`]). The attempt
    /// gives up after `interval` (at most the client's timeout): a controller that does not
    /// answer within one report interval must not hold the site's next reports up, or the
    /// failover to the next controller comes too late to keep the site online.
    pub async fn report(
        &self,
        base: &str,
        auth: &HeaderValue,
        report: &Report,
        interval: Duration,
    ) -> Result<ReportAnswer, TransportError> {
        let response = self
            .client
            .post(url(base, wire::REPORT_PATH))
            .timeout(interval.clamp(Duration::from_millis(100), DEFAULT_TIMEOUT))
            .header(CONTENT_TYPE, JSON)
            .header(AUTHORIZATION, auth.clone())
            .body(to_json(report)?)
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        decode(response).await
    }

    /// `GET /agent/v1/ping`, with the measured round-trip time.
    pub async fn ping(&self, base: &str) -> Result<(Ping, Duration), TransportError> {
        let started = Instant::now();
        let response = self
            .client
            .get(url(base, wire::PING_PATH))
            .send()
            .await
            .map_err(|e| unreachable(&e))?;
        let ping = decode(response).await?;
        Ok((ping, started.elapsed()))
    }
}

/// The `Authorization` value for a subcloud secret, marked sensitive so it is never logged.
pub fn bearer(secret: &str) -> Result<HeaderValue, TransportError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {secret}")).map_err(|_| {
        TransportError::Invalid("the secret cannot be sent as a header value".into())
    })?;
    value.set_sensitive(true);
    Ok(value)
}

/// Maps a refusal (status, `Retry-After`, body) to a [`TransportError`].
pub fn refusal(status: u16, retry_after: Option<Duration>, body: &[u8]) -> TransportError {
    let message = || refusal_message(status, body);
    match status {
        400 => TransportError::Invalid(message()),
        401 | 403 => TransportError::Unauthorized(message()),
        409 => TransportError::Replayed(message()),
        413 => TransportError::TooLarge(message()),
        503 => TransportError::Overloaded { retry_after },
        500..=599 => TransportError::Server {
            status,
            message: message(),
        },
        _ => TransportError::Unexpected {
            status,
            message: message(),
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is not used by controllers), capped.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let secs: u64 = value.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

fn refusal_message(status: u16, body: &[u8]) -> String {
    if let Ok(r) = serde_json::from_slice::<Refusal>(body) {
        return bounded(&format!("{}: {}", r.error.code, r.error.message));
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        format!("HTTP {status}")
    } else {
        bounded(text)
    }
}

pub(crate) fn url(base: &str, path: &str) -> String {
    let mut u = String::with_capacity(base.len() + path.len());
    u.push_str(base.trim_end_matches('/'));
    u.push_str(path);
    u
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, TransportError> {
    serde_json::to_vec(value)
        .map_err(|e| TransportError::Invalid(format!("cannot encode request: {e}")))
}

/// Reads a body of at most `limit` bytes without buffering more than that.
pub(crate) async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, TransportError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| unreachable(&e))? {
        if body.len() + chunk.len() > limit {
            return Err(TransportError::Transport(format!(
                "answer larger than {limit} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

async fn decode<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, TransportError> {
    let status = response.status();
    let retry_after = retry_after(response.headers());
    let body = read_bounded(response, MAX_ANSWER_BYTES).await?;
    if status.is_success() {
        serde_json::from_slice(&body)
            .map_err(|e| TransportError::Transport(format!("undecodable answer: {e}")))
    } else {
        Err(refusal(status.as_u16(), retry_after, &body))
    }
}

fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after)
}

/// A failed exchange in words: the kind, then the innermost cause (which names the problem,
/// e.g. "Connection refused"), without the URL noise of reqwest's own message.
pub(crate) fn unreachable(e: &reqwest::Error) -> TransportError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "broken answer"
    } else {
        "request failed"
    };
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    TransportError::Transport(bounded(&format!("{kind}: {cause}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_map_to_typed_errors() {
        let body = br#"{"error":{"code":"replayed","message":"seq 5 is not above 7"}}"#;
        assert_eq!(
            refusal(409, None, body),
            TransportError::Replayed("replayed: seq 5 is not above 7".into())
        );
        assert!(matches!(refusal(400, None, b""), TransportError::Invalid(m) if m == "HTTP 400"));
        assert!(
            matches!(refusal(401, None, b"nope"), TransportError::Unauthorized(m) if m == "nope")
        );
        assert!(matches!(
            refusal(413, None, b""),
            TransportError::TooLarge(_)
        ));
        let d = Some(Duration::from_secs(3));
        assert_eq!(
            refusal(503, d, b""),
            TransportError::Overloaded { retry_after: d }
        );
        assert!(matches!(
            refusal(502, None, b""),
            TransportError::Server { status: 502, .. }
        ));
        assert!(matches!(
            refusal(404, None, b""),
            TransportError::Unexpected { status: 404, .. }
        ));
    }

    #[test]
    fn only_an_unusable_controller_triggers_failover() {
        assert!(TransportError::Transport("x".into()).is_failover());
        assert!(refusal(500, None, b"").is_failover());
        assert!(refusal(404, None, b"").is_failover());
        for status in [400, 401, 409, 413, 503] {
            assert!(!refusal(status, None, b"").is_failover(), "{status}");
        }
    }

    #[test]
    fn retry_after_is_parsed_and_capped() {
        assert_eq!(parse_retry_after(" 7 "), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after("99999999"), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn hostile_refusal_bodies_are_bounded() {
        let long = vec![b'x'; 10_000];
        let TransportError::Invalid(m) = refusal(400, None, &long) else {
            panic!("not invalid");
        };
        assert!(m.len() <= wire::MAX_TEXT);
        assert!(matches!(
            refusal(400, None, &[0xff, 0xfe]),
            TransportError::Invalid(_)
        ));
    }

    #[test]
    fn urls_join_without_double_slashes() {
        assert_eq!(
            url("http://a:1/", wire::PING_PATH),
            "http://a:1/agent/v1/ping"
        );
        assert_eq!(
            url("http://a:1", wire::PING_PATH),
            "http://a:1/agent/v1/ping"
        );
    }
}

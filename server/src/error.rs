//! The REST API's one error type and its mapping to HTTP. Handlers return
//! `Result<_, HttpError>`; engine errors convert here, in one place:
//! validation → 400 (with the field), not found → 404, conflict → 409, anything else → 500
//! with the details only in the log.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

#[derive(Debug)]
pub enum HttpError {
    BadRequest { field: String, message: String },
    NotFound(String),
    Conflict(String),
    Forbidden(String),
    Unauthenticated(String),
    Internal,
}

#[derive(Serialize)]
struct Body<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
    message: &'a str,
}

impl From<engine::Error> for HttpError {
    fn from(e: engine::Error) -> Self {
        match e {
            engine::Error::Validation(v) => HttpError::BadRequest {
                field: v.field,
                message: v.message,
            },
            engine::Error::NotFound { what, key } => {
                HttpError::NotFound(format!("{what} {key:?} not found"))
            }
            engine::Error::Conflict(m) => HttpError::Conflict(m),
            engine::Error::Forbidden(m) => HttpError::Forbidden(m),
            engine::Error::Unauthenticated(m) => HttpError::Unauthenticated(m),
            other => {
                tracing::error!(error = %other, "engine error in a REST handler");
                HttpError::Internal
            }
        }
    }
}

impl From<engine::ValidationError> for HttpError {
    fn from(v: engine::ValidationError) -> Self {
        engine::Error::Validation(v).into()
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let (status, code, field, message) = match &self {
            HttpError::BadRequest { field, message } => (
                StatusCode::BAD_REQUEST,
                "invalid",
                Some(field.as_str()),
                message.as_str(),
            ),
            HttpError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", None, m.as_str()),
            HttpError::Conflict(m) => (StatusCode::CONFLICT, "conflict", None, m.as_str()),
            HttpError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", None, m.as_str()),
            HttpError::Unauthenticated(m) => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                None,
                m.as_str(),
            ),
            HttpError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                None,
                "the server could not complete the request; it has been logged",
            ),
        };
        json_error(status, code, field, message)
    }
}

/// The one JSON shape of every REST refusal: `{"error": {"code", "field"?, "message"}}`.
pub fn json_error(status: StatusCode, code: &str, field: Option<&str>, message: &str) -> Response {
    (
        status,
        Json(Body {
            error: ErrorBody {
                code,
                field,
                message,
            },
        }),
    )
        .into_response()
}

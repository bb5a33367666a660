//! Engine errors. Which to use when:
//! - [`ValidationError`]: the caller's input is wrong. Carries the field and a message safe to
//!   show to the user; nothing was changed.
//! - [`Error::NotFound`] / [`Error::Conflict`]: the input is well-formed but the store says no.
//! - [`Error::Store`]: the database failed; details are for the log, not the user.

use serde::{Deserialize, Serialize};

/// Bad input: which field, and what is wrong with it, in words an operator understands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: String,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// `value` is not one of the allowed spellings of `label`.
    pub fn not_one_of<'a>(
        label: &str,
        value: &str,
        allowed: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        let allowed: Vec<&str> = allowed.into_iter().collect();
        let shown: String = value.chars().take(40).collect();
        Self::new(
            label,
            format!(
                "{shown:?} is not a valid {label}; expected one of: {}",
                allowed.join(", ")
            ),
        )
    }

    /// Parses a positive whole number given as `key`, or says so.
    pub fn whole_number(key: &str, value: &str) -> Result<u32, Self> {
        value
            .parse::<u32>()
            .map_err(|_| Self::new(key, format!("{key} must be a positive whole number")))
    }

    /// Checks a list's `page` and `per_page` against their bounds (both start at 1).
    pub fn paging(page: u32, per_page: u32, max_page: u32, max_per_page: u32) -> Result<(), Self> {
        for (field, v, max) in [
            ("page", page, max_page),
            ("per_page", per_page, max_per_page),
        ] {
            if !(1..=max).contains(&v) {
                return Err(Self::new(
                    field,
                    format!("{field} must be between 1 and {max}"),
                ));
            }
        }
        Ok(())
    }

    /// Re-labels the error with the name of the field it came from (e.g. a query parameter).
    pub fn in_field(mut self, field: &str) -> Self {
        self.field = field.to_string();
        self
    }
}

/// Everything the engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Validation(#[from] ValidationError),
    #[error("{what} {key:?} not found")]
    NotFound { what: &'static str, key: String },
    #[error("conflict: {0}")]
    Conflict(String),
    /// The actor is known but its role does not allow this.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Wrong user name or password, a disabled user, or an unknown, expired or revoked
    /// session or token. Deliberately says no more than that.
    #[error("not signed in: {0}")]
    Unauthenticated(String),
    /// Too many failed logins from this address or for this user.
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    /// A bug or an environment failure; details are for the log.
    #[error("internal error: {0}")]
    Internal(String),
    #[cfg(feature = "store")]
    #[error("store error: {0}")]
    Store(#[from] sqlx::Error),
    #[cfg(feature = "store")]
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    pub fn not_found(what: &'static str, key: impl Into<String>) -> Self {
        Error::NotFound {
            what,
            key: key.into(),
        }
    }
}

/// Result alias for engine operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

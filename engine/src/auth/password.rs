//! Password hashing: Argon2id with OWASP's parameters (19 MiB, 2 iterations, 1 lane), on the
//! blocking pool, at most a few at a time (each hash holds 19 MiB), and a dummy verification
//! for unknown users so response time does not reveal which names exist.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::error::{Error, Result};

/// Concurrent hash computations allowed; more wait their turn instead of exhausting memory.
const MAX_CONCURRENT_HASHES: usize = 2;

fn hasher() -> Argon2<'static> {
    // 19,456 KiB, t = 2, p = 1: OWASP's minimum for Argon2id.
    let params = Params::new(19_456, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn semaphore() -> &'static Arc<Semaphore> {
    static S: OnceLock<Arc<Semaphore>> = OnceLock::new();
    S.get_or_init(|| Arc::new(Semaphore::new(MAX_CONCURRENT_HASHES)))
}

/// A PHC string of a random secret, verified against when the user does not exist.
fn dummy_hash() -> &'static str {
    static D: OnceLock<String> = OnceLock::new();
    D.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(b"no such user: this hash never matches", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let _permit = semaphore()
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| Error::Internal("password hashing pool closed".into()))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Internal(format!("password hashing task failed: {e}")))
}

/// Hashes a new password to a PHC string.
pub async fn hash(password: &str) -> Result<String> {
    let password = password.to_string();
    blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(format!("hashing a password: {e}")))
    })
    .await?
}

/// Checks `password` against `stored` (or against a dummy when there is no user), always
/// doing the same work.
pub async fn verify(password: &str, stored: Option<&str>) -> Result<bool> {
    let password = password.to_string();
    let exists = stored.is_some();
    let stored = stored.unwrap_or_else(|| dummy_hash()).to_string();
    blocking(move || {
        let Ok(parsed) = PasswordHash::new(&stored) else {
            return false;
        };
        let ok = hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && exists
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash("correct horse battery").await.unwrap();
        let b = hash("correct horse battery").await.unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert!(verify("correct horse battery", Some(&a)).await.unwrap());
        assert!(!verify("Correct horse battery", Some(&a)).await.unwrap());
        assert!(!verify("correct horse battery", None).await.unwrap());
        assert!(!verify("x", Some("not a phc string")).await.unwrap());
    }
}

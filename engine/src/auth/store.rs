//! Users, sessions and API tokens in the store. Every change is checked against the actor's
//! role, made in one transaction with its audit entry, and announced on the event bus.

use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{
    password, Actor, ApiToken, NewApiToken, NewPassword, Permission, Role, User, UserName,
};
use crate::audit::{self, AuditEntry};
use crate::error::{Error, Result, ValidationError};
use crate::events::Event;
use crate::store::parse_col;
use crate::time::Millis;
use crate::Engine;

/// How long sessions live.
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after login, whatever the activity.
    pub absolute: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(8 * 3600),
            absolute: Duration::from_secs(24 * 3600),
        }
    }
}

/// Last-seen times are written at most this often per session (reads stay reads).
const TOUCH_EVERY_MS: i64 = 60_000;
/// API tokens start with this, so secret scanners and people recognise them.
pub const API_TOKEN_PREFIX: &str = "mmt_";

/// A successful login.
#[derive(Debug, Clone)]
pub struct LoginOutcome {
    pub user: User,
    /// The session secret for the cookie. Only its hash is stored.
    pub session_token: String,
    pub expires_at: Millis,
}

pub(crate) fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64url(&bytes)
}

pub(crate) fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len() * 4 / 3 + 2);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

/// SHA-256 hex of a secret: what the store keeps of session and API tokens.
pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

const USER_COLUMNS: &str = "id, name, role, disabled, created_at, last_login_at";

fn user_from_row(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        role: parse_col("role", r.try_get::<&str, _>(2)?)?,
        disabled: r.try_get::<i64, _>(3)? != 0,
        created_at: Millis(r.try_get(4)?),
        last_login_at: r.try_get::<Option<i64>, _>(5)?.map(Millis),
    })
}

fn token_from_row(r: &AnyRow) -> Result<ApiToken> {
    Ok(ApiToken {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        prefix: r.try_get(2)?,
        created_at: Millis(r.try_get(3)?),
        last_used_at: r.try_get::<Option<i64>, _>(4)?.map(Millis),
        revoked_at: r.try_get::<Option<i64>, _>(5)?.map(Millis),
    })
}

async fn user_by_name(tx: &mut Transaction<'_, Any>, name: &str) -> Result<User> {
    // A name that cannot exist is not looked up (PostgreSQL refuses some bytes, e.g. NUL).
    if UserName::parse(name).is_err() {
        return Err(Error::not_found(
            "user",
            name.chars().take(64).collect::<String>(),
        ));
    }
    let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"))
        .bind(name)
        .fetch_optional(&mut **tx)
        .await?
        .ok_or_else(|| Error::not_found("user", name))?;
    user_from_row(&row)
}

fn entry(actor: &Actor, action: &str, target: &str, summary: String) -> AuditEntry {
    actor.audit(action, target, summary)
}

impl Engine {
    /// Number of users; zero means the controller still needs its first admin.
    pub async fn user_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(self.store.pool())
            .await?;
        Ok(crate::store::count(n))
    }

    /// All users, by name.
    pub async fn list_users(&self, actor: &Actor) -> Result<Vec<User>> {
        actor.require(Permission::ManageUsers)?;
        sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))
            .fetch_all(self.store.pool())
            .await?
            .iter()
            .map(user_from_row)
            .collect()
    }

    /// Creates a user.
    pub async fn create_user(
        &self,
        actor: &Actor,
        name: &str,
        password: &str,
        role: Role,
    ) -> Result<User> {
        actor.require(Permission::ManageUsers)?;
        let name = UserName::parse(name)?;
        let password = NewPassword::parse(password)?;
        let hash = password::hash(password.expose()).await?;
        let now = Millis::now().0;
        let mut tx = self.store.begin_write().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
            .bind(name.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_some() {
            return Err(ValidationError::new("username", "this user name is taken").into());
        }
        sqlx::query(
            "INSERT INTO users (name, password_hash, role, disabled, created_at, updated_at) \
             VALUES ($1, $2, $3, 0, $4, $4)",
        )
        .bind(name.as_str())
        .bind(&hash)
        .bind(role.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let user = user_by_name(&mut tx, name.as_str()).await?;
        audit::record(
            &mut tx,
            &entry(
                actor,
                "user.create",
                name.as_str(),
                format!("created with role {role}"),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::UserChanged {
            name: user.name.clone(),
        });
        Ok(user)
    }

    /// Changes a user's role. An admin cannot demote the last enabled admin.
    pub async fn set_user_role(&self, actor: &Actor, name: &str, role: Role) -> Result<User> {
        actor.require(Permission::ManageUsers)?;
        let mut tx = self.store.begin_write().await?;
        self.serialize_user_changes(&mut tx).await?;
        let before = user_by_name(&mut tx, name).await?;
        if before.role == role {
            return Ok(before);
        }
        if before.role == Role::Admin && !before.disabled {
            ensure_another_admin(&mut tx, before.id).await?;
        }
        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role.as_str())
            .bind(Millis::now().0)
            .bind(before.id)
            .execute(&mut *tx)
            .await?;
        let summary = format!("role {} -> {role}", before.role);
        self.finish_user_change(tx, actor, "user.role", name, summary)
            .await
    }

    /// Disables (ending all its sessions and tokens' use) or re-enables a user.
    pub async fn set_user_disabled(
        &self,
        actor: &Actor,
        name: &str,
        disabled: bool,
    ) -> Result<User> {
        actor.require(Permission::ManageUsers)?;
        let mut tx = self.store.begin_write().await?;
        self.serialize_user_changes(&mut tx).await?;
        let before = user_by_name(&mut tx, name).await?;
        if before.disabled == disabled {
            return Ok(before);
        }
        if disabled && before.role == Role::Admin {
            ensure_another_admin(&mut tx, before.id).await?;
        }
        sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(Millis::now().0)
            .bind(before.id)
            .execute(&mut *tx)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(before.id)
                .execute(&mut *tx)
                .await?;
        }
        let what = if disabled {
            "user.disable"
        } else {
            "user.enable"
        };
        let summary = format!("disabled {} -> {disabled}", before.disabled);
        self.finish_user_change(tx, actor, what, name, summary)
            .await
    }

    /// Audits a change to user `name`, commits it, announces it and returns the user after.
    async fn finish_user_change(
        &self,
        mut tx: Transaction<'_, Any>,
        actor: &Actor,
        action: &str,
        name: &str,
        summary: String,
    ) -> Result<User> {
        audit::record(&mut tx, &entry(actor, action, name, summary)).await?;
        let after = user_by_name(&mut tx, name).await?;
        tx.commit().await?;
        self.events
            .publish(Event::UserChanged { name: name.into() });
        Ok(after)
    }

    /// Sets a new password for another user (admin), ending that user's sessions.
    pub async fn reset_password(&self, actor: &Actor, name: &str, new: &str) -> Result<()> {
        actor.require(Permission::ManageUsers)?;
        let new = NewPassword::parse(new)?;
        let hash = password::hash(new.expose()).await?;
        let mut tx = self.store.begin_write().await?;
        let user = user_by_name(&mut tx, name).await?;
        set_password(&mut tx, user.id, &hash, None).await?;
        audit::record(
            &mut tx,
            &entry(
                actor,
                "user.password_reset",
                name,
                "password reset; sessions ended".into(),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events
            .publish(Event::UserChanged { name: name.into() });
        Ok(())
    }

    /// A user changes their own password; other sessions of theirs end, this one stays.
    pub async fn change_own_password(
        &self,
        actor: &Actor,
        current: &str,
        new: &str,
        keep_session_token: Option<&str>,
    ) -> Result<()> {
        actor.require(Permission::ManageSelf)?;
        let user_id = actor
            .user_id
            .ok_or_else(|| Error::Forbidden("only users have passwords".into()))?;
        let new = NewPassword::parse(new)?;
        let stored: Option<String> =
            sqlx::query_scalar("SELECT password_hash FROM users WHERE id = $1")
                .bind(user_id)
                .fetch_optional(self.store.pool())
                .await?;
        // Guessing the current password from a stolen session counts as failed logins.
        let client = actor.client_addr.as_deref().unwrap_or("unknown");
        if let Some(retry_after_secs) = self.login_throttle.check(client, &actor.name) {
            return Err(Error::Throttled { retry_after_secs });
        }
        if !password::verify(current, stored.as_deref()).await? {
            self.login_throttle.record_failure(client, &actor.name);
            let mut tx = self.store.begin_write().await?;
            let mut e = entry(
                actor,
                "user.password_change",
                &actor.name,
                "refused: wrong current password".into(),
            );
            e.outcome = "denied".into();
            audit::record(&mut tx, &e).await?;
            tx.commit().await?;
            return Err(ValidationError::new(
                "current_password",
                "the current password is not correct",
            )
            .into());
        }
        let hash = password::hash(new.expose()).await?;
        let mut tx = self.store.begin_write().await?;
        set_password(&mut tx, user_id, &hash, keep_session_token.map(secret_hash)).await?;
        audit::record(
            &mut tx,
            &entry(
                actor,
                "user.password_change",
                &actor.name,
                "own password changed; other sessions ended".into(),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Checks a user name and password and opens a session. Failures are throttled per
    /// address and per name, audited, and all look alike to the caller.
    pub async fn login(
        &self,
        name: &str,
        password: &str,
        client_addr: &str,
        policy: SessionPolicy,
    ) -> Result<LoginOutcome> {
        // Bound the work an attacker can ask for before anything else. No user has an invalid
        // name, so refusing these without a hash check reveals nothing.
        if UserName::parse(name).is_err() || password.len() > 4 * NewPassword::MAX_CHARS {
            return Err(Error::Unauthenticated("wrong user name or password".into()));
        }
        let name = name.to_string();
        if let Some(retry_after_secs) = self.login_throttle.check(client_addr, &name) {
            // Not audited (a spray would flood the log); logged instead.
            tracing::warn!(user = %name, client = %client_addr, retry_after_secs, "login throttled");
            return Err(Error::Throttled { retry_after_secs });
        }
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, password_hash FROM users WHERE name = $1"
        ))
        .bind(&name)
        .fetch_optional(self.store.pool())
        .await?;
        let (user, stored) = match &row {
            Some(r) => (Some(user_from_row(r)?), Some(r.try_get::<String, _>(6)?)),
            None => (None, None),
        };
        let verified = password::verify(password, stored.as_deref()).await?;
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        let user = match user {
            Some(u) if verified && !u.disabled => u,
            other => {
                self.login_throttle.record_failure(client_addr, &name);
                let why = match other {
                    Some(u) if u.disabled && verified => "user is disabled",
                    Some(_) => "wrong password",
                    None => "unknown user",
                };
                let mut e =
                    AuditEntry::system("auth.login", &name, format!("login refused: {why}"));
                e.actor = name.clone();
                e.role = "anonymous".into();
                e.client_addr = Some(client_addr.to_string());
                e.outcome = "denied".into();
                audit::record(&mut tx, &e).await?;
                tx.commit().await?;
                return Err(Error::Unauthenticated("wrong user name or password".into()));
            }
        };
        self.login_throttle.record_success(&name);
        let token = random_secret();
        let expires_at =
            Millis(now.0 + i64::try_from(policy.absolute.as_millis()).unwrap_or(i64::MAX / 2));
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, expires_at, client_addr) \
             VALUES ($1, $2, $3, $3, $4, $5)",
        )
        .bind(secret_hash(&token))
        .bind(user.id)
        .bind(now.0)
        .bind(expires_at.0)
        .bind(client_addr)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(user.id)
            .execute(&mut *tx)
            .await?;
        // Expired sessions of everyone are swept here: logins are rare, so this stays cheap.
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        let actor = Actor::user(&user, Some(client_addr.to_string()));
        audit::record(
            &mut tx,
            &entry(&actor, "auth.login", &user.name, "session opened".into()),
        )
        .await?;
        tx.commit().await?;
        Ok(LoginOutcome {
            user: User {
                last_login_at: Some(now),
                ..user
            },
            session_token: token,
            expires_at,
        })
    }

    /// The user behind a session token, if the session is live; refreshes its idle timer.
    pub async fn authenticate_session(&self, token: &str, policy: SessionPolicy) -> Result<User> {
        self.session_user(token, policy, true).await
    }

    /// Like [`Engine::authenticate_session`] but leaves the idle timer alone: for requests a
    /// page makes by itself (live refreshes), which are not user activity.
    pub async fn check_session(&self, token: &str, policy: SessionPolicy) -> Result<User> {
        self.session_user(token, policy, false).await
    }

    async fn session_user(&self, token: &str, policy: SessionPolicy, touch: bool) -> Result<User> {
        let hash = secret_hash(token);
        let row = sqlx::query(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at, u.last_login_at, \
             s.id, s.last_seen_at, s.expires_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1",
        )
        .bind(&hash)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| Error::Unauthenticated("no such session".into()))?;
        let user = user_from_row(&row)?;
        let (session_id, last_seen, expires): (i64, i64, i64) =
            (row.try_get(6)?, row.try_get(7)?, row.try_get(8)?);
        let now = Millis::now().0;
        let idle_ms = i64::try_from(policy.idle.as_millis()).unwrap_or(i64::MAX / 2);
        if user.disabled || now >= expires || now - last_seen >= idle_ms {
            sqlx::query("DELETE FROM sessions WHERE id = $1")
                .bind(session_id)
                .execute(self.store.pool())
                .await?;
            return Err(Error::Unauthenticated("the session has expired".into()));
        }
        // Refresh often enough that a short idle limit never ends a session in use.
        if touch && now - last_seen >= TOUCH_EVERY_MS.min(idle_ms / 4) {
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(session_id)
                .execute(self.store.pool())
                .await?;
        }
        Ok(user)
    }

    /// Ends a session (logout). Unknown tokens are ignored.
    pub async fn logout(&self, actor: &Actor, token: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let n = sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(secret_hash(token))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if n > 0 {
            audit::record(
                &mut tx,
                &entry(actor, "auth.logout", &actor.name, "session closed".into()),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Creates an API token for the actor; the secret is returned once.
    pub async fn create_api_token(&self, actor: &Actor, name: &str) -> Result<NewApiToken> {
        actor.require(Permission::ManageSelf)?;
        let user_id = actor
            .user_id
            .ok_or_else(|| Error::Forbidden("only users have API tokens".into()))?;
        let name = crate::fleet::DisplayName::parse("token_name", name)?;
        if name.as_str().chars().count() > 64 {
            return Err(ValidationError::new(
                "token_name",
                "a token name is at most 64 characters",
            )
            .into());
        }
        let secret = format!("{API_TOKEN_PREFIX}{}", random_secret());
        let prefix: String = secret.chars().take(API_TOKEN_PREFIX.len() + 6).collect();
        let now = Millis::now().0;
        let mut tx = self.store.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_tokens (user_id, name, prefix, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user_id)
        .bind(name.as_str())
        .bind(&prefix)
        .bind(secret_hash(&secret))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
             WHERE token_hash = $1",
        )
        .bind(secret_hash(&secret))
        .fetch_one(&mut *tx)
        .await?;
        let token = token_from_row(&row)?;
        audit::record(
            &mut tx,
            &entry(
                actor,
                "token.create",
                &format!("{}/{}", actor.name, name.as_str()),
                format!("API token {prefix}… created"),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(NewApiToken { token, secret })
    }

    /// The actor's API tokens, newest first.
    pub async fn list_api_tokens(&self, actor: &Actor) -> Result<Vec<ApiToken>> {
        actor.require(Permission::ManageSelf)?;
        let Some(user_id) = actor.user_id else {
            return Ok(Vec::new());
        };
        sqlx::query(
            "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
             WHERE user_id = $1 ORDER BY id DESC",
        )
        .bind(user_id)
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(token_from_row)
        .collect()
    }

    /// Revokes one of the actor's tokens (admins: anyone's).
    pub async fn revoke_api_token(&self, actor: &Actor, token_id: i64) -> Result<()> {
        actor.require(Permission::ManageSelf)?;
        let mut tx = self.store.begin_write().await?;
        let owner: Option<(i64, String, String)> = sqlx::query_as(
            "SELECT t.user_id, u.name, t.prefix FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.id = $1 AND t.revoked_at IS NULL",
        )
        .bind(token_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((owner_id, owner_name, prefix)) = owner else {
            return Err(Error::not_found("API token", token_id.to_string()));
        };
        if Some(owner_id) != actor.user_id && !actor.may(Permission::ManageUsers) {
            return Err(Error::not_found("API token", token_id.to_string()));
        }
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE id = $2")
            .bind(Millis::now().0)
            .bind(token_id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &entry(
                actor,
                "token.revoke",
                &owner_name,
                format!("API token {prefix}… revoked"),
            ),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The user behind a bearer API token, if it is valid and its user enabled.
    pub async fn authenticate_api_token(&self, secret: &str) -> Result<User> {
        if !secret.starts_with(API_TOKEN_PREFIX) || secret.len() > 128 {
            return Err(Error::Unauthenticated("not an API token".into()));
        }
        let hash = secret_hash(secret);
        let row = sqlx::query(
            "SELECT u.id, u.name, u.role, u.disabled, u.created_at, u.last_login_at, t.id, t.last_used_at \
             FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
        )
        .bind(&hash)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(|| Error::Unauthenticated("unknown or revoked API token".into()))?;
        let user = user_from_row(&row)?;
        if user.disabled {
            return Err(Error::Unauthenticated(
                "the token's user is disabled".into(),
            ));
        }
        let (token_id, last_used): (i64, Option<i64>) = (row.try_get(6)?, row.try_get(7)?);
        let now = Millis::now().0;
        if last_used.is_none_or(|t| now - t >= TOUCH_EVERY_MS) {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token_id)
                .execute(self.store.pool())
                .await?;
        }
        Ok(user)
    }
}

async fn set_password(
    tx: &mut Transaction<'_, Any>,
    user_id: i64,
    hash: &str,
    keep_session_hash: Option<String>,
) -> Result<()> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(Millis::now().0)
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
        .bind(user_id)
        .bind(keep_session_hash.unwrap_or_default())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

impl Engine {
    /// Makes concurrent changes to users take turns, so "is there another admin?" cannot be
    /// answered by two transactions at once (both would remove an admin). PostgreSQL: lock
    /// the enabled admins' rows. SQLite: start with a write, which takes the database's write
    /// lock before anything is read.
    async fn serialize_user_changes(&self, tx: &mut Transaction<'_, Any>) -> Result<()> {
        let sql = match self.store.backend() {
            crate::store::Backend::Postgres => {
                "SELECT id FROM users WHERE role = 'admin' AND disabled = 0 FOR UPDATE"
            }
            crate::store::Backend::Sqlite => "UPDATE users SET id = id WHERE id = -1",
        };
        sqlx::query(sql).execute(&mut **tx).await?;
        Ok(())
    }
}

/// Refuses to remove the last enabled admin (nobody could manage users any more).
async fn ensure_another_admin(tx: &mut Transaction<'_, Any>, except_id: i64) -> Result<()> {
    let others: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> $1",
    )
    .bind(except_id)
    .fetch_one(&mut **tx)
    .await?;
    if others == 0 {
        return Err(Error::Conflict(
            "this is the last enabled admin; make another admin first".into(),
        ));
    }
    Ok(())
}

/// The demo's users and their fixed passwords (demo only; documented in the README).
pub const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("admin", "admin-demo-password", Role::Admin),
    ("operator", "operator-demo-password", Role::Operator),
    ("viewer", "viewer-demo-password", Role::Viewer),
];

const SETUP_KEY: &str = "auth.setup_token";
/// How long a first-start setup link stays valid.
const SETUP_VALID_MS: i64 = 24 * 3600 * 1000;

impl Engine {
    /// Creates the demo users that do not exist yet. Never used outside `murmur demo`.
    pub async fn ensure_demo_users(&self) -> Result<u32> {
        let mut created = 0;
        for (name, password, role) in DEMO_USERS {
            let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM users WHERE name = $1")
                .bind(name)
                .fetch_optional(self.store.pool())
                .await?;
            if exists.is_none() {
                self.create_user(&Actor::system(), name, password, role)
                    .await?;
                created += 1;
            }
        }
        Ok(created)
    }

    /// When no user exists, issues a one-time setup secret (valid 24 h) for creating the
    /// first admin; `None` once any user exists.
    pub async fn issue_setup_token(&self) -> Result<Option<String>> {
        if self.user_count().await? > 0 {
            return Ok(None);
        }
        let secret = random_secret();
        let value = format!(
            "{}:{}",
            Millis::now().0 + SETUP_VALID_MS,
            secret_hash(&secret)
        );
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(SETUP_KEY)
        .bind(value)
        .execute(self.store.pool())
        .await?;
        Ok(Some(secret))
    }

    /// Creates the first admin with a setup secret. Refused once any user exists.
    pub async fn complete_setup(
        &self,
        secret: &str,
        name: &str,
        password: &str,
        client_addr: &str,
    ) -> Result<User> {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(SETUP_KEY)
                .fetch_optional(self.store.pool())
                .await?;
        let valid = stored
            .as_deref()
            .and_then(|v| v.split_once(':'))
            .is_some_and(|(until, hash)| {
                until.parse::<i64>().is_ok_and(|u| Millis::now().0 < u)
                    && hash == secret_hash(secret)
            });
        let refused = || {
            Error::Unauthenticated("this setup link is not valid (used, expired or wrong)".into())
        };
        if !valid || self.user_count().await? > 0 {
            return Err(refused());
        }
        // Bad input must not use up the link.
        UserName::parse(name)?;
        NewPassword::parse(password)?;
        // Consume the link atomically: of two concurrent setups only one deletes the row.
        let consumed = sqlx::query("DELETE FROM settings WHERE key = $1 AND value = $2")
            .bind(SETUP_KEY)
            .bind(stored.unwrap_or_default())
            .execute(self.store.pool())
            .await?
            .rows_affected();
        if consumed != 1 {
            return Err(refused());
        }
        let mut actor = Actor::system();
        actor.name = "setup".into();
        actor.client_addr = Some(client_addr.to_string());
        let user = self
            .create_user(&actor, name, password, Role::Admin)
            .await?;
        Ok(user)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_hashed() {
        let a = random_secret();
        let b = random_secret();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43, "256 bits in base64url without padding");
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(
            secret_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(base64url(b"\xfb\xff"), "-_8");
    }
}

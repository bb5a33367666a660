//! Embed links and the frame-ancestors allow-list in the store. Every change is an admin's,
//! made in one transaction with its audit entry, and announced on the event bus.

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{
    link_state, parse_token, EmbedGrant, EmbedKind, EmbedLink, EmbedLinkState, EmbedOrigin,
    NewEmbedLink, INVALID_LINK, MAX_LIFETIME_SECS, MAX_ORIGINS, MIN_LIFETIME_SECS,
};
use crate::audit;
use crate::auth::store::base64url;
use crate::auth::{Actor, Permission};
use crate::error::{Error, Result, ValidationError};
use crate::events::Event;
use crate::store::parse_col;
use crate::time::Millis;
use crate::Engine;

/// The settings row holding this controller's signing key (hex of 32 random bytes).
const SIGNING_KEY: &str = "embed_signing_key";

const LINK_COLUMNS: &str =
    "id, kind, target, label, created_by, created_at, expires_at, revoked_at";

/// The signed message: every field a token vouches for, in a fixed order.
fn signed_message(id: i64, kind: EmbedKind, target: &str, expires_at: Millis) -> String {
    format!("murmur-embed-v1\n{id}\n{kind}\n{target}\n{}", expires_at.0)
}

fn signature(key: &[u8], message: &str) -> Result<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key)
        .map_err(|e| Error::Internal(format!("embed signing key: {e}")))?;
    mac.update(message.as_bytes());
    Ok(base64url(&mac.finalize().into_bytes()))
}

/// Constant-time comparison: how many leading bytes match must not show in the timing.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    s.len()
        .is_multiple_of(2)
        .then(|| {
            (0..s.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
                .collect()
        })
        .flatten()
}

struct LinkRow {
    id: i64,
    kind: EmbedKind,
    target: String,
    label: String,
    created_by: String,
    created_at: Millis,
    expires_at: Millis,
    revoked_at: Option<Millis>,
}

fn link_row(r: &AnyRow) -> Result<LinkRow> {
    Ok(LinkRow {
        id: r.try_get(0)?,
        kind: parse_col("kind", r.try_get::<&str, _>(1)?)?,
        target: r.try_get(2)?,
        label: r.try_get(3)?,
        created_by: r.try_get(4)?,
        created_at: Millis(r.try_get(5)?),
        expires_at: Millis(r.try_get(6)?),
        revoked_at: r.try_get::<Option<i64>, _>(7)?.map(Millis),
    })
}

impl Engine {
    /// This controller's signing key, created on first use.
    async fn embed_signing_key(&self) -> Result<Vec<u8>> {
        let read = || {
            sqlx::query_scalar::<_, String>("SELECT value FROM settings WHERE key = $1")
                .bind(SIGNING_KEY)
                .fetch_optional(self.store.pool())
        };
        // Every embed request reads the key: only the very first use writes it.
        let stored = match read().await? {
            Some(v) => v,
            None => {
                let mut fresh = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut fresh);
                let hex: String = fresh.iter().map(|b| format!("{b:02x}")).collect();
                // Two first uses at once both insert; the first wins and both read it back.
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                )
                .bind(SIGNING_KEY)
                .bind(&hex)
                .execute(self.store.pool())
                .await?;
                read()
                    .await?
                    .ok_or_else(|| Error::Internal("the embed signing key was not stored".into()))?
            }
        };
        hex_decode(&stored)
            .filter(|k| k.len() == 32)
            .ok_or_else(|| Error::Internal("the stored embed signing key is malformed".into()))
    }

    fn embed_link(&self, key: &[u8], row: LinkRow, now: Millis) -> Result<EmbedLink> {
        let sig = signature(
            key,
            &signed_message(row.id, row.kind, &row.target, row.expires_at),
        )?;
        Ok(EmbedLink {
            id: row.id,
            kind: row.kind,
            state: link_state(row.expires_at, row.revoked_at, now),
            path: format!("{}?t={}.{sig}", row.kind.path(), row.id),
            target: row.target,
            label: row.label,
            created_by: row.created_by,
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
        })
    }

    /// Checks a link's target: the strategy or peer group exists, the map view parses.
    async fn embed_target(&self, kind: EmbedKind, raw: &str) -> Result<String> {
        let target = raw.trim();
        let bad = |m: &str| Error::from(ValidationError::new("target", m));
        match kind {
            EmbedKind::Status => {
                if !target.is_empty() {
                    return Err(bad("the status summary takes no target"));
                }
            }
            EmbedKind::Map => {
                crate::fleet::MapQuery::from_query_string("target", target)?;
                if target.len() > 500 {
                    return Err(bad("the map view is at most 500 characters"));
                }
            }
            EmbedKind::Strategy => {
                let id: i64 = target
                    .parse()
                    .map_err(|_| bad("give the strategy's number"))?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM strategies WHERE id = $1")
                    .bind(id)
                    .fetch_one(self.store.pool())
                    .await?;
                if n == 0 {
                    return Err(Error::not_found("strategy", target));
                }
            }
            EmbedKind::PeerGroup => {
                if target.is_empty() || target.len() > 255 || target.contains('\0') {
                    return Err(bad("give the peer group's name"));
                }
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM peer_groups WHERE name = $1")
                    .bind(target)
                    .fetch_one(self.store.pool())
                    .await?;
                if n == 0 {
                    return Err(Error::not_found("peer group", target));
                }
            }
        }
        Ok(target.to_string())
    }

    /// Creates an embed link (admins).
    pub async fn create_embed_link(&self, actor: &Actor, req: &NewEmbedLink) -> Result<EmbedLink> {
        actor.require(Permission::Administer)?;
        let label = req.label.trim();
        if label.is_empty() || label.chars().count() > 80 || label.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "label",
                "say what the link is for, in 1 to 80 characters",
            )
            .into());
        }
        if !(MIN_LIFETIME_SECS..=MAX_LIFETIME_SECS).contains(&req.expires_in_secs) {
            return Err(ValidationError::new(
                "expires_in_secs",
                format!(
                    "a link lives from {MIN_LIFETIME_SECS} s to {} days",
                    MAX_LIFETIME_SECS / 86_400
                ),
            )
            .into());
        }
        let target = self.embed_target(req.kind, &req.target).await?;
        let key = self.embed_signing_key().await?;
        let now = Millis::now();
        let expires_at = Millis(now.0 + req.expires_in_secs * 1000);
        let mut tx = self.store.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO embed_links (kind, target, label, created_by, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(req.kind.as_str())
        .bind(&target)
        .bind(label)
        .bind(&actor.name)
        .bind(now.0)
        .bind(expires_at.0)
        .fetch_one(&mut *tx)
        .await?;
        let what = if target.is_empty() {
            req.kind.describe().to_string()
        } else {
            format!("{} ({target})", req.kind.describe())
        };
        audit::record(
            &mut tx,
            &actor.audit(
                "embed.create",
                &format!("embed #{id}"),
                format!(
                    "embed link \"{label}\" for {what} created, valid until {}",
                    expires_at.to_iso()
                ),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::EmbedsChanged { at: now });
        let row = LinkRow {
            id,
            kind: req.kind,
            target,
            label: label.to_string(),
            created_by: actor.name.clone(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        self.embed_link(&key, row, now)
    }

    /// Every embed link, newest first (admins).
    pub async fn embed_links(&self, actor: &Actor) -> Result<Vec<EmbedLink>> {
        actor.require(Permission::Administer)?;
        let key = self.embed_signing_key().await?;
        let now = Millis::now();
        sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM embed_links ORDER BY id DESC"
        ))
        .fetch_all(self.store.pool())
        .await?
        .iter()
        .map(|r| self.embed_link(&key, link_row(r)?, now))
        .collect()
    }

    /// Revokes an embed link (admins): its token is refused from now on.
    pub async fn revoke_embed_link(&self, actor: &Actor, id: i64) -> Result<()> {
        actor.require(Permission::Administer)?;
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM embed_links WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| Error::not_found("embed link", id.to_string()))?;
        let link = link_row(&row)?;
        if link.revoked_at.is_some() {
            return Err(Error::Conflict(format!(
                "embed link #{id} is already revoked"
            )));
        }
        sqlx::query("UPDATE embed_links SET revoked_at = $1 WHERE id = $2")
            .bind(now.0)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &actor.audit(
                "embed.revoke",
                &format!("embed #{id}"),
                format!("embed link \"{}\" revoked", link.label),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::EmbedsChanged { at: now });
        Ok(())
    }

    /// What a token opens, if it is genuine, unrevoked, unexpired and for this view. Anyone
    /// may ask: the token is the credential.
    pub async fn open_embed(&self, token: &str, kind: EmbedKind) -> Result<EmbedGrant> {
        let invalid = || Error::Unauthenticated(INVALID_LINK.into());
        let (id, sig) = parse_token(token).ok_or_else(invalid)?;
        let row = sqlx::query(&format!(
            "SELECT {LINK_COLUMNS} FROM embed_links WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?
        .ok_or_else(invalid)?;
        let link = link_row(&row)?;
        let key = self.embed_signing_key().await?;
        let want = signature(
            &key,
            &signed_message(link.id, link.kind, &link.target, link.expires_at),
        )?;
        if !same(sig, &want) {
            return Err(invalid());
        }
        match link_state(link.expires_at, link.revoked_at, Millis::now()) {
            EmbedLinkState::Revoked => {
                return Err(Error::Unauthenticated(
                    "this embed link has been revoked".into(),
                ))
            }
            EmbedLinkState::Expired => {
                return Err(Error::Unauthenticated(format!(
                    "this embed link expired at {}",
                    link.expires_at.to_iso()
                )))
            }
            EmbedLinkState::Active => {}
        }
        if link.kind != kind {
            return Err(Error::Unauthenticated(format!(
                "this embed link opens the {} view",
                link.kind.describe().to_lowercase()
            )));
        }
        Ok(EmbedGrant {
            link_id: link.id,
            kind: link.kind,
            target: link.target,
            label: link.label,
            expires_at: link.expires_at,
        })
    }

    /// The origins allowed to frame embeds, alphabetically. Public: it is sent
    /// in every embed's policy header.
    pub async fn embed_origins(&self) -> Result<Vec<EmbedOrigin>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT origin FROM embed_origins ORDER BY origin")
                .fetch_all(self.store.pool())
                .await?;
        // Rows were validated on the way in; one that no longer parses is left out.
        Ok(rows
            .iter()
            .filter_map(|o| EmbedOrigin::parse(o).ok())
            .collect())
    }

    /// Allows one more origin to frame embeds (admins).
    pub async fn add_embed_origin(&self, actor: &Actor, raw: &str) -> Result<EmbedOrigin> {
        actor.require(Permission::Administer)?;
        let origin = EmbedOrigin::parse(raw)?;
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM embed_origins")
            .fetch_one(&mut *tx)
            .await?;
        let exists: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM embed_origins WHERE origin = $1")
                .bind(origin.as_str())
                .fetch_one(&mut *tx)
                .await?;
        if exists > 0 {
            return Err(Error::Conflict(format!(
                "{} is already on the list",
                origin.as_str()
            )));
        }
        if usize::try_from(count).unwrap_or(usize::MAX) >= MAX_ORIGINS {
            return Err(ValidationError::new(
                "origin",
                format!("at most {MAX_ORIGINS} origins; remove one first"),
            )
            .into());
        }
        sqlx::query("INSERT INTO embed_origins (origin, added_by, added_at) VALUES ($1, $2, $3)")
            .bind(origin.as_str())
            .bind(&actor.name)
            .bind(now.0)
            .execute(&mut *tx)
            .await?;
        audit::record(
            &mut tx,
            &actor.audit(
                "embed.origin_add",
                origin.as_str(),
                format!("{} may now frame embeds", origin.as_str()),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::EmbedsChanged { at: now });
        Ok(origin)
    }

    /// Stops an origin from framing embeds (admins).
    pub async fn remove_embed_origin(&self, actor: &Actor, raw: &str) -> Result<()> {
        actor.require(Permission::Administer)?;
        let origin = EmbedOrigin::parse(raw)?;
        let now = Millis::now();
        let mut tx = self.store.begin_write().await?;
        let removed = sqlx::query("DELETE FROM embed_origins WHERE origin = $1")
            .bind(origin.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if removed == 0 {
            return Err(Error::not_found("embed origin", origin.as_str()));
        }
        audit::record(
            &mut tx,
            &actor.audit(
                "embed.origin_remove",
                origin.as_str(),
                format!("{} may no longer frame embeds", origin.as_str()),
            ),
        )
        .await?;
        tx.commit().await?;
        self.events.publish(Event::EmbedsChanged { at: now });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let key = [7u8; 32];
        let base = signature(&key, &signed_message(1, EmbedKind::Map, "z=2", Millis(10))).unwrap();
        for other in [
            signed_message(2, EmbedKind::Map, "z=2", Millis(10)),
            signed_message(1, EmbedKind::Status, "z=2", Millis(10)),
            signed_message(1, EmbedKind::Map, "z=3", Millis(10)),
            signed_message(1, EmbedKind::Map, "z=2", Millis(11)),
        ] {
            assert_ne!(signature(&key, &other).unwrap(), base);
        }
        assert_ne!(
            signature(
                &[8u8; 32],
                &signed_message(1, EmbedKind::Map, "z=2", Millis(10))
            )
            .unwrap(),
            base
        );
        assert!(same(&base, &base.clone()));
        assert!(!same(&base, &base[1..]));
    }

    #[test]
    fn hex_keys_round_trip() {
        assert_eq!(hex_decode("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(hex_decode("0"), None);
        assert_eq!(hex_decode("zz"), None);
    }
}

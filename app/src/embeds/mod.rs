//! Portal embeds: the read-only views a NOC portal frames (`/embed/status`, `/embed/map`,
//! `/embed/strategy`, `/embed/peer-group`, each opened by the signed token in `?t=`), and the
//! admins' page that creates and revokes their links and keeps the list of portal origins
//! allowed to frame them.
//!
//! The embed views need no session: their server functions take the token, and the engine
//! checks its signature, expiry and revocation on every call. They show no forms and link
//! nowhere in the dashboard (a portal's viewers cannot sign in inside a frame).

mod admin;
mod views;

pub use admin::EmbedsPage;
pub use views::{MapEmbed, PeerGroupEmbed, StatusEmbed, StrategyEmbed};

use engine::embeds::EmbedLink;
use engine::fleet::FleetMap;
use engine::georedundancy::PeerGroupView;
use engine::health::StatusDigest;
use engine::orchestration::StrategyDetail;
use engine::time::Millis;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// `scheme://host[:port]` browsers reach this controller at (server context), for the full
/// addresses of embed links.
#[derive(Clone, Debug)]
pub struct PublicOrigin(pub String);

/// One embed view's data, with what the link says about itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedded<T> {
    pub label: String,
    pub expires_at: Millis,
    pub data: T,
}

/// Everything the admins' embeds page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedSettings {
    pub links: Vec<EmbedLink>,
    pub origins: Vec<String>,
    /// Prefix of every link's full address.
    pub public_origin: String,
}

/// Opens the token for `kind`. A refused token answers 403 with the engine's reason
/// (invalid, revoked, expired, another view): the viewer of a portal has no session to
/// renew, only a link to replace.
#[cfg(feature = "ssr")]
async fn grant(
    token: &str,
    kind: engine::embeds::EmbedKind,
) -> Result<(engine::Engine, engine::embeds::EmbedGrant), ApiError> {
    let engine = crate::error::engine()?;
    match engine.open_embed(token, kind).await {
        Ok(g) => Ok((engine, g)),
        Err(engine::Error::Unauthenticated(reason)) => {
            if let Some(r) = use_context::<leptos_axum::ResponseOptions>() {
                r.set_status(http::StatusCode::FORBIDDEN);
            }
            Err(ApiError::Forbidden(reason))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(feature = "ssr")]
fn embedded<T>(g: &engine::embeds::EmbedGrant, data: T) -> Embedded<T> {
    Embedded {
        label: g.label.clone(),
        expires_at: g.expires_at,
        data,
    }
}

/// The status summary, through an embed token.
#[server(prefix = "/ui", endpoint = "embed/status", input = server_fn::codec::GetUrl)]
pub async fn get_embed_status(token: String) -> Result<Embedded<StatusDigest>, ApiError> {
    let (engine, g) = grant(&token, engine::embeds::EmbedKind::Status).await?;
    Ok(embedded(&g, engine.status_digest().await?))
}

/// The fleet map at the link's saved view, through an embed token.
#[server(prefix = "/ui", endpoint = "embed/map", input = server_fn::codec::GetUrl)]
pub async fn get_embed_map(token: String) -> Result<Embedded<FleetMap>, ApiError> {
    let (engine, g) = grant(&token, engine::embeds::EmbedKind::Map).await?;
    let query = engine::fleet::MapQuery::from_query_string("target", &g.target)?;
    Ok(embedded(&g, engine.fleet_map(&query).await?))
}

/// One strategy's progress, through an embed token.
#[server(prefix = "/ui", endpoint = "embed/strategy", input = server_fn::codec::GetUrl)]
pub async fn get_embed_strategy(token: String) -> Result<Embedded<StrategyDetail>, ApiError> {
    let (engine, g) = grant(&token, engine::embeds::EmbedKind::Strategy).await?;
    let id: i64 = g.target.parse().map_err(|_| ApiError::Internal)?;
    Ok(embedded(&g, engine.strategy_detail(&g.actor(), id).await?))
}

/// One peer group's health and ownership, through an embed token.
#[server(prefix = "/ui", endpoint = "embed/peer-group", input = server_fn::codec::GetUrl)]
pub async fn get_embed_peer_group(token: String) -> Result<Embedded<PeerGroupView>, ApiError> {
    let (engine, g) = grant(&token, engine::embeds::EmbedKind::PeerGroup).await?;
    Ok(embedded(&g, engine.peer_group_view(&g.target).await?))
}

/// Embed links and allowed origins (admins).
#[server(prefix = "/ui", endpoint = "embeds/list", input = server_fn::codec::GetUrl)]
pub async fn get_embed_settings() -> Result<EmbedSettings, ApiError> {
    let actor = crate::auth::actor()?;
    let engine = crate::error::engine()?;
    let links = engine.embed_links(&actor).await?;
    let origins = engine
        .embed_origins()
        .await?
        .into_iter()
        .map(|o| o.as_str().to_string())
        .collect();
    let public_origin = use_context::<PublicOrigin>()
        .map(|o| o.0)
        .unwrap_or_default();
    Ok(EmbedSettings {
        links,
        origins,
        public_origin,
    })
}

/// Creates an embed link (admins). `expires_in` is a number of `unit`s: seconds (for scripts;
/// the page offers minutes and up), minutes, hours or days.
#[server(prefix = "/ui", endpoint = "embeds/create")]
pub async fn create_embed_link(
    kind: String,
    #[server(default)] target: String,
    label: String,
    expires_in: String,
    unit: String,
) -> Result<EmbedLink, ApiError> {
    let actor = crate::auth::actor()?;
    let kind: engine::embeds::EmbedKind = kind.parse().map_err(ApiError::from)?;
    let seconds_per = match unit.as_str() {
        "seconds" => 1,
        "minutes" => 60,
        "hours" => 3_600,
        "days" => 86_400,
        _ => {
            return Err(ApiError::Invalid {
                field: "unit".into(),
                message: "choose seconds, minutes, hours or days".into(),
            })
        }
    };
    let n: i64 = expires_in
        .trim()
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| ApiError::Invalid {
            field: "expires_in".into(),
            message: "give a whole number greater than 0".into(),
        })?;
    let req = engine::embeds::NewEmbedLink {
        kind,
        target,
        label,
        expires_in_secs: n.saturating_mul(seconds_per),
    };
    let link = crate::error::engine()?
        .create_embed_link(&actor, &req)
        .await;
    finish_form(<CreateEmbedLink as leptos::server_fn::ServerFn>::PATH, link)
}

/// Revokes an embed link (admins).
#[server(prefix = "/ui", endpoint = "embeds/revoke")]
pub async fn revoke_embed_link(id: i64) -> Result<(), ApiError> {
    let actor = crate::auth::actor()?;
    let done = crate::error::engine()?.revoke_embed_link(&actor, id).await;
    finish_form(<RevokeEmbedLink as leptos::server_fn::ServerFn>::PATH, done)
}

/// Allows a portal origin to frame embeds (admins).
#[server(prefix = "/ui", endpoint = "embeds/origin-add")]
pub async fn add_embed_origin(origin: String) -> Result<(), ApiError> {
    let actor = crate::auth::actor()?;
    let done = crate::error::engine()?
        .add_embed_origin(&actor, &origin)
        .await
        .map(|_| ());
    finish_form(<AddEmbedOrigin as leptos::server_fn::ServerFn>::PATH, done)
}

/// Stops a portal origin from framing embeds (admins).
#[server(prefix = "/ui", endpoint = "embeds/origin-remove")]
pub async fn remove_embed_origin(origin: String) -> Result<(), ApiError> {
    let actor = crate::auth::actor()?;
    let done = crate::error::engine()?
        .remove_embed_origin(&actor, &origin)
        .await;
    finish_form(
        <RemoveEmbedOrigin as leptos::server_fn::ServerFn>::PATH,
        done,
    )
}

/// A form's outcome: a plain form post (no JavaScript) goes back to the page, which shows it.
#[cfg(feature = "ssr")]
fn finish_form<T>(fn_path: &str, r: Result<T, engine::Error>) -> Result<T, ApiError> {
    let r = r.map_err(ApiError::from);
    if crate::error::plain_form() {
        match &r {
            Ok(_) => leptos_axum::redirect("/embeds"),
            Err(e) => crate::error::redirect_with_error(fn_path, "/embeds", e),
        }
    }
    r
}

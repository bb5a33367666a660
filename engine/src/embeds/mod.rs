//! Portal embeds: read-only views (status summary, map, a strategy's progress, a peer group's
//! health) that NOC portals show in an iframe without anyone signing in.
//!
//! An admin creates an embed link for one view. The link carries a token `<id>.<signature>`:
//! an HMAC-SHA256, under a key only this controller knows, of the link's id, view, target and
//! expiry. The store keeps the link's row, not the token, so the token can be shown again
//! (the admin page lists every link's address) and a revoked or expired row refuses it even
//! though its signature is good. Which portals may frame embeds is a separate, admin-managed
//! list of origins, sent as `Content-Security-Policy: frame-ancestors`.

use serde::{Deserialize, Serialize};

use crate::auth::{Actor, Role};
use crate::error::ValidationError;
use crate::text_enum::text_enum;
use crate::time::Millis;

#[cfg(feature = "store")]
mod store;

text_enum! {
    /// Which view an embed link shows.
    pub enum EmbedKind: "embed view" {
        /// The status summary: verdict, counts, problems.
        Status = "status",
        /// The fleet map, at the view saved in the link.
        Map = "map",
        /// One strategy's progress.
        Strategy = "strategy",
        /// One peer group's health and ownership.
        PeerGroup = "peer-group",
    }
}

impl EmbedKind {
    /// What the view is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            EmbedKind::Status => "Status summary",
            EmbedKind::Map => "Fleet map",
            EmbedKind::Strategy => "Strategy progress",
            EmbedKind::PeerGroup => "Peer-group health",
        }
    }

    /// The embed page's path.
    pub fn path(self) -> String {
        format!("/embed/{}", self.as_str())
    }
}

/// Shortest and longest life of a link.
pub const MIN_LIFETIME_SECS: i64 = 1;
pub const MAX_LIFETIME_SECS: i64 = 366 * 24 * 3600;
/// Most origins on the allow-list (each one is sent in every embed's policy header).
pub const MAX_ORIGINS: usize = 50;

/// An admin's request for a new embed link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEmbedLink {
    pub kind: EmbedKind,
    /// The strategy id (strategy), the peer group's name (peer-group), the map's view as URL
    /// parameters (map, may be empty); empty for the status summary.
    #[serde(default)]
    pub target: String,
    /// What the link is for ("Portal front page").
    pub label: String,
    /// How long it stays valid.
    pub expires_in_secs: i64,
}

/// Whether a link still opens its view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmbedLinkState {
    Active,
    Expired,
    Revoked,
}

impl EmbedLinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            EmbedLinkState::Active => "active",
            EmbedLinkState::Expired => "expired",
            EmbedLinkState::Revoked => "revoked",
        }
    }
}

/// An embed link as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedLink {
    pub id: i64,
    pub kind: EmbedKind,
    pub target: String,
    pub label: String,
    pub created_by: String,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub revoked_at: Option<Millis>,
    pub state: EmbedLinkState,
    /// The embed's address on this controller (path and query, token included).
    pub path: String,
}

/// What a valid token opens: one view of one target, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedGrant {
    pub link_id: i64,
    pub kind: EmbedKind,
    pub target: String,
    pub label: String,
    pub expires_at: Millis,
}

impl EmbedGrant {
    /// Who reads through this grant: a read-only actor named after the link, so the engine's
    /// read checks apply and nothing can be changed.
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: None,
            name: format!("embed #{}", self.link_id),
            role: Some(Role::Viewer),
            client_addr: None,
        }
    }
}

/// An origin a portal is served from, allowed to frame embeds: `https://portal.example.com`,
/// `http://10.0.0.5:8080`, or a wildcard host `https://*.noc.example`. Lowercase, no path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedOrigin(String);

impl EmbedOrigin {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let bad = |m: &str| ValidationError::new("origin", m);
        let s = raw.trim().trim_end_matches('/').to_ascii_lowercase();
        if s.is_empty() {
            return Err(bad("enter an origin such as https://portal.example.com"));
        }
        if s.len() > 200 {
            return Err(bad("an origin is at most 200 characters"));
        }
        let Some((scheme, rest)) = s.split_once("://") else {
            return Err(bad(
                "an origin starts with http:// or https:// (e.g. https://portal.example.com)",
            ));
        };
        if scheme != "http" && scheme != "https" {
            return Err(bad("an origin's scheme is http or https"));
        }
        if rest.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "an origin is a scheme, a host and an optional port: no path, query or user",
            ));
        }
        let (host, port) = match rest.rsplit_once(':') {
            // An IPv6 literal keeps its colons inside brackets.
            Some((h, p)) if !p.contains(']') => (h, Some(p)),
            _ => (rest, None),
        };
        if let Some(p) = port {
            if p.parse::<u16>().map_or(true, |n| n == 0) {
                return Err(bad("the port is a number from 1 to 65535"));
            }
        }
        let bare = host.strip_prefix("*.").unwrap_or(host);
        let ipv6 = bare.starts_with('[') && bare.ends_with(']') && bare.len() > 2;
        let valid_host = if ipv6 {
            host == bare
                && bare[1..bare.len() - 1]
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.')
        } else {
            !bare.is_empty()
                && bare.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && !label.starts_with('-')
                        && !label.ends_with('-')
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
        };
        if !valid_host {
            return Err(bad(
                "the host is a name or an address (letters, digits, dots, hyphens; a leading *. allows subdomains)",
            ));
        }
        Ok(Self(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The `frame-ancestors` source list for these origins (`'none'` when there are none).
pub fn frame_ancestors(origins: &[EmbedOrigin]) -> String {
    if origins.is_empty() {
        "'none'".into()
    } else {
        origins
            .iter()
            .map(EmbedOrigin::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The message every refused token gets when it is malformed or its signature is wrong: it
/// says no more than that.
pub const INVALID_LINK: &str = "this embed link is not valid";

/// Splits a token into its link id and signature, refusing anything not of that shape.
pub fn parse_token(token: &str) -> Option<(i64, &str)> {
    if token.len() > 128 {
        return None;
    }
    let (id, sig) = token.split_once('.')?;
    let id: i64 = id.parse().ok().filter(|n| *n > 0)?;
    let well_formed = !sig.is_empty()
        && sig
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    well_formed.then_some((id, sig))
}

/// The state of a link at `now`.
pub fn link_state(expires_at: Millis, revoked_at: Option<Millis>, now: Millis) -> EmbedLinkState {
    if revoked_at.is_some() {
        EmbedLinkState::Revoked
    } else if now.0 >= expires_at.0 {
        EmbedLinkState::Expired
    } else {
        EmbedLinkState::Active
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        for (raw, want) in [
            ("https://portal.example.com", "https://portal.example.com"),
            ("HTTPS://Portal.Example.com/", "https://portal.example.com"),
            ("http://10.0.0.5:8080", "http://10.0.0.5:8080"),
            ("http://localhost:4001", "http://localhost:4001"),
            ("https://*.noc.example", "https://*.noc.example"),
            ("http://[::1]:3000", "http://[::1]:3000"),
        ] {
            assert_eq!(EmbedOrigin::parse(raw).unwrap().as_str(), want, "{raw}");
        }
        for bad in [
            "",
            "portal.example.com",
            "ftp://portal.example.com",
            "https://portal.example.com/page",
            "https://portal.example.com?x=1",
            "https://user@portal.example.com",
            "https://portal.example.com:0",
            "https://portal.example.com:99999",
            "https://*",
            "https://a..b",
            "https://-a.example",
            "https://a b.example",
            "https://portal.example.com; script-src *",
            "'self'",
            "*",
            "https://[zz]",
        ] {
            assert!(EmbedOrigin::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(EmbedOrigin::parse(&format!("https://{}.example", "a".repeat(200))).is_err());
    }

    #[test]
    fn frame_ancestors_lists_origins_or_none() {
        assert_eq!(frame_ancestors(&[]), "'none'");
        let o = [
            EmbedOrigin::parse("https://a.example").unwrap(),
            EmbedOrigin::parse("http://b.example:81").unwrap(),
        ];
        assert_eq!(frame_ancestors(&o), "https://a.example http://b.example:81");
    }

    #[test]
    fn tokens_have_one_shape() {
        assert_eq!(parse_token("12.abc-_Z9"), Some((12, "abc-_Z9")));
        for bad in [
            "", "12", "12.", ".abc", "0.abc", "-1.abc", "x.abc", "12.ab.c", "12.a b", "12.a%20",
        ] {
            assert_eq!(parse_token(bad), None, "{bad:?}");
        }
        assert_eq!(parse_token(&format!("1.{}", "a".repeat(200))), None);
    }

    #[test]
    fn state_follows_revocation_then_expiry() {
        let now = Millis(1_000);
        assert_eq!(link_state(Millis(2_000), None, now), EmbedLinkState::Active);
        assert_eq!(
            link_state(Millis(1_000), None, now),
            EmbedLinkState::Expired
        );
        assert_eq!(
            link_state(Millis(2_000), Some(Millis(500)), now),
            EmbedLinkState::Revoked
        );
    }
}

//! Configuration: defaults, overridden by a TOML file, overridden by `MURMUR_*` environment
//! variables, overridden by command-line flags. The same keys everywhere:
//!
//! | key            | env                   | flag             | default                 |
//! |----------------|-----------------------|------------------|-------------------------|
//! | `listen`       | `MURMUR_LISTEN`       | `--listen`       | `127.0.0.1:3000`        |
//! | `database_url` | `MURMUR_DATABASE_URL` | `--database-url` | `sqlite://murmur.db`    |
//! | `site_root`    | `MURMUR_SITE_ROOT`    | `--site-root`    | `target/site`           |
//! | `log_format`   | `MURMUR_LOG_FORMAT`   | `--log-format`   | `text` (or `json`)      |
//! | `public_url`   | `MURMUR_PUBLIC_URL`   | `--public-url`   | `http://` + listen addr |
//! | `session_idle_seconds` | `MURMUR_SESSION_IDLE_SECONDS` | `--session-idle-seconds` | 28800 (8 h) |
//! | `session_absolute_seconds` | `MURMUR_SESSION_ABSOLUTE_SECONDS` | `--session-absolute-seconds` | 86400 (24 h) |
//! | `controller_name` | `MURMUR_CONTROLLER_NAME` | `--controller-name` | `local` (demo: `sc-amsterdam`) |
//! | `report_interval_ms` | `MURMUR_REPORT_INTERVAL_MS` | `--report-interval-ms` | 10000 |
//! | `offline_after_missed` | `MURMUR_OFFLINE_AFTER_MISSED` | `--offline-after-missed` | 3 |
//! | `online_after_reports` | `MURMUR_ONLINE_AFTER_REPORTS` | `--online-after-reports` | 2 |
//! | `health_tick_ms` | `MURMUR_HEALTH_TICK_MS` | `--health-tick-ms` | 1000 |
//!
//! Geo-redundancy is configured in the file only, in a `[geo]` table (see [`GeoFileConfig`]):
//! this controller's capacity and reserve, the heartbeat settings it applies to its peers, and
//! each peer's name, URL and shared secret (`[[geo.peers]]`). Without it the controller
//! manages every subcloud in its store on its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use engine::auth::SessionPolicy;
use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The settings a file may hold; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub site_root: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub public_url: Option<String>,
    pub session_idle_seconds: Option<u64>,
    pub session_absolute_seconds: Option<u64>,
    pub controller_name: Option<String>,
    pub report_interval_ms: Option<u64>,
    pub offline_after_missed: Option<u32>,
    pub online_after_reports: Option<u32>,
    pub health_tick_ms: Option<u64>,
    pub geo: Option<GeoFileConfig>,
}

/// `[geo]`: this controller as one of several peers.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GeoFileConfig {
    /// Subclouds this controller may manage at most.
    pub capacity: u64,
    /// Kept free: a takeover only uses capacity beyond it.
    #[serde(default)]
    pub reserved_capacity: u64,
    #[serde(default = "default_heartbeat_interval_ms")]
    pub heartbeat_interval_ms: u64,
    #[serde(default = "default_failure_threshold")]
    pub heartbeat_failure_threshold: u32,
    /// `alarm`, `rehome` or `delegate`.
    #[serde(default = "default_failure_policy")]
    pub heartbeat_failure_policy: String,
    /// With `delegate`: the controller that decides.
    pub delegate_to: Option<String>,
    #[serde(default = "default_maintenance_timeout_s")]
    pub heartbeat_maintenance_timeout_s: u64,
    /// Share (percent) of a group's online sites whose agents must confirm the owner is
    /// unreachable before a takeover.
    #[serde(default = "default_quorum_percent")]
    pub quorum_percent: u32,
    /// How recent an agent's report must be to count as evidence (default: 3 report
    /// intervals).
    pub evidence_window_ms: Option<u64>,
    /// Refresh of secondary copies without edits.
    #[serde(default = "default_resync_ms")]
    pub resync_ms: u64,
    /// Groups whose home is this controller come back automatically once it has been
    /// available again this long (seconds); 0: failback is an operator action.
    #[serde(default)]
    pub failback_hold_down_s: u64,
    #[serde(default)]
    pub peers: Vec<GeoPeerFileConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GeoPeerFileConfig {
    pub name: String,
    pub url: String,
    pub secret: String,
}

fn default_heartbeat_interval_ms() -> u64 {
    10_000
}
fn default_failure_threshold() -> u32 {
    3
}
fn default_failure_policy() -> String {
    "rehome".into()
}
fn default_maintenance_timeout_s() -> u64 {
    600
}
fn default_quorum_percent() -> u32 {
    50
}
fn default_resync_ms() -> u64 {
    10_000
}

impl GeoFileConfig {
    /// The engine's configuration for a controller reachable at `url`.
    pub fn to_engine(
        &self,
        this: &str,
        url: &str,
        report_interval_ms: u64,
        demo: bool,
    ) -> anyhow::Result<engine::georedundancy::GeoConfig> {
        let policy =
            self.heartbeat_failure_policy
                .parse()
                .map_err(|e: engine::ValidationError| {
                    anyhow::anyhow!("geo.heartbeat_failure_policy: {}", e.message)
                })?;
        let config = engine::georedundancy::GeoConfig {
            this: this.to_string(),
            url: url.to_string(),
            capacity: self.capacity,
            reserved_capacity: self.reserved_capacity,
            heartbeat: engine::georedundancy::HeartbeatSettings {
                interval_ms: self.heartbeat_interval_ms,
                failure_threshold: self.heartbeat_failure_threshold,
                failure_policy: policy,
                delegate_to: self.delegate_to.clone(),
                maintenance_timeout_s: self.heartbeat_maintenance_timeout_s,
            },
            peers: self
                .peers
                .iter()
                .map(|p| {
                    anyhow::ensure!(
                        origin_of(&p.url).is_some(),
                        "geo.peers: {} has no http(s) url",
                        p.name
                    );
                    Ok(engine::georedundancy::PeerConfig {
                        name: p.name.clone(),
                        url: p.url.trim_end_matches('/').to_string(),
                        secret: p.secret.clone(),
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            quorum_percent: self.quorum_percent,
            evidence_window_ms: self
                .evidence_window_ms
                .unwrap_or(report_interval_ms.saturating_mul(3)),
            resync_ms: self.resync_ms.max(1_000),
            failback_hold_down_s: self.failback_hold_down_s,
            demo,
        };
        config
            .validate()
            .map_err(|e| anyhow::anyhow!("geo.{}: {}", e.field, e.message))?;
        Ok(config)
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }
}

/// Effective configuration of one controller.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub site_root: PathBuf,
    pub log_format: LogFormat,
    /// The URL browsers use to reach this controller (scheme, host, port). Cross-site checks
    /// compare request origins with it; `https` turns on Secure cookies and HSTS. `None`:
    /// `http://` and the bound address.
    pub public_url: Option<String>,
    pub session: SessionPolicy,
    pub health: HealthSettings,
    pub geo: Option<GeoFileConfig>,
    /// `murmur demo`: admins may stop and start controllers from the dashboard.
    pub demo: bool,
}

/// How this controller takes agent reports and derives availability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSettings {
    /// This controller's name as agents see it (one of the store's system controllers for
    /// the demo fleet).
    pub controller_name: String,
    pub report_interval_ms: u64,
    pub offline_after_missed: u32,
    pub online_after_reports: u32,
    pub tick_ms: u64,
}

impl Default for HealthSettings {
    fn default() -> Self {
        Self {
            controller_name: "local".into(),
            report_interval_ms: 10_000,
            offline_after_missed: 3,
            online_after_reports: 2,
            tick_ms: 1_000,
        }
    }
}

impl Config {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:3000";
    pub const DEFAULT_SESSION_IDLE_SECONDS: u64 = 8 * 3600;
    pub const DEFAULT_SESSION_ABSOLUTE_SECONDS: u64 = 24 * 3600;
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://murmur.db";
    pub const DEFAULT_SITE_ROOT: &'static str = "target/site";
}

/// The origin (`scheme://host[:port]`) of a public URL, lowercased, without path; `None` if
/// it is not an http(s) URL.
pub fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?.to_ascii_lowercase();
    if host.is_empty() || host.contains('@') {
        return None;
    }
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origins() {
        assert_eq!(
            origin_of("https://NOC.example.com/murmur/").as_deref(),
            Some("https://noc.example.com")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:3000").as_deref(),
            Some("http://127.0.0.1:3000")
        );
        assert_eq!(origin_of("ftp://x"), None);
        assert_eq!(origin_of("https://user@host"), None);
        assert_eq!(origin_of("noscheme"), None);
    }
}

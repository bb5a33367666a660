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

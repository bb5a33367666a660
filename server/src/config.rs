//! Configuration: defaults, overridden by a TOML file, overridden by `MURMUR_*` environment
//! variables, overridden by command-line flags. The same keys everywhere:
//!
//! | key            | env                   | flag             | default                 |
//! |----------------|-----------------------|------------------|-------------------------|
//! | `listen`       | `MURMUR_LISTEN`       | `--listen`       | `127.0.0.1:3000`        |
//! | `database_url` | `MURMUR_DATABASE_URL` | `--database-url` | `sqlite://murmur.db`    |
//! | `site_root`    | `MURMUR_SITE_ROOT`    | `--site-root`    | `target/site`           |
//! | `log_format`   | `MURMUR_LOG_FORMAT`   | `--log-format`   | `text` (or `json`)      |

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
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
}

impl Config {
    pub const DEFAULT_LISTEN: &'static str = "127.0.0.1:3000";
    pub const DEFAULT_DATABASE_URL: &'static str = "sqlite://murmur.db";
    pub const DEFAULT_SITE_ROOT: &'static str = "target/site";
}

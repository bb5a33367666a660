//! The `murmur` controller process: configuration, HTTP surface (dashboard, REST API) and
//! startup. Business logic lives in the `engine` crate; the dashboard in `app`.

pub mod agents;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
mod error;
pub mod map;
pub mod middleware;
pub mod peers;
pub mod preferences;
pub mod startup;
pub mod telemetry;

pub use startup::Application;

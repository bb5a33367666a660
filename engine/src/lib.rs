//! Murmuration's engine: the domain model of a distributed cloud and the logic that runs it.
//!
//! Organised by capability: [`fleet`] (subclouds, groups, controllers, peer groups, the demo
//! fleet), [`health`] (alarms and their roll-up). With the default `store` feature the crate
//! also owns persistence ([`store`]), the [`Engine`] façade, the event bus and the audit log.
//! It knows nothing of HTTP or Leptos: the server and the dashboard call it.

pub mod agents;
pub mod auth;
pub mod embeds;
pub mod error;
pub mod fleet;
pub mod georedundancy;
pub mod health;
pub mod orchestration;
pub mod paging;
mod text_enum;
pub mod time;
pub mod url;

pub mod audit;
#[cfg(feature = "store")]
mod engine;
#[cfg(feature = "store")]
pub mod events;
#[cfg(feature = "store")]
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

#[cfg(feature = "store")]
pub use engine::Engine;
pub use error::{Error, ValidationError};

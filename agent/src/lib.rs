//! `murmur-agent` as a library: the agent that runs at one real subcloud ([`site_agent`]) and
//! the fleet simulator that runs thousands of virtual subclouds in one process ([`sim`]).
//!
//! Both speak the versioned protocol in [`engine::agents::wire`] through one pooled HTTP
//! client ([`transport`]) and share the protocol rules every agent must follow: strictly
//! increasing report numbers ([`seq`]), epoch fencing and idempotent handling of commands
//! ([`commands`]), and failover across the ordered controller list ([`failover`]).
//!
//! The server's `murmur demo` embeds the simulator: [`sim::Simulator::start`].

pub mod admin;
pub mod commands;
pub mod failover;
pub mod seq;
pub mod sim;
pub mod site_agent;
pub mod transport;

mod text;

/// The agent's version, reported in every report.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Wall-clock milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

//! How this controller takes part in geo-redundancy: its peers, capacity, quorum and timing.

use std::collections::{HashMap, HashSet};

use super::model::*;

/// One peer as configured on this controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub name: String,
    /// Base URL of the peer (its dashboard, agent and peer APIs).
    pub url: String,
    /// Shared with that peer; authenticates both directions.
    pub secret: String,
}

/// How this controller takes part in geo-redundancy.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoConfig {
    /// This controller's name (a row of `system_controllers`).
    pub this: String,
    /// This controller's base URL as agents and peers reach it.
    pub url: String,
    pub capacity: u64,
    pub reserved_capacity: u64,
    /// Heartbeat settings applied to every configured peer.
    pub heartbeat: HeartbeatSettings,
    pub peers: Vec<PeerConfig>,
    /// Share (percent) of a group's online sites that must confirm the owner is unreachable.
    pub quorum_percent: u32,
    /// How recent a report must be to count as evidence.
    pub evidence_window_ms: u64,
    /// How often replicated copies are refreshed even without edits (health changes).
    pub resync_ms: u64,
    /// Groups whose home is this controller fail back automatically once it has been
    /// available this long again (seconds); 0: only operators fail back.
    pub failback_hold_down_s: u64,
    /// Demo: operators may stop and start controllers from the dashboard.
    pub demo: bool,
}

impl GeoConfig {
    pub fn validate(&self) -> std::result::Result<(), crate::ValidationError> {
        self.heartbeat.validate()?;
        if !(1..=100).contains(&self.quorum_percent) {
            return Err(crate::ValidationError::new(
                "quorum_percent",
                "must be 1..=100",
            ));
        }
        if self.reserved_capacity > self.capacity {
            return Err(crate::ValidationError::new(
                "reserved_capacity",
                "cannot exceed capacity",
            ));
        }
        let mut names = HashSet::new();
        for p in &self.peers {
            if p.name == self.this || !names.insert(&p.name) {
                return Err(crate::ValidationError::new(
                    "peers",
                    format!("peer {} is listed twice or is this controller", p.name),
                ));
            }
            if p.secret.len() < 16 {
                return Err(crate::ValidationError::new(
                    "peers",
                    format!("the secret for {} must be at least 16 characters", p.name),
                ));
            }
        }
        if names.len() + 1 >= EPOCH_SLOTS as usize {
            return Err(crate::ValidationError::new("peers", "too many peers"));
        }
        Ok(())
    }

    /// Each controller's epoch slot: its position among all names, from 1. Every controller
    /// computes the same slots from the same set of names.
    pub(crate) fn slots(&self) -> HashMap<String, u64> {
        let mut names: Vec<&str> = self.peers.iter().map(|p| p.name.as_str()).collect();
        names.push(&self.this);
        names.sort_unstable();
        names
            .into_iter()
            .enumerate()
            .map(|(k, n)| (n.to_string(), k as u64 + 1))
            .collect()
    }
}

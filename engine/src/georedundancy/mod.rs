//! Geo-redundancy: peer controllers, peer groups and automatic, fenced takeover.
//!
//! Every controller keeps a full copy of the fleet. The owner of a peer group
//! (`peer_groups.leader_id`) is the only controller that manages its subclouds; the others
//! keep a secondary copy that the owner replicates to them (`GroupSnapshot`).
//!
//! - [`model`]: types, the peer protocol's messages, epochs.
//! - [`plan`]: where a failed controller's groups go (pure; the drill uses it too).
//! - [`decide`]: whether and where a failed controller's groups move now (pure: who decides,
//!   policies, maintenance, the evidence quorum, the decisions from a plan).
//! - `config`: this controller's part (peers, capacity, quorum, timing).
//! - `runtime`: live peer state and the peer loop (inbound messages, operator actions, read
//!   views, the loop's round), carrying out `decide`'s decisions.
//! - `store`: reads, takeover and adoption transactions, replication.
//!
//! Safety rests on three rules:
//! 1. **Evidence before action.** Missed heartbeats only raise an alarm. A group moves when a
//!    quorum of its recently reporting agents, failed over to the survivors, say they cannot
//!    reach the owner. A cut link between controllers leaves the agents with their owner, so
//!    the survivors get no evidence and nothing moves.
//! 2. **Epoch fencing.** Every move raises the group's epoch; each controller claims epochs of
//!    its own slot ([`model::next_epoch`]), so no two claims are equal. Agents obey only the
//!    highest epoch they have seen and report it; a controller that sees a higher epoch (from
//!    an agent or a peer) stops managing the group at once.
//! 3. **One decider.** For a failed controller with policy `rehome` the alive controller with
//!    the smallest name decides (all survivors compute the same); with `delegate` the named
//!    delegate decides; with `alarm` an operator does.

#[cfg(feature = "store")]
mod config;
pub mod decide;
pub mod model;
pub mod plan;
#[cfg(feature = "store")]
mod runtime;
#[cfg(feature = "store")]
pub(crate) mod store;

#[cfg(feature = "store")]
pub use config::{GeoConfig, PeerConfig};
pub use model::*;
#[cfg(feature = "store")]
pub use runtime::{spawn_peer_loop, GeoRuntime, PeerFuture, PeerLink};

/// Alarm ids raised about controllers.
pub mod alarm_ids {
    /// A system peer stopped answering heartbeats (StarlingX 280.004).
    pub const PEER_UNREACHABLE: &str = "280.004";
    /// A peer group's owner failed and policy `alarm` waits for an operator (StarlingX 280.005).
    pub const GROUP_WAITING_FOR_MIGRATE: &str = "280.005";
    /// A takeover plan could not place every group (Murmuration).
    pub const CAPACITY_SHORTFALL: &str = "280.910";
}

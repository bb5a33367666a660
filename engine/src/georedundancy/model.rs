//! Types of geo-redundancy shared by the engine, the server and the dashboard: system peers
//! (StarlingX reference §1.4), peer group associations (§1.5), the peer protocol's messages,
//! ownership epochs and the takeover plan.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::fleet::{ControllerAvailability, MigrationStatus, PeerGroupState};
use crate::text_enum::text_enum;
use crate::time::Millis;

text_enum! {
    /// What a controller does when a peer stops answering heartbeats (reference §1.4; StarlingX
    /// implements only `alarm`).
    pub enum FailurePolicy: "heartbeat failure policy" {
        /// Raise an alarm and wait for an operator's migrate.
        Alarm = "alarm",
        /// Take over the failed peer's groups automatically, once its agents confirm.
        Rehome = "rehome",
        /// Let a named third controller decide (it takes over or orders a survivor to).
        Delegate = "delegate",
    }
}

text_enum! {
    /// Administrative state of a system peer.
    pub enum AdminState: "administrative state" {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

text_enum! {
    /// Whether a controller owns a peer group (`primary`) or keeps a secondary copy.
    pub enum AssociationType: "association type" {
        Primary = "primary",
        NonPrimary = "non-primary",
    }
}

text_enum! {
    /// How the owner's copy of a peer group reached an associated controller (reference §1.5).
    pub enum AssociationSync: "sync status" {
        Syncing = "syncing",
        InSync = "in-sync",
        OutOfSync = "out-of-sync",
        Failed = "failed",
        Unknown = "unknown",
    }
}

text_enum! {
    /// Rehoming of one subcloud after its peer group moved.
    pub enum RehomeStatus: "rehome status" {
        None = "none",
        /// The new owner has not admitted it yet (the ramp of `max_subcloud_rehoming`).
        Waiting = "waiting",
        Rehomed = "rehomed",
    }
}

/// Ranges of the heartbeat settings. The interval goes down to 1 s (StarlingX: 10 s).
pub const HEARTBEAT_INTERVAL_MS: (u64, u64) = (1_000, 600_000);
pub const FAILURE_THRESHOLD: (u32, u32) = (1, 30);
pub const MAINTENANCE_TIMEOUT_S: (u64, u64) = (10, 36_000);
pub const MAX_SUBCLOUD_REHOMING: (u32, u32) = (1, 250);
/// Epochs are `round * EPOCH_SLOTS + slot`: each controller claims epochs of its own slot, so
/// two controllers can never claim the same epoch, whatever they believe about each other.
pub const EPOCH_SLOTS: u64 = 64;

/// The epoch a controller with `slot` (1..EPOCH_SLOTS) claims when it takes a group whose
/// epoch is `current`: the next round, its slot. Always above `current`.
pub fn next_epoch(current: u64, slot: u64) -> u64 {
    let slot = slot.clamp(1, EPOCH_SLOTS - 1);
    (current / EPOCH_SLOTS + 1) * EPOCH_SLOTS + slot
}

/// Heartbeat settings this controller applies to one peer (reference §1.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatSettings {
    pub interval_ms: u64,
    pub failure_threshold: u32,
    pub failure_policy: FailurePolicy,
    /// With [`FailurePolicy::Delegate`]: the controller that decides.
    pub delegate_to: Option<String>,
    pub maintenance_timeout_s: u64,
}

impl Default for HeartbeatSettings {
    fn default() -> Self {
        Self {
            interval_ms: 60_000,
            failure_threshold: 3,
            failure_policy: FailurePolicy::Alarm,
            delegate_to: None,
            maintenance_timeout_s: 600,
        }
    }
}

impl HeartbeatSettings {
    pub fn validate(&self) -> Result<(), ValidationError> {
        let (lo, hi) = HEARTBEAT_INTERVAL_MS;
        if !(lo..=hi).contains(&self.interval_ms) {
            return Err(ValidationError::new(
                "heartbeat_interval_ms",
                format!("must be {lo}..={hi}"),
            ));
        }
        let (lo, hi) = FAILURE_THRESHOLD;
        if !(lo..=hi).contains(&self.failure_threshold) {
            return Err(ValidationError::new(
                "heartbeat_failure_threshold",
                format!("must be {lo}..={hi}"),
            ));
        }
        let (lo, hi) = MAINTENANCE_TIMEOUT_S;
        if !(lo..=hi).contains(&self.maintenance_timeout_s) {
            return Err(ValidationError::new(
                "heartbeat_maintenance_timeout",
                format!("must be {lo}..={hi} seconds"),
            ));
        }
        match (self.failure_policy, &self.delegate_to) {
            (FailurePolicy::Delegate, None) => Err(ValidationError::new(
                "delegate_to",
                "policy delegate needs the name of the deciding controller",
            )),
            (FailurePolicy::Delegate, Some(n)) if n.trim().is_empty() => Err(ValidationError::new(
                "delegate_to",
                "must name a controller",
            )),
            _ => Ok(()),
        }
    }

    /// How long without an answered heartbeat before the peer is unavailable.
    pub fn failure_after_ms(&self) -> u64 {
        self.interval_ms
            .saturating_mul(u64::from(self.failure_threshold))
    }
}

/// A system controller as a peer (this one included), with its live heartbeat state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemPeer {
    pub id: i64,
    pub uuid: String,
    pub name: String,
    pub is_self: bool,
    pub manager_endpoint: String,
    pub gateway_address: String,
    pub administrative_state: AdminState,
    pub heartbeat: HeartbeatSettings,
    pub availability: ControllerAvailability,
    pub availability_changed_at: Option<Millis>,
    pub region: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    /// Subclouds it may manage at most.
    pub capacity: u64,
    /// Share of the capacity kept free: a takeover only uses capacity beyond it.
    pub reserved_capacity: u64,
    /// Subclouds it manages now (its peer groups' subclouds and its ungrouped ones).
    pub managed: u64,
    /// Last answered heartbeat (`None`: never since this controller started).
    pub last_seen: Option<Millis>,
    /// Round trip of the last heartbeat, ms.
    pub latency_ms: Option<u32>,
    /// Consecutive heartbeats without an answer.
    pub missed: u32,
    /// Automatic takeover paused on that controller (maintenance) until then.
    pub maintenance_until: Option<Millis>,
    pub active_alarms: Vec<ControllerAlarm>,
}

impl SystemPeer {
    /// Capacity left for a takeover: beyond the reserve and what it manages already.
    pub fn headroom(&self) -> u64 {
        self.capacity
            .saturating_sub(self.reserved_capacity)
            .saturating_sub(self.managed)
    }
}

/// An active or cleared alarm about a controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerAlarm {
    pub alarm_id: String,
    pub severity: String,
    pub reason: String,
    pub raised_at: Millis,
    pub cleared_at: Option<Millis>,
}

/// A peer group ↔ controller association (reference §1.5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Association {
    pub controller: String,
    /// 1 = preferred.
    pub priority: u32,
    pub association_type: AssociationType,
    pub sync_status: AssociationSync,
    pub sync_message: String,
    pub synced_at: Option<Millis>,
}

/// One change of a peer group's owner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnershipChange {
    pub at: Millis,
    pub from_controller: String,
    pub to_controller: String,
    pub epoch: u64,
    pub reason: String,
    pub actor: String,
}

/// Sites of a peer group by availability and rehoming.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupSites {
    pub total: u64,
    pub online: u64,
    pub offline: u64,
    pub critical: u64,
    pub degraded: u64,
    /// Sites whose agents do not observe their platform (alarm roll-up `unknown`).
    #[serde(default)]
    pub health_unknown: u64,
    pub rehome_waiting: u64,
    pub rehomed: u64,
}

/// A peer group with everything its page shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerGroupView {
    pub id: i64,
    pub name: String,
    pub priority: u32,
    pub state: PeerGroupState,
    pub max_subcloud_rehoming: u32,
    pub owner: String,
    pub home: String,
    pub owner_epoch: u64,
    pub owned_since: Millis,
    pub migration_status: MigrationStatus,
    pub failback_hold_down_s: u64,
    pub revision: u64,
    pub sites: GroupSites,
    /// In priority order.
    pub associations: Vec<Association>,
    /// Newest first.
    pub history: Vec<OwnershipChange>,
}

/// Everything the geo-redundancy pages show, from this controller's point of view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoOverview {
    /// This controller's name.
    pub this_controller: String,
    /// Whether peers are configured (otherwise this controller manages every subcloud).
    pub enabled: bool,
    /// Automatic takeover paused here (maintenance) until then.
    pub maintenance_until: Option<Millis>,
    pub peers: Vec<SystemPeer>,
    pub groups: Vec<PeerGroupView>,
    /// Subclouds in no peer group, by controller: not protected by geo-redundancy.
    pub unprotected: Vec<(String, u64)>,
    pub as_of: Millis,
}

/// Where one peer group goes in a takeover plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPlacement {
    pub group: String,
    pub sites: u64,
    /// `None`: no surviving associated controller has the capacity; the group waits.
    pub to: Option<String>,
    /// Why this controller (or why none).
    pub reason: String,
    /// Median agent round trip to the chosen controller, when agents measured it.
    pub agent_latency_ms: Option<u32>,
    /// Seconds for the new owner to admit every site at `max_subcloud_rehoming` per second.
    pub rehoming_seconds: u64,
}

/// Capacity of one surviving controller before and after a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacityAfter {
    pub controller: String,
    pub capacity: u64,
    pub reserved_capacity: u64,
    pub managed_before: u64,
    pub managed_after: u64,
}

/// What happens if `failed` fails now: computed without changing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TakeoverPlan {
    pub failed: String,
    pub policy: FailurePolicy,
    pub placements: Vec<GroupPlacement>,
    pub capacity: Vec<CapacityAfter>,
    /// Groups that wait for capacity.
    pub shortfall: Vec<String>,
    /// Sites of the failed controller in no peer group: they stay down with it.
    pub unprotected_sites: u64,
    /// Heartbeat interval × threshold.
    pub detection_seconds: f64,
    /// Detection + agent evidence + the slowest group's rehoming ramp.
    pub expected_seconds: f64,
    pub computed_at: Millis,
}

/// An operator's request to move a peer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrateRequest {
    pub peer_group: String,
    /// The controller that should own it.
    pub to: String,
}

/// What a migrate would do, computed without changing anything.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MigratePreview {
    pub group: String,
    pub from: String,
    pub to: String,
    pub sites: u64,
    /// Whether the current owner answers heartbeats (then it hands the group over).
    pub owner_available: bool,
    /// Headroom of the target beyond its reserve before the move.
    pub target_headroom: u64,
    /// Agents of the group that told this controller they cannot reach the owner.
    pub evidence_unreachable: u64,
    pub online_sites: u64,
    /// Seconds to admit every site at `max_subcloud_rehoming` per second.
    pub rehoming_seconds: u64,
    /// Things the operator should know (capacity, evidence, strategies that will pause).
    pub warnings: Vec<String>,
    /// `false` with the reason in `warnings` when the migrate would be refused.
    pub allowed: bool,
}

// ---------------------------------------------------------------------------------------
// The peer protocol (controller to controller, authenticated by a per-peer secret).
// ---------------------------------------------------------------------------------------

/// One controller's claim about a peer group's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupClaim {
    pub group: String,
    pub owner: String,
    pub epoch: u64,
}

/// What the agents of a group told one controller about their owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupEvidence {
    pub group: String,
    pub owner: String,
    /// Agents that reported here recently and could not reach the owner.
    pub owner_unreachable: u64,
}

/// A heartbeat, and its answer (the receiver answers with its own).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub from: String,
    pub sent_at: Millis,
    pub capacity: u64,
    pub reserved_capacity: u64,
    pub managed: u64,
    /// Automatic takeover paused on the sender (maintenance) until then.
    pub maintenance_until: Option<Millis>,
    /// The sender's view of every peer group's owner.
    pub claims: Vec<GroupClaim>,
    pub evidence: Vec<GroupEvidence>,
    /// Peers the sender hears now.
    pub hears: Vec<String>,
}

/// An order (from the deciding controller, or the owner handing a group over) to take a
/// peer group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverOrder {
    pub from: String,
    pub group: String,
    /// The owner and epoch the decision was based on: refused if they changed.
    pub owner: String,
    pub epoch: u64,
    /// `true`: the owner hands the group over (no failure; no evidence needed).
    pub handover: bool,
    pub reason: String,
}

/// The answer to a takeover order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TakeoverAnswer {
    pub group: String,
    pub owner: String,
    pub epoch: u64,
}

/// The owner's copy of one subcloud, as replicated to associated controllers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubcloudCopy {
    /// Must be the same on every controller: agent credentials name it.
    pub id: i64,
    pub name: String,
    pub description: String,
    pub location: String,
    pub city: String,
    pub country: String,
    pub region: String,
    pub lat: f64,
    pub lon: f64,
    pub timezone: String,
    pub management_state: String,
    pub availability: String,
    pub deploy_status: String,
    pub sync_status: String,
    pub software_version: String,
    pub group: String,
    pub alarm_status: String,
    pub alarm_rank: i64,
    pub critical_alarms: i64,
    pub major_alarms: i64,
    pub minor_alarms: i64,
    pub warnings: i64,
    pub rehome_status: String,
    /// Hex SHA-256 of the agent's secret (never the secret), `None` if none or revoked.
    pub secret_hash: Option<String>,
    pub last_seq: i64,
}

/// The owner's copy of a peer group and its subclouds, pushed to each associated controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupSnapshot {
    pub from: String,
    pub group: String,
    pub priority: u32,
    pub state: PeerGroupState,
    pub max_subcloud_rehoming: u32,
    pub owner: String,
    pub home: String,
    pub epoch: u64,
    pub migration_status: MigrationStatus,
    pub failback_hold_down_s: u64,
    pub revision: u64,
    /// (controller, priority), priority order.
    pub associations: Vec<(String, u32)>,
    /// Median agent round trip from the group's sites to each controller, ms.
    pub agent_latency_ms: Vec<(String, u32)>,
    pub subclouds: Vec<SubcloudCopy>,
}

/// The strategies a controller runs, pushed to every peer so a survivor that takes over their
/// sites can resume them (`POST /peer/v1/strategies`). Whole copies of the strategies changed
/// since the last push to that peer (or all, every resync).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategySync {
    pub from: String,
    pub strategies: Vec<StrategyCopy>,
}

/// One strategy as its runner holds it. Local row ids differ between stores: `uuid` names it,
/// subcloud ids are the same everywhere (agent credentials carry them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrategyCopy {
    pub uuid: String,
    pub strategy_type: String,
    pub state: String,
    /// The validated request, as JSON.
    pub spec: String,
    pub target: String,
    pub args: String,
    pub current_wave: i64,
    pub wave_count: i64,
    /// total, complete, failed, skipped, aborted, in flight.
    pub counts: [i64; 6],
    pub step_estimate_ms: i64,
    pub measured_steps: i64,
    pub measured_ms: i64,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub origin: String,
    pub run_by: String,
    /// Takeovers so far: a copy from an older handover never overwrites a newer one.
    pub handover: i64,
    pub waves: Vec<WaveCopy>,
    pub steps: Vec<StepCopy>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaveCopy {
    pub wave: i64,
    pub name: String,
    pub apply_type: String,
    pub max_parallel: i64,
    pub sites: i64,
    pub state: String,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub soak_until: Option<i64>,
    pub failures_accepted: i64,
}

/// A step without its command: commands are the runner's own; a controller that takes the
/// strategy over re-issues in-flight attempts under the same key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCopy {
    pub subcloud_id: i64,
    pub wave: i64,
    pub position: i64,
    pub state: String,
    pub phase: String,
    pub percent: i64,
    pub attempt: i64,
    pub details: String,
    pub from_version: String,
    pub not_before: Option<i64>,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_increase_and_never_collide_between_slots() {
        assert_eq!(next_epoch(1, 2), 66);
        assert_eq!(next_epoch(66, 1), 129);
        assert_eq!(next_epoch(129, 3), 195);
        for current in [0, 1, 63, 64, 65, 1000] {
            let a = next_epoch(current, 1);
            let b = next_epoch(current, 2);
            assert!(a > current && b > current);
            assert_ne!(a, b);
            assert_eq!(a % EPOCH_SLOTS, 1);
        }
    }

    #[test]
    fn heartbeat_settings_are_checked() {
        let ok = HeartbeatSettings {
            interval_ms: 1_000,
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        assert_eq!(ok.failure_after_ms(), 3_000);
        let too_fast = HeartbeatSettings {
            interval_ms: 999,
            ..Default::default()
        };
        assert_eq!(
            too_fast.validate().unwrap_err().field,
            "heartbeat_interval_ms"
        );
        let delegate = HeartbeatSettings {
            failure_policy: FailurePolicy::Delegate,
            ..Default::default()
        };
        assert_eq!(delegate.validate().unwrap_err().field, "delegate_to");
    }
}

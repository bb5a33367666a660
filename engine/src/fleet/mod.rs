//! Fleet inventory: subclouds, subcloud groups, system controllers and peer groups; the
//! subcloud list query; the fleet overview; and the deterministic demo fleet.

mod add;
pub mod cities;
pub mod map;
mod model;
mod query;

#[cfg(feature = "store")]
pub mod demo;
#[cfg(feature = "store")]
pub mod demo_strategy;
#[cfg(feature = "store")]
mod store;

mod map_view;

pub use add::NewSubcloud;
pub use map_view::*;
pub use model::*;
pub use query::*;
#[cfg(feature = "store")]
pub(crate) use store::push_filters as push_subcloud_filters;

use serde::{Deserialize, Serialize};

use crate::health::{Alarm, AlarmCounts, AlarmStatus};
use crate::time::Millis;

/// One row of the subcloud list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubcloudSummary {
    pub name: String,
    pub management: ManagementState,
    pub availability: AvailabilityStatus,
    pub deploy_status: DeployStatus,
    pub sync_status: SyncStatus,
    pub alarm_status: AlarmStatus,
    pub alarms: AlarmCounts,
    pub software_version: String,
    pub group: String,
    pub peer_group: Option<String>,
    pub controller: String,
    pub city: String,
    pub country: String,
    pub region: String,
}

/// Sync status of one endpoint of one subcloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EndpointSync {
    pub endpoint: EndpointType,
    pub status: SyncStatus,
    pub updated_at: Millis,
}

/// Everything known about one subcloud.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubcloudDetail {
    pub id: i64,
    pub summary: SubcloudSummary,
    pub description: String,
    pub location: String,
    pub lat: f64,
    pub lon: f64,
    pub endpoints: Vec<EndpointSync>,
    /// Active alarms first (most severe first), then the most recently cleared.
    pub alarms: Vec<Alarm>,
    /// Availability over the last 24 h.
    pub timeline: crate::health::AvailabilityTimeline,
    /// The subcloud's agent: enrollment, last report, reachability (None: never enrolled).
    pub agent: Option<crate::agents::AgentStatus>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// One page of the filtered, sorted subcloud list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubcloudPage {
    pub rows: Vec<SubcloudSummary>,
    /// Subclouds matching the filter (all pages).
    pub matching: u64,
    pub page: u32,
    pub per_page: u32,
}

impl SubcloudPage {
    pub fn page_count(&self) -> u32 {
        crate::paging::page_count(self.matching, self.per_page)
    }
}

/// Subclouds managed by one system controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControllerLoad {
    pub name: String,
    pub region: String,
    pub availability: ControllerAvailability,
    pub capacity: u64,
    pub subclouds: u64,
    pub online: u64,
    pub offline: u64,
}

/// Fleet-wide key figures for the overview page. Every number comes from one consistent
/// read of the store, taken at `as_of`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub total: u64,
    pub online: u64,
    pub offline: u64,
    pub managed: u64,
    pub unmanaged: u64,
    /// Subclouds whose alarm roll-up is `critical`.
    pub alarm_critical: u64,
    /// Subclouds whose alarm roll-up is `degraded`.
    pub alarm_degraded: u64,
    /// Subclouds whose alarm roll-up is `unknown`: their agents do not observe the platform,
    /// so they are neither healthy nor unhealthy as far as anyone measured.
    pub alarm_unknown: u64,
    pub out_of_sync: u64,
    pub sync_unknown: u64,
    pub deploy_failed: u64,
    pub deploy_in_progress: u64,
    /// Active alarms in the whole fleet, by severity.
    pub active_alarms: AlarmCounts,
    pub controllers: Vec<ControllerLoad>,
    /// Subclouds per software version, most common first.
    pub software_versions: Vec<(String, u64)>,
    pub as_of: Millis,
}

/// Names offered by the list's group and peer-group filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FilterChoices {
    pub groups: Vec<String>,
    pub peer_groups: Vec<String>,
}

/// A subcloud group (reference §1.2). Group 1 is always "Default".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubcloudGroup {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub update_apply_type: ApplyType,
    pub max_parallel_subclouds: u32,
}

/// A central system controller.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SystemController {
    pub id: i64,
    pub name: String,
    pub region: String,
    pub city: String,
    pub lat: f64,
    pub lon: f64,
    pub endpoint: String,
    pub availability: ControllerAvailability,
    pub capacity: u64,
    pub reserved_capacity: u64,
}

/// A subcloud peer group (reference §1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerGroup {
    pub id: i64,
    pub name: String,
    pub priority: u32,
    pub state: PeerGroupState,
    pub max_subcloud_rehoming: u32,
    pub leader: String,
    pub migration_status: MigrationStatus,
    pub owner_epoch: i64,
}

//! The engine's event bus. Every state change publishes an [`Event`] after its transaction
//! commits; the server turns them into server-sent events for browsers. A slow subscriber
//! that falls behind is told so (`Lagged`) and must re-read a snapshot.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::time::Millis;

/// Something that changed in the fleet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The demo fleet was created or resized; everything may have changed.
    FleetSeeded {
        subclouds: u64,
        added: u64,
        removed: u64,
        at: Millis,
    },
    /// A user account was created or changed.
    UserChanged { name: String },
    /// A subcloud was added to the inventory.
    SubcloudAdded { name: String, at: Millis },
    /// Agent credentials were issued, used or revoked.
    AgentsChanged { subclouds: u64, at: Millis },
    /// A command for an agent was queued or progressed.
    CommandChanged {
        subcloud: String,
        command: i64,
        at: Millis,
    },
    /// One health tick wrote changes: the subclouds whose state changed (at most
    /// [`Event::MAX_NAMES`]; `truncated` when there were more), availability transitions and
    /// alarms raised or cleared.
    HealthChanged {
        subclouds: Vec<String>,
        truncated: bool,
        went_offline: u64,
        went_online: u64,
        alarms_raised: u64,
        alarms_cleared: u64,
        at: Millis,
    },
    /// An operator acknowledged alarms.
    AlarmsAcknowledged { ids: Vec<i64>, at: Millis },
    /// A strategy was created, acted on, or its steps progressed (one per strategy per
    /// orchestrator tick at most).
    StrategyChanged {
        id: i64,
        strategy_type: String,
        state: String,
        at: Millis,
    },
    /// Geo-redundancy changed: a peer's availability, a group's owner or rehoming progress,
    /// an association's sync status, maintenance.
    GeoChanged {
        /// The peer group concerned, if one.
        group: Option<String>,
        what: String,
        at: Millis,
    },
    /// An embed link was created or revoked, or the embed origin allow-list changed.
    EmbedsChanged { at: Millis },
}

impl Event {
    /// Most subcloud names one event carries; a client seeing `truncated` refreshes all.
    pub const MAX_NAMES: usize = 200;
}

/// A bounded broadcast channel of [`Event`]s.
#[derive(Clone, Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    /// Bumped by every publish: readers that cache derived figures compare it to know
    /// whether anything changed since they computed them.
    generation: Arc<AtomicU64>,
}

impl EventBus {
    /// Capacity bounds memory; subscribers that fall further behind get `Lagged`.
    pub const CAPACITY: usize = 4096;

    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(Self::CAPACITY);
        Self {
            tx,
            generation: Arc::default(),
        }
    }

    /// Publishes to current subscribers; with none, the event is simply dropped.
    pub fn publish(&self, event: Event) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let _ = self.tx.send(event);
    }

    /// How many events have been published so far.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

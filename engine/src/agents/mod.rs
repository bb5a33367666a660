//! Subcloud agents: the wire protocol ([`wire`]), per-subcloud credentials (enrollment tokens
//! exchanged once for a secret), report intake and the commands queued for agents. The health
//! a controller derives from reports lives in [`crate::health`].

use serde::{Deserialize, Serialize};

use crate::time::Millis;

pub mod wire;

#[cfg(feature = "store")]
pub(crate) mod store;
#[cfg(feature = "store")]
pub use store::{AgentGateway, IntakeError, IntakePolicy};

/// A freshly issued enrollment token with what a simulator or installer needs to bring the
/// site up (`POST /api/v1/enrollments`, `murmur enroll`). The token is shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteEnrollment {
    pub subcloud: String,
    /// `mme_…`: exchanged once, before `expires_at`, at `POST /agent/v1/enroll`.
    pub token: String,
    pub expires_at: Millis,
    pub region: String,
    pub lat: f64,
    pub lon: f64,
    pub software_version: String,
    /// The controller that owns the subcloud now.
    pub controller: String,
}

/// Which subclouds to issue enrollment tokens for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollmentRequest {
    /// Named subclouds; ignored when `all` is true.
    #[serde(default)]
    pub subclouds: Vec<String>,
    #[serde(default)]
    pub all: bool,
}

/// Enrollment state of one subcloud, for its detail page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentStatus {
    pub enrolled_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
    pub last_report_at: Option<Millis>,
    pub agent_version: String,
    pub health: String,
    pub highest_epoch: u64,
    pub reachability: Vec<wire::Reachability>,
}

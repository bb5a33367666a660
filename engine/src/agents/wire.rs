//! The agent protocol, version 1: the one definition of what travels between a subcloud's
//! agent (`murmur-agent`) and its system controller. Both sides compile these types.
//!
//! The agent initiates every exchange (it works behind NAT):
//!
//! | request | body | answer |
//! |---|---|---|
//! | `POST /agent/v1/enroll` | [`EnrollRequest`] | [`Enrollment`] (once per enrollment token) |
//! | `POST /agent/v1/report` + `Authorization: Bearer <secret>` | [`Report`] | [`ReportAnswer`] |
//! | `GET /agent/v1/ping` | — | [`Ping`] (to measure round-trip time; no credential) |
//!
//! Compatibility rules: fields are only ever added, with defaults; unknown fields are ignored
//! on both sides (no `deny_unknown_fields`), so an older agent talks to a newer controller and
//! back. A change that cannot follow these rules is a new `PROTOCOL_VERSION` and new paths.
//!
//! Refusals are JSON `{"error": {"code", "message"}}` with these statuses: 400 malformed or
//! invalid report, 401 unknown/wrong/revoked credential or enrollment token, 409 a report
//! whose `seq` is not above the last accepted one (replayed or reordered), 413 too large,
//! 503 the controller is shedding load (retry after the `Retry-After` seconds).

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::fleet::{EndpointType, SyncStatus};
use crate::health::AlarmSeverity;
use crate::text_enum::text_enum;
use crate::time::Millis;

/// The protocol version these types describe.
pub const PROTOCOL_VERSION: u32 = 1;
pub const ENROLL_PATH: &str = "/agent/v1/enroll";
pub const REPORT_PATH: &str = "/agent/v1/report";
pub const PING_PATH: &str = "/agent/v1/ping";

/// Bounds the controller enforces on a report (each refusal names the field).
pub const MAX_REPORTED_ALARMS: usize = 200;
pub const MAX_COMMAND_PROGRESS: usize = 32;
pub const MAX_REACHABILITY: usize = 32;
pub const MAX_TEXT: usize = 256;

/// Exchanges a one-time enrollment token for the subcloud's long-lived secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    pub protocol: u32,
    /// The subcloud's name as the controller knows it.
    pub subcloud: String,
    /// `mme_…`, issued by the controller when the subcloud was added (or re-issued by an admin).
    pub enrollment_token: String,
}

/// The answer to a successful enrollment. The secret is shown once; the controller keeps only
/// its hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Enrollment {
    pub protocol: u32,
    pub subcloud: String,
    /// `mms_<subcloud id>_<64 hex>`: the bearer credential of every report.
    pub secret: String,
    /// How often the controller expects a report.
    pub report_interval_ms: u64,
    /// Controllers this subcloud may report to, in order of preference.
    pub controllers: Vec<ControllerRef>,
}

/// A controller an agent may report to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ControllerRef {
    pub name: String,
    /// Base URL, e.g. `https://sc-amsterdam.example.net`.
    pub url: String,
}

text_enum! {
    /// The site's own view of its platform health. `unknown`: the agent does not observe its
    /// platform (no driver measures it), so neither its health nor its alarm list is a
    /// measurement: the controller shows the site's alarm state as unknown, never as OK.
    pub enum SiteHealth: "site health" {
        Healthy = "healthy",
        Degraded = "degraded",
        Failed = "failed",
        Unknown = "unknown",
    }
}

impl SiteHealth {
    /// Whether the agent measured its platform (so its alarm list is the site's real one).
    pub fn observed(self) -> bool {
        self != SiteHealth::Unknown
    }
}

/// What an agent tells its controller every interval. Each report is complete (not a delta):
/// the alarms listed are all the site's active alarms, so a lost report loses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub protocol: u32,
    /// Strictly increasing per subcloud, across agent restarts (agents start from the wall
    /// clock in milliseconds). A report whose `seq` is not above the last accepted is refused.
    pub seq: u64,
    /// When the agent sent it (its clock).
    pub sent_at: Millis,
    pub health: SiteHealth,
    pub software_version: String,
    /// Sync status of each endpoint type the site runs.
    #[serde(default)]
    pub endpoints: Vec<EndpointSync>,
    /// Every alarm active on the site now.
    #[serde(default)]
    pub alarms: Vec<ReportedAlarm>,
    #[serde(default)]
    pub capacity: Capacity,
    /// Progress of commands the controller sent.
    #[serde(default)]
    pub commands: Vec<CommandProgress>,
    /// The controllers the agent probed, with the outcome.
    #[serde(default)]
    pub reachability: Vec<Reachability>,
    /// Highest peer-group owner epoch this agent has seen in any answer.
    #[serde(default)]
    pub highest_epoch: u64,
    /// The agent's own version, for the operator.
    #[serde(default)]
    pub agent_version: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointSync {
    pub endpoint_type: EndpointType,
    pub sync_status: SyncStatus,
}

/// An alarm active on the site, keyed (as X.733) by `alarm_id` and `entity`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReportedAlarm {
    /// StarlingX numbering, e.g. `100.101` (platform CPU threshold exceeded).
    pub alarm_id: String,
    pub severity: AlarmSeverity,
    /// Entity instance, e.g. `host=controller-0.cpu`.
    pub entity: String,
    pub reason: String,
}

/// Size of the site: what geo-redundancy weighs when it places subclouds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capacity {
    pub cpu_cores: u32,
    pub memory_gib: u32,
    pub storage_gib: u32,
    /// Hosts in the subcloud (1 = simplex).
    pub hosts: u32,
}

/// One probe of one controller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reachability {
    /// The controller's name, as in [`ControllerRef::name`].
    pub controller: String,
    pub reachable: bool,
    /// Round-trip time of the probe; absent when unreachable.
    #[serde(default)]
    pub rtt_ms: Option<u32>,
}

text_enum! {
    /// Where a command stands, as the agent reports it.
    pub enum CommandState: "command state" {
        /// Created on the controller, not yet acknowledged by the agent.
        Queued = "queued",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl CommandState {
    pub fn is_final(self) -> bool {
        matches!(self, CommandState::Succeeded | CommandState::Failed)
    }
}

/// Progress of one command, reported by the agent until (and once after) it is final.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandProgress {
    pub id: i64,
    pub state: CommandState,
    /// 0–100.
    pub percent: u8,
    #[serde(default)]
    pub message: String,
    /// The phase the agent is in (one of [`CommandAction::phases`]); absent from older agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
}

/// Work for the agent, carried in a [`ReportAnswer`] until the agent reports progress on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub id: i64,
    /// Owner epoch of the subcloud's peer group when the command was issued: an agent that
    /// has seen a higher epoch ignores it (a controller that lost ownership cannot act).
    pub epoch: u64,
    pub action: CommandAction,
    /// Names the work itself, the same on every controller (a strategy step's attempt:
    /// `<strategy uuid>/<subcloud id>/<attempt>`, plus `/rollback` for its rollback). A new
    /// owner that re-issues work its predecessor already sent uses the same key under its
    /// own id; the agent then reports what it did under that key instead of running it again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What a command asks for. Unknown actions from a newer controller are reported failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CommandAction {
    /// Install and activate a software release.
    SoftwareDeploy { release: String },
    /// Re-audit and re-sync every endpoint.
    SyncEndpoints,
    /// Upgrade Kubernetes to a version.
    KubernetesUpgrade { to_version: String },
    /// Rotate the Kubernetes root CA.
    KubeRootcaUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expiry_date: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
    },
    /// Apply the uploaded device firmware images.
    FirmwareUpdate,
    /// Stage a release's packages and images on the site ahead of a deploy.
    Prestage {
        release: String,
        #[serde(default)]
        for_install: bool,
    },
    /// Undo a failed step: return the site to `to` (the release or version it ran before).
    Rollback { of: String, to: String },
    #[serde(other)]
    Unknown,
}

impl CommandAction {
    /// The phases an agent goes through, in order, reporting each as
    /// [`CommandProgress::phase`]. The names are StarlingX's step states, so an operator who
    /// knows `dcmanager` reads them unchanged.
    pub fn phases(&self) -> &'static [&'static str] {
        match self {
            CommandAction::SoftwareDeploy { .. } => &[
                "sw-deploy pre-check",
                "sw-deploy install license",
                "create VIM sw-deploy strategy",
                "apply VIM sw-deploy strategy",
                "finish sw-deploy strategy",
            ],
            CommandAction::SyncEndpoints => &["syncing"],
            CommandAction::KubernetesUpgrade { .. } => &[
                "kube upgrade pre check",
                "kube creating vim kube upgrade strategy",
                "kube applying vim kube upgrade strategy",
            ],
            CommandAction::KubeRootcaUpdate { .. } => &[
                "creating vim kube rootca update strategy",
                "applying vim kube rootca update strategy",
            ],
            CommandAction::FirmwareUpdate => &[
                "importing firmware",
                "creating fw update strategy",
                "applying fw update strategy",
                "finishing fw update",
            ],
            CommandAction::Prestage { .. } => &[
                "prestage-precheck",
                "prestaging-packages",
                "prestaging-images",
            ],
            CommandAction::Rollback { .. } => &["rolling back"],
            CommandAction::Unknown => &[],
        }
    }
}

/// The controller's answer to an accepted report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportAnswer {
    pub protocol: u32,
    /// The `seq` accepted.
    pub accepted_seq: u64,
    /// Current owner epoch of the subcloud's peer group (0 if it has none).
    pub owner_epoch: u64,
    /// Controllers the agent may report to, in order of preference (owner first).
    pub controllers: Vec<ControllerRef>,
    /// Commands not yet acknowledged by a progress report.
    #[serde(default)]
    pub commands: Vec<Command>,
    pub report_interval_ms: u64,
}

/// Answer to `GET /agent/v1/ping`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ping {
    pub protocol: u32,
    /// The answering controller's name.
    pub controller: String,
    pub at: Millis,
}

/// JSON body of every refusal on `/agent/v1` (the same shape as the REST API's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub error: RefusalBody,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusalBody {
    pub code: String,
    pub message: String,
}

/// Prefix of enrollment tokens.
pub const ENROLLMENT_PREFIX: &str = "mme_";
/// Prefix of subcloud secrets.
pub const SECRET_PREFIX: &str = "mms_";

/// A subcloud secret split into the subcloud id (to find the stored hash without a scan) and
/// the random part. Parsing never panics and says nothing about which part was wrong beyond
/// the format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretParts<'a> {
    pub subcloud_id: i64,
    pub random: &'a str,
}

impl<'a> SecretParts<'a> {
    pub fn parse(secret: &'a str) -> Result<Self, ValidationError> {
        let bad = || {
            ValidationError::new(
                "authorization",
                "expected a subcloud secret mms_<id>_<64 hex>",
            )
        };
        let rest = secret.strip_prefix(SECRET_PREFIX).ok_or_else(bad)?;
        let (id, random) = rest.split_once('_').ok_or_else(bad)?;
        if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let subcloud_id: i64 = id.parse().map_err(|_| bad())?;
        if random.len() != 64 || !random.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Self {
            subcloud_id,
            random,
        })
    }
}

impl Report {
    /// Checks the bounds a controller enforces, naming the first field that breaks one.
    pub fn validate(&self) -> Result<(), ValidationError> {
        if self.protocol != PROTOCOL_VERSION {
            return Err(ValidationError::new(
                "protocol",
                format!("this controller speaks protocol {PROTOCOL_VERSION}"),
            ));
        }
        if self.seq == 0 || self.seq > i64::MAX as u64 {
            return Err(ValidationError::new("seq", "must be between 1 and 2^63-1"));
        }
        if self.highest_epoch > i64::MAX as u64 {
            return Err(ValidationError::new("highest_epoch", "must be below 2^63"));
        }
        text("software_version", &self.software_version)?;
        text("agent_version", &self.agent_version)?;
        let mut seen = Vec::with_capacity(self.endpoints.len());
        for e in &self.endpoints {
            if seen.contains(&e.endpoint_type) {
                return Err(ValidationError::new(
                    "endpoints",
                    format!("{} is listed twice", e.endpoint_type),
                ));
            }
            seen.push(e.endpoint_type);
        }
        if self.alarms.len() > MAX_REPORTED_ALARMS {
            return Err(ValidationError::new(
                "alarms",
                format!("at most {MAX_REPORTED_ALARMS} alarms per report"),
            ));
        }
        for (i, a) in self.alarms.iter().enumerate() {
            alarm_id(&a.alarm_id)?;
            text("alarms.entity", &a.entity)?;
            text("alarms.reason", &a.reason)?;
            if self.alarms[..i]
                .iter()
                .any(|b| b.alarm_id == a.alarm_id && b.entity == a.entity)
            {
                return Err(ValidationError::new(
                    "alarms",
                    format!("{} on {} is listed twice", a.alarm_id, a.entity),
                ));
            }
        }
        if self.commands.len() > MAX_COMMAND_PROGRESS {
            return Err(ValidationError::new(
                "commands",
                format!("at most {MAX_COMMAND_PROGRESS} command progress entries"),
            ));
        }
        for c in &self.commands {
            if c.percent > 100 {
                return Err(ValidationError::new("commands.percent", "must be 0 to 100"));
            }
            text("commands.message", &c.message)?;
            if let Some(phase) = &c.phase {
                text("commands.phase", phase)?;
            }
        }
        if self.reachability.len() > MAX_REACHABILITY {
            return Err(ValidationError::new(
                "reachability",
                format!("at most {MAX_REACHABILITY} controllers"),
            ));
        }
        for r in &self.reachability {
            text("reachability.controller", &r.controller)?;
        }
        Ok(())
    }
}

/// Free text from a site: bounded, no control characters (they would corrupt logs and pages).
fn text(field: &str, v: &str) -> Result<(), ValidationError> {
    if v.len() > MAX_TEXT {
        return Err(ValidationError::new(
            field,
            format!("at most {MAX_TEXT} bytes"),
        ));
    }
    if v.chars()
        .any(|c| c.is_control() || crate::fleet::is_bidi_control(c))
    {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// `NNN.NNN`, the StarlingX alarm numbering.
fn alarm_id(v: &str) -> Result<(), ValidationError> {
    let ok = v.len() == 7
        && v.as_bytes()[3] == b'.'
        && v.bytes()
            .enumerate()
            .all(|(i, b)| i == 3 || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ValidationError::new(
            "alarms.alarm_id",
            format!(
                "expected NNN.NNN, got {:?}",
                v.chars().take(16).collect::<String>()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            protocol: PROTOCOL_VERSION,
            seq: 7,
            sent_at: Millis(1),
            health: SiteHealth::Healthy,
            software_version: "25.09".into(),
            endpoints: vec![EndpointSync {
                endpoint_type: EndpointType::Platform,
                sync_status: SyncStatus::InSync,
            }],
            alarms: vec![ReportedAlarm {
                alarm_id: "100.101".into(),
                severity: AlarmSeverity::Minor,
                entity: "host=controller-0".into(),
                reason: "CPU threshold exceeded".into(),
            }],
            capacity: Capacity::default(),
            commands: vec![],
            reachability: vec![],
            highest_epoch: 1,
            agent_version: "0.1.0".into(),
        }
    }

    #[test]
    fn unknown_fields_and_missing_optional_fields_are_tolerated() {
        let json = r#"{"protocol":1,"seq":3,"sent_at":5,"health":"degraded",
            "software_version":"25.09","from_the_future":{"x":1}}"#;
        let r: Report = serde_json::from_str(json).unwrap();
        assert_eq!(r.seq, 3);
        assert!(r.alarms.is_empty() && r.endpoints.is_empty());
        let a: Command =
            serde_json::from_str(r#"{"id":1,"epoch":2,"action":{"kind":"reboot_now","x":1}}"#)
                .unwrap();
        assert_eq!(a.action, CommandAction::Unknown);
    }

    #[test]
    fn validation_names_the_field() {
        assert!(report().validate().is_ok());
        let mut r = report();
        r.seq = 0;
        assert_eq!(r.validate().unwrap_err().field, "seq");
        let mut r = report();
        r.alarms.push(r.alarms[0].clone());
        assert_eq!(r.validate().unwrap_err().field, "alarms");
        let mut r = report();
        r.alarms[0].alarm_id = "1001.01".into();
        assert_eq!(r.validate().unwrap_err().field, "alarms.alarm_id");
        let mut r = report();
        r.software_version = "x\u{202e}".into();
        assert_eq!(r.validate().unwrap_err().field, "software_version");
        let mut r = report();
        r.protocol = 2;
        assert_eq!(r.validate().unwrap_err().field, "protocol");
    }

    #[test]
    fn secrets_parse_strictly() {
        let good = format!("mms_42_{}", "a".repeat(64));
        assert_eq!(SecretParts::parse(&good).unwrap().subcloud_id, 42);
        for bad in [
            "",
            "mms_",
            "mms_42",
            "mms__aaaa",
            "mmt_42_aaaa",
            &format!("mms_-1_{}", "a".repeat(64)),
            &format!("mms_42_{}", "g".repeat(64)),
            &format!("mms_42_{}", "a".repeat(63)),
            &format!("mms_99999999999999999999_{}", "a".repeat(64)),
        ] {
            assert!(SecretParts::parse(bad).is_err(), "{bad}");
        }
    }
}

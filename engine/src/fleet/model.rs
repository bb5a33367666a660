//! The fleet's vocabulary: states and enumerations as StarlingX spells them (reference §1.1–1.5),
//! and validated names and coordinates.

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::text_enum::text_enum;

text_enum! {
    /// Whether the controller actively manages (audits, syncs, orchestrates) a subcloud.
    pub enum ManagementState: "management state" {
        Managed = "managed",
        Unmanaged = "unmanaged",
    }
}

text_enum! {
    /// Reachability of a subcloud as derived by its controller.
    pub enum AvailabilityStatus: "availability" {
        Online = "online",
        Offline = "offline",
    }
}

text_enum! {
    /// Sync status of one endpoint, and the roll-up over all endpoints.
    pub enum SyncStatus: "sync status" {
        InSync = "in-sync",
        OutOfSync = "out-of-sync",
        Unknown = "unknown",
    }
}

text_enum! {
    /// The seven audited endpoint types.
    pub enum EndpointType: "endpoint type" {
        Platform = "platform",
        Identity = "identity",
        DcCert = "dc-cert",
        Firmware = "firmware",
        Kubernetes = "kubernetes",
        KubeRootca = "kube-rootca",
        Software = "software",
    }
}

text_enum! {
    /// Deploy status of a subcloud: the complete StarlingX list, in source order.
    pub enum DeployStatus: "deploy status" {
        NotDeployed = "not-deployed",
        PreDeploy = "pre-deploy",
        DeployPrepFailed = "deploy-prep-failed",
        Creating = "creating",
        CreateFailed = "create-failed",
        CreateComplete = "create-complete",
        PreInstall = "pre-install",
        PreInstallFailed = "pre-install-failed",
        Installing = "installing",
        InstallFailed = "install-failed",
        InstallComplete = "install-complete",
        PreBootstrap = "pre-bootstrap",
        PreBootstrapFailed = "pre-bootstrap-failed",
        Bootstrapping = "bootstrapping",
        BootstrapFailed = "bootstrap-failed",
        BootstrapAborted = "bootstrap-aborted",
        BootstrapComplete = "bootstrap-complete",
        PreConfig = "pre-config",
        PreConfigFailed = "pre-config-failed",
        Configuring = "configuring",
        ConfigFailed = "config-failed",
        Deploying = "deploying",
        DeployFailed = "deploy-failed",
        AbortingInstall = "aborting-install",
        InstallAborted = "install-aborted",
        AbortingBootstrap = "aborting-bootstrap",
        AbortingConfig = "aborting-config",
        ConfigAborted = "config-aborted",
        EnrollComplete = "enroll-complete",
        Enrolling = "enrolling",
        EnrollFailed = "enroll-failed",
        PreRestore = "pre-restore",
        RestorePrepFailed = "restore-prep-failed",
        Restoring = "restoring",
        RestoreFailed = "restore-failed",
        OnsiteRestoring = "onsite-restoring",
        FactoryRestoreComplete = "factory-restore-complete",
        PreRehome = "pre-rehome",
        PreEnroll = "pre-enroll",
        PreEnrollFailed = "pre-enroll-failed",
        PreEnrollComplete = "pre-enroll-complete",
        PreInitEnroll = "pre-init-enroll",
        PreInitEnrollFailed = "pre-init-enroll-failed",
        InitiatingEnroll = "initiating-enroll",
        InitEnrollFailed = "init-enroll-failed",
        InitEnrollComplete = "init-enroll-complete",
        SwDeployApplyStrategyFailed = "sw-deploy-apply-strategy-failed",
        SwDeployInProgress = "sw-deploy-in-progress",
        Rehoming = "rehoming",
        RehomeFailed = "rehome-failed",
        RehomePrepFailed = "rehome-prep-failed",
        RehomePending = "rehome-pending",
        Secondary = "secondary",
        SecondaryFailed = "secondary-failed",
        Complete = "complete",
        ReconfiguringNetwork = "reconfiguring-network",
        NetworkReconfigurationFailed = "network-reconfiguration-failed",
    }
}

impl DeployStatus {
    /// A failed or aborted end state that needs an operator.
    pub fn is_failure(self) -> bool {
        let s = self.as_str();
        s.ends_with("-failed") || s.ends_with("-aborted")
    }

    /// A state the subcloud is expected to leave by itself (work in progress).
    pub fn is_in_progress(self) -> bool {
        use DeployStatus::*;
        matches!(
            self,
            PreDeploy
                | Creating
                | PreInstall
                | Installing
                | PreBootstrap
                | Bootstrapping
                | PreConfig
                | Configuring
                | Deploying
                | AbortingInstall
                | AbortingBootstrap
                | AbortingConfig
                | Enrolling
                | PreRestore
                | Restoring
                | OnsiteRestoring
                | PreRehome
                | PreEnroll
                | PreInitEnroll
                | InitiatingEnroll
                | SwDeployInProgress
                | Rehoming
                | RehomePending
                | ReconfiguringNetwork
        )
    }
}

text_enum! {
    /// How a group's subclouds are updated by orchestration.
    pub enum ApplyType: "apply type" {
        Parallel = "parallel",
        Serial = "serial",
    }
}

text_enum! {
    /// Administrative state of a peer group.
    pub enum PeerGroupState: "peer group state" {
        Enabled = "enabled",
        Disabled = "disabled",
    }
}

text_enum! {
    /// Progress of moving a peer group to another controller.
    pub enum MigrationStatus: "migration status" {
        None = "none",
        Migrating = "migrating",
        Complete = "complete",
    }
}

text_enum! {
    /// Availability of a system controller as seen by its peers.
    pub enum ControllerAvailability: "controller availability" {
        Created = "created",
        Available = "available",
        Unavailable = "unavailable",
    }
}

/// The roll-up sync status: `out-of-sync` if any endpoint is, `unknown` if any is unknown (and
/// none out of sync), otherwise `in-sync`. An empty set is `unknown`.
pub fn roll_up_sync(endpoints: impl IntoIterator<Item = SyncStatus>) -> SyncStatus {
    let mut any = false;
    let mut unknown = false;
    for s in endpoints {
        any = true;
        match s {
            SyncStatus::OutOfSync => return SyncStatus::OutOfSync,
            SyncStatus::Unknown => unknown = true,
            SyncStatus::InSync => {}
        }
    }
    if !any || unknown {
        SyncStatus::Unknown
    } else {
        SyncStatus::InSync
    }
}

/// A subcloud's name: 1–64 characters, ASCII letters, digits, `-` and `_`, starting with a
/// letter; never a name the platform reserves for the controller itself.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SubcloudName(String);

impl SubcloudName {
    pub const MAX_LEN: usize = 64;
    const RESERVED: [&'static str; 2] = ["systemcontroller", "regionone"];

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let err = |m: &str| Err(ValidationError::new("name", m));
        if raw.is_empty() {
            return err("a subcloud name is required");
        }
        if raw.len() > Self::MAX_LEN {
            return err("a subcloud name is at most 64 characters");
        }
        if !raw.starts_with(|c: char| c.is_ascii_alphabetic()) {
            return err("a subcloud name starts with a letter");
        }
        if let Some(c) = raw
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
        {
            return Err(ValidationError::new(
                "name",
                format!(
                    "a subcloud name uses only letters, digits, '-' and '_' (found {:?})",
                    c
                ),
            ));
        }
        if Self::RESERVED.contains(&raw.to_ascii_lowercase().as_str()) {
            return err("this name is reserved for the system controller");
        }
        Ok(Self(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SubcloudName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl std::fmt::Display for SubcloudName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A display name for a group, peer group, controller or region: 1–255 characters after
/// trimming, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(field: &str, raw: &str) -> Result<Self, ValidationError> {
        let t = raw.trim();
        if t.is_empty() {
            return Err(ValidationError::new(field, "a name is required"));
        }
        if t.chars().count() > 255 {
            return Err(ValidationError::new(
                field,
                "a name is at most 255 characters",
            ));
        }
        if t.chars().any(|c| c.is_control() || is_bidi_control(c)) {
            return Err(ValidationError::new(
                field,
                "a name has no control or text-direction characters",
            ));
        }
        Ok(Self(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for DisplayName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse("name", &s).map_err(serde::de::Error::custom)
    }
}

/// Unicode bidirectional formatting characters: they can make a name display as something
/// else (e.g. a reversed file extension), so names refuse them.
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// WGS84 coordinates in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Coordinates {
    lat: f64,
    lon: f64,
}

impl Coordinates {
    pub fn new(lat: f64, lon: f64) -> Result<Self, ValidationError> {
        if !lat.is_finite() || !(-90.0..=90.0).contains(&lat) {
            return Err(ValidationError::new(
                "latitude",
                "latitude must be a number between -90 and 90",
            ));
        }
        if !lon.is_finite() || !(-180.0..=180.0).contains(&lon) {
            return Err(ValidationError::new(
                "longitude",
                "longitude must be a number between -180 and 180",
            ));
        }
        Ok(Self { lat, lon })
    }

    pub fn lat(self) -> f64 {
        self.lat
    }

    pub fn lon(self) -> f64 {
        self.lon
    }
}

impl<'de> Deserialize<'de> for Coordinates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw {
            lat: f64,
            lon: f64,
        }
        let r = Raw::deserialize(d)?;
        Self::new(r.lat, r.lon).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subcloud_names() {
        assert!(SubcloudName::parse("lyon-0042").is_ok());
        assert!(SubcloudName::parse("a").is_ok());
        assert!(SubcloudName::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            "4g-site",
            "-x",
            "a b",
            "a;DROP",
            "é",
            "a/../b",
            "SystemController",
        ] {
            assert!(SubcloudName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(SubcloudName::parse(&"a".repeat(65)).is_err());
        let e = SubcloudName::parse("x'--").unwrap_err();
        assert_eq!(e.field, "name");
        assert!(e.message.contains("'\\''"), "{}", e.message);
    }

    #[test]
    fn display_names_refuse_direction_tricks() {
        assert!(DisplayName::parse("n", "Über Token").is_ok());
        for bad in [
            "invoice\u{202E}fdp.exe",
            "a\u{2066}b",
            "x\u{200F}",
            "tab\there",
        ] {
            assert!(DisplayName::parse("n", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn coordinates() {
        assert!(Coordinates::new(45.76, 4.84).is_ok());
        assert!(Coordinates::new(-90.0, 180.0).is_ok());
        assert!(Coordinates::new(90.1, 0.0).is_err());
        assert!(Coordinates::new(0.0, -180.5).is_err());
        assert!(Coordinates::new(f64::NAN, 0.0).is_err());
        let parsed: Result<Coordinates, _> = serde_json::from_str(r#"{"lat":100,"lon":0}"#);
        assert!(parsed.unwrap_err().to_string().contains("latitude must be"));
    }

    #[test]
    fn sync_roll_up() {
        use SyncStatus::*;
        assert_eq!(roll_up_sync([]), Unknown);
        assert_eq!(roll_up_sync([InSync, InSync]), InSync);
        assert_eq!(roll_up_sync([InSync, Unknown]), Unknown);
        assert_eq!(roll_up_sync([Unknown, OutOfSync, InSync]), OutOfSync);
    }

    #[test]
    fn deploy_status_classes() {
        assert!(DeployStatus::InstallFailed.is_failure());
        assert!(DeployStatus::BootstrapAborted.is_failure());
        assert!(!DeployStatus::Complete.is_failure());
        assert!(DeployStatus::Installing.is_in_progress());
        assert!(!DeployStatus::Complete.is_in_progress());
        assert_eq!(DeployStatus::ALL.len(), 57);
        for s in DeployStatus::ALL {
            assert_eq!(s.as_str().parse::<DeployStatus>(), Ok(*s));
        }
    }
}

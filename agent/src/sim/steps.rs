//! How simulated sites execute commands: every action goes through its phases
//! ([`CommandAction::phases`], StarlingX's step state names) in order, each taking a
//! wall-clock duration drawn around a configurable mean per action kind, and fails with a
//! configurable probability in one of its phases with a message naming that phase.
//!
//! The timetable of a command (phase durations, whether and where it fails, the failure's
//! message) is drawn from the site's own seeded stream at the first tick after the command
//! was received, with the [`StepConfig`] in force then: a configuration change applies to
//! commands received afterwards, running ones keep their timetable. Progress is measured
//! from the moment the command was received, so a phase may span several reports, and a
//! zero-duration configuration completes a command at the first tick after its receipt.

use std::collections::BTreeMap;

use engine::agents::wire::CommandAction;
use engine::fleet::EndpointType;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::behaviour::host_name;
use super::rng::SplitMix64;
use crate::text::bounded;

/// The actions the simulator executes, by their wire name (`kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    SoftwareDeploy,
    SyncEndpoints,
    KubernetesUpgrade,
    KubeRootcaUpdate,
    FirmwareUpdate,
    Prestage,
    Rollback,
}

/// Slots of the per-kind counters: one per [`ActionKind`], then unknown actions.
pub(crate) const KIND_SLOTS: usize = ActionKind::ALL.len() + 1;

impl ActionKind {
    pub const ALL: [ActionKind; 7] = [
        ActionKind::SoftwareDeploy,
        ActionKind::SyncEndpoints,
        ActionKind::KubernetesUpgrade,
        ActionKind::KubeRootcaUpdate,
        ActionKind::FirmwareUpdate,
        ActionKind::Prestage,
        ActionKind::Rollback,
    ];

    /// The kind of an action; `None` for an action this build does not know.
    pub fn of(action: &CommandAction) -> Option<Self> {
        Some(match action {
            CommandAction::SoftwareDeploy { .. } => ActionKind::SoftwareDeploy,
            CommandAction::SyncEndpoints => ActionKind::SyncEndpoints,
            CommandAction::KubernetesUpgrade { .. } => ActionKind::KubernetesUpgrade,
            CommandAction::KubeRootcaUpdate { .. } => ActionKind::KubeRootcaUpdate,
            CommandAction::FirmwareUpdate => ActionKind::FirmwareUpdate,
            CommandAction::Prestage { .. } => ActionKind::Prestage,
            CommandAction::Rollback { .. } => ActionKind::Rollback,
            CommandAction::Unknown => return None,
        })
    }

    /// The wire name, e.g. `software_deploy`.
    pub fn name(self) -> &'static str {
        match self {
            ActionKind::SoftwareDeploy => "software_deploy",
            ActionKind::SyncEndpoints => "sync_endpoints",
            ActionKind::KubernetesUpgrade => "kubernetes_upgrade",
            ActionKind::KubeRootcaUpdate => "kube_rootca_update",
            ActionKind::FirmwareUpdate => "firmware_update",
            ActionKind::Prestage => "prestage",
            ActionKind::Rollback => "rollback",
        }
    }

    /// Counter slot of an action (unknown actions last).
    pub(crate) fn slot(action: &CommandAction) -> usize {
        Self::of(action).map_or(KIND_SLOTS - 1, |k| k as usize)
    }

    /// Share of the total duration each phase takes, in the order of
    /// [`CommandAction::phases`]. The VIM strategy's apply (host locks, reboots) dominates.
    fn weights(self) -> &'static [f64] {
        match self {
            ActionKind::SoftwareDeploy => &[0.10, 0.08, 0.10, 0.60, 0.12],
            ActionKind::SyncEndpoints => &[1.0],
            ActionKind::KubernetesUpgrade => &[0.15, 0.10, 0.75],
            ActionKind::KubeRootcaUpdate => &[0.30, 0.70],
            ActionKind::FirmwareUpdate => &[0.15, 0.10, 0.65, 0.10],
            ActionKind::Prestage => &[0.10, 0.45, 0.45],
            ActionKind::Rollback => &[1.0],
        }
    }
}

/// Mean total duration of each action kind, in seconds, before [`StepConfig::scale`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeanSeconds {
    pub software_deploy: f64,
    pub sync_endpoints: f64,
    pub kubernetes_upgrade: f64,
    pub kube_rootca_update: f64,
    pub firmware_update: f64,
    pub prestage: f64,
    pub rollback: f64,
}

/// Real StarlingX steps take tens of minutes to hours; these keep their proportions
/// (prestage longest, root CA shortest of the platform steps) at a pace a demo can watch.
impl Default for MeanSeconds {
    fn default() -> Self {
        Self {
            software_deploy: 180.0,
            sync_endpoints: 5.0,
            kubernetes_upgrade: 150.0,
            kube_rootca_update: 60.0,
            firmware_update: 120.0,
            prestage: 300.0,
            rollback: 120.0,
        }
    }
}

impl MeanSeconds {
    pub fn get(&self, kind: ActionKind) -> f64 {
        match kind {
            ActionKind::SoftwareDeploy => self.software_deploy,
            ActionKind::SyncEndpoints => self.sync_endpoints,
            ActionKind::KubernetesUpgrade => self.kubernetes_upgrade,
            ActionKind::KubeRootcaUpdate => self.kube_rootca_update,
            ActionKind::FirmwareUpdate => self.firmware_update,
            ActionKind::Prestage => self.prestage,
            ActionKind::Rollback => self.rollback,
        }
    }

    pub fn set(&mut self, kind: ActionKind, seconds: f64) {
        let slot = match kind {
            ActionKind::SoftwareDeploy => &mut self.software_deploy,
            ActionKind::SyncEndpoints => &mut self.sync_endpoints,
            ActionKind::KubernetesUpgrade => &mut self.kubernetes_upgrade,
            ActionKind::KubeRootcaUpdate => &mut self.kube_rootca_update,
            ActionKind::FirmwareUpdate => &mut self.firmware_update,
            ActionKind::Prestage => &mut self.prestage,
            ActionKind::Rollback => &mut self.rollback,
        };
        *slot = seconds;
    }
}

/// Bounds the control API and [`StepConfig::validate`] enforce.
pub const MAX_SCALE: f64 = 1_000.0;
pub const MAX_MEAN_SECONDS: f64 = 86_400.0;

/// How simulated sites execute commands (`SimConfig::steps`, `GET`/`POST /steps`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StepConfig {
    /// Multiplies every mean duration: 1.0 = the defaults, 0 = instant (every command
    /// completes at the first tick after its receipt). CLI `--step-seconds`.
    pub scale: f64,
    /// Probability (0–1) that a command fails, in a random phase. CLI `--step-failure-rate`.
    pub failure_rate: f64,
    /// Mean total duration per action kind, seconds, before `scale`. Each phase takes its
    /// share of it times a factor drawn uniformly in 0.5–1.5.
    pub mean_seconds: MeanSeconds,
}

impl Default for StepConfig {
    fn default() -> Self {
        Self {
            scale: 1.0,
            failure_rate: Self::DEFAULT_FAILURE_RATE,
            mean_seconds: MeanSeconds::default(),
        }
    }
}

impl StepConfig {
    pub const DEFAULT_FAILURE_RATE: f64 = 0.02;

    /// Every command completes at the first tick after its receipt and none fails by
    /// chance (`fail_next_command` still fails one): for load tests and scripted checks.
    pub fn instant() -> Self {
        Self {
            scale: 0.0,
            failure_rate: 0.0,
            ..Self::default()
        }
    }

    /// Checks the bounds; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.scale.is_finite() && (0.0..=MAX_SCALE).contains(&self.scale)) {
            return Err(format!("scale must be between 0 and {MAX_SCALE}"));
        }
        if !(self.failure_rate.is_finite() && (0.0..=1.0).contains(&self.failure_rate)) {
            return Err("failure_rate must be between 0 and 1".into());
        }
        for kind in ActionKind::ALL {
            let s = self.mean_seconds.get(kind);
            if !(s.is_finite() && (0.0..=MAX_MEAN_SECONDS).contains(&s)) {
                return Err(format!(
                    "mean_seconds.{} must be between 0 and {MAX_MEAN_SECONDS}",
                    kind.name()
                ));
            }
        }
        Ok(())
    }

    /// This configuration with `patch` applied, if the result is valid.
    pub fn patched(&self, patch: &StepPatch) -> Result<Self, String> {
        let mut next = *self;
        if let Some(scale) = patch.scale {
            next.scale = scale;
        }
        if let Some(rate) = patch.failure_rate {
            next.failure_rate = rate;
        }
        for (&kind, &seconds) in &patch.mean_seconds {
            next.mean_seconds.set(kind, seconds);
        }
        next.validate()?;
        Ok(next)
    }

    /// Mean total duration of `kind` in milliseconds, scaled.
    fn mean_ms(&self, kind: ActionKind) -> f64 {
        (self.mean_seconds.get(kind) * self.scale * 1_000.0).max(0.0)
    }
}

/// A partial update of the [`StepConfig`] (`POST /steps`): fields left out keep their value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
    /// Action kind (`software_deploy`, …) to mean seconds.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mean_seconds: BTreeMap<ActionKind, f64>,
}

/// Where and how a command fails.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    phase: usize,
    /// Milliseconds after receipt.
    at_ms: u64,
    message: String,
}

/// A command's drawn course.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Timetable {
    /// End of each phase, milliseconds after receipt (cumulative, non-decreasing).
    ends_ms: Box<[u64]>,
    fail: Option<Failure>,
}

/// Where a command stands `elapsed` milliseconds after its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Course {
    Running {
        phase: usize,
        percent: u8,
    },
    Failed {
        phase: usize,
        percent: u8,
        message: String,
    },
    Succeeded,
}

impl Timetable {
    /// Draws the course of `action` (a known, valid action). `doomed` (the
    /// `fail_next_command` fault) makes it fail whatever the failure rate.
    pub(crate) fn draw(
        action: &CommandAction,
        steps: &StepConfig,
        doomed: bool,
        hosts: u32,
        rng: &mut SplitMix64,
    ) -> Self {
        let Some(kind) = ActionKind::of(action) else {
            return Self {
                ends_ms: Box::new([]),
                fail: None,
            };
        };
        let weights = kind.weights();
        let mean_ms = steps.mean_ms(kind);
        let mut end = 0u64;
        let ends_ms: Box<[u64]> = weights
            .iter()
            .map(|w| {
                let factor: f64 = rng.gen_range(0.5..1.5);
                end = end.saturating_add((mean_ms * w * factor).round() as u64);
                end
            })
            .collect();
        // Drawn whatever `doomed` says, so one command's fault does not shift the stream.
        let unlucky = rng.gen_bool(steps.failure_rate.clamp(0.0, 1.0));
        let fail = (doomed || unlucky).then(|| {
            // Longer phases do more (reboots, image writes) and fail more often.
            let mut roll: f64 = rng.gen_range(0.0..1.0);
            let mut phase = weights.len() - 1;
            for (i, w) in weights.iter().enumerate() {
                if roll < *w {
                    phase = i;
                    break;
                }
                roll -= w;
            }
            let start = if phase == 0 { 0 } else { ends_ms[phase - 1] };
            let len = ends_ms[phase] - start;
            let frac: f64 = rng.gen_range(0.1..0.9);
            let host = host_name(rng.gen_range(0..hosts.clamp(1, 255)) as u8);
            let endpoint = EndpointType::ALL[rng.gen_range(0..EndpointType::ALL.len())];
            let detail = failure_detail(action, phase, &host, endpoint);
            let why = if doomed {
                "simulated failure, fail_next_command"
            } else {
                "simulated"
            };
            let name = action.phases().get(phase).copied().unwrap_or("step");
            Failure {
                phase,
                at_ms: start + (len as f64 * frac).round() as u64,
                message: bounded(&format!("{name} failed: {detail} ({why})")),
            }
        });
        Self { ends_ms, fail }
    }

    /// Total duration, milliseconds.
    pub(crate) fn total_ms(&self) -> u64 {
        self.ends_ms.last().copied().unwrap_or(0)
    }

    /// Where the command stands `elapsed_ms` after its receipt.
    pub(crate) fn at(&self, elapsed_ms: u64) -> Course {
        let total = self.total_ms();
        let phases = self.ends_ms.len().max(1);
        let percent = |at: u64, phase: usize| -> u8 {
            let p = if total == 0 {
                phase * 100 / phases
            } else {
                usize::try_from(u128::from(at) * 100 / u128::from(total)).unwrap_or(100)
            };
            p.min(99) as u8
        };
        if let Some(f) = &self.fail {
            if elapsed_ms >= f.at_ms {
                return Course::Failed {
                    phase: f.phase,
                    percent: percent(f.at_ms, f.phase),
                    message: f.message.clone(),
                };
            }
        }
        if elapsed_ms >= total {
            return Course::Succeeded;
        }
        let phase = self
            .ends_ms
            .iter()
            .position(|&end| elapsed_ms < end)
            .unwrap_or(phases - 1);
        Course::Running {
            phase,
            percent: percent(elapsed_ms, phase),
        }
    }
}

/// What went wrong in `phase` of `action`, as an operator would read it in `dcmanager`.
fn failure_detail(
    action: &CommandAction,
    phase: usize,
    host: &str,
    endpoint: EndpointType,
) -> String {
    match (action, phase) {
        (CommandAction::SoftwareDeploy { .. }, 0) => format!(
            "management-affecting alarm 100.103 (platform memory threshold exceeded) on {host}"
        ),
        (CommandAction::SoftwareDeploy { release }, 1) => {
            format!("the installed license does not cover release {release}")
        }
        (CommandAction::SoftwareDeploy { .. }, 2) => {
            format!("VIM strategy build timed out waiting for host {host}")
        }
        (CommandAction::SoftwareDeploy { .. }, 3) => {
            format!("host {host} did not come back after reboot")
        }
        (CommandAction::SoftwareDeploy { release }, _) => {
            format!(
                "deploy of {release} could not be completed: host {host} is not in deployed state"
            )
        }
        (CommandAction::KubernetesUpgrade { to_version }, 0) => {
            format!("kubernetes version {to_version} is not available in the subcloud's load")
        }
        (CommandAction::KubernetesUpgrade { .. }, 1) => {
            "VIM kube upgrade strategy build timed out".into()
        }
        (CommandAction::KubernetesUpgrade { to_version }, _) => {
            format!("kubelet upgrade to {to_version} timed out on host {host}")
        }
        (CommandAction::KubeRootcaUpdate { .. }, 0) => {
            "cert-manager is not ready to issue the new root CA".into()
        }
        (CommandAction::KubeRootcaUpdate { .. }, _) => {
            format!("pods on host {host} did not restart with the new root CA")
        }
        (CommandAction::FirmwareUpdate, 0) => {
            format!("no device image matches the devices of host {host}")
        }
        (CommandAction::FirmwareUpdate, 1) => "VIM fw update strategy build timed out".into(),
        (CommandAction::FirmwareUpdate, 2) => {
            format!("device image write failed on host {host}")
        }
        (CommandAction::FirmwareUpdate, _) => {
            format!("host {host} did not come back after the device reset")
        }
        (CommandAction::Prestage { release, .. }, 0) => {
            format!("not enough space in /opt/platform-backup on host {host} for {release}")
        }
        (CommandAction::Prestage { release, .. }, 1) => {
            format!("prestage of the {release} packages timed out on host {host}")
        }
        (CommandAction::Prestage { .. }, _) => {
            "image pull from the system controller registry timed out".into()
        }
        (CommandAction::Rollback { of, to }, _) => {
            format!("host {host} did not come back after reboot while returning {of} to {to}")
        }
        (CommandAction::SyncEndpoints, _) => {
            format!("audit of the {endpoint} endpoint timed out")
        }
        (CommandAction::Unknown, _) => "unsupported command".into(),
    }
}

/// The message of a command that succeeded.
pub(crate) fn success_message(action: &CommandAction) -> String {
    match action {
        CommandAction::SoftwareDeploy { release } => format!("{release} deployed and active"),
        CommandAction::SyncEndpoints => "all endpoints in sync".into(),
        CommandAction::KubernetesUpgrade { to_version } => {
            format!("kubernetes upgraded to {to_version}")
        }
        CommandAction::KubeRootcaUpdate { expiry_date, .. } => match expiry_date {
            Some(d) => format!("kubernetes root CA updated (expires {d})"),
            None => "kubernetes root CA updated".into(),
        },
        CommandAction::FirmwareUpdate => "device firmware up to date".into(),
        CommandAction::Prestage {
            release,
            for_install,
        } => {
            if *for_install {
                format!("{release} prestaged for install")
            } else {
                format!("{release} prestaged for deploy")
            }
        }
        CommandAction::Rollback { of, to } => format!("{of} rolled back to {to}"),
        CommandAction::Unknown => "unsupported command".into(),
    }
}

/// Strategy types (`Rollback::of`) whose rollback returns the site's software release.
pub(crate) fn rolls_back_software(of: &str) -> bool {
    matches!(of, "sw-deploy" | "software_deploy")
}

/// Strategy types (`Rollback::of`) whose rollback returns the site's Kubernetes version.
pub(crate) fn rolls_back_kubernetes(of: &str) -> bool {
    matches!(of, "kubernetes" | "kube-upgrade" | "kubernetes_upgrade")
}

#[cfg(test)]
mod tests {
    use super::super::rng::{stream, Stream};
    use super::*;

    fn every_action() -> Vec<CommandAction> {
        vec![
            CommandAction::SoftwareDeploy {
                release: "25.09".into(),
            },
            CommandAction::SyncEndpoints,
            CommandAction::KubernetesUpgrade {
                to_version: "v1.32.2".into(),
            },
            CommandAction::KubeRootcaUpdate {
                expiry_date: Some("2030-01-01".into()),
                subject: None,
            },
            CommandAction::FirmwareUpdate,
            CommandAction::Prestage {
                release: "25.09".into(),
                for_install: false,
            },
            CommandAction::Rollback {
                of: "sw-deploy".into(),
                to: "24.09".into(),
            },
        ]
    }

    #[test]
    fn every_kind_has_one_weight_per_phase_and_a_name() {
        for a in every_action() {
            let k = ActionKind::of(&a).unwrap();
            assert_eq!(k.weights().len(), a.phases().len(), "{k:?}");
            assert!((k.weights().iter().sum::<f64>() - 1.0).abs() < 1e-9);
            let json = serde_json::to_value(&a).unwrap();
            assert_eq!(json["kind"], k.name());
            assert_eq!(serde_json::to_value(k).unwrap(), k.name());
        }
        assert_eq!(ActionKind::of(&CommandAction::Unknown), None);
    }

    #[test]
    fn phases_come_in_order_and_percent_rises() {
        let steps = StepConfig {
            failure_rate: 0.0,
            ..StepConfig::default()
        };
        let mut rng = stream(1, "s", Stream::Commands);
        for a in every_action() {
            let t = Timetable::draw(&a, &steps, false, 2, &mut rng);
            let total = t.total_ms();
            let mean = steps.mean_ms(ActionKind::of(&a).unwrap());
            assert!(
                total as f64 >= mean * 0.5 && total as f64 <= mean * 1.5,
                "{a:?}: {total} around {mean}"
            );
            let (mut last_phase, mut last_pct) = (0, 0);
            let mut seen = vec![];
            for ms in (0..total).step_by(500) {
                let Course::Running { phase, percent } = t.at(ms) else {
                    panic!("{a:?} not running at {ms}");
                };
                assert!(phase >= last_phase && percent >= last_pct && percent < 100);
                if seen.last() != Some(&phase) {
                    seen.push(phase);
                }
                (last_phase, last_pct) = (phase, percent);
            }
            assert_eq!(
                seen,
                (0..a.phases().len()).collect::<Vec<_>>(),
                "{a:?} goes through every phase in order"
            );
            assert_eq!(t.at(total), Course::Succeeded);
        }
    }

    #[test]
    fn default_durations_are_demo_sized() {
        let m = MeanSeconds::default();
        assert!((120.0..=240.0).contains(&m.software_deploy));
        assert!(m.prestage > m.software_deploy && m.kube_rootca_update < m.software_deploy);
        assert_eq!(StepConfig::default().validate(), Ok(()));
    }

    #[test]
    fn zero_durations_finish_at_once_and_failures_name_their_phase() {
        let mut rng = stream(2, "s", Stream::Commands);
        let steps = StepConfig {
            failure_rate: 1.0,
            ..StepConfig::instant()
        };
        let mut phases_hit = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let a = CommandAction::SoftwareDeploy {
                release: "25.09".into(),
            };
            let t = Timetable::draw(&a, &steps, false, 1, &mut rng);
            assert_eq!(t.total_ms(), 0);
            let Course::Failed {
                phase,
                percent,
                message,
            } = t.at(0)
            else {
                panic!("rate 1 always fails");
            };
            assert!(message.starts_with(&format!("{} failed: ", a.phases()[phase])));
            assert!(message.ends_with("(simulated)") && crate::text::acceptable(&message));
            assert!(percent < 100);
            phases_hit.insert(phase);
        }
        assert!(phases_hit.contains(&3), "the apply phase fails most");
        let ok = Timetable::draw(
            &CommandAction::FirmwareUpdate,
            &StepConfig::instant(),
            false,
            1,
            &mut rng,
        );
        assert_eq!(ok.at(0), Course::Succeeded);
    }

    #[test]
    fn patches_are_validated_and_partial() {
        let base = StepConfig::default();
        let p: StepPatch =
            serde_json::from_str(r#"{"scale":0.5,"mean_seconds":{"prestage":900}}"#).unwrap();
        let next = base.patched(&p).unwrap();
        assert_eq!(
            (next.scale, next.failure_rate, next.mean_seconds.prestage),
            (0.5, base.failure_rate, 900.0)
        );
        assert_eq!(next.mean_seconds.software_deploy, 180.0);
        for bad in [
            r#"{"scale":-1}"#,
            r#"{"failure_rate":1.5}"#,
            r#"{"mean_seconds":{"prestage":-3}}"#,
            r#"{"mean_seconds":{"prestage":1e9}}"#,
        ] {
            let p: StepPatch = serde_json::from_str(bad).unwrap();
            assert!(base.patched(&p).is_err(), "{bad}");
        }
        for bad in [r#"{"scal":1}"#, r#"{"mean_seconds":{"reboot":3}}"#] {
            assert!(serde_json::from_str::<StepPatch>(bad).is_err(), "{bad}");
        }
        // The full configuration round-trips, and a partial one fills in the defaults.
        let json = serde_json::to_string(&next).unwrap();
        assert_eq!(serde_json::from_str::<StepConfig>(&json).unwrap(), next);
        let partial: StepConfig = serde_json::from_str(r#"{"scale":0}"#).unwrap();
        assert_eq!(partial.mean_seconds, MeanSeconds::default());
    }
}

//! The agent of one real subcloud (`murmur-agent run`): enrolls once with its one-time token,
//! keeps the secret in its state directory, then reports every interval with failover
//! across the controllers, measured reachability and the commands' progress.
//!
//! It reports only what it measures. Until a platform driver observes the platform, its
//! health is `unknown` (so its empty alarm list is no claim either) and every endpoint's
//! sync is `unknown`; what it does measure is reported as such: the machine's own size, and
//! which controllers it reaches at what round-trip time. Every command that needs the
//! platform (`sync_endpoints` and all platform actions) fails in its first phase saying so
//! (see [`execute`]): the dashboard must never show a site green that nobody looked at.

mod host;
mod state;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use engine::agents::wire::{
    Capacity, CommandAction, ControllerRef, EndpointSync, EnrollRequest, Reachability, Report,
    ReportAnswer, SiteHealth, MAX_REACHABILITY, PROTOCOL_VERSION,
};
use engine::fleet::{EndpointType, SyncStatus};
use engine::time::Millis;
use reqwest::header::HeaderValue;
use tokio::task::JoinSet;

pub use host::{machine_capacity, mem_total_kib};
pub use state::AgentState;

use crate::commands::CommandBook;
use crate::failover::ControllerSet;
use crate::seq::SeqGen;
use crate::transport::{bearer, Transport, TransportError};

/// Probe every controller's round-trip time every this many reports.
const PING_EVERY: u64 = 3;
const PING_TIMEOUT: Duration = Duration::from_secs(2);
const DEFAULT_INTERVAL_MS: u64 = 10_000;
const INTERVAL_MS: (u64, u64) = (100, 3_600_000);
const ENROLL_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// After a 401, report this many intervals apart until the operator acts.
const UNAUTHORIZED_INTERVALS: u32 = 6;

/// How to run the agent of one site.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Controller base URLs from the command line, in order of preference.
    pub controllers: Vec<String>,
    pub subcloud: String,
    /// Needed for the first start (and to re-enroll with a re-issued token).
    pub enrollment_token: Option<String>,
    pub state_dir: PathBuf,
    /// Overrides the interval the controller asks for.
    pub interval_ms: Option<u64>,
    pub software_version: String,
}

/// Runs the agent until `shutdown` completes.
pub async fn run(config: AgentConfig, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let transport = Transport::new()?;
    tokio::pin!(shutdown);
    let mut agent = tokio::select! {
        agent = Agent::start(config, transport) => agent?,
        () = &mut shutdown => return Ok(()),
    };
    loop {
        // A cycle can take several request timeouts; shutdown does not wait for it (the seq
        // is already on disk when a report leaves).
        let delay = tokio::select! {
            delay = agent.cycle() => delay,
            () = &mut shutdown => break,
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = &mut shutdown => break,
        }
    }
    agent.persist().await;
    tracing::info!("agent stopped");
    Ok(())
}

struct Agent {
    config: AgentConfig,
    transport: Transport,
    state: AgentState,
    auth: HeaderValue,
    seq: SeqGen,
    controllers: ControllerSet,
    book: CommandBook,
    capacity: Capacity,
    reachability: Vec<Reachability>,
    reports: u64,
    interval: Duration,
}

impl Agent {
    /// Loads the saved state, enrolling first when there is none (or a new token was given).
    async fn start(config: AgentConfig, transport: Transport) -> anyhow::Result<Self> {
        if config.controllers.is_empty() {
            bail!("give at least one --controller URL");
        }
        let saved = AgentState::load(&config.state_dir)?;
        if let Some(s) = &saved {
            if s.subcloud != config.subcloud {
                bail!(
                    "{} holds the state of subcloud {:?}, not {:?}: use another --state-dir",
                    AgentState::path(&config.state_dir).display(),
                    s.subcloud,
                    config.subcloud
                );
            }
        }
        let fingerprint = config.enrollment_token.as_deref().map(fingerprint);
        let state = match saved {
            Some(s) if !needs_enrollment(&s, fingerprint.as_deref()) => s,
            saved => {
                let Some(token) = config.enrollment_token.clone() else {
                    bail!(
                        "no saved state in {}: the first start needs --enrollment-token",
                        config.state_dir.display()
                    );
                };
                let state = enroll(&config, &transport, &token, saved).await?;
                state.save(&config.state_dir)?;
                tracing::info!(subcloud = %state.subcloud, "enrolled");
                state
            }
        };
        let list = initial_controllers(&state.controllers, &config.controllers);
        let interval_ms = interval_ms(config.interval_ms, state.report_interval_ms);
        Ok(Self {
            auth: bearer(&state.secret).context("the saved secret is unusable")?,
            seq: SeqGen::resume(state.last_seq),
            controllers: ControllerSet::new(list.into()),
            book: CommandBook::default(),
            capacity: machine_capacity(),
            reachability: Vec::new(),
            reports: 0,
            interval: Duration::from_millis(interval_ms),
            config,
            transport,
            state,
        })
    }

    /// One report (with failover); returns the delay until the next one.
    async fn cycle(&mut self) -> Duration {
        execute(&mut self.book);
        if self.reports.is_multiple_of(PING_EVERY) {
            self.reachability = probe(&self.transport, self.controllers.list()).await;
        }
        self.reports += 1;
        let list = Arc::clone(self.controllers.list());
        for i in self.controllers.attempt_order() {
            let Some(controller) = list.get(i) else { break };
            let report = self.report();
            // Write-ahead: the seq is on disk before it can reach a controller.
            self.state.last_seq = report.seq;
            self.persist().await;
            match self
                .transport
                .report(&controller.url, &self.auth, &report, self.interval)
                .await
            {
                Ok(answer) => {
                    let go_to_owner = self.accepted(i, answer);
                    self.persist().await;
                    if go_to_owner {
                        // A new owner was named: report to it now-ish, not an interval later.
                        return Duration::from_millis(500);
                    }
                    return self.interval;
                }
                Err(e) if e.is_failover() => {
                    tracing::warn!(controller = %controller.name, error = %e, "controller unusable, trying the next");
                    self.controllers.failed(i);
                }
                Err(TransportError::Overloaded { retry_after }) => {
                    tracing::warn!(controller = %controller.name, ?retry_after, "controller overloaded, backing off");
                    return retry_after.unwrap_or(self.interval);
                }
                Err(e @ TransportError::Unauthorized(_)) => {
                    tracing::error!(
                        error = %e,
                        "the controller refused this agent's credential; re-issue an enrollment token and restart with --enrollment-token"
                    );
                    return self.interval * UNAUTHORIZED_INTERVALS;
                }
                Err(e) => {
                    tracing::error!(controller = %controller.name, error = %e, "report refused");
                    return self.interval;
                }
            }
        }
        tracing::warn!("no controller could be reached; retrying next interval");
        self.interval
    }

    fn report(&mut self) -> Report {
        Report {
            protocol: PROTOCOL_VERSION,
            seq: self.seq.next(crate::wall_ms()),
            sent_at: Millis(i64::try_from(crate::wall_ms()).unwrap_or(i64::MAX)),
            // Not measured: no driver observes the platform's health or its alarms.
            health: SiteHealth::Unknown,
            software_version: self.config.software_version.clone(),
            // Nothing audits the endpoints without a platform driver.
            endpoints: unaudited_endpoints(),
            alarms: Vec::new(),
            capacity: self.capacity,
            commands: self.book.progress(),
            reachability: self.reachability.clone(),
            highest_epoch: self.state.highest_epoch,
            agent_version: crate::AGENT_VERSION.to_string(),
        }
    }

    /// Takes an answer; returns whether it names a new owner that did not give it (the next
    /// report should go there soon).
    fn accepted(&mut self, i: usize, answer: ReportAnswer) -> bool {
        let answered_by = self.controllers.list().get(i).map(|c| c.name.clone());
        let go_to_owner = answer.controllers.first().is_some_and(|o| {
            Some(&o.name) != answered_by.as_ref()
                && self.controllers.list().first().map(|c| &c.name) != Some(&o.name)
        });
        self.state.highest_epoch = self.state.highest_epoch.max(answer.owner_epoch);
        self.book.acknowledge();
        self.controllers.succeeded(i);
        if !answer.controllers.is_empty() && !self.controllers.same_list(&answer.controllers) {
            tracing::info!(controllers = ?answer.controllers.iter().map(|c| &c.name).collect::<Vec<_>>(), "controller list changed");
            self.state.controllers = answer.controllers.clone();
            self.controllers.adopt(answer.controllers.into(), i);
        }
        self.state.report_interval_ms = answer.report_interval_ms;
        self.interval = Duration::from_millis(interval_ms(
            self.config.interval_ms,
            answer.report_interval_ms,
        ));
        let r = self
            .book
            .receive(&answer.commands, self.state.highest_epoch, |t| {
                tracing::info!(id = t.id, action = ?t.action, "command received");
            });
        if r.fenced > 0 {
            tracing::warn!(
                fenced = r.fenced,
                "ignored commands from a controller that lost ownership"
            );
        }
        go_to_owner
    }

    /// Saves the state; a failure is logged, not fatal (the clock keeps seqs increasing).
    async fn persist(&self) {
        let state = self.state.clone();
        let dir = self.config.state_dir.clone();
        let saved = tokio::task::spawn_blocking(move || state.save(&dir)).await;
        match saved {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %format!("{e:#}"), "cannot save the agent state"),
            Err(e) => tracing::error!(error = %e, "cannot save the agent state"),
        }
    }
}

/// Every endpoint type with sync `unknown`: what an agent reports when nothing audits them.
pub fn unaudited_endpoints() -> Vec<EndpointSync> {
    EndpointType::ALL
        .iter()
        .map(|&endpoint_type| EndpointSync {
            endpoint_type,
            sync_status: SyncStatus::Unknown,
        })
        .collect()
}

/// Runs the commands this agent can run without a platform integration.
///
/// Honesty first: this agent drives no StarlingX platform yet (no `sw-manager`, no
/// `dcmanager`, no VIM strategy). It therefore never claims to have done platform work:
///
/// - `sync_endpoints` fails in its one phase, `syncing`: nothing audits or re-syncs the
///   endpoints without a platform, and "all in sync" would be a claim nobody measured.
/// - Every platform action (`software_deploy`, `kubernetes_upgrade`, `kube_rootca_update`,
///   `firmware_update`, `prestage`, `rollback`) has its arguments checked like the simulator
///   does, then fails in its first phase (reported as the command's `phase`, so the
///   controller shows where it stopped) with "… needs the platform integration". Reporting
///   success would let an orchestration move on from a site that was never changed.
/// - Unknown actions (from a newer controller) fail "unsupported command", without a phase.
///
/// A platform integration would replace the failing arms with the real steps, entering each
/// phase of [`CommandAction::phases`] in order as it goes.
pub fn execute(book: &mut CommandBook) {
    for t in book.running_mut() {
        t.step = t.step.saturating_add(1);
        // No phase for an unknown action (its phase list is empty).
        t.enter_phase(0);
        // Refuses unknown actions too ("unsupported command").
        if let Err(message) = crate::commands::validate_action(&t.action) {
            t.fail(&message);
            continue;
        }
        let needs_platform = match &t.action {
            CommandAction::SyncEndpoints => "endpoint sync",
            CommandAction::SoftwareDeploy { .. } => "software deploy",
            CommandAction::KubernetesUpgrade { .. } => "kubernetes upgrade",
            CommandAction::KubeRootcaUpdate { .. } => "kubernetes root CA update",
            CommandAction::FirmwareUpdate => "firmware update",
            CommandAction::Prestage { .. } => "prestage",
            CommandAction::Rollback { .. } => "rollback",
            // Already failed by `validate_action`.
            CommandAction::Unknown => continue,
        };
        t.fail(&format!("{needs_platform} needs the platform integration"));
    }
}

/// Whether to enroll although there is saved state: only when a different token is given.
pub fn needs_enrollment(saved: &AgentState, token_fingerprint: Option<&str>) -> bool {
    saved.secret.is_empty() || token_fingerprint.is_some_and(|f| f != saved.token_fingerprint)
}

/// The saved list (the controllers' own, owner first), then command-line URLs it lacks as
/// fallbacks.
pub fn initial_controllers(saved: &[ControllerRef], urls: &[String]) -> Vec<ControllerRef> {
    let mut list = saved.to_vec();
    for url in urls {
        let url = url.trim_end_matches('/');
        if !list.iter().any(|c| c.url.trim_end_matches('/') == url) {
            list.push(ControllerRef {
                name: crate::admin::host_of(url).to_string(),
                url: url.to_string(),
            });
        }
    }
    list
}

/// The interval to use: the override, else the controller's; 0 (unknown) means the default,
/// and anything else is bounded (a tiny value would spin, a huge one look dead).
pub fn interval_ms(overridden: Option<u64>, controller: u64) -> u64 {
    match overridden.unwrap_or(controller) {
        0 => DEFAULT_INTERVAL_MS,
        ms => ms.clamp(INTERVAL_MS.0, INTERVAL_MS.1),
    }
}

fn fingerprint(token: &str) -> String {
    format!("{:016x}", crate::sim::fnv1a(token.as_bytes()))
}

/// Enrolls with the first controller that answers; retries while none can be reached.
async fn enroll(
    config: &AgentConfig,
    transport: &Transport,
    token: &str,
    saved: Option<AgentState>,
) -> anyhow::Result<AgentState> {
    let request = EnrollRequest {
        protocol: PROTOCOL_VERSION,
        subcloud: config.subcloud.clone(),
        enrollment_token: token.to_string(),
    };
    let candidates = initial_controllers(&[], &config.controllers);
    let mut backoff = ENROLL_BACKOFF.0;
    loop {
        for c in &candidates {
            match transport.enroll(&c.url, &request).await {
                Ok(e) => {
                    let controllers = if e.controllers.is_empty() {
                        candidates.clone()
                    } else {
                        e.controllers
                    };
                    return Ok(AgentState {
                        subcloud: config.subcloud.clone(),
                        secret: e.secret,
                        // Keep the old high-water marks: the controller remembers them.
                        last_seq: saved.as_ref().map_or(0, |s| s.last_seq),
                        highest_epoch: saved.as_ref().map_or(0, |s| s.highest_epoch),
                        controllers,
                        report_interval_ms: e.report_interval_ms,
                        token_fingerprint: fingerprint(token),
                    });
                }
                Err(e) if e.is_failover() || matches!(e, TransportError::Overloaded { .. }) => {
                    tracing::warn!(controller = %c.url, error = %e, "cannot enroll there yet");
                }
                Err(e) => bail!("enrollment refused by {}: {e}", c.url),
            }
        }
        tracing::warn!(retry_in = ?backoff, "no controller could enroll this agent");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(ENROLL_BACKOFF.1);
    }
}

/// Pings every controller at once; the outcome is the reachability of the next reports.
async fn probe(transport: &Transport, list: &[ControllerRef]) -> Vec<Reachability> {
    let mut pings = JoinSet::new();
    for (i, c) in list.iter().take(MAX_REACHABILITY).enumerate() {
        let transport = transport.clone();
        let url = c.url.clone();
        pings.spawn(async move {
            let rtt = tokio::time::timeout(PING_TIMEOUT, transport.ping(&url))
                .await
                .ok()
                .and_then(Result::ok)
                .map(|(_, rtt)| u32::try_from(rtt.as_millis()).unwrap_or(u32::MAX));
            (i, rtt)
        });
    }
    let mut out: Vec<Reachability> = list
        .iter()
        .take(MAX_REACHABILITY)
        .map(|c| Reachability {
            controller: c.name.clone(),
            reachable: false,
            rtt_ms: None,
        })
        .collect();
    while let Some(done) = pings.join_next().await {
        if let Ok((i, Some(rtt))) = done {
            if let Some(r) = out.get_mut(i) {
                r.reachable = true;
                r.rtt_ms = Some(rtt);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use engine::agents::wire::{Command, CommandState};

    use super::*;

    #[test]
    fn commands_are_answered_honestly() {
        let mut book = CommandBook::default();
        let cmds = [
            CommandAction::SyncEndpoints,
            CommandAction::SoftwareDeploy {
                release: "25.09".into(),
            },
            CommandAction::Unknown,
            CommandAction::KubernetesUpgrade {
                to_version: "v1.29.2".into(),
            },
            CommandAction::KubeRootcaUpdate {
                expiry_date: None,
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
            CommandAction::SoftwareDeploy { release: "".into() },
        ];
        let cmds: Vec<Command> = cmds
            .into_iter()
            .enumerate()
            .map(|(i, action)| Command {
                id: i as i64,
                epoch: 0,
                key: None,
                action,
            })
            .collect();
        book.receive(&cmds, 0, |_| {});
        execute(&mut book);
        let p = book.progress();
        assert_eq!(
            (p[0].state, p[0].message.as_str(), p[0].phase.as_deref()),
            (
                CommandState::Failed,
                "endpoint sync needs the platform integration",
                Some("syncing")
            )
        );
        assert_eq!(
            (p[1].state, p[1].message.as_str(), p[1].phase.as_deref()),
            (
                CommandState::Failed,
                "software deploy needs the platform integration",
                Some("sw-deploy pre-check")
            )
        );
        assert_eq!(
            (p[2].state, p[2].message.as_str(), p[2].phase.as_deref()),
            (CommandState::Failed, "unsupported command", None)
        );
        for (q, c) in p[3..8].iter().zip(&cmds[3..8]) {
            assert_eq!(q.state, CommandState::Failed);
            assert!(
                q.message.ends_with("needs the platform integration"),
                "{q:?}"
            );
            assert_eq!(q.phase.as_deref(), c.action.phases().first().copied());
        }
        assert_eq!(
            (p[8].state, p[8].message.as_str()),
            (CommandState::Failed, "the release name is not valid")
        );
        // Nothing left to run, and nothing runs twice.
        assert_eq!(book.running_mut().count(), 0);
    }

    #[test]
    fn a_new_token_means_re_enrollment() {
        let saved = AgentState {
            subcloud: "s".into(),
            secret: "mms_1_x".into(),
            last_seq: 5,
            highest_epoch: 0,
            controllers: vec![],
            report_interval_ms: 10_000,
            token_fingerprint: fingerprint("mme_old"),
        };
        assert!(!needs_enrollment(&saved, None), "restart without a token");
        assert!(
            !needs_enrollment(&saved, Some(&fingerprint("mme_old"))),
            "same token again"
        );
        assert!(needs_enrollment(&saved, Some(&fingerprint("mme_new"))));
    }

    #[test]
    fn intervals_are_bounded() {
        assert_eq!(interval_ms(None, 0), DEFAULT_INTERVAL_MS);
        assert_eq!(interval_ms(None, 1), 100);
        assert_eq!(interval_ms(Some(2_000), 10_000), 2_000);
        assert_eq!(interval_ms(None, u64::MAX), 3_600_000);
    }

    #[test]
    fn saved_controllers_come_first_and_urls_are_fallbacks() {
        let saved = vec![ControllerRef {
            name: "sc-b".into(),
            url: "https://b.example".into(),
        }];
        let urls = vec![
            "https://a.example:8443/".to_string(),
            "https://b.example".to_string(),
        ];
        let list = initial_controllers(&saved, &urls);
        let names: Vec<&str> = list.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, vec!["sc-b", "a.example:8443"]);
        assert_eq!(list[1].url, "https://a.example:8443");
    }
}

//! `murmur-agent run` (one real site) against the fake controller pair of `common`.

mod common;

use std::sync::Arc;
use std::time::Duration;

use agent::site_agent::{self, AgentConfig, AgentState};
use common::{controller_pair, eventually, final_state, queue, Shared};
use engine::agents::wire::{Command, CommandAction, CommandState, SiteHealth};
use engine::fleet::{EndpointType, SyncStatus};
use tokio::sync::oneshot;

fn config(urls: Vec<String>, dir: &std::path::Path, token: Option<&str>) -> AgentConfig {
    AgentConfig {
        controllers: urls,
        subcloud: "oslo-1".into(),
        enrollment_token: token.map(String::from),
        state_dir: dir.join("state"),
        interval_ms: Some(100),
        software_version: "24.09".into(),
    }
}

fn reports(fleet: &Shared) -> u64 {
    fleet
        .lock()
        .unwrap()
        .subclouds
        .get("oslo-1")
        .map_or(0, |s| s.reports)
}

/// Runs the agent until `done` holds (or 10 s), then stops it and returns its result.
async fn run_until(config: AgentConfig, mut done: impl FnMut() -> bool) -> anyhow::Result<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(site_agent::run(config, async {
        let _ = stopped.await;
    }));
    let reached = eventually(Duration::from_secs(10), &mut done).await;
    let _ = stop.send(());
    let result = task.await.expect("agent task panicked");
    assert!(reached, "condition not reached");
    result
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_enrolls_once_reports_and_resumes_after_a_restart() {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, 100).await;
    let urls: Vec<String> = controllers.iter().map(|c| c.url.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let deploy = CommandAction::SoftwareDeploy {
        release: "25.09".into(),
    };
    queue(
        &fleet,
        "oslo-1",
        Command {
            id: 1,
            epoch: 1,
            key: None,
            action: deploy,
        },
    );
    queue(
        &fleet,
        "oslo-1",
        Command {
            id: 2,
            epoch: 1,
            key: None,
            action: CommandAction::SyncEndpoints,
        },
    );

    run_until(config(urls.clone(), dir.path(), Some("mme_oslo-1")), || {
        reports(&fleet) >= 4 && final_state(&fleet, "oslo-1", 1).is_some()
    })
    .await
    .unwrap();

    let (state, _, message) = final_state(&fleet, "oslo-1", 1).unwrap();
    assert_eq!(
        (state, message.as_str()),
        (
            CommandState::Failed,
            "software deploy needs the platform integration"
        )
    );
    // Nothing audits the endpoints without a platform driver: the sync fails, saying why.
    assert_eq!(
        final_state(&fleet, "oslo-1", 2).map(|f| (f.0, f.2)),
        Some((
            CommandState::Failed,
            "endpoint sync needs the platform integration".to_string()
        ))
    );
    let last = fleet.lock().unwrap().subclouds["oslo-1"]
        .last
        .clone()
        .unwrap();
    // What it did not measure is reported as unknown: health (and so its alarm list) and
    // every endpoint's sync.
    assert_eq!(last.health, SiteHealth::Unknown);
    assert!(last.alarms.is_empty());
    assert_eq!(last.endpoints.len(), EndpointType::ALL.len());
    assert!(last
        .endpoints
        .iter()
        .all(|e| e.sync_status == SyncStatus::Unknown));
    assert!(last.capacity.cpu_cores >= 1 && last.capacity.hosts == 1);
    assert!(
        last.reachability
            .iter()
            .all(|r| r.reachable && r.rtt_ms.is_some()),
        "{:?}",
        last.reachability
    );
    assert_eq!(last.highest_epoch, 1);

    let saved = AgentState::load(&dir.path().join("state"))
        .unwrap()
        .unwrap();
    let accepted = fleet.lock().unwrap().subclouds["oslo-1"].last_seq;
    assert!(saved.last_seq >= accepted && !saved.secret.is_empty());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(AgentState::path(&dir.path().join("state")))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Restarted without the token: the saved secret is used (the fake would refuse a second
    // enrollment) and seqs continue above the last accepted one.
    let before = reports(&fleet);
    run_until(config(urls, dir.path(), None), || {
        reports(&fleet) >= before + 2
    })
    .await
    .unwrap();
    let f = fleet.lock().unwrap();
    assert_eq!((f.replays, f.invalid), (0, 0));
    assert!(f.subclouds["oslo-1"].last_seq > accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_skips_an_unreachable_controller_and_reports_it() {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, 100).await;
    // Only the list the agent starts with has the dead controller; keep it in the answers too.
    let dead = engine::agents::wire::ControllerRef {
        name: "sc-dead".into(),
        url: "http://127.0.0.1:1".into(),
    };
    fleet.lock().unwrap().controllers = vec![dead.clone(), controllers[0].clone()];
    let dir = tempfile::tempdir().unwrap();
    let urls = vec![dead.url.clone(), controllers[0].url.clone()];
    run_until(config(urls, dir.path(), Some("mme_oslo-1")), || {
        reports(&fleet) >= 3
    })
    .await
    .unwrap();
    let f = fleet.lock().unwrap();
    let sc = &f.subclouds["oslo-1"];
    assert!(sc.via.iter().all(|v| *v == "sc-a"));
    let r = &sc.last.as_ref().unwrap().reachability;
    let dead = r.iter().find(|r| r.controller == "sc-dead").unwrap();
    assert!(!dead.reachable && dead.rtt_ms.is_none());
}

#[tokio::test]
async fn the_first_start_needs_a_token_and_a_refused_token_is_an_error() {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, 100).await;
    let dir = tempfile::tempdir().unwrap();
    let urls = vec![controllers[0].url.clone()];
    let no_token = site_agent::run(
        config(urls.clone(), dir.path(), None),
        std::future::pending(),
    )
    .await;
    assert!(format!("{:#}", no_token.unwrap_err()).contains("--enrollment-token"));
    let wrong = site_agent::run(
        config(urls, dir.path(), Some("mme_wrong")),
        std::future::pending(),
    )
    .await;
    assert!(format!("{:#}", wrong.unwrap_err()).contains("enrollment refused"));
    assert!(AgentState::load(&dir.path().join("state"))
        .unwrap()
        .is_none());
}

//! The simulator against the fake controller pair of `common`. End-to-end tests against the
//! real controller live with the server.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use agent::sim::{Fault, Selector, SimConfig, SimHandle, Simulator, SiteSpec, StepConfig};
use common::{controller_pair, eventually, serve, Shared};
use engine::agents::wire::{Command, CommandAction, CommandState, ControllerRef};

fn sites(n: usize) -> Vec<SiteSpec> {
    (0..n)
        .map(|i| SiteSpec {
            name: format!("site-{i}"),
            region: if i % 2 == 0 { "Europe" } else { "Asia" }.into(),
            lat: 48.0 + i as f64 * 0.01,
            lon: 2.0,
            software_version: "24.09".into(),
            enrollment_token: format!("mme_site-{i}"),
            controller: None,
        })
        .collect()
}

/// Two fake controllers (sc-a preferred) and a simulator of `n` sites whose commands
/// complete at the first report after receipt, never failing by chance.
async fn setup(n: usize, interval_ms: u64) -> (Shared, SimHandle) {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, interval_ms).await;
    let config = SimConfig {
        controllers,
        controller_coords: vec![("sc-a".into(), 52.37, 4.90), ("sc-b".into(), 40.71, -74.01)],
        seed: 7,
        control_listen: Some("127.0.0.1:0".parse().unwrap()),
        max_in_flight: 64,
        enroll_concurrency: 16,
        steps: StepConfig::instant(),
    };
    let sim = Simulator::start(config, sites(n)).await.unwrap();
    assert!(
        sim.wait_enrolled(Duration::from_secs(120)).await,
        "enrollment did not finish"
    );
    (fleet, sim)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_enroll_report_run_commands_and_fail_over() {
    let (fleet, sim) = setup(40, 150).await;
    assert_eq!(sim.stats().enrolled, 40);

    // Every site reports, in order, with valid reports.
    let all_report = eventually(Duration::from_secs(30), || {
        fleet
            .lock()
            .unwrap()
            .subclouds
            .values()
            .all(|s| s.reports >= 3)
    })
    .await;
    assert!(all_report, "some sites never reported");

    // A deploy to site-0 runs to completion and changes its version; a failing one to site-1.
    sim.apply(
        Fault::FailNextCommand,
        Selector::Sites(vec!["site-1".into()]),
    );
    {
        let mut f = fleet.lock().unwrap();
        for (site, id) in [("site-0", 100), ("site-1", 101)] {
            f.subclouds.get_mut(site).unwrap().pending.push(Command {
                id,
                epoch: 1,
                key: None,
                action: CommandAction::SoftwareDeploy {
                    release: "25.09".into(),
                },
            });
        }
    }
    let done = eventually(Duration::from_secs(30), || {
        let f = fleet.lock().unwrap();
        f.subclouds["site-0"].finals.contains_key(&100)
            && f.subclouds["site-1"].finals.contains_key(&101)
    })
    .await;
    assert!(done, "commands did not finish");
    {
        let f = fleet.lock().unwrap();
        assert_eq!(
            f.subclouds["site-0"].finals[&100].0,
            CommandState::Succeeded
        );
        let (state, percent, message) = &f.subclouds["site-1"].finals[&101];
        assert_eq!(*state, CommandState::Failed);
        assert!(*percent < 100);
        assert!(message.contains("simulated failure"), "{message}");
        let phases = &f.subclouds["site-1"].phases[&101];
        assert!(
            message.starts_with(&format!("{} failed: ", phases.last().unwrap())),
            "{message} names the phase it failed in"
        );
        assert_eq!(
            f.subclouds["site-0"].phases[&100],
            vec!["finish sw-deploy strategy"],
            "instant: the final phase at the first report"
        );
    }
    let views = sim.sites(Selector::Sites(vec!["site-0".into(), "site-1".into()]));
    assert_eq!(views[0].software_version, "25.09");
    assert_eq!(views[1].software_version, "24.09");

    // The controller crashed before persisting site-0's final state and resends the
    // command: the site reports the same final state again and does not run it again.
    let reported = fleet.lock().unwrap().subclouds["site-0"].final_reports[&100];
    fleet
        .lock()
        .unwrap()
        .subclouds
        .get_mut("site-0")
        .unwrap()
        .pending
        .push(Command {
            id: 100,
            epoch: 1,
            key: None,
            action: CommandAction::SoftwareDeploy {
                release: "25.09".into(),
            },
        });
    let again = eventually(Duration::from_secs(30), || {
        fleet.lock().unwrap().subclouds["site-0"].final_reports[&100] > reported
    })
    .await;
    assert!(again, "the final state was not reported again");
    {
        let f = fleet.lock().unwrap();
        assert_eq!(
            f.subclouds["site-0"].finals[&100].0,
            CommandState::Succeeded
        );
        assert!(f.subclouds["site-0"].pending.is_empty());
    }
    let v = &sim.sites(Selector::Sites(vec!["site-0".into()]))[0];
    assert_eq!(v.commands_started, 1, "never run again");
    let by_kind = &sim.stats().commands_by_action["software_deploy"];
    assert_eq!((by_kind.succeeded, by_kind.failed), (1, 1));

    // Partitioned from sc-a, European sites move to sc-b.
    let affected = sim.apply(
        Fault::Partition {
            controller: "sc-a".into(),
        },
        Selector::Region("Europe".into()),
    );
    assert_eq!(affected, 20);
    let moved = eventually(Duration::from_secs(30), || {
        sim.sites(Selector::Region("Europe".into()))
            .iter()
            .all(|v| v.controller.as_deref() == Some("sc-b"))
    })
    .await;
    assert!(moved, "European sites did not fail over");
    assert!(sim
        .sites(Selector::Region("Asia".into()))
        .iter()
        .all(|v| v.controller.as_deref() == Some("sc-a")));

    // Healed, they return to the preferred controller within ~10 reports.
    sim.apply(Fault::Heal, Selector::All);
    let back = eventually(Duration::from_secs(30), || {
        sim.sites(Selector::All)
            .iter()
            .all(|v| v.controller.as_deref() == Some("sc-a"))
    })
    .await;
    assert!(back, "sites did not return to the preferred controller");

    // Restarts never reuse a seq; down sites stop reporting. Counted in reports rather than
    // wall time: once every other site has had 4 more reports accepted, site-5 would have had
    // at least 2 had it kept reporting. At most one may arrive: a report it had already begun
    // when it went down (sent after its plan, so counted by the controller afterwards).
    sim.apply(Fault::Restart, Selector::All);
    sim.apply(Fault::Down, Selector::Sites(vec!["site-5".into()]));
    let at_down: std::collections::HashMap<String, u64> = fleet
        .lock()
        .unwrap()
        .subclouds
        .iter()
        .map(|(name, s)| (name.clone(), s.reports))
        .collect();
    let others_moved_on = eventually(Duration::from_secs(30), || {
        let f = fleet.lock().unwrap();
        f.subclouds
            .iter()
            .filter(|(name, _)| *name != "site-5")
            .all(|(name, s)| s.reports >= at_down[name] + 4)
    })
    .await;
    assert!(others_moved_on, "the other sites stopped reporting");
    let after = fleet.lock().unwrap().subclouds["site-5"].reports;
    assert!(
        after <= at_down["site-5"] + 1,
        "a down site reported: {} reports after it went down (at most 1 in flight)",
        after - at_down["site-5"]
    );
    assert!(sim.sites(Selector::Sites(vec!["site-5".into()]))[0].down);

    let stats = sim.stats();
    let (replays, invalid) = {
        let f = fleet.lock().unwrap();
        (f.replays, f.invalid)
    };
    assert_eq!((replays, invalid), (0, 0), "the controller refused reports");
    assert!(stats.failovers >= 20, "{stats:?}");
    assert!(stats.partitioned_attempts > 0);
    assert_eq!(stats.refused.values().sum::<u64>(), 0, "{stats:?}");
    assert!(stats.report_rtt_ms.count > 0 && stats.report_rtt_ms.p99 > 0.0);
    assert_eq!(stats.sites_down, 1);
    sim.shutdown().await;
    let sent = sim.stats().reports_sent;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        sim.stats().reports_sent,
        sent,
        "sites still report after shutdown"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_api_serves_over_http() {
    let (_fleet, sim) = setup(4, 1_000).await;
    let base = format!("http://{}", sim.control_addr().unwrap());
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/faults"))
        .body(r#"{"fault":{"kind":"latency","ms":50},"selector":{"region":"Asia"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let answer: serde_json::Value = r.json().await.unwrap();
    assert_eq!(answer["affected"], 2);
    let r = client
        .post(format!("{base}/faults"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let stats: serde_json::Value = client
        .get(format!("{base}/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["enrolled"], 4);
    let views: serde_json::Value = client
        .get(format!("{base}/sites?region=Asia"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(views[0]["latency_ms"], 50);
    let steps: serde_json::Value = client
        .post(format!("{base}/steps"))
        .body(r#"{"scale":2,"mean_seconds":{"firmware_update":30}}"#)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (steps["scale"].as_f64(), steps["failure_rate"].as_f64()),
        (Some(2.0), Some(0.0))
    );
    assert_eq!(sim.steps().mean_seconds.firmware_update, 30.0);
    let r = client
        .post(format!("{base}/steps"))
        .body(r#"{"failure_rate":-0.1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sites_enroll_at_their_own_controller_and_record_owners() {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, 100).await;
    let mut specs = sites(4);
    specs[1].controller = Some("sc-b".into());
    specs[2].controller = Some("sc-nowhere".into());
    specs[3].controller = Some("sc-a".into());
    let config = SimConfig {
        controllers,
        seed: 3,
        steps: StepConfig::instant(),
        ..SimConfig::default()
    };
    let sim = Simulator::start(config, specs).await.unwrap();
    assert!(sim.wait_enrolled(Duration::from_secs(30)).await);
    {
        let f = fleet.lock().unwrap();
        let via = |s: &str| f.subclouds[s].enrolled_via;
        assert_eq!(
            via("site-0"),
            Some("sc-a"),
            "no preference: the configured order"
        );
        assert_eq!(via("site-1"), Some("sc-b"), "its own controller");
        assert_eq!(
            via("site-2"),
            Some("sc-a"),
            "an unknown controller is ignored"
        );
        assert_eq!(via("site-3"), Some("sc-a"));
    }
    // The controllers name sc-a owner under epoch 1: every site ends up there.
    let settled = eventually(Duration::from_secs(30), || {
        let s = sim.stats();
        s.sites_by_owner.get("sc-a") == Some(&4) && s.sites_by_controller.get("sc-a") == Some(&4)
    })
    .await;
    assert!(settled, "{:?}", sim.stats());

    // Ownership moves to sc-b under epoch 2: no conflict, every site follows.
    {
        let mut f = fleet.lock().unwrap();
        f.controllers.reverse();
        f.owner_epoch = 2;
    }
    let moved = eventually(Duration::from_secs(30), || {
        let s = sim.stats();
        s.sites_by_owner.get("sc-b") == Some(&4) && s.sites_by_controller.get("sc-b") == Some(&4)
    })
    .await;
    assert!(moved, "{:?}", sim.stats());
    let stats = sim.stats();
    assert_eq!((stats.owner_conflicts, stats.epoch_regressions), (0, 0));
    let v = &sim.sites(Selector::Sites(vec!["site-0".into()]))[0];
    assert_eq!(v.owners, vec![(1, "sc-a".into()), (2, "sc-b".into())]);

    // A split brain: sc-a claims epoch 2 as well.
    fleet.lock().unwrap().controllers.reverse();
    let seen = eventually(Duration::from_secs(30), || {
        sim.sites(Selector::All)
            .iter()
            .all(|v| v.owner_conflicts > 0)
    })
    .await;
    assert!(seen, "{:?}", sim.sites(Selector::All));
    assert!(sim.stats().owner_conflicts >= 4);
    sim.shutdown().await;
}

#[tokio::test]
async fn refused_tokens_leave_the_site_silent() {
    let fleet: Shared = Arc::default();
    let a = serve("sc-a", Arc::clone(&fleet)).await;
    fleet.lock().unwrap().interval_ms = 100;
    let mut specs = sites(2);
    specs[1].enrollment_token = "mme_wrong".into();
    let config = SimConfig {
        controllers: vec![ControllerRef {
            name: "sc-a".into(),
            url: format!("http://{a}"),
        }],
        ..SimConfig::default()
    };
    let sim = Simulator::start(config, specs).await.unwrap();
    assert!(sim.wait_enrolled(Duration::from_secs(30)).await);
    let s = sim.stats();
    assert_eq!((s.enrolled, s.enroll_failed), (1, 1));
    let v = &sim.sites(Selector::Sites(vec!["site-1".into()]))[0];
    assert!(
        v.last_error
            .as_deref()
            .is_some_and(|e| e.contains("credential refused")),
        "{v:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn start_refuses_bad_configs() {
    let none = Simulator::start(SimConfig::default(), sites(1)).await;
    assert!(none.is_err());
    let config = SimConfig {
        controllers: vec![ControllerRef {
            name: "x".into(),
            url: "ftp://x".into(),
        }],
        ..SimConfig::default()
    };
    assert!(Simulator::start(config, sites(1)).await.is_err());
}

/// The load test at a size the normal suite affords (a few seconds in a debug build): 1,000
/// sites every second for 3 s. The full size is [`load_20k_sites`].
#[tokio::test(flavor = "multi_thread")]
async fn load_1000_sites() {
    load(1_000, 1_000, 3).await;
}

/// The scale target: 20,000 sites at 10 s (2,000 reports/s) on this machine, for 40 s:
/// `cargo test -p agent --release --test simulator -- --ignored --nocapture load_20k_sites`
/// (`SIM_LOAD_SITES`, `SIM_LOAD_SECS`, `SIM_LOAD_INTERVAL_MS` to vary).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "load test: minutes of CPU; run in release"]
async fn load_20k_sites() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    load(
        env("SIM_LOAD_SITES", 20_000) as usize,
        env("SIM_LOAD_INTERVAL_MS", 10_000),
        env("SIM_LOAD_SECS", 40),
    )
    .await;
}

/// `n` sites reporting every `interval_ms` to the fake controllers, measured for `secs`
/// after one interval of warm-up (every site past its first report): the simulator keeps its
/// schedule (at least 90 % of the reports it should send are accepted, p99 schedule lag
/// under a second) and no report is refused as a replay.
async fn load(n: usize, interval_ms: u64, secs: u64) {
    let started = Instant::now();
    let (fleet, sim) = setup(n, interval_ms).await;
    eprintln!("enrolled {n} sites in {:?}", started.elapsed());
    tokio::time::sleep(Duration::from_millis(interval_ms)).await;
    let (accepted_before, measured_from) = (sim.stats().reports_accepted, Instant::now());
    let mut left = Duration::from_secs(secs);
    while !left.is_zero() {
        let step = left.min(Duration::from_secs(10));
        tokio::time::sleep(step).await;
        left -= step;
        let s = sim.stats();
        eprintln!(
            "accepted {} rps {} rtt p50 {} p99 {} lag p99 {} in-flight {} errors {} refused {:?}",
            s.reports_accepted,
            s.reports_per_s,
            s.recent_report_rtt_ms.p50,
            s.recent_report_rtt_ms.p99,
            s.recent_schedule_lag_ms.p99,
            s.in_flight,
            s.transport_errors,
            s.refused
        );
    }
    let s = sim.stats();
    let rate =
        (s.reports_accepted - accepted_before) as f64 / measured_from.elapsed().as_secs_f64();
    let expected = n as f64 * 1_000.0 / interval_ms as f64;
    assert!(
        rate > expected * 0.9,
        "{rate:.0} reports/s accepted, expected ~{expected}: {s:?}"
    );
    assert!(
        s.recent_schedule_lag_ms.p99 < 1_000.0,
        "falling behind: {s:?}"
    );
    assert_eq!(fleet.lock().unwrap().replays, 0);
    sim.shutdown().await;
}

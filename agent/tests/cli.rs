//! The `murmur-agent` binary: `simulate` against the fake controllers' admin and agent APIs,
//! driven by `fault`, `stats` and `sites` as an operator would.

mod common;

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{controller_pair, Shared, API_TOKEN};

const BIN: &str = env!("CARGO_BIN_EXE_murmur-agent");

/// Kills the simulator when the test ends, passed or not.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn murmur_agent(args: &[&str]) -> Output {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().unwrap())
        .await
        .unwrap()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(&out.stdout)))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_then_fault_stats_and_sites_from_the_command_line() {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, 200).await;
    fleet.lock().unwrap().roster = (0..6)
        .map(|i| {
            (
                format!("site-{i}"),
                if i < 3 { "Europe" } else { "Asia" }.to_string(),
            )
        })
        .collect();
    let control = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .args([
            "simulate",
            "--controller",
            &controllers[0].url,
            "--controller",
            &controllers[1].url,
        ])
        .args([
            "--api-token",
            API_TOKEN,
            "--limit",
            "4",
            "--seed",
            "3",
            "--control",
            &control,
            "--step-seconds",
            "0.5",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _sim = Running(child);

    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let out = murmur_agent(&["stats", "--control", &control]).await;
        if out.status.success() && json(&out)["enrolled"] == 4 {
            break json(&out);
        }
        assert!(
            Instant::now() < deadline,
            "simulator not ready: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(stats["sites"], 4, "--limit applies");

    let out = murmur_agent(&["fault", "--control", &control, "down", "--site", "site-0"]).await;
    assert!(out.status.success());
    assert_eq!(json(&out)["affected"], 1);
    let out = murmur_agent(&[
        "fault",
        "--control",
        &control,
        "latency",
        "--ms",
        "40",
        "--region",
        "asia",
    ])
    .await;
    assert_eq!(
        json(&out)["affected"],
        1,
        "site-3 is the only Asian site of the first four"
    );
    let out = murmur_agent(&[
        "fault",
        "--control",
        &control,
        "heal",
        "--region",
        "Atlantis",
    ])
    .await;
    assert!(out.status.success());
    assert_eq!(json(&out)["affected"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no site matched"));

    let out = murmur_agent(&["sites", "--control", &control, "--site", "site-0,site-3"]).await;
    let views = json(&out);
    assert_eq!(
        (views[0]["down"].as_bool(), views[1]["latency_ms"].as_u64()),
        (Some(true), Some(40))
    );

    // How commands execute: shown, then changed at run time.
    let out = murmur_agent(&["steps", "--control", &control]).await;
    assert!(out.status.success());
    let steps = json(&out);
    assert_eq!(
        (steps["scale"].as_f64(), steps["failure_rate"].as_f64()),
        (Some(0.5), Some(0.02))
    );
    let out = murmur_agent(&[
        "steps",
        "--control",
        &control,
        "--step-failure-rate",
        "0.25",
        "--step-mean",
        "prestage=60",
    ])
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let steps = json(&out);
    assert_eq!(
        (
            steps["scale"].as_f64(),
            steps["failure_rate"].as_f64(),
            steps["mean_seconds"]["prestage"].as_f64()
        ),
        (Some(0.5), Some(0.25), Some(60.0))
    );
    let out = murmur_agent(&["steps", "--control", &control, "--step-failure-rate", "2"]).await;
    assert!(!out.status.success());

    // Operator mistakes: clear message, non-zero exit.
    let out = murmur_agent(&["fault", "--control", &control, "flap", "--all"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--period-ms"));
    let out = murmur_agent(&[
        "fault",
        "--control",
        &control,
        "loss",
        "--percent",
        "101",
        "--all",
    ])
    .await;
    assert!(!out.status.success());
    let dead = format!("127.0.0.1:{}", free_port());
    let out = murmur_agent(&["stats", "--control", &dead]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach the simulator control API"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_fails_clearly_with_a_bad_api_token() {
    let fleet: Shared = Arc::default();
    let controllers = controller_pair(&fleet, 200).await;
    let out = murmur_agent(&[
        "simulate",
        "--controller",
        &controllers[0].url,
        "--api-token",
        "mmt_wrong",
        "--control",
        "127.0.0.1:0",
    ])
    .await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("401") && err.contains("no controller answered"),
        "{err}"
    );
}

#![allow(dead_code)] // each test binary uses part of these helpers
//! Real processes for the server's integration tests: the controller binary (`murmur serve`)
//! on a test store and the agent binary (`murmur-agent`), on free ports.

pub mod geo;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use engine::auth::Actor;
use engine::testing::TestDb;
use engine::Engine;
use reqwest::StatusCode;
use tokio::process::{Child, Command};

/// Health timing of a test controller.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub interval_ms: u64,
    pub missed: u64,
    pub tick_ms: u64,
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `murmur-agent` next to `murmur` (cargo builds both for `cargo test --workspace`); built on
/// demand when only this package's tests were asked for.
pub fn agent_bin() -> PathBuf {
    let murmur = PathBuf::from(env!("CARGO_BIN_EXE_murmur"));
    let agent = murmur.with_file_name(format!("murmur-agent{}", std::env::consts::EXE_SUFFIX));
    if !agent.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let ok = std::process::Command::new(cargo)
            .args(["build", "-p", "agent", "--bin", "murmur-agent"])
            .status()
            .expect("run cargo build")
            .success();
        assert!(ok, "building murmur-agent");
    }
    agent
}

pub struct Controller {
    pub child: Child,
    pub base: String,
}

pub async fn start_controller(db: &TestDb, port: u16, timing: Timing) -> Controller {
    let child = Command::new(env!("CARGO_BIN_EXE_murmur"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &db.url,
            "--site-root",
            &std::env::temp_dir().to_string_lossy(),
            "--controller-name",
            "sc-amsterdam",
            "--report-interval-ms",
            &timing.interval_ms.to_string(),
            "--offline-after-missed",
            &timing.missed.to_string(),
            "--online-after-reports",
            "2",
            "--health-tick-ms",
            &timing.tick_ms.to_string(),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start murmur serve");
    let base = format!("http://127.0.0.1:{port}");
    wait_for(Duration::from_secs(30), "controller /healthz", || async {
        reqwest::get(format!("{base}/healthz"))
            .await
            .map(|r| r.status() == StatusCode::OK)
            .unwrap_or(false)
    })
    .await;
    Controller { child, base }
}

pub async fn wait_for<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A demo store of `subclouds` sites with the demo users: the engine on it, an API token of
/// the demo admin, and the subcloud names in list order.
pub async fn seeded_store(db: &TestDb, subclouds: u32) -> (Engine, String, Vec<String>) {
    let engine = db.engine().await;
    engine.seed_demo(subclouds).await.expect("seed");
    engine.ensure_demo_users().await.expect("demo users");
    let admin = engine
        .list_users(&Actor::system())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.name == "admin")
        .unwrap();
    let token = engine
        .create_api_token(&Actor::user(&admin, None), "test")
        .await
        .unwrap()
        .secret;
    let names = engine
        .list_subclouds(&Default::default())
        .await
        .unwrap()
        .rows
        .into_iter()
        .map(|r| r.name)
        .collect();
    (engine, token, names)
}

//! Takeover benchmark: three real `murmur serve` controllers (SQLite stores), the simulated
//! fleet reporting to its owners over HTTP, then SIGKILL of sc-dallas. Measures, from the
//! kill: detection (a survivor marks it unavailable), the move (its peer groups owned by the
//! survivors the drill named) and takeover (every site of those groups reporting to its new
//! owner). Sizes from the command line (default 1000 20000).
//!
//! `cargo bench -p server --bench takeover -- 1000 20000` (scripts/bench-takeover.sh)

use std::time::{Duration, Instant};

use engine::georedundancy::TakeoverPlan;
use engine::store::Backend;

#[path = "../tests/common/mod.rs"]
mod common;
use common::geo::{Cluster, Settings, HEARTBEAT_MS, THRESHOLD};

/// Reports every 10 s: the default, and what 20,000 sites on three controllers and the
/// simulator can sustain on a 2-core machine.
const REPORT_MS: u64 = 10_000;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 20000]
    } else {
        sizes
    };
    println!(
        "| sites | heartbeat | report interval | detected | groups moved | every site at its new owner | sites moved |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        let row = run(n).await;
        println!("{row}");
    }
}

async fn run(n: u32) -> String {
    // The demo fleet's capacities: 80% of the fleet each, a tenth of it in reserve.
    let cap = ((u64::from(n) * 8 / 10).div_ceil(100)).max(10) * 100;
    let started = Instant::now();
    let mut c = Cluster::start(
        Backend::Sqlite,
        Settings {
            capacity: [(cap, cap / 10); 3],
            report_ms: REPORT_MS,
            ..Settings::new(n)
        },
    )
    .await;
    let (ams, dal) = (0, 1);
    c.wait_all_home().await;
    c.wait_in_sync(dal).await;
    eprintln!("{n} sites ready in {:?}", started.elapsed());
    let plan: TakeoverPlan = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/geo/drill?controller=sc-dallas",
            c.nodes[ams].base()
        ))
        .bearer_auth(&c.nodes[ams].token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(plan.shortfall.is_empty(), "{plan:?}");
    let expected: Vec<(String, String, Vec<String>)> = plan
        .placements
        .iter()
        .map(|p| (p.group.clone(), p.to.clone().unwrap(), c.members(&p.group)))
        .collect();
    let moved_sites: usize = expected.iter().map(|e| e.2.len()).sum();
    let killed = Instant::now();
    c.nodes[dal].child.as_mut().unwrap().kill().await.unwrap();
    let (mut detected, mut moved) = (None, None);
    let done = loop {
        assert!(
            killed.elapsed() < Duration::from_secs(300),
            "no takeover in 300 s"
        );
        if detected.is_none() && c.nodes[ams].sees("sc-dallas").await == "unavailable" {
            detected = Some(killed.elapsed());
        }
        let owners = c.nodes[ams].owners().await;
        let placed = expected
            .iter()
            .all(|(g, to, _)| owners.get(g).is_some_and(|(o, _)| o == to));
        if placed && moved.is_none() {
            moved = Some(killed.elapsed());
        }
        if placed
            && expected
                .iter()
                .all(|(_, to, m)| c.reporting_to(m, to) == m.len())
        {
            break killed.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    c.assert_no_split_brain();
    c.sim.shutdown().await;
    let s = |d: Option<Duration>| d.map_or("—".into(), |d| format!("{:.1} s", d.as_secs_f64()));
    format!(
        "| {n} | {HEARTBEAT_MS} ms × {THRESHOLD} | {} s | {} | {} | {} | {moved_sites} |",
        REPORT_MS / 1000,
        s(detected),
        s(moved),
        s(Some(done)),
    )
}

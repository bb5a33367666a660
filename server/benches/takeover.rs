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
            resync_ms: 10_000,
            ..Settings::new(n)
        },
    )
    .await;
    let (ams, dal) = (0, 1);
    c.wait_all_home().await;
    c.wait_in_sync(dal).await;
    eprintln!("{n} sites ready in {:?}", started.elapsed());
    let plan: TakeoverPlan = c.drill(ams, "sc-dallas").await;
    assert!(plan.shortfall.is_empty(), "{plan:?}");
    let expected: Vec<(String, String)> = plan
        .placements
        .iter()
        .filter_map(|p| Some((p.group.clone(), p.to.clone()?)))
        .collect();
    let t = c
        .kill_and_wait_takeover(dal, ams, &expected, Duration::from_secs(300))
        .await;
    c.assert_no_split_brain();
    c.sim.shutdown().await;
    let s = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    format!(
        "| {n} | {HEARTBEAT_MS} ms × {THRESHOLD} | {} s | {} | {} | {} | {} |",
        REPORT_MS / 1000,
        s(t.detected),
        s(t.moved),
        s(t.all_reporting),
        t.sites
    )
}

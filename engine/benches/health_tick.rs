//! The health monitor's tick at fleet scale, in process (no HTTP, so the figure is the tick's
//! own cost): N enrolled sites each report once per round, then one tick writes the round.
//!
//!   cargo bench -p engine --bench health_tick [-- SITES ROUNDS]     (default 20000 20)
//!   BENCH_STORES=sqlite|postgres (default both; PostgreSQL at MURMUR_TEST_POSTGRES_URL)
//!
//! Two kinds of round, each timed per tick (p50, p90, max in ms):
//! - steady: every site reports the same facts as before (only sequence numbers are written);
//! - churn: a tenth of the sites change their health (healthy <-> degraded) and one endpoint's
//!   sync each round, so their stored view, endpoint rows and alarm roll-up are rewritten.
//!
//! Reproduce a before/after comparison by running this file against both commits (it uses
//! only engine API that both have) on the same machine, back to back.

use std::time::Instant;

use engine::agents::wire::{
    Capacity, EndpointSync, Reachability, Report, SiteHealth, PROTOCOL_VERSION,
};
use engine::fleet::{EndpointType, SyncStatus};
use engine::store::Backend;
use engine::testing::{enroll_all, intake_policy, TestDb};
use engine::time::Millis;

fn report(seq: u64, degraded: bool) -> Report {
    Report {
        protocol: PROTOCOL_VERSION,
        seq,
        sent_at: Millis(0),
        health: if degraded {
            SiteHealth::Degraded
        } else {
            SiteHealth::Healthy
        },
        software_version: "25.09".into(),
        endpoints: EndpointType::ALL
            .iter()
            .enumerate()
            .map(|(k, e)| EndpointSync {
                endpoint_type: *e,
                sync_status: if degraded && k == 0 {
                    SyncStatus::OutOfSync
                } else {
                    SyncStatus::InSync
                },
            })
            .collect(),
        alarms: vec![],
        capacity: Capacity {
            cpu_cores: 32,
            memory_gib: 128,
            storage_gib: 2000,
            hosts: 2,
        },
        commands: vec![],
        reachability: vec![Reachability {
            controller: "local".into(),
            reachable: true,
            rtt_ms: Some(12),
        }],
        highest_epoch: 1,
        agent_version: "bench".into(),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn run(backend: Backend, sites: u32, rounds: u64) {
    const INTERVAL: i64 = 10_000;
    let db = TestDb::new(backend).await;
    let engine = db.engine().await;
    engine.seed_demo(sites).await.expect("seed");
    engine
        .start_agent_gateway(intake_policy(INTERVAL))
        .await
        .expect("gateway");
    let enrolled = enroll_all(&engine).await;
    let gateway = engine.agent_gateway().expect("gateway").clone();
    let t0 = Millis::now().0;
    let mut t = t0;
    // One round: every site reports (a tenth of them flipping when `churn`), then one tick.
    let round = |t: i64, k: u64, churn: bool| {
        for (i, (_, secret)) in enrolled.iter().enumerate() {
            let degraded = churn && i % 10 == 0 && k % 2 == 1;
            gateway
                .accept_report(secret, report(t as u64, degraded), Millis(t))
                .expect("report accepted");
        }
    };
    // Warm-up: every site comes online and its facts are stored once.
    for k in 0..3 {
        t += INTERVAL;
        round(t, k, false);
        engine.health_tick(Millis(t)).await.expect("tick");
    }
    for churn in [false, true] {
        let mut ms = Vec::new();
        for k in 0..rounds {
            t += INTERVAL;
            round(t, k, churn);
            let started = Instant::now();
            engine.health_tick(Millis(t)).await.expect("tick");
            ms.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        ms.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            backend.as_str(),
            sites,
            if churn {
                "churn (10 % change)"
            } else {
                "steady"
            },
            rounds,
            percentile(&ms, 0.5),
            percentile(&ms, 0.9),
            ms.last().copied().unwrap_or(0.0),
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let sites: u32 = args.first().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    let rounds: u64 = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(20);
    let stores = std::env::var("BENCH_STORES").unwrap_or_else(|_| "sqlite postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    println!("| store | sites | round | ticks | tick ms p50 | p90 | max |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    for store in stores.split_whitespace() {
        let backend = match store {
            "sqlite" => Backend::Sqlite,
            "postgres" => Backend::Postgres,
            other => {
                eprintln!("unknown store {other:?} (sqlite or postgres)");
                std::process::exit(2);
            }
        };
        rt.block_on(run(backend, sites, rounds));
    }
}

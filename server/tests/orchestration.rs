//! A rollout survives its controller being killed again and again: the real controller binary
//! (`murmur serve`) is SIGKILLed at uneven moments during a sw-deploy strategy over the
//! simulator's sites (`murmur-agent simulate`, real HTTP), and restarted on the same store.
//! The strategy must finish with every site deployed, one command per site's step, and each
//! command executed exactly once by the agents. Runs on SQLite and on PostgreSQL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use engine::both_backends;
use engine::store::Backend;
use engine::testing::TestDb;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::Row;
use tokio::process::Command;

mod common;
use common::{agent_bin, free_port, seeded_store, start_controller, wait_for, Timing};

both_backends!(a_rollout_survives_repeated_controller_kills);

const SITES: u32 = 24;
const TIMING: Timing = Timing {
    interval_ms: 300,
    missed: 20,
    tick_ms: 100,
};
/// Kill moments after each restart (ms): uneven, so kills land in every phase of the steps.
const KILL_AFTER_MS: [u64; 6] = [700, 1_900, 450, 1_300, 2_600, 900];

async fn api(client: &reqwest::Client, base: &str, token: &str, path: &str) -> Value {
    let res = client
        .get(format!("{base}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("GET");
    assert_eq!(res.status(), StatusCode::OK, "GET {path}");
    res.json().await.expect("JSON")
}

async fn a_rollout_survives_repeated_controller_kills(b: Backend) {
    let db = TestDb::new(b).await;
    let (engine, token, names) = seeded_store(&db, SITES).await;

    let port = free_port();
    let mut controller = start_controller(&db, port, TIMING).await;
    let base = controller.base.clone();
    let control_port = free_port();
    let control = format!("http://127.0.0.1:{control_port}");
    // Steps of about 1.5 s (5 phases), no random failures.
    let _sim = Command::new(agent_bin())
        .args([
            "simulate",
            "--controller",
            &base,
            "--api-token",
            &token,
            "--subclouds",
            &names.join(","),
            "--seed",
            "11",
            "--control",
            &format!("127.0.0.1:{control_port}"),
            "--step-seconds",
            "0.01",
            "--step-failure-rate",
            "0",
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start murmur-agent simulate");
    let client = reqwest::Client::new();
    wait_for(Duration::from_secs(60), "every site online", || async {
        let p = api(
            &client,
            &base,
            &token,
            "/api/v1/subclouds?availability=online&per_page=1",
        )
        .await;
        p["matching"].as_u64() == Some(u64::from(SITES))
    })
    .await;

    let created = client
        .post(format!("{base}/api/v1/strategies"))
        .bearer_auth(&token)
        .json(&json!({
            "type": "sw-deploy",
            "target": { "kind": "all" },
            "release": "26.03",
            "max_parallel": 4,
            "step_timeout_secs": 600,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        created.status(),
        StatusCode::CREATED,
        "{:?}",
        created.text().await
    );
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let applied = client
        .post(format!("{base}/api/v1/strategies/{id}/actions"))
        .bearer_auth(&token)
        .json(&json!({ "action": "apply" }))
        .send()
        .await
        .unwrap();
    assert_eq!(applied.status(), StatusCode::OK);

    // Kill and restart while it runs; each kill must land while steps are in flight.
    let mut kills_in_flight = 0;
    for wait in KILL_AFTER_MS {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        let d = api(&client, &base, &token, &format!("/api/v1/strategies/{id}")).await;
        if d["summary"]["state"] != "applying" {
            break;
        }
        if d["summary"]["in_flight"].as_u64().unwrap_or(0) > 0 {
            kills_in_flight += 1;
        }
        controller
            .child
            .start_kill()
            .expect("SIGKILL the controller");
        controller.child.wait().await.expect("controller exit");
        controller = start_controller(&db, port, TIMING).await;
    }
    assert!(
        kills_in_flight >= 3,
        "only {kills_in_flight} kills landed with steps in flight: the rollout went too fast to prove anything"
    );

    let started = Instant::now();
    let detail = loop {
        let d = api(&client, &base, &token, &format!("/api/v1/strategies/{id}")).await;
        let state = d["summary"]["state"].as_str().unwrap_or("").to_string();
        if ["complete", "failed", "aborted"].contains(&state.as_str()) {
            break d;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "strategy still {state} after 120 s: {d}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(detail["summary"]["state"], "complete", "{detail}");
    assert_eq!(detail["summary"]["complete"], u64::from(SITES));
    assert_eq!(detail["summary"]["failed"], 0);

    // Every site runs the new release.
    let deployed = api(&client, &base, &token, "/api/v1/subclouds?per_page=500").await;
    for row in deployed["rows"].as_array().unwrap() {
        assert_eq!(row["software_version"], "26.03", "{}", row["name"]);
    }
    // One command per site's step, each attempted once...
    let rows = sqlx::query(
        "SELECT subcloud_id, COUNT(*) FROM subcloud_commands WHERE created_by = $1 GROUP BY subcloud_id",
    )
    .bind(format!("strategy:{id}"))
    .fetch_all(engine.store().pool())
    .await
    .unwrap();
    assert_eq!(rows.len(), SITES as usize, "every site got a command");
    for r in &rows {
        assert_eq!(
            r.try_get::<i64, _>(1).unwrap(),
            1,
            "a site got two commands"
        );
    }
    let attempts: Vec<i64> =
        sqlx::query_scalar("SELECT attempt FROM strategy_steps WHERE strategy_id = $1")
            .bind(id)
            .fetch_all(engine.store().pool())
            .await
            .unwrap();
    assert!(attempts.iter().all(|a| *a == 1), "{attempts:?}");
    // ...and executed once by the agents, however often it was resent.
    let stats: Value = reqwest::get(format!("{control}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A command run twice would finish twice.
    let deploys = &stats["commands_by_action"]["software_deploy"];
    assert_eq!(
        deploys["succeeded"].as_u64(),
        Some(u64::from(SITES)),
        "{stats}"
    );
    assert_eq!(deploys["failed"].as_u64(), Some(0), "{stats}");
    controller.child.start_kill().ok();
}

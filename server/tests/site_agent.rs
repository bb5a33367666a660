//! The real site agent (`murmur-agent run`) against the real controller (`murmur serve`) over
//! HTTP: what the agent does not measure reaches every view as unknown, never as healthy.
//!
//! Without a platform driver the agent observes neither its platform's health nor its alarms
//! nor its endpoints' sync. The controller must then show the site online (it measures the
//! reports arriving) but with its alarm state and sync unknown: counted as such on the
//! overview, drawn as such on the map, keeping the status page from "all clear", and listed in
//! its peer group's health; and a command it cannot perform fails with the reason.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{agent_bin, free_port, seeded_store, start_controller, wait_for, Timing};
use engine::both_backends;
use engine::fleet::{AvailabilityStatus, MapQuery, MapStatus, Overview, SubcloudDetail};
use engine::fleet::{SubcloudPage, SyncStatus};
use engine::health::AlarmStatus;
use engine::store::Backend;
use engine::testing::TestDb;
use serde_json::{json, Value};
use tokio::process::Command;

const TIMING: Timing = Timing {
    interval_ms: 300,
    missed: 3,
    tick_ms: 100,
};

both_backends!(unmeasured_health_is_shown_as_unknown_everywhere);

struct Api {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl Api {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let res = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("request");
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.expect("json")
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let res = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .expect("request");
        assert!(res.status().is_success(), "POST {path}: {}", res.status());
        res.json().await.expect("json")
    }
}

async fn unmeasured_health_is_shown_as_unknown_everywhere(b: Backend) {
    let db = TestDb::new(b).await;
    let (engine, token, _) = seeded_store(&db, 40).await;
    let controller = start_controller(&db, free_port(), TIMING).await;
    let api = Api {
        base: controller.base.clone(),
        token,
        client: reqwest::Client::new(),
    };

    // A managed site in a peer group whose seeded state is all fine: online, OK, in sync.
    let page: SubcloudPage = api
        .get("/api/v1/subclouds?availability=online&alarm=OK&sync=in-sync&management=managed")
        .await;
    let site = page
        .rows
        .iter()
        .find(|r| r.peer_group.is_some())
        .expect("a healthy managed site in a peer group")
        .clone();
    let before: Overview = api.get("/api/v1/overview").await;
    let unknown_on_map = || async {
        let q = MapQuery {
            status: Some(MapStatus::Unknown),
            ..MapQuery::from_params(std::iter::empty()).unwrap()
        };
        engine.fleet_map(&q).await.unwrap().matching
    };
    assert_eq!(
        unknown_on_map().await,
        0,
        "the seeded fleet measures everything"
    );

    let enrolled = api
        .post(
            "/api/v1/enrollments",
            json!({ "subclouds": [site.name.clone()] }),
        )
        .await;
    let enrollment_token = enrolled["enrollments"][0]["token"]
        .as_str()
        .expect("a token")
        .to_string();
    let state = tempfile::tempdir().unwrap();
    let _agent = Command::new(agent_bin())
        .args([
            "run",
            "--controller",
            &controller.base,
            "--subcloud",
            &site.name,
            "--enrollment-token",
            &enrollment_token,
            "--state-dir",
            &state.path().to_string_lossy(),
            "--interval-ms",
            "300",
            "--software-version",
            &site.software_version,
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start murmur-agent run");

    // The agent's reports arrive: the site stays online, but nothing says it is fine.
    let path = format!("/api/v1/subclouds/{}", site.name);
    wait_for(
        Duration::from_secs(60),
        "the site's alarm state and sync to read unknown",
        || async {
            let d: SubcloudDetail = api.get(&path).await;
            d.summary.alarm_status == AlarmStatus::Unknown
                && d.summary.sync_status == SyncStatus::Unknown
        },
    )
    .await;
    let d: SubcloudDetail = api.get(&path).await;
    assert_eq!(d.summary.availability, AvailabilityStatus::Online);
    assert_eq!(d.agent.as_ref().map(|a| a.health.as_str()), Some("unknown"));
    assert!(
        d.endpoints.iter().all(|e| e.status == SyncStatus::Unknown),
        "{:?}",
        d.endpoints
    );

    // Overview: counted as health unknown and sync unknown, no longer as fine.
    let after: Overview = api.get("/api/v1/overview").await;
    assert_eq!(after.alarm_unknown, before.alarm_unknown + 1);
    assert_eq!(after.sync_unknown, before.sync_unknown + 1);
    assert_eq!(after.online, before.online);

    // Map: drawn as "health unknown", not OK.
    assert_eq!(unknown_on_map().await, 1);

    // Status page: never all clear while a managed site is unmeasured.
    let digest = engine.status_digest().await.unwrap();
    assert!(digest.health_unknown >= 1 && !digest.all_clear);

    // Peer-group health lists it.
    let group = site.peer_group.clone().unwrap();
    let g: Value = api.get(&format!("/api/v1/peer-groups/{group}")).await;
    assert!(
        g["sites"]["health_unknown"].as_u64() >= Some(1),
        "peer group {group}: {}",
        g["sites"]
    );

    // A command it cannot perform fails with the reason.
    let queued = api
        .post(
            &format!("/api/v1/subclouds/{}/commands", site.name),
            json!({ "action": { "kind": "sync_endpoints" } }),
        )
        .await;
    let id = queued["id"].as_i64().expect("a command id");
    let command = || async {
        sqlx::query_as::<_, (String, String)>(
            "SELECT state, message FROM subcloud_commands WHERE id = $1",
        )
        .bind(id)
        .fetch_one(engine.store().pool())
        .await
        .unwrap()
    };
    wait_for(
        Duration::from_secs(60),
        "the sync command to end",
        || async { command().await.0 != "queued" && command().await.0 != "running" },
    )
    .await;
    assert_eq!(
        command().await,
        (
            "failed".to_string(),
            "endpoint sync needs the platform integration".to_string()
        )
    );
}

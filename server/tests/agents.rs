//! Agents, health and live updates with real processes over real HTTP: the controller binary
//! (`murmur serve`) on a real store, the simulator binary (`murmur-agent simulate`) with its
//! control API, and reqwest for the REST API and the event stream. The same scenario runs on
//! SQLite and on PostgreSQL.

use std::process::Stdio;
use std::time::{Duration, Instant};

use engine::both_backends;
use engine::fleet::{AvailabilityStatus, SubcloudDetail, SubcloudPage};
use engine::health::{alarm_ids, AlarmSeverity};
use engine::store::Backend;
use engine::testing::TestDb;
use engine::time::Millis;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::process::Command;

mod common;
use common::{agent_bin, free_port, seeded_store, start_controller, wait_for, Timing};

both_backends!(agents_health_restart_and_refusals);

const INTERVAL_MS: u64 = 500;
/// Offline after 3 s of silence: well beyond the longest silence of the flap below.
const MISSED: u64 = 6;
const TICK_MS: u64 = 100;
const SITES: u32 = 8;
const TIMING: Timing = Timing {
    interval_ms: INTERVAL_MS,
    missed: MISSED,
    tick_ms: TICK_MS,
};

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
            .expect("GET");
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("JSON")
    }

    async fn detail(&self, name: &str) -> SubcloudDetail {
        self.get(&format!("/api/v1/subclouds/{name}")).await
    }

    async fn offline_count(&self) -> u64 {
        let p: SubcloudPage = self.get("/api/v1/subclouds?availability=offline").await;
        p.matching
    }
}

fn alarm_active(d: &SubcloudDetail, alarm_id: &str) -> bool {
    d.alarms
        .iter()
        .any(|a| a.alarm_id == alarm_id && a.cleared_at.is_none())
}

async fn fault(control: &str, fault: Value, site: &str) {
    let res = reqwest::Client::new()
        .post(format!("{control}/faults"))
        .json(&json!({ "fault": fault, "selector": { "sites": [site] } }))
        .send()
        .await
        .expect("control API");
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["affected"], 1);
}

/// Reports the simulator's site `site` has had accepted.
async fn accepted(control: &str, site: &str) -> u64 {
    let views: Value = reqwest::get(format!("{control}/sites?site={site}"))
        .await
        .expect("control API")
        .json()
        .await
        .unwrap();
    views[0]["reports_accepted"]
        .as_u64()
        .expect("reports_accepted")
}

async fn agents_health_restart_and_refusals(b: Backend) {
    let db = TestDb::new(b).await;
    let (_engine, token, names) = seeded_store(&db, SITES).await;
    // The last site is left out of the simulator for the hand-made requests below.
    let (simulated, spare) = names.split_at(names.len() - 1);
    let spare = spare[0].clone();

    let port = free_port();
    let mut controller = start_controller(&db, port, TIMING).await;
    let api = Api {
        base: controller.base.clone(),
        token: token.clone(),
        client: reqwest::Client::new(),
    };
    let control_port = free_port();
    let control = format!("http://127.0.0.1:{control_port}");
    let _sim = Command::new(agent_bin())
        .args([
            "simulate",
            "--controller",
            &controller.base,
            "--api-token",
            &token,
            "--subclouds",
            &simulated.join(","),
            "--seed",
            "7",
            "--control",
            &format!("127.0.0.1:{control_port}"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start murmur-agent simulate");

    // Every simulated site reports and is online (seeded-offline ones recover); the spare,
    // which never reports, keeps its seeded state.
    let spare_seeded = api.detail(&spare).await.summary.availability;
    let spare_offline = u64::from(spare_seeded == AvailabilityStatus::Offline);
    wait_for(
        Duration::from_secs(60),
        "all simulated sites online",
        || async { api.offline_count().await == spare_offline },
    )
    .await;

    // Live updates: a signed-in browser session's event stream.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = client
        .post(format!("{}/login", controller.base))
        .header("origin", &controller.base)
        .form(&[
            ("username", "viewer"),
            ("password", "viewer-demo-password"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("murmur_session="))
        .expect("session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let anonymous = client
        .get(format!("{}/api/v1/events", controller.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let mut events = client
        .get(format!("{}/api/v1/events", controller.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(events.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let first = String::from_utf8(events.chunk().await.unwrap().unwrap().to_vec()).unwrap();
    assert!(first.contains("event: snapshot"), "{first}");

    // 1. A site taken down goes offline and is alarmed. Timed on the controller's own clock,
    // from its last report to the transition the controller recorded, so neither this test's
    // polling nor the simulator's scheduling is measured: not before interval × threshold of
    // silence, and within it plus a tick and a margin of 2 s for a busy machine.
    let victim = simulated[0].clone();
    fault(&control, json!({"kind": "down"}), &victim).await;
    wait_for(Duration::from_secs(30), "victim offline", || async {
        api.detail(&victim).await.summary.availability == AvailabilityStatus::Offline
    })
    .await;
    let d = api.detail(&victim).await;
    let last_report = d
        .agent
        .as_ref()
        .and_then(|a| a.last_report_at)
        .expect("the victim reported");
    let offline_at = d
        .timeline
        .spans
        .last()
        .filter(|s| s.availability == Some(AvailabilityStatus::Offline))
        .map(|s| s.from)
        .unwrap_or_else(|| panic!("no offline span: {:?}", d.timeline));
    let silence = offline_at.0 - last_report.0;
    let window = i64::try_from(INTERVAL_MS * MISSED).unwrap();
    eprintln!("offline after {silence} ms of silence (window {window} ms)");
    assert!(
        silence > window,
        "offline after {silence} ms of silence, before the {window} ms window"
    );
    let margin = i64::try_from(TICK_MS).unwrap() + 2_000;
    assert!(
        silence <= window + margin,
        "offline only after {silence} ms of silence (window {window} ms + {margin} ms)"
    );
    assert!(
        alarm_active(&d, alarm_ids::SUBCLOUD_OFFLINE)
            || d.summary.management.as_str() == "unmanaged"
    );
    // The stream announced it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    while Instant::now() < deadline && !seen.contains(&victim) {
        if let Ok(Ok(Some(c))) = tokio::time::timeout(Duration::from_secs(1), events.chunk()).await
        {
            seen.push_str(&String::from_utf8_lossy(&c));
        }
    }
    assert!(
        seen.contains("event: change") && seen.contains("health_changed"),
        "{seen}"
    );

    // Back up: online again and the alarm is cleared (kept as history).
    fault(&control, json!({"kind": "up"}), &victim).await;
    wait_for(Duration::from_secs(30), "victim online", || async {
        api.detail(&victim).await.summary.availability == AvailabilityStatus::Online
    })
    .await;
    let d = api.detail(&victim).await;
    assert!(!alarm_active(&d, alarm_ids::SUBCLOUD_OFFLINE));
    assert!(d.timeline.transitions >= 2, "{:?}", d.timeline);

    // 2. A flapping link inside the hysteresis window changes nothing: down and up every
    // 700 ms, reports every 500 ms ± 10 %. A due report falling in a down half is skipped, and
    // each 700 ms up half holds a due one, so the longest silence is under 550 ms (since the
    // last report) + 700 ms (down) + 550 ms (to the next due one) = 1.8 s: 1.2 s short of the
    // 3 s offline window. The controller's history, not polling, says whether it ever flipped.
    let flapper = simulated[1].clone();
    let steady = simulated[3].clone();
    let before = api.detail(&flapper).await;
    let flap_from = Millis::now();
    let accepted_before = (
        accepted(&control, &flapper).await,
        accepted(&control, &steady).await,
    );
    fault(
        &control,
        json!({"kind": "flap", "period_ms": 700}),
        &flapper,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = (
        accepted(&control, &flapper).await - accepted_before.0,
        accepted(&control, &steady).await - accepted_before.1,
    );
    fault(&control, json!({"kind": "heal"}), &flapper).await;
    eprintln!("flapping: {} reports, steady: {}", during.0, during.1);
    // The flap really silenced it: about half its reports were skipped.
    assert!(
        during.0 * 4 <= during.1 * 3,
        "the flapping site sent {} reports while a steady one sent {}",
        during.0,
        during.1
    );
    // Two reports after the heal: the controller has seen the last silence end.
    let healed = accepted(&control, &flapper).await;
    wait_for(Duration::from_secs(30), "flapper reports again", || async {
        accepted(&control, &flapper).await >= healed + 2
    })
    .await;
    let after = api.detail(&flapper).await;
    assert_eq!(
        after.summary.availability,
        AvailabilityStatus::Online,
        "flapping site stays online"
    );
    assert!(
        !after
            .timeline
            .spans
            .iter()
            .any(|s| s.to > flap_from && s.availability == Some(AvailabilityStatus::Offline)),
        "the flapping site was offline: {:?}",
        after.timeline
    );
    assert_eq!(after.timeline.transitions, before.timeline.transitions);
    assert_eq!(
        after
            .alarms
            .iter()
            .filter(|a| a.alarm_id == alarm_ids::SUBCLOUD_OFFLINE)
            .count(),
        before
            .alarms
            .iter()
            .filter(|a| a.alarm_id == alarm_ids::SUBCLOUD_OFFLINE)
            .count(),
    );

    // 3. Controller crash and restart: nothing lost, agents continue.
    let downed = simulated[2].clone();
    fault(&control, json!({"kind": "down"}), &downed).await;
    wait_for(Duration::from_secs(30), "downed offline", || async {
        api.detail(&downed).await.summary.availability == AvailabilityStatus::Offline
    })
    .await;
    let alarms_before: Vec<i64> = api
        .detail(&downed)
        .await
        .alarms
        .iter()
        .filter(|a| a.cleared_at.is_none())
        .map(|a| a.id)
        .collect();
    let stats_before: Value = reqwest::get(format!("{control}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    controller.child.start_kill().expect("kill controller");
    controller.child.wait().await.expect("controller exit");
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * 2)).await;
    let controller = start_controller(&db, port, TIMING).await;
    wait_for(
        Duration::from_secs(20),
        "reports accepted after the restart",
        || async {
            let s: Value = reqwest::get(format!("{control}/stats"))
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            s["reports_accepted"].as_u64().unwrap_or(0)
                > stats_before["reports_accepted"].as_u64().unwrap_or(0) + u64::from(SITES) * 2
        },
    )
    .await;
    let d = api.detail(&downed).await;
    assert_eq!(
        d.summary.availability,
        AvailabilityStatus::Offline,
        "state survives the restart"
    );
    let alarms_after: Vec<i64> = d
        .alarms
        .iter()
        .filter(|a| a.cleared_at.is_none())
        .map(|a| a.id)
        .collect();
    assert_eq!(
        alarms_after, alarms_before,
        "active alarms survive the restart"
    );
    // No simulated site that kept reporting was declared offline by the restart.
    tokio::time::sleep(Duration::from_millis(INTERVAL_MS * (MISSED + 1))).await;
    let offline: SubcloudPage = api.get("/api/v1/subclouds?availability=offline").await;
    let offline: Vec<String> = offline.rows.into_iter().map(|r| r.name).collect();
    let mut views = String::new();
    for n in &offline {
        views.push_str(
            &reqwest::get(format!("{control}/sites?site={n}"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap(),
        );
    }
    let stats = reqwest::get(format!("{control}/stats"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        offline.len() as u64,
        spare_offline + 1,
        "offline after the restart: {offline:?} (downed {downed}, spare {spare}) {views} {stats}"
    );
    fault(&control, json!({"kind": "up"}), &downed).await;
    wait_for(Duration::from_secs(30), "downed back online", || async {
        api.detail(&downed).await.summary.availability == AvailabilityStatus::Online
    })
    .await;

    // 4. Bad credentials, replays and malformed reports are refused and change nothing.
    let http = reqwest::Client::new();
    let issued: Value = http
        .post(format!("{}/api/v1/enrollments", controller.base))
        .bearer_auth(&token)
        .json(&json!({ "subclouds": [spare] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let enrollment_token = issued["enrollments"][0]["token"]
        .as_str()
        .unwrap()
        .to_string();
    let enroll = |t: &str| json!({"protocol": 1, "subcloud": spare, "enrollment_token": t});
    let res = http
        .post(format!("{}/agent/v1/enroll", controller.base))
        .json(&enroll("mme_wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = http
        .post(format!("{}/agent/v1/enroll", controller.base))
        .json(&enroll(&enrollment_token))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let secret = res.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    let res = http
        .post(format!("{}/agent/v1/enroll", controller.base))
        .json(&enroll(&enrollment_token))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "an enrollment token works once"
    );
    let spare_before = api.detail(&spare).await;
    let report = |seq: u64, version: &str| {
        json!({
            "protocol": 1, "seq": seq, "sent_at": 0, "health": "healthy",
            "software_version": version,
            "alarms": [{"alarm_id": "100.101", "severity": "minor", "entity": "host=controller-0", "reason": "CPU"}],
        })
    };
    let post = |secret: String, body: String| {
        let http = http.clone();
        let url = format!("{}/agent/v1/report", controller.base);
        async move {
            http.post(url)
                .bearer_auth(secret)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let wrong = format!("{}0", &secret[..secret.len() - 1]);
    let wrong = if wrong == secret {
        format!("{}1", &secret[..secret.len() - 1])
    } else {
        wrong
    };
    for (cred, body, status) in [
        (
            wrong.clone(),
            report(5, "99.99").to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "mmt_not_a_subcloud".to_string(),
            report(5, "99.99").to_string(),
            StatusCode::UNAUTHORIZED,
        ),
        (
            secret.clone(),
            "{\"protocol\":1,\"seq\":".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            secret.clone(),
            report(5, "bad\u{202e}").to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            secret.clone(),
            json!({"protocol": 1}).to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = post(cred, body.clone()).await;
        assert_eq!(res.status(), status, "{body}");
        let v: Value = res.json().await.unwrap();
        assert!(v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    tokio::time::sleep(Duration::from_millis(TICK_MS * 3)).await;
    let spare_after = api.detail(&spare).await;
    assert_eq!(
        spare_after.summary.software_version,
        spare_before.summary.software_version
    );
    // (Enrolled but silent, the spare may go offline meanwhile: that alarm is the
    // controller's; none of the refused reports' alarms may appear.)
    assert!(!spare_after.alarms.iter().any(|a| a.alarm_id == "100.101"));
    // A good report is taken; the same report again is a replay.
    let res = post(secret.clone(), report(5, "26.03").to_string()).await;
    assert_eq!(res.status(), StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["accepted_seq"], 5);
    assert_eq!(answer["controllers"][0]["name"], "sc-amsterdam");
    let res = post(secret.clone(), report(5, "26.04").to_string()).await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    wait_for(Duration::from_secs(5), "spare's report stored", || async {
        api.detail(&spare).await.summary.software_version == "26.03"
    })
    .await;
    let d = api.detail(&spare).await;
    assert!(d.alarms.iter().any(|a| a.alarm_id == "100.101"
        && a.severity == AlarmSeverity::Minor
        && a.cleared_at.is_none()));
    // Revoked: refused from then on.
    let res = http
        .delete(format!(
            "{}/api/v1/subclouds/{spare}/agent",
            controller.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = post(secret.clone(), report(6, "26.03").to_string()).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

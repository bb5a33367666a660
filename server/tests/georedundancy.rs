//! Geo-redundancy with real processes over real HTTP: three `murmur serve` controllers, each
//! with its own store, heartbeating and replicating through TCP proxies the test can cut, and
//! 1,000 simulated sites (the simulator library, over HTTP) reporting to their owners.
//!
//! One scenario, in order: a cut controller-to-controller link moves nothing; SIGKILL of a
//! controller moves its peer groups to the survivors the drill named, within heartbeat
//! interval × threshold plus a few seconds, with every site reporting to its new owner; the
//! restarted controller is secondary; failback (asked on the secondary, forwarded to the
//! owner) brings a group home; no site ever saw two owners claim one epoch. Then wrong peer
//! credentials are refused. A second test checks a capacity shortfall: the plan and the alarm.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use engine::both_backends;
use engine::georedundancy::TakeoverPlan;
use engine::store::Backend;
use reqwest::StatusCode;
use serde_json::json;

mod common;
use agent::sim::{Selector, StepConfig};
use common::geo::{Cluster, Settings, HEARTBEAT_MS, THRESHOLD};
use common::wait_for;

both_backends!(takeover_is_evidence_based_fenced_and_reversible);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_shortfall_is_planned_and_alarmed() {
    shortfall(Backend::Sqlite).await;
}

const REPORT_MS: u64 = 1_000;

async fn takeover_is_evidence_based_fenced_and_reversible(b: Backend) {
    let mut c = Cluster::start(b, Settings::new(1000)).await;
    let (ams, dal, sgp) = (0, 1, 2);
    c.wait_all_home().await;
    c.wait_hears(&[ams, sgp], "sc-dallas").await;
    let before = c.nodes[ams].owners().await;
    let dallas_groups: Vec<String> = before
        .iter()
        .filter(|(_, (o, _))| o == "sc-dallas")
        .map(|(g, _)| g.clone())
        .collect();
    assert!(dallas_groups.len() >= 2, "dallas owns groups: {before:?}");

    c.wait_in_sync(dal).await;

    // 1. Cut only the controller-to-controller links of sc-dallas: the survivors stop hearing
    //    it, but its agents still reach it, so no survivor gets evidence and nothing moves.
    c.cut(dal, true);
    wait_for(
        Duration::from_secs(15),
        "dallas unavailable to the others",
        || async {
            c.nodes[ams].sees("sc-dallas").await == "unavailable"
                && c.nodes[sgp].sees("sc-dallas").await == "unavailable"
        },
    )
    .await;
    let watch_until = Instant::now() + Duration::from_millis(HEARTBEAT_MS * THRESHOLD + 5_000);
    while Instant::now() < watch_until {
        for n in &c.nodes {
            assert_eq!(
                n.owners().await,
                before,
                "{} saw a group move during the cut",
                n.name
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    c.cut(dal, false);
    wait_for(Duration::from_secs(15), "dallas heard again", || async {
        c.nodes[ams].sees("sc-dallas").await == "available"
            && c.nodes[sgp].sees("sc-dallas").await == "available"
    })
    .await;

    c.wait_in_sync(dal).await;

    // 2. The drill says where dallas's groups would go; then SIGKILL dallas.
    let plan: TakeoverPlan = c.drill(ams, "sc-dallas").await;
    assert!(plan.shortfall.is_empty(), "{plan:?}");
    let expected: HashMap<String, String> = plan
        .placements
        .iter()
        .map(|p| (p.group.clone(), p.to.clone().unwrap()))
        .collect();
    assert_eq!(
        expected
            .keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        dallas_groups.iter().cloned().collect(),
    );
    let expected_pairs: Vec<(String, String)> = expected
        .iter()
        .map(|(g, t)| (g.clone(), t.clone()))
        .collect();

    // A rollout over one of dallas's groups is under way when dallas dies.
    let rollout_group = dallas_groups[0].clone();
    let rollout_sites = c.members(&rollout_group);
    let new_owner = expected[&rollout_group].clone();
    let x = c.nodes.iter().position(|n| n.name == new_owner).unwrap();
    c.sim
        .set_steps(StepConfig {
            scale: 3.0 / 180.0,
            failure_rate: 0.0,
            ..StepConfig::default()
        })
        .unwrap();
    let (status, created) = c.nodes[dal]
        .post(
            "/api/v1/strategies",
            &json!({ "type": "sw-deploy", "target": { "kind": "peer_group", "name": rollout_group },
                     "release": "26.03", "max_parallel": 10, "step_timeout_secs": 600 }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let dal_id = created["id"].as_i64().unwrap();
    let (status, body) = c.nodes[dal]
        .post(
            &format!("/api/v1/strategies/{dal_id}/actions"),
            &json!({ "action": "apply" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let uuid = c.nodes[dal]
        .get(&format!("/api/v1/strategies/{dal_id}"))
        .await["summary"]["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    wait_for(
        Duration::from_secs(60),
        "the rollout is part done on dallas, and its copy on the future owner shows it",
        || async {
            let here = c.nodes[dal].strategy(&uuid).await.unwrap();
            let copy = c.nodes[x].strategy(&uuid).await;
            here["complete"].as_u64().unwrap_or(0) >= 10
                && here["in_flight"].as_u64().unwrap_or(0) > 0
                && copy.is_some_and(|s| {
                    s["complete"].as_u64().unwrap_or(0) > 0 && s["run_by"] == "sc-dallas"
                })
        },
    )
    .await;
    // A copy is read-only.
    let copy_id = c.nodes[x].strategy(&uuid).await.unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, body) = c.nodes[x]
        .post(
            &format!("/api/v1/strategies/{copy_id}/actions"),
            &json!({ "action": "pause" }),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    // Waits for the event itself: every site of dallas's groups reporting to the owner the
    // drill named (the deadline only stops a hang).
    let t = c
        .kill_and_wait_takeover(dal, ams, &expected_pairs, Duration::from_secs(90))
        .await;
    eprintln!(
        "takeover ({b:?}, 1000 sites, heartbeat {HEARTBEAT_MS} ms x {THRESHOLD}): detected {:?}, groups moved {:?}, every site reporting to its new owner {:?}",
        t.detected, t.moved, t.all_reporting
    );
    // How fast, on the controllers' own clocks (one machine's wall clock), so neither this
    // test's polling nor the simulator is measured: each new owner took its groups over after
    // the failure window had passed since it last heard dallas, never before, and within that
    // window plus a margin of 10 s for a busy machine.
    let window = i64::try_from(HEARTBEAT_MS * THRESHOLD).unwrap();
    for (group, to) in &expected {
        let geo = c
            .nodes
            .iter()
            .find(|n| n.name == to.as_str())
            .unwrap()
            .geo()
            .await;
        let heard = geo
            .peers
            .iter()
            .find(|p| p.name == "sc-dallas")
            .and_then(|p| p.last_seen)
            .expect("the new owner had heard dallas");
        let since = geo
            .groups
            .iter()
            .find(|g| g.name == *group)
            .expect("group")
            .owned_since;
        let after = since.0 - heard.0;
        eprintln!("{to} took {group} over {after} ms after last hearing dallas");
        assert!(
            after > window,
            "{to} took {group} over {after} ms after last hearing dallas, inside the {window} ms window"
        );
        assert!(
            after <= window + 10_000,
            "{to} took {group} over only {after} ms after last hearing dallas (window {window} ms)"
        );
    }
    // Both survivors agree.
    assert_eq!(c.nodes[ams].owners().await, c.nodes[sgp].owners().await);
    c.assert_no_split_brain();

    // The rollout moved with its sites: paused under the new owner, which carries on the steps
    // dallas had in flight; resumed, it completes, and no site deployed twice.
    wait_for(
        Duration::from_secs(20),
        "the new owner took the rollout over, paused",
        || async {
            c.nodes[x]
                .strategy(&uuid)
                .await
                .is_some_and(|s| s["run_by"] == new_owner.as_str() && s["state"] == "paused")
        },
    )
    .await;
    let taken = c.nodes[x].strategy(&uuid).await.unwrap();
    assert!(
        taken["reason"]
            .as_str()
            .unwrap()
            .contains("taken over from sc-dallas"),
        "{taken}"
    );
    let before_resume = taken["complete"].as_u64().unwrap();
    let (status, body) = c.nodes[x]
        .post(
            &format!("/api/v1/strategies/{copy_id}/actions"),
            &json!({ "action": "resume" }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    wait_for(
        Duration::from_secs(120),
        "the rollout completes under its new owner",
        || async {
            c.nodes[x]
                .strategy(&uuid)
                .await
                .is_some_and(|s| s["state"] == "complete")
        },
    )
    .await;
    let done = c.nodes[x].strategy(&uuid).await.unwrap();
    assert_eq!(done["complete"], rollout_sites.len() as u64, "{done}");
    assert!(before_resume < rollout_sites.len() as u64);
    let stats = c.sim.stats();
    assert!(
        stats.commands_reissued > 0,
        "no deploy was in flight at the kill: the handover of running steps went untested"
    );
    let deploys = stats.commands_by_action["software_deploy"];
    assert_eq!(
        (deploys.succeeded, deploys.failed),
        (rollout_sites.len() as u64, 0),
        "every site of {rollout_group} deployed exactly once over both owners"
    );
    let wanted: std::collections::HashSet<&str> =
        rollout_sites.iter().map(String::as_str).collect();
    for s in c.sim.sites(Selector::All) {
        if wanted.contains(s.name.as_str()) {
            assert_eq!(s.software_version, "26.03", "{}", s.name);
        }
    }

    // 3. Restart dallas on its old store: it learns it lost its groups and stays secondary.
    c.nodes[dal].start().await;
    wait_for(
        Duration::from_secs(20),
        "restarted dallas is secondary",
        || async {
            let o = c.nodes[dal].owners().await;
            expected
                .iter()
                .all(|(g, to)| o.get(g).is_some_and(|(x, _)| x == to))
        },
    )
    .await;
    // Its own row of the rollout became a copy of the new owner's.
    wait_for(
        Duration::from_secs(20),
        "restarted dallas holds the new owner's copy of the rollout",
        || async {
            c.nodes[dal]
                .strategy(&uuid)
                .await
                .is_some_and(|s| s["run_by"] == new_owner.as_str() && s["state"] == "complete")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(REPORT_MS * 3)).await;
    for (g, to) in &expected {
        let m = c.members(g);
        assert_eq!(c.reporting_to(&m, to), m.len(), "{g} sites stay with {to}");
    }
    c.assert_no_split_brain();

    // 4. Failback of one group, asked on dallas (secondary), forwarded to the owner.
    let group = dallas_groups[0].clone();
    let epoch_before = c.nodes[ams].owners().await[&group].1;
    let res = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/peer-groups/{group}/failback",
            c.nodes[dal].base()
        ))
        .bearer_auth(&c.nodes[dal].token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    let members = c.members(&group);
    wait_for(
        Duration::from_secs(20),
        "failed-back sites report to dallas",
        || async { c.reporting_to(&members, "sc-dallas") == members.len() },
    )
    .await;
    for n in &c.nodes {
        wait_for(
            Duration::from_secs(10),
            "every controller knows the failback",
            || async {
                let (o, e) = n.owners().await[&group].clone();
                o == "sc-dallas" && e > epoch_before
            },
        )
        .await;
    }
    c.assert_no_split_brain();

    // 5. Peer endpoints refuse wrong credentials and senders.
    let client = reqwest::Client::new();
    let hb = json!({"from": "sc-dallas", "sent_at": 0, "capacity": 1, "reserved_capacity": 0,
        "managed": 0, "maintenance_until": null, "claims": [], "evidence": [], "hears": []});
    let ams_base = c.nodes[ams].base();
    for (peer, secret, status) in [
        (
            Some("sc-dallas"),
            Some("wrong-secret-wrong-secret"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            Some("sc-nowhere"),
            Some("test-peer-secret-0-1"),
            StatusCode::UNAUTHORIZED,
        ),
        (None, Some("test-peer-secret-0-1"), StatusCode::UNAUTHORIZED),
        (Some("sc-dallas"), None, StatusCode::UNAUTHORIZED),
        // Right secret for singapore, but the heartbeat claims to be from dallas.
        (
            Some("sc-singapore"),
            Some("test-peer-secret-0-2"),
            StatusCode::FORBIDDEN,
        ),
    ] {
        let mut req = client
            .post(format!("{ams_base}/peer/v1/heartbeat"))
            .json(&hb);
        if let Some(p) = peer {
            req = req.header("x-murmur-peer", p);
        }
        if let Some(s) = secret {
            req = req.bearer_auth(s);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status, "{peer:?} {secret:?}");
    }
    for path in ["sync", "strategies", "takeover", "migrate"] {
        let res = client
            .post(format!("{ams_base}/peer/v1/{path}"))
            .header("x-murmur-peer", "sc-dallas")
            .bearer_auth("wrong-secret-wrong-secret")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // The right credentials work (the refusals above were about credentials).
    let res = client
        .post(format!("{ams_base}/peer/v1/heartbeat"))
        .header("x-murmur-peer", "sc-dallas")
        .bearer_auth("test-peer-secret-0-1")
        .json(&hb)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    c.sim.shutdown().await;
}

/// Survivors too small for the failed controller's groups: the drill names the groups that
/// wait, the takeover moves only the others, and the shortfall alarm names the waiting ones.
async fn shortfall(b: Backend) {
    // 300 sites; each controller manages about a third. Amsterdam has room beyond its reserve
    // for a small group only; Singapore for none.
    let mut c = Cluster::start(
        b,
        Settings {
            capacity: [(160, 20), (1000, 100), (100, 10)],
            ..Settings::new(300)
        },
    )
    .await;
    let (ams, dal, sgp) = (0, 1, 2);
    c.wait_all_home().await;
    c.wait_hears(&[ams, sgp], "sc-dallas").await;
    c.wait_in_sync(dal).await;
    let plan: TakeoverPlan = c.drill(ams, "sc-dallas").await;
    assert!(
        !plan.shortfall.is_empty(),
        "the drill shows a shortfall: {plan:?}"
    );
    for p in &plan.placements {
        match &p.to {
            None => assert!(plan.shortfall.contains(&p.group) && p.reason.contains("headroom")),
            Some(to) => {
                let after = plan.capacity.iter().find(|x| &x.controller == to).unwrap();
                assert!(after.managed_after <= after.capacity - after.reserved_capacity);
            }
        }
    }
    // Nothing changed by the drill.
    let before = c.nodes[ams].owners().await;
    assert!(before.values().all(|(_, e)| *e == 1));
    c.nodes[dal].child.as_mut().unwrap().kill().await.unwrap();
    wait_for(
        Duration::from_secs(30),
        "placed groups move, the others wait with an alarm",
        || async {
            let geo = c.nodes[ams].geo().await;
            let owners: HashMap<_, _> = geo
                .groups
                .iter()
                .map(|g| (g.name.clone(), g.owner.clone()))
                .collect();
            let placed = plan.placements.iter().all(|p| match &p.to {
                Some(to) => owners.get(&p.group) == Some(to),
                None => owners.get(&p.group).map(String::as_str) == Some("sc-dallas"),
            });
            let alarm = geo
                .peers
                .iter()
                .find(|p| p.name == "sc-dallas")
                .and_then(|p| p.active_alarms.iter().find(|a| a.alarm_id == "280.910"))
                .is_some_and(|a| plan.shortfall.iter().all(|g| a.reason.contains(g.as_str())));
            placed && alarm
        },
    )
    .await;
    c.assert_no_split_brain();
    c.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_alarm_waits_for_an_operator() {
    let mut c = Cluster::start(
        Backend::Sqlite,
        Settings {
            geo_extra: "heartbeat_failure_policy = \"alarm\"\n".into(),
            ..Settings::new(300)
        },
    )
    .await;
    let (ams, dal, sgp) = (0, 1, 2);
    c.wait_all_home().await;
    c.wait_hears(&[ams, sgp], "sc-dallas").await;
    c.wait_in_sync(dal).await;
    let before = c.nodes[ams].owners().await;
    let group = before
        .iter()
        .filter(|(_, (o, _))| o == "sc-dallas")
        .map(|(g, _)| g.clone())
        .min()
        .expect("dallas owns a group");
    c.nodes[dal].child.as_mut().unwrap().kill().await.unwrap();
    // Detected and alarmed, naming the groups that wait.
    wait_for(
        Duration::from_secs(20),
        "280.005 raised for dallas",
        || async {
            let geo = c.nodes[ams].geo().await;
            geo.peers.iter().any(|p| {
                p.name == "sc-dallas"
                    && p.active_alarms
                        .iter()
                        .any(|a| a.alarm_id == "280.005" && a.reason.contains(group.as_str()))
            })
        },
    )
    .await;
    // Agents have failed over (evidence is there), but nothing moves by itself.
    tokio::time::sleep(Duration::from_millis(REPORT_MS * 3 + 2_000)).await;
    assert_eq!(c.nodes[ams].owners().await, before);
    assert_eq!(c.nodes[sgp].owners().await, before);
    // The operator's migrate, previewed first.
    let client = reqwest::Client::new();
    let preview: serde_json::Value = client
        .post(format!(
            "{}/api/v1/peer-groups/{group}/migrate-preview",
            c.nodes[ams].base()
        ))
        .bearer_auth(&c.nodes[ams].token)
        .json(&json!({"to": "sc-singapore"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["allowed"], true, "{preview}");
    assert_eq!(preview["owner_available"], false, "{preview}");
    assert!(
        preview["evidence_unreachable"].as_u64().unwrap_or(0) > 0,
        "{preview}"
    );
    assert_eq!(
        c.nodes[ams].owners().await,
        before,
        "a preview changes nothing"
    );
    let res = client
        .post(format!(
            "{}/api/v1/peer-groups/{group}/migrate",
            c.nodes[ams].base()
        ))
        .bearer_auth(&c.nodes[ams].token)
        .json(&json!({"to": "sc-singapore"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{:?}", res.text().await);
    let members = c.members(&group);
    wait_for(
        Duration::from_secs(20),
        "migrated sites report to singapore",
        || async { c.reporting_to(&members, "sc-singapore") == members.len() },
    )
    .await;
    // The other groups still wait for an operator.
    let after = c.nodes[sgp].owners().await;
    for (g, (o, _)) in &before {
        if *g != group && o == "sc-dallas" {
            assert_eq!(after[g].0, "sc-dallas", "{g} moved without an operator");
        }
    }
    c.assert_no_split_brain();
    c.sim.shutdown().await;
}

/// Policy `delegate`: sc-singapore decides for everyone. And a failback hold-down brings the
/// groups home automatically after the old owner returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_delegate_lets_the_named_controller_decide_and_failback_is_automatic() {
    let mut c = Cluster::start(
        Backend::Sqlite,
        Settings {
            geo_extra: "heartbeat_failure_policy = \"delegate\"\ndelegate_to = \"sc-singapore\"\n\
                        failback_hold_down_s = 3\n"
                .into(),
            ..Settings::new(300)
        },
    )
    .await;
    let (ams, dal, sgp) = (0, 1, 2);
    c.wait_all_home().await;
    c.wait_hears(&[ams, sgp], "sc-dallas").await;
    c.wait_in_sync(dal).await;
    // A fleet-wide strategy previewed on amsterdam says how many sites it cannot command.
    let preview: serde_json::Value = reqwest::Client::new()
        .post(format!("{}/api/v1/strategies/preview", c.nodes[ams].base()))
        .bearer_auth(&c.nodes[ams].token)
        .json(&json!({"type": "kube-rootca-update", "target": {"kind": "all"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let elsewhere = c
        .sites
        .values()
        .filter(|(_, home)| home != "sc-amsterdam")
        .count();
    assert_eq!(preview["managed_elsewhere"], elsewhere as u64, "{preview}");
    let before = c.nodes[ams].owners().await;
    let dallas_groups: Vec<String> = before
        .iter()
        .filter(|(_, (o, _))| o == "sc-dallas")
        .map(|(g, _)| g.clone())
        .collect();
    c.nodes[dal].child.as_mut().unwrap().kill().await.unwrap();
    wait_for(Duration::from_secs(30), "dallas's groups moved", || async {
        let o = c.nodes[ams].owners().await;
        dallas_groups.iter().all(|g| o[g].0 != "sc-dallas")
    })
    .await;
    // Every move was decided by sc-singapore: its own takeovers, or its orders to amsterdam
    // (as the new owner recorded them).
    let moved = c.nodes[ams].owners().await;
    for g in &dallas_groups {
        let owner = c.nodes.iter().find(|n| n.name == moved[g].0).unwrap();
        let view: engine::georedundancy::PeerGroupView = reqwest::Client::new()
            .get(format!("{}/api/v1/peer-groups/{g}", owner.base()))
            .bearer_auth(&owner.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let last = &view.history[0];
        assert_eq!(last.from_controller, "sc-dallas");
        assert!(
            last.to_controller == "sc-singapore" || last.reason.contains("sc-singapore"),
            "{g}: {last:?}"
        );
    }
    c.assert_no_split_brain();
    // Dallas returns; 3 s after it is heard again its groups come home by themselves.
    c.nodes[dal].start().await;
    wait_for(Duration::from_secs(30), "automatic failback", || async {
        let o = c.nodes[dal].owners().await;
        dallas_groups
            .iter()
            .all(|g| o[g].0 == "sc-dallas" && o[g].1 > before[g].1)
    })
    .await;
    for g in &dallas_groups {
        let m = c.members(g);
        wait_for(
            Duration::from_secs(20),
            "sites back with dallas",
            || async { c.reporting_to(&m, "sc-dallas") == m.len() },
        )
        .await;
    }
    c.assert_no_split_brain();
    c.sim.shutdown().await;
}

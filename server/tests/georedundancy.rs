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
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent::sim::{Selector, SimConfig, SimHandle, Simulator, SiteSpec};
use engine::agents::wire::ControllerRef;
use engine::both_backends;
use engine::georedundancy::{GeoOverview, TakeoverPlan};
use engine::store::Backend;
use engine::testing::TestDb;
use reqwest::StatusCode;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

mod common;
use common::{free_port, seeded_store, wait_for};

both_backends!(takeover_is_evidence_based_fenced_and_reversible);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_shortfall_is_planned_and_alarmed() {
    shortfall(Backend::Sqlite).await;
}

const NAMES: [&str; 3] = ["sc-amsterdam", "sc-dallas", "sc-singapore"];
const HEARTBEAT_MS: u64 = 1_000;
const THRESHOLD: u64 = 3;
const REPORT_MS: u64 = 1_000;

/// A TCP proxy for one direction of one controller-to-controller link; `cut` drops every
/// connection through it and refuses new ones until healed.
struct Link {
    port: u16,
    cut: watch::Sender<bool>,
}

async fn link_to(target: u16) -> Link {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (cut, rx) = watch::channel(false);
    let target = SocketAddr::from(([127, 0, 0, 1], target));
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                continue;
            };
            if *rx.borrow() {
                continue;
            }
            let mut rx = rx.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = rx.wait_for(|c| *c) => {}
                }
            });
        }
    });
    Link { port, cut }
}

struct Node {
    name: &'static str,
    db: TestDb,
    port: u16,
    token: String,
    config: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) {
        let child = Command::new(env!("CARGO_BIN_EXE_murmur"))
            .args([
                "--config",
                &self.config.to_string_lossy(),
                "serve",
                "--listen",
                &format!("127.0.0.1:{}", self.port),
                "--database-url",
                &self.db.url,
                "--site-root",
                &std::env::temp_dir().to_string_lossy(),
                "--controller-name",
                self.name,
                "--report-interval-ms",
                &REPORT_MS.to_string(),
                "--offline-after-missed",
                "3",
                "--online-after-reports",
                "2",
                "--health-tick-ms",
                "250",
            ])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start murmur serve");
        self.child = Some(child);
        let base = self.base();
        wait_for(Duration::from_secs(30), "controller /healthz", || async {
            reqwest::get(format!("{base}/healthz"))
                .await
                .map(|r| r.status() == StatusCode::OK)
                .unwrap_or(false)
        })
        .await;
    }

    async fn geo(&self) -> GeoOverview {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/geo", self.base()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET /geo");
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("geo JSON")
    }

    async fn owners(&self) -> HashMap<String, (String, u64)> {
        self.geo()
            .await
            .groups
            .into_iter()
            .map(|g| (g.name, (g.owner, g.owner_epoch)))
            .collect()
    }

    async fn sees(&self, peer: &str) -> String {
        self.geo()
            .await
            .peers
            .into_iter()
            .find(|p| p.name == peer)
            .map(|p| p.availability.to_string())
            .unwrap_or_default()
    }
}

struct Cluster {
    nodes: Vec<Node>,
    /// (from, to) -> link.
    links: HashMap<(usize, usize), Link>,
    sim: SimHandle,
    /// Site -> its peer group (None: ungrouped) and its original controller.
    sites: HashMap<String, (Option<String>, String)>,
}

impl Cluster {
    async fn start(b: Backend, subclouds: u32, capacity: [(u64, u64); 3]) -> Self {
        let mut nodes = Vec::new();
        for name in NAMES {
            let db = TestDb::new(b).await;
            let (_engine, token, _) = seeded_store(&db, subclouds).await;
            nodes.push(Node {
                name,
                db,
                port: free_port(),
                token,
                config: PathBuf::new(),
                child: None,
            });
        }
        let mut links = HashMap::new();
        for i in 0..3 {
            for (j, to) in nodes.iter().enumerate() {
                if i != j {
                    links.insert((i, j), link_to(to.port).await);
                }
            }
        }
        let secret = |i: usize, j: usize| format!("test-peer-secret-{}-{}", i.min(j), i.max(j));
        let dir = std::env::temp_dir();
        for i in 0..3 {
            let mut toml = format!(
                "[geo]\ncapacity = {}\nreserved_capacity = {}\nheartbeat_interval_ms = {HEARTBEAT_MS}\n\
                 heartbeat_failure_threshold = {THRESHOLD}\nheartbeat_failure_policy = \"rehome\"\n\
                 resync_ms = 2000\n",
                capacity[i].0, capacity[i].1
            );
            for j in 0..3 {
                if i != j {
                    toml.push_str(&format!(
                        "[[geo.peers]]\nname = \"{}\"\nurl = \"http://127.0.0.1:{}\"\nsecret = \"{}\"\n",
                        NAMES[j],
                        links[&(i, j)].port,
                        secret(i, j)
                    ));
                }
            }
            let path = dir.join(format!("murmur-geo-{}-{}.toml", nodes[i].port, NAMES[i]));
            std::fs::write(&path, toml).unwrap();
            nodes[i].config = path;
        }
        // Enrollment tokens from each site's own controller, before the controllers start.
        let mut specs = Vec::new();
        let mut sites = HashMap::new();
        for n in &nodes {
            let engine = n.db.engine().await;
            for e in engine
                .issue_enrollments(
                    &engine::auth::Actor::system(),
                    &engine::agents::EnrollmentRequest {
                        subclouds: vec![],
                        all: true,
                    },
                )
                .await
                .unwrap()
            {
                if e.controller == n.name {
                    specs.push(SiteSpec::from(e));
                }
            }
            if sites.is_empty() {
                let rows: Vec<(String, Option<String>, String)> = sqlx::query_as(
                    "SELECT s.name, p.name, c.name FROM subclouds s \
                     LEFT JOIN peer_groups p ON p.id = s.peer_group_id \
                     JOIN system_controllers c ON c.id = s.controller_id",
                )
                .fetch_all(engine.store().pool())
                .await
                .unwrap();
                for (s, g, c) in rows {
                    sites.insert(s, (g, c));
                }
            }
        }
        for n in nodes.iter_mut() {
            n.start().await;
        }
        let sim = Simulator::start(
            SimConfig {
                controllers: nodes
                    .iter()
                    .map(|n| ControllerRef {
                        name: n.name.to_string(),
                        url: n.base(),
                    })
                    .collect(),
                seed: 11,
                ..Default::default()
            },
            specs,
        )
        .await
        .expect("simulator");
        Cluster {
            nodes,
            links,
            sim,
            sites,
        }
    }

    /// Waits until the owner `k` has replicated each of its groups to every associated peer.
    async fn wait_in_sync(&self, k: usize) {
        let n = &self.nodes[k];
        wait_for(
            Duration::from_secs(20),
            "owner's groups in sync everywhere",
            || async {
                n.geo()
                    .await
                    .groups
                    .iter()
                    .filter(|g| g.owner == n.name)
                    .all(|g| {
                        g.associations.iter().all(|a| {
                            a.sync_status == engine::georedundancy::AssociationSync::InSync
                        })
                    })
            },
        )
        .await;
    }

    fn cut(&self, k: usize, cut: bool) {
        for ((i, j), l) in &self.links {
            if *i == k || *j == k {
                let _ = l.cut.send(cut);
            }
        }
    }

    /// Sites whose last answer named `owner` and that report to it, among `names`.
    fn reporting_to(&self, names: &[String], owner: &str) -> usize {
        self.sim
            .sites(Selector::Sites(names.to_vec()))
            .iter()
            .filter(|s| s.controller.as_deref() == Some(owner) && s.owner.as_deref() == Some(owner))
            .count()
    }

    fn members(&self, group: &str) -> Vec<String> {
        self.sites
            .iter()
            .filter(|(_, (g, _))| g.as_deref() == Some(group))
            .map(|(s, _)| s.clone())
            .collect()
    }

    fn assert_no_split_brain(&self) {
        let st = self.sim.stats();
        assert_eq!(st.owner_conflicts, 0, "two owners claimed one epoch");
        assert_eq!(st.epoch_regressions, 0, "a site obeyed a deposed owner");
    }
}

async fn takeover_is_evidence_based_fenced_and_reversible(b: Backend) {
    let mut c = Cluster::start(b, 1000, [(1000, 100); 3]).await;
    let (ams, dal, sgp) = (0, 1, 2);
    // Every enrolled site reports to its own controller.
    let enrolled = c.sim.wait_enrolled(Duration::from_secs(60)).await;
    assert!(enrolled, "sites enrolled");
    wait_for(
        Duration::from_secs(30),
        "every site reports to its owner",
        || async {
            c.sim.sites(Selector::All).iter().all(|s| {
                c.sites
                    .get(&s.name)
                    .is_some_and(|(_, home)| s.controller.as_deref() == Some(home.as_str()))
            })
        },
    )
    .await;
    for k in [ams, sgp] {
        wait_for(Duration::from_secs(15), "peers available", || async {
            c.nodes[k].sees("sc-dallas").await == "available"
        })
        .await;
    }
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
    let killed_at = Instant::now();
    c.nodes[dal].child.as_mut().unwrap().kill().await.unwrap();
    let mut detected = None;
    let mut moved = None;
    loop {
        assert!(
            killed_at.elapsed() < Duration::from_secs(40),
            "dallas's groups not owned by the planned survivors with every site reporting there"
        );
        if detected.is_none() && c.nodes[ams].sees("sc-dallas").await == "unavailable" {
            detected = Some(killed_at.elapsed());
        }
        let owners = c.nodes[ams].owners().await;
        let placed = expected
            .iter()
            .all(|(g, to)| owners.get(g).is_some_and(|(o, _)| o == to));
        if placed && moved.is_none() {
            moved = Some(killed_at.elapsed());
        }
        if placed
            && expected.iter().all(|(g, to)| {
                let m = c.members(g);
                c.reporting_to(&m, to) == m.len()
            })
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let all_reporting = killed_at.elapsed();
    let detected = detected.expect("detection observed");
    let moved = moved.expect("move observed");
    eprintln!(
        "takeover ({b:?}, 1000 sites, heartbeat {HEARTBEAT_MS} ms x {THRESHOLD}): detected {detected:?}, groups moved {moved:?}, every site reporting to its new owner {all_reporting:?}"
    );
    assert!(
        all_reporting < Duration::from_millis(HEARTBEAT_MS * THRESHOLD + 8_000),
        "took {all_reporting:?}"
    );
    // Both survivors agree.
    assert_eq!(c.nodes[ams].owners().await, c.nodes[sgp].owners().await);
    c.assert_no_split_brain();

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
    let res = client
        .post(format!("{ams_base}/peer/v1/sync"))
        .header("x-murmur-peer", "sc-dallas")
        .bearer_auth("wrong-secret-wrong-secret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res = client
        .post(format!("{ams_base}/peer/v1/takeover"))
        .header("x-murmur-peer", "sc-dallas")
        .bearer_auth("wrong-secret-wrong-secret")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
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
    let mut c = Cluster::start(b, 300, [(160, 20), (1000, 100), (100, 10)]).await;
    let (ams, dal, sgp) = (0, 1, 2);
    assert!(c.sim.wait_enrolled(Duration::from_secs(60)).await);
    for k in [ams, sgp] {
        wait_for(Duration::from_secs(15), "peers available", || async {
            c.nodes[k].sees("sc-dallas").await == "available"
        })
        .await;
    }
    c.wait_in_sync(dal).await;
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

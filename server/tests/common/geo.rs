//! A cluster of three real `murmur serve` controllers (each with its own store, peers reached
//! through TCP proxies that can be cut) and the fleet simulator (library, over HTTP), for the
//! geo-redundancy tests and the takeover benchmark.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use agent::sim::{Selector, SimConfig, SimHandle, Simulator, SiteSpec};
use engine::agents::wire::ControllerRef;
use engine::georedundancy::{GeoOverview, TakeoverPlan};
use engine::store::Backend;
use engine::testing::TestDb;
use reqwest::StatusCode;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::{free_port, seeded_store, wait_for};

pub const NAMES: [&str; 3] = ["sc-amsterdam", "sc-dallas", "sc-singapore"];
pub const HEARTBEAT_MS: u64 = 1_000;
pub const THRESHOLD: u64 = 3;

/// A TCP proxy for one direction of one controller-to-controller link; `cut` drops every
/// connection through it and refuses new ones until healed.
pub struct Link {
    pub port: u16,
    pub cut: watch::Sender<bool>,
}

pub async fn link_to(target: u16) -> Link {
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

pub struct Node {
    /// First, so it is killed (on drop) before its store is dropped.
    pub child: Option<Child>,
    pub name: &'static str,
    pub db: TestDb,
    pub port: u16,
    pub token: String,
    pub config: PathBuf,
    pub report_ms: u64,
}

impl Node {
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start(&mut self) {
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
                &self.report_ms.to_string(),
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

    pub async fn geo(&self) -> GeoOverview {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/geo", self.base()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET /geo");
        assert_eq!(res.status(), StatusCode::OK);
        res.json().await.expect("geo JSON")
    }

    pub async fn owners(&self) -> HashMap<String, (String, u64)> {
        self.geo()
            .await
            .groups
            .into_iter()
            .map(|g| (g.name, (g.owner, g.owner_epoch)))
            .collect()
    }

    /// `POST` a JSON body to the REST API; the status and the JSON answer (Null if none).
    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (StatusCode, serde_json::Value) {
        let res = reqwest::Client::new()
            .post(format!("{}{path}", self.base()))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .expect("POST");
        let status = res.status();
        (status, res.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> serde_json::Value {
        let res = reqwest::Client::new()
            .get(format!("{}{path}", self.base()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET");
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.json().await.expect("JSON")
    }

    /// The strategy summary with `uuid` as this controller holds it (its own or a copy).
    pub async fn strategy(&self, uuid: &str) -> Option<serde_json::Value> {
        let res = reqwest::Client::new()
            .get(format!("{}/api/v1/strategies?per_page=200", self.base()))
            .bearer_auth(&self.token)
            .send()
            .await
            .expect("GET /strategies");
        assert_eq!(res.status(), StatusCode::OK);
        let page: serde_json::Value = res.json().await.expect("strategies JSON");
        page["items"]
            .as_array()?
            .iter()
            .find(|s| s["uuid"] == uuid)
            .cloned()
    }

    pub async fn sees(&self, peer: &str) -> String {
        self.geo()
            .await
            .peers
            .into_iter()
            .find(|p| p.name == peer)
            .map(|p| p.availability.to_string())
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &self.nodes {
            let _ = std::fs::remove_file(&n.config);
        }
    }
}

/// Times of a takeover, from the kill.
#[derive(Debug, Clone, Copy)]
pub struct Takeover {
    /// A survivor marked the controller unavailable.
    pub detected: Duration,
    /// Its groups were owned by the planned survivors.
    pub moved: Duration,
    /// Every site of those groups reported to its new owner.
    pub all_reporting: Duration,
    /// Sites of those groups.
    pub sites: usize,
}

/// How a test cluster is set up.
pub struct Settings {
    pub subclouds: u32,
    /// (capacity, reserved capacity) of each of [`NAMES`].
    pub capacity: [(u64, u64); 3],
    pub report_ms: u64,
    /// How often owners refresh secondary copies without edits.
    pub resync_ms: u64,
    /// Extra lines of every controller's `[geo]` table (policy, delegate, hold-down).
    pub geo_extra: String,
}

impl Settings {
    pub fn new(subclouds: u32) -> Self {
        Self {
            subclouds,
            capacity: [(u64::from(subclouds), u64::from(subclouds) / 10); 3],
            report_ms: 1_000,
            resync_ms: 2_000,
            geo_extra: "heartbeat_failure_policy = \"rehome\"\n".into(),
        }
    }
}

/// Clusters run one at a time: two would share the machine's two cores with six controllers
/// and two simulators, and the timings they check would measure the contention.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct Cluster {
    _one_at_a_time: tokio::sync::MutexGuard<'static, ()>,
    pub nodes: Vec<Node>,
    /// (from, to) -> link.
    pub links: HashMap<(usize, usize), Link>,
    pub sim: SimHandle,
    /// Site -> its peer group (None: ungrouped) and its original controller.
    pub sites: HashMap<String, (Option<String>, String)>,
}

impl Cluster {
    pub async fn start(b: Backend, settings: Settings) -> Self {
        let Settings {
            subclouds,
            capacity,
            report_ms,
            resync_ms,
            geo_extra,
        } = settings;
        let one_at_a_time = ONE_AT_A_TIME.lock().await;
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
                report_ms,
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
                 heartbeat_failure_threshold = {THRESHOLD}\nresync_ms = {resync_ms}\n{geo_extra}",
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
                max_in_flight: 512,
                ..Default::default()
            },
            specs,
        )
        .await
        .expect("simulator");
        Cluster {
            _one_at_a_time: one_at_a_time,
            nodes,
            links,
            sim,
            sites,
        }
    }

    /// Waits until each of `observers` hears `peer`.
    pub async fn wait_hears(&self, observers: &[usize], peer: &str) {
        for k in observers {
            wait_for(Duration::from_secs(15), "peer available", || async {
                self.nodes[*k].sees(peer).await == "available"
            })
            .await;
        }
    }

    /// "What if `failed` fails now?", asked on controller `k`.
    pub async fn drill(&self, k: usize, failed: &str) -> TakeoverPlan {
        let n = &self.nodes[k];
        reqwest::Client::new()
            .get(format!("{}/api/v1/geo/drill?controller={failed}", n.base()))
            .bearer_auth(&n.token)
            .send()
            .await
            .expect("drill")
            .json()
            .await
            .expect("drill JSON")
    }

    /// SIGKILLs controller `victim` and waits until, as `observer` sees it, each group of
    /// `expected` (group, new owner) is owned by its new owner and every one of its sites
    /// reports there. Times are from the kill.
    pub async fn kill_and_wait_takeover(
        &mut self,
        victim: usize,
        observer: usize,
        expected: &[(String, String)],
        limit: Duration,
    ) -> Takeover {
        let name = self.nodes[victim].name;
        let members: Vec<(String, String, Vec<String>)> = expected
            .iter()
            .map(|(g, to)| (g.clone(), to.clone(), self.members(g)))
            .collect();
        let killed = Instant::now();
        if let Some(child) = self.nodes[victim].child.as_mut() {
            child.kill().await.expect("kill");
        }
        let (mut detected, mut moved) = (None, None);
        loop {
            assert!(
                killed.elapsed() < limit,
                "no takeover of {name}'s groups within {limit:?}"
            );
            let n = &self.nodes[observer];
            if detected.is_none() && n.sees(name).await == "unavailable" {
                detected = Some(killed.elapsed());
            }
            let owners = n.owners().await;
            let placed = members
                .iter()
                .all(|(g, to, _)| owners.get(g).is_some_and(|(o, _)| o == to));
            if placed && moved.is_none() {
                moved = Some(killed.elapsed());
            }
            if placed
                && members
                    .iter()
                    .all(|(_, to, m)| self.reporting_to(m, to) == m.len())
            {
                return Takeover {
                    detected: detected.unwrap_or_else(|| killed.elapsed()),
                    moved: moved.unwrap_or_else(|| killed.elapsed()),
                    all_reporting: killed.elapsed(),
                    sites: members.iter().map(|m| m.2.len()).sum(),
                };
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until every enrolled site has reported to its own controller.
    pub async fn wait_all_home(&self) {
        assert!(
            self.sim.wait_enrolled(Duration::from_secs(600)).await,
            "sites enrolled"
        );
        wait_for(
            Duration::from_secs(120),
            "every site reports to its owner",
            || async {
                self.sim.sites(Selector::All).iter().all(|s| {
                    self.sites.get(&s.name).is_some_and(|(_, home)| {
                        s.controller.as_deref() == Some(home.as_str())
                            && s.owner.as_deref() == Some(home.as_str())
                    })
                })
            },
        )
        .await;
    }

    /// Waits until the owner `k` has replicated each of its groups to every associated peer.
    pub async fn wait_in_sync(&self, k: usize) {
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

    pub fn cut(&self, k: usize, cut: bool) {
        for ((i, j), l) in &self.links {
            if *i == k || *j == k {
                let _ = l.cut.send(cut);
            }
        }
    }

    /// Sites whose last answer named `owner` and that report to it, among `names`.
    pub fn reporting_to(&self, names: &[String], owner: &str) -> usize {
        let wanted: std::collections::HashSet<&str> = names.iter().map(String::as_str).collect();
        self.sim
            .sites(Selector::All)
            .iter()
            .filter(|s| wanted.contains(s.name.as_str()))
            .filter(|s| s.controller.as_deref() == Some(owner) && s.owner.as_deref() == Some(owner))
            .count()
    }

    pub fn members(&self, group: &str) -> Vec<String> {
        self.sites
            .iter()
            .filter(|(_, (g, _))| g.as_deref() == Some(group))
            .map(|(s, _)| s.clone())
            .collect()
    }

    pub fn assert_no_split_brain(&self) {
        let st = self.sim.stats();
        assert_eq!(st.owner_conflicts, 0, "two owners claimed one epoch");
        assert_eq!(st.epoch_regressions, 0, "a site obeyed a deposed owner");
    }
}

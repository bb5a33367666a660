//! A fake controller pair for the agent's tests: two HTTP listeners over one state, like two
//! controllers sharing a database. It checks what a real controller checks (credential,
//! one-time token, strictly increasing seq, report validity), so protocol mistakes fail here.
#![allow(dead_code)] // each test file uses part of it

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::agents::wire::{
    Command, CommandState, ControllerRef, EnrollRequest, Enrollment, Ping, Report, ReportAnswer,
};
use engine::agents::{EnrollmentRequest, SiteEnrollment};
use engine::time::Millis;

#[derive(Default)]
pub struct Subcloud {
    pub secret: String,
    /// The controller that took the enrollment.
    pub enrolled_via: Option<&'static str>,
    pub last_seq: u64,
    pub reports: u64,
    /// Which controller accepted each report, in order.
    pub via: Vec<&'static str>,
    pub pending: Vec<Command>,
    /// Final states seen per command id.
    pub finals: HashMap<i64, (CommandState, u8, String)>,
    /// How many accepted reports carried each command's final state.
    pub final_reports: HashMap<i64, u32>,
    /// Every phase reported per command id, in order, without repeats.
    pub phases: HashMap<i64, Vec<String>>,
    pub last: Option<Report>,
}

#[derive(Default)]
pub struct Fleet {
    pub subclouds: HashMap<String, Subcloud>,
    pub by_secret: HashMap<String, String>,
    pub controllers: Vec<ControllerRef>,
    pub interval_ms: u64,
    pub owner_epoch: u64,
    pub replays: u64,
    pub invalid: u64,
    /// Subclouds the admin API issues enrollment tokens for: name, region.
    pub roster: Vec<(String, String)>,
}

pub type Shared = Arc<Mutex<Fleet>>;

#[derive(Clone)]
struct Fake {
    name: &'static str,
    fleet: Shared,
}

fn refuse(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(serde_json::json!({"error": {"code": code, "message": code}})),
    )
        .into_response()
}

async fn enroll(State(f): State<Fake>, Json(req): Json<EnrollRequest>) -> Response {
    let mut fleet = f.fleet.lock().unwrap();
    if req.enrollment_token != format!("mme_{}", req.subcloud) {
        return refuse(StatusCode::UNAUTHORIZED, "bad_token");
    }
    if fleet
        .subclouds
        .get(&req.subcloud)
        .is_some_and(|s| !s.secret.is_empty())
    {
        return refuse(StatusCode::UNAUTHORIZED, "token_used");
    }
    let id = fleet.by_secret.len() + 1;
    let secret = format!("mms_{id}_{:064x}", id);
    fleet.by_secret.insert(secret.clone(), req.subcloud.clone());
    let entry = fleet.subclouds.entry(req.subcloud.clone()).or_default();
    entry.secret = secret.clone();
    entry.enrolled_via = Some(f.name);
    Json(Enrollment {
        protocol: 1,
        subcloud: req.subcloud,
        secret,
        report_interval_ms: fleet.interval_ms,
        controllers: fleet.controllers.clone(),
    })
    .into_response()
}

async fn report(State(f): State<Fake>, headers: HeaderMap, Json(r): Json<Report>) -> Response {
    let mut fleet = f.fleet.lock().unwrap();
    let secret = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let Some(name) = fleet.by_secret.get(secret).cloned() else {
        return refuse(StatusCode::UNAUTHORIZED, "bad_secret");
    };
    if r.validate().is_err() {
        fleet.invalid += 1;
        return refuse(StatusCode::BAD_REQUEST, "invalid");
    }
    let (controllers, epoch, interval) = (
        fleet.controllers.clone(),
        fleet.owner_epoch,
        fleet.interval_ms,
    );
    let sc = fleet.subclouds.get_mut(&name).unwrap();
    if r.seq <= sc.last_seq {
        fleet.replays += 1;
        return refuse(StatusCode::CONFLICT, "replayed");
    }
    sc.last_seq = r.seq;
    sc.reports += 1;
    sc.via.push(f.name);
    for p in &r.commands {
        // Progress acknowledges a command: stop resending it.
        sc.pending.retain(|c| c.id != p.id);
        if p.state.is_final() {
            sc.finals
                .insert(p.id, (p.state, p.percent, p.message.clone()));
            *sc.final_reports.entry(p.id).or_default() += 1;
        }
        if let Some(phase) = &p.phase {
            let seen = sc.phases.entry(p.id).or_default();
            if seen.last() != Some(phase) {
                seen.push(phase.clone());
            }
        }
    }
    sc.last = Some(r.clone());
    Json(ReportAnswer {
        protocol: 1,
        accepted_seq: r.seq,
        owner_epoch: epoch,
        controllers,
        commands: sc.pending.clone(),
        report_interval_ms: interval,
    })
    .into_response()
}

async fn ping(State(f): State<Fake>) -> Json<Ping> {
    Json(Ping {
        protocol: 1,
        controller: f.name.into(),
        at: Millis(0),
    })
}

pub async fn serve(name: &'static str, fleet: Shared) -> SocketAddr {
    let app = Router::new()
        .route("/agent/v1/enroll", post(enroll))
        .route("/agent/v1/report", post(report))
        .route("/agent/v1/ping", get(ping))
        .route("/api/v1/controllers", get(admin_controllers))
        .route("/api/v1/enrollments", post(admin_enrollments))
        .with_state(Fake { name, fleet });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The admin API token the fake accepts.
pub const API_TOKEN: &str = "mmt_test";

fn admin(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer mmt_test")
}

async fn admin_controllers(State(f): State<Fake>, headers: HeaderMap) -> Response {
    if !admin(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let fleet = f.fleet.lock().unwrap();
    let list: Vec<serde_json::Value> = fleet
        .controllers
        .iter()
        .enumerate()
        .map(|(i, c)| serde_json::json!({"id": i, "name": c.name, "lat": 50.0, "lon": i as f64 * 10.0, "endpoint": c.url, "availability": "online"}))
        .collect();
    Json(list).into_response()
}

async fn admin_enrollments(
    State(f): State<Fake>,
    headers: HeaderMap,
    Json(req): Json<EnrollmentRequest>,
) -> Response {
    if !admin(&headers) {
        return refuse(StatusCode::UNAUTHORIZED, "unauthorized");
    }
    let fleet = f.fleet.lock().unwrap();
    let enrollments: Vec<SiteEnrollment> = fleet
        .roster
        .iter()
        .filter(|(name, _)| req.all || req.subclouds.contains(name))
        .map(|(name, region)| SiteEnrollment {
            subcloud: name.clone(),
            token: format!("mme_{name}"),
            expires_at: Millis(0),
            region: region.clone(),
            lat: 45.0,
            lon: 5.0,
            software_version: "24.09".into(),
            controller: f.name.into(),
        })
        .collect();
    Json(serde_json::json!({ "enrollments": enrollments })).into_response()
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    check()
}

/// Queues `command` for `subcloud` (resent until the agent reports progress on it).
pub fn queue(fleet: &Shared, subcloud: &str, command: Command) {
    let mut f = fleet.lock().unwrap();
    f.subclouds
        .entry(subcloud.to_string())
        .or_default()
        .pending
        .push(command);
}

/// The final state the fake saw for command `id` of `subcloud`.
pub fn final_state(fleet: &Shared, subcloud: &str, id: i64) -> Option<(CommandState, u8, String)> {
    fleet
        .lock()
        .unwrap()
        .subclouds
        .get(subcloud)?
        .finals
        .get(&id)
        .cloned()
}

/// Starts controllers sc-a, sc-b over `fleet` and returns their refs (sc-a preferred).
pub async fn controller_pair(fleet: &Shared, interval_ms: u64) -> Vec<ControllerRef> {
    let a = serve("sc-a", Arc::clone(fleet)).await;
    let b = serve("sc-b", Arc::clone(fleet)).await;
    let controllers = vec![
        ControllerRef {
            name: "sc-a".into(),
            url: format!("http://{a}"),
        },
        ControllerRef {
            name: "sc-b".into(),
            url: format!("http://{b}"),
        },
    ];
    let mut f = fleet.lock().unwrap();
    f.controllers = controllers.clone();
    f.interval_ms = interval_ms;
    f.owner_epoch = 1;
    controllers
}

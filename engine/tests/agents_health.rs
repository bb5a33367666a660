//! Agent credentials, report intake and the health monitor on a real database (SQLite and
//! PostgreSQL): hysteresis, alarms raised and cleared, history, replay and credential
//! refusals, acknowledgement, restart without loss. Time is driven explicitly through
//! `health_tick(now)`, so the assertions are exact.

use engine::agents::wire::*;
use engine::agents::{EnrollmentRequest, IntakeError, IntakePolicy};
use engine::auth::{Actor, Role};
use engine::both_backends;
use engine::fleet::{AvailabilityStatus, EndpointType, ManagementState, SyncStatus};
use engine::health::{alarm_ids, AlarmQuery, AlarmSeverity, AlarmState, AlarmStatus};
use engine::store::Backend;
use engine::testing::{enroll_all, TestDb};
use engine::time::Millis;
use engine::Engine;

both_backends!(
    enrollment_is_single_use_and_secrets_authenticate,
    silence_takes_sites_offline_with_alarm_and_history_and_recovery_clears,
    flapping_inside_the_window_changes_nothing,
    replayed_malformed_and_revoked_reports_change_nothing,
    agent_alarms_and_sync_are_mirrored_and_acknowledged,
    restart_keeps_sequence_and_state,
    commands_are_delivered_until_acknowledged,
    an_added_subcloud_enrolls_and_comes_online,
    unmeasured_health_reads_unknown_until_measured,
);

const INTERVAL: i64 = 1_000;

fn policy() -> IntakePolicy {
    engine::testing::intake_policy(INTERVAL)
}

fn operator() -> Actor {
    engine::testing::user_actor("op", Role::Operator)
}

fn viewer() -> Actor {
    engine::testing::user_actor("view", Role::Viewer)
}

async fn setup(b: Backend, n: u32) -> (TestDb, Engine) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(n).await.unwrap();
    engine.start_agent_gateway(policy()).await.unwrap();
    (db, engine)
}

fn report(seq: u64) -> Report {
    Report {
        protocol: PROTOCOL_VERSION,
        seq,
        sent_at: Millis(0),
        health: SiteHealth::Healthy,
        software_version: "25.09".into(),
        endpoints: EndpointType::ALL
            .iter()
            .map(|e| EndpointSync {
                endpoint_type: *e,
                sync_status: SyncStatus::InSync,
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
        agent_version: "test".into(),
    }
}

async fn availability(engine: &Engine, name: &str) -> AvailabilityStatus {
    engine
        .subcloud_detail(name)
        .await
        .unwrap()
        .summary
        .availability
}

async fn active_alarm(engine: &Engine, name: &str, alarm_id: &str) -> bool {
    let d = engine.subcloud_detail(name).await.unwrap();
    d.alarms
        .iter()
        .any(|a| a.alarm_id == alarm_id && a.cleared_at.is_none())
}

/// Sends one report per site at `t` (seq = t) and ticks at `t`.
async fn all_report(engine: &Engine, sites: &[(String, String)], t: i64, skip: &[&str]) {
    let g = engine.agent_gateway().unwrap();
    for (name, secret) in sites {
        if skip.contains(&name.as_str()) {
            continue;
        }
        g.accept_report(secret, report(t as u64), Millis(t))
            .unwrap();
    }
    engine.health_tick(Millis(t)).await.unwrap();
}

/// Availability transitions of one subcloud in the 24 h before `at`.
async fn transitions(engine: &Engine, name: &str, at: i64) -> u32 {
    let id = engine.subcloud_detail(name).await.unwrap().id;
    engine
        .availability_timeline(id, Millis(at))
        .await
        .unwrap()
        .transitions
}

/// Alarms ever raised in the fleet, active or cleared.
async fn alarms_ever(engine: &Engine) -> u64 {
    let q = AlarmQuery {
        state: AlarmState::All,
        ..Default::default()
    };
    engine.alarm_page(&q).await.unwrap().matching
}

async fn enrollment_is_single_use_and_secrets_authenticate(b: Backend) {
    let (_db, engine) = setup(b, 3).await;
    let name = engine
        .list_subclouds(&Default::default())
        .await
        .unwrap()
        .rows[0]
        .name
        .clone();
    // Viewers and operators may not issue tokens.
    let req = EnrollmentRequest {
        subclouds: vec![name.clone()],
        all: false,
    };
    assert!(matches!(
        engine.issue_enrollments(&viewer(), &req).await,
        Err(engine::Error::Forbidden(_))
    ));
    assert!(matches!(
        engine.issue_enrollments(&operator(), &req).await,
        Err(engine::Error::Forbidden(_))
    ));
    let missing = EnrollmentRequest {
        subclouds: vec!["no-such-site".into()],
        all: false,
    };
    assert!(matches!(
        engine.issue_enrollments(&Actor::system(), &missing).await,
        Err(engine::Error::NotFound { .. })
    ));
    let t = engine
        .issue_enrollments(&Actor::system(), &req)
        .await
        .unwrap()
        .remove(0);
    assert!(t.token.starts_with("mme_"));
    let enroll = |token: String, subcloud: String| EnrollRequest {
        protocol: PROTOCOL_VERSION,
        subcloud,
        enrollment_token: token,
    };
    // The token belongs to that subcloud only.
    let other = engine
        .list_subclouds(&Default::default())
        .await
        .unwrap()
        .rows[1]
        .name
        .clone();
    assert_eq!(
        engine
            .enroll_agent(&enroll(t.token.clone(), other))
            .await
            .unwrap_err(),
        IntakeError::Unauthorized
    );
    let e = engine
        .enroll_agent(&enroll(t.token.clone(), name.clone()))
        .await
        .unwrap();
    assert!(e.secret.starts_with("mms_"));
    assert_eq!(e.controllers[0].name, "local");
    // Single use.
    assert_eq!(
        engine
            .enroll_agent(&enroll(t.token, name.clone()))
            .await
            .unwrap_err(),
        IntakeError::Unauthorized
    );
    let g = engine.agent_gateway().unwrap();
    let answer = g
        .accept_report(&e.secret, report(10), Millis::now())
        .unwrap();
    assert_eq!(answer.accepted_seq, 10);
    assert_eq!(answer.report_interval_ms, INTERVAL as u64);
    // A wrong secret for the same subcloud id is refused.
    let mut forged = e.secret.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        g.accept_report(&forged, report(11), Millis::now())
            .unwrap_err(),
        IntakeError::Unauthorized
    );
    let audit = engine.recent_audit(10).await.unwrap();
    assert!(audit.iter().any(|a| a.entry.action == "agent.enrolled"));
    assert!(audit
        .iter()
        .any(|a| a.entry.action == "agent.enrollment_issued"));
}

async fn silence_takes_sites_offline_with_alarm_and_history_and_recovery_clears(b: Backend) {
    let (_db, engine) = setup(b, 4).await;
    let sites = enroll_all(&engine).await;
    let t0 = Millis::now().0;
    let mut rx = engine.events().subscribe();
    // Every site reports for a while: the online ones stay online.
    for k in 0..3 {
        all_report(&engine, &sites, t0 + k * INTERVAL, &[]).await;
    }
    let victim = sites[0].0.clone();
    // Bring every site online first (seeded offline sites recover after 2 good reports).
    for (name, _) in &sites {
        assert_eq!(
            availability(&engine, name).await,
            AvailabilityStatus::Online,
            "{name}"
        );
    }
    // The victim goes silent at t0+3 s; last good report at t0+2 s; offline window 3 s.
    let mut t = t0 + 3 * INTERVAL;
    let mut offline_at = None;
    while t <= t0 + 8 * INTERVAL {
        all_report(&engine, &sites, t, &[&victim]).await;
        if offline_at.is_none()
            && availability(&engine, &victim).await == AvailabilityStatus::Offline
        {
            offline_at = Some(t);
        }
        t += INTERVAL / 2;
    }
    let offline_at = offline_at.expect("victim went offline");
    // Declared within interval × threshold plus one tick of the last good report, not before.
    let last_good = t0 + 2 * INTERVAL;
    assert!(
        offline_at > last_good + 3 * INTERVAL,
        "too early: {}",
        offline_at - last_good
    );
    assert!(
        offline_at <= last_good + 3 * INTERVAL + INTERVAL / 2,
        "too late: {}",
        offline_at - last_good
    );
    assert!(active_alarm(&engine, &victim, alarm_ids::SUBCLOUD_OFFLINE).await);
    let d = engine.subcloud_detail(&victim).await.unwrap();
    assert_eq!(d.summary.sync_status, SyncStatus::Unknown);
    assert!(d.summary.alarms.critical >= 1);
    for (other, _) in sites.iter().filter(|s| s.0 != victim) {
        assert_eq!(
            availability(&engine, other).await,
            AvailabilityStatus::Online
        );
    }
    // An event named the victim.
    let mut named = false;
    while let Ok(e) = rx.try_recv() {
        if let engine::events::Event::HealthChanged {
            subclouds,
            went_offline,
            ..
        } = e
        {
            named |= went_offline >= 1 && subclouds.contains(&victim);
        }
    }
    assert!(named, "a HealthChanged event named the victim");
    // Back: one good report is not enough, two are.
    t += INTERVAL;
    all_report(&engine, &sites, t, &[]).await;
    assert_eq!(
        availability(&engine, &victim).await,
        AvailabilityStatus::Offline
    );
    t += INTERVAL;
    all_report(&engine, &sites, t, &[]).await;
    assert_eq!(
        availability(&engine, &victim).await,
        AvailabilityStatus::Online
    );
    assert!(!active_alarm(&engine, &victim, alarm_ids::SUBCLOUD_OFFLINE).await);
    let d = engine.subcloud_detail(&victim).await.unwrap();
    assert_eq!(d.summary.sync_status, SyncStatus::InSync);
    assert!(
        d.alarms
            .iter()
            .any(|a| a.alarm_id == alarm_ids::SUBCLOUD_OFFLINE && a.cleared_at.is_some()),
        "history keeps the cleared alarm"
    );
    let tl = engine
        .availability_timeline(d.id, Millis(t + 1))
        .await
        .unwrap();
    let states: Vec<_> = tl.spans.iter().filter_map(|s| s.availability).collect();
    assert!(
        states.ends_with(&[AvailabilityStatus::Offline, AvailabilityStatus::Online]),
        "{states:?}"
    );
    let audit = engine.recent_audit(20).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.entry.action == "health.availability" && a.entry.summary.contains(&victim)));
}

async fn flapping_inside_the_window_changes_nothing(b: Backend) {
    let (_db, engine) = setup(b, 2).await;
    let sites = enroll_all(&engine).await;
    let t0 = Millis::now().0;
    for k in 0..3 {
        all_report(&engine, &sites, t0 + k * INTERVAL, &[]).await;
    }
    let flapper = sites[0].0.clone();
    let history_before = transitions(&engine, &flapper, t0 + 30 * INTERVAL).await;
    let alarms_before = alarms_ever(&engine).await;
    // The link drops two reports out of every four for 20 s: never 3 s of silence.
    let mut t = t0 + 3 * INTERVAL;
    let mut k = 0;
    while t < t0 + 23 * INTERVAL {
        let down = k % 4 >= 2;
        let skip = [flapper.as_str()];
        all_report(&engine, &sites, t, if down { &skip[..] } else { &[] }).await;
        t += INTERVAL;
        k += 1;
    }
    assert_eq!(
        availability(&engine, &flapper).await,
        AvailabilityStatus::Online
    );
    let after = transitions(&engine, &flapper, t0 + 30 * INTERVAL).await;
    assert_eq!(after, history_before, "no availability transitions");
    let alarms_after = alarms_ever(&engine).await;
    assert_eq!(alarms_after, alarms_before, "no alarm raised or cleared");
}

async fn replayed_malformed_and_revoked_reports_change_nothing(b: Backend) {
    let (_db, engine) = setup(b, 2).await;
    let sites = enroll_all(&engine).await;
    let (name, secret) = sites[0].clone();
    let g = engine.agent_gateway().unwrap().clone();
    g.accept_report(&secret, report(100), Millis::now())
        .unwrap();
    engine.health_tick(Millis::now()).await.unwrap();
    // Replays: the same and an older seq.
    assert!(matches!(
        g.accept_report(&secret, report(100), Millis::now()),
        Err(IntakeError::Replayed { .. })
    ));
    assert!(matches!(
        g.accept_report(&secret, report(50), Millis::now()),
        Err(IntakeError::Replayed { .. })
    ));
    // Malformed: refused with the field named, and the seq is not consumed.
    let mut bad = report(101);
    bad.alarms.push(ReportedAlarm {
        alarm_id: "bogus".into(),
        severity: AlarmSeverity::Major,
        entity: "x".into(),
        reason: "y".into(),
    });
    match g.accept_report(&secret, bad, Millis::now()) {
        Err(IntakeError::Invalid { field, .. }) => assert_eq!(field, "alarms.alarm_id"),
        other => panic!("{other:?}"),
    }
    assert_eq!(g.pending_reports(), 0);
    g.accept_report(&secret, report(101), Millis::now())
        .unwrap();
    // Garbage credentials.
    for cred in [
        "",
        "mms_",
        "Bearer x",
        "mmt_abc",
        &format!("mms_999999_{}", "a".repeat(64)),
    ] {
        assert_eq!(
            g.accept_report(cred, report(500), Millis::now())
                .unwrap_err(),
            IntakeError::Unauthorized,
            "{cred}"
        );
    }
    // Revoked: refused from now on; and only admins may revoke.
    assert!(matches!(
        engine.revoke_agent(&operator(), &name).await,
        Err(engine::Error::Forbidden(_))
    ));
    engine.revoke_agent(&Actor::system(), &name).await.unwrap();
    assert_eq!(
        g.accept_report(&secret, report(200), Millis::now())
            .unwrap_err(),
        IntakeError::Unauthorized
    );
    assert_eq!(
        g.pending_reports(),
        0,
        "the revoked site's queued report is dropped"
    );
    let st = engine.subcloud_detail(&name).await.unwrap().agent.unwrap();
    assert!(st.revoked_at.is_some());
}

async fn agent_alarms_and_sync_are_mirrored_and_acknowledged(b: Backend) {
    let (_db, engine) = setup(b, 3).await;
    let sites = enroll_all(&engine).await;
    let t0 = Millis::now().0;
    for k in 0..3 {
        all_report(&engine, &sites, t0 + k * INTERVAL, &[]).await;
    }
    let (name, secret) = sites[0].clone();
    let g = engine.agent_gateway().unwrap().clone();
    let mut r = report((t0 + 10 * INTERVAL) as u64);
    r.alarms.push(ReportedAlarm {
        alarm_id: "100.101".into(),
        severity: AlarmSeverity::Minor,
        entity: "host=controller-0".into(),
        reason: "CPU threshold exceeded".into(),
    });
    r.endpoints[0].sync_status = SyncStatus::OutOfSync;
    r.software_version = "25.09.1".into();
    g.accept_report(&secret, r.clone(), Millis(t0 + 10 * INTERVAL))
        .unwrap();
    engine
        .health_tick(Millis(t0 + 10 * INTERVAL))
        .await
        .unwrap();
    let d = engine.subcloud_detail(&name).await.unwrap();
    assert_eq!(d.summary.sync_status, SyncStatus::OutOfSync);
    assert_eq!(d.summary.software_version, "25.09.1");
    assert!(active_alarm(&engine, &name, "100.101").await);
    assert!(active_alarm(&engine, &name, alarm_ids::SUBCLOUD_OUT_OF_SYNC).await);
    assert!(d.summary.alarms.major >= 1 && d.summary.alarms.minor >= 1);
    let agent = d.agent.unwrap();
    assert_eq!(
        agent.reachability[0].rtt_ms,
        Some(10),
        "RTT is stored rounded to 10 ms"
    );
    // Acknowledge: viewers may not; operators may; acknowledging again is a conflict.
    let page = engine
        .alarm_page(&AlarmQuery {
            subcloud: Some(name.clone()),
            severities: vec![AlarmSeverity::Minor],
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page
        .rows
        .iter()
        .all(|a| a.severity == AlarmSeverity::Minor && a.subcloud == name));
    let id = page
        .rows
        .iter()
        .find(|a| a.alarm_id == "100.101")
        .unwrap()
        .id;
    assert!(matches!(
        engine.acknowledge_alarms(&viewer(), &[id]).await,
        Err(engine::Error::Forbidden(_))
    ));
    assert_eq!(
        engine.acknowledge_alarms(&operator(), &[id]).await.unwrap(),
        1
    );
    assert!(matches!(
        engine.acknowledge_alarms(&operator(), &[id]).await,
        Err(engine::Error::Conflict(_))
    ));
    let page = engine
        .alarm_page(&AlarmQuery {
            subcloud: Some(name.clone()),
            acknowledged: Some(true),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.rows.len(), 1);
    assert_eq!(page.rows[0].acknowledged_by.as_deref(), Some("op"));
    // The site clears its alarm and re-syncs: both alarms clear, the roll-up follows.
    let r2 = report((t0 + 11 * INTERVAL) as u64);
    g.accept_report(&secret, r2, Millis(t0 + 11 * INTERVAL))
        .unwrap();
    engine
        .health_tick(Millis(t0 + 11 * INTERVAL))
        .await
        .unwrap();
    assert!(!active_alarm(&engine, &name, "100.101").await);
    assert!(!active_alarm(&engine, &name, alarm_ids::SUBCLOUD_OUT_OF_SYNC).await);
    let d = engine.subcloud_detail(&name).await.unwrap();
    assert_eq!(d.summary.sync_status, SyncStatus::InSync);
    assert_eq!(d.summary.alarms.total(), 0);
}

async fn restart_keeps_sequence_and_state(b: Backend) {
    let (db, engine) = setup(b, 2).await;
    let sites = enroll_all(&engine).await;
    let t0 = Millis::now().0;
    for k in 0..3 {
        all_report(&engine, &sites, t0 + k * INTERVAL, &[]).await;
    }
    let (name, secret) = sites[0].clone();
    // A new process on the same store.
    let engine2 = db.engine().await;
    engine2.start_agent_gateway(policy()).await.unwrap();
    let g2 = engine2.agent_gateway().unwrap();
    assert!(
        matches!(
            g2.accept_report(&secret, report((t0 + 2 * INTERVAL) as u64), Millis::now()),
            Err(IntakeError::Replayed { .. })
        ),
        "seq survives the restart"
    );
    g2.accept_report(&secret, report((t0 + 3 * INTERVAL) as u64), Millis::now())
        .unwrap();
    engine2.health_tick(Millis::now()).await.unwrap();
    assert_eq!(
        availability(&engine2, &name).await,
        AvailabilityStatus::Online
    );
    // The grace period: silent sites are not declared offline at once after a restart.
    engine2
        .health_tick(Millis(Millis::now().0 + INTERVAL))
        .await
        .unwrap();
    assert_eq!(
        availability(&engine2, &sites[1].0).await,
        AvailabilityStatus::Online
    );
}

async fn commands_are_delivered_until_acknowledged(b: Backend) {
    let (_db, engine) = setup(b, 2).await;
    let sites = enroll_all(&engine).await;
    let (name, secret) = sites[0].clone();
    assert!(matches!(
        engine
            .queue_command(&viewer(), &name, CommandAction::SyncEndpoints)
            .await,
        Err(engine::Error::Forbidden(_))
    ));
    let id = engine
        .queue_command(&operator(), &name, CommandAction::SyncEndpoints)
        .await
        .unwrap();
    let g = engine.agent_gateway().unwrap().clone();
    let a = g.accept_report(&secret, report(1), Millis::now()).unwrap();
    assert_eq!(a.commands.len(), 1);
    assert_eq!(a.commands[0].id, id);
    // Not acknowledged yet: sent again.
    let a = g.accept_report(&secret, report(2), Millis::now()).unwrap();
    assert_eq!(a.commands.len(), 1);
    let mut r = report(3);
    r.commands.push(CommandProgress {
        id,
        state: CommandState::Succeeded,
        percent: 100,
        message: "done".into(),
        phase: None,
    });
    let a = g.accept_report(&secret, r, Millis::now()).unwrap();
    assert!(a.commands.is_empty());
    engine.health_tick(Millis::now()).await.unwrap();
    let state: String = sqlx::query_scalar("SELECT state FROM subcloud_commands WHERE id = $1")
        .bind(id)
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    assert_eq!(state, "succeeded");
}

async fn an_added_subcloud_enrolls_and_comes_online(b: Backend) {
    let (_db, engine) = setup(b, 2).await;
    let new = engine::fleet::NewSubcloud {
        name: "grenoble-0001".into(),
        description: "new site".into(),
        city: "Grenoble".into(),
        country: "France".into(),
        region: "Europe".into(),
        lat: 45.19,
        lon: 5.72,
        group: None,
        peer_group: None,
        controller: "sc-amsterdam".into(),
        timezone: None,
    };
    assert!(matches!(
        engine.add_subcloud(&operator(), &new).await,
        Err(engine::Error::Forbidden(_))
    ));
    let mut bad = new.clone();
    bad.region = "Atlantis".into();
    match engine.add_subcloud(&Actor::system(), &bad).await {
        Err(engine::Error::Validation(v)) => assert_eq!(v.field, "region"),
        other => panic!("{other:?}"),
    }
    let mut bad = new.clone();
    bad.lat = 95.0;
    assert!(matches!(
        engine.add_subcloud(&Actor::system(), &bad).await,
        Err(engine::Error::Validation(_))
    ));
    let t = engine.add_subcloud(&Actor::system(), &new).await.unwrap();
    assert!(matches!(
        engine.add_subcloud(&Actor::system(), &new).await,
        Err(engine::Error::Conflict(_))
    ));
    let d = engine.subcloud_detail("grenoble-0001").await.unwrap();
    assert_eq!(d.summary.availability, AvailabilityStatus::Offline);
    assert_eq!(d.endpoints.len(), EndpointType::ALL.len());
    let e = engine
        .enroll_agent(&EnrollRequest {
            protocol: PROTOCOL_VERSION,
            subcloud: t.subcloud,
            enrollment_token: t.token,
        })
        .await
        .unwrap();
    let g = engine.agent_gateway().unwrap().clone();
    let t0 = Millis::now().0;
    for k in 0..2 {
        g.accept_report(
            &e.secret,
            report((t0 + k) as u64),
            Millis(t0 + k * INTERVAL),
        )
        .unwrap();
        engine.health_tick(Millis(t0 + k * INTERVAL)).await.unwrap();
    }
    let d = engine.subcloud_detail("grenoble-0001").await.unwrap();
    assert_eq!(d.summary.availability, AvailabilityStatus::Online);
    assert_eq!(d.summary.sync_status, SyncStatus::InSync);
    assert_eq!(d.summary.software_version, "25.09");
    let audit = engine.recent_audit(20).await.unwrap();
    assert!(audit
        .iter()
        .any(|a| a.entry.action == "subcloud.added" && a.entry.target == "subcloud:grenoble-0001"));
}

/// A site whose agent does not observe its platform is online (its reports arrive) but its
/// alarm state is `unknown`, never `OK`, in the overview and the status digest, until it
/// measures again; what the controller itself knows is wrong still wins.
async fn unmeasured_health_reads_unknown_until_measured(b: Backend) {
    let (_db, engine) = setup(b, 3).await;
    let sites = enroll_all(&engine).await;
    let t0 = Millis::now().0;
    for k in 0..3 {
        all_report(&engine, &sites, t0 + k * INTERVAL, &[]).await;
    }
    let (name, secret) = sites[0].clone();
    let g = engine.agent_gateway().unwrap().clone();
    let status = |engine: Engine, name: String| async move {
        engine.subcloud_detail(&name).await.unwrap().summary
    };
    assert_eq!(
        status(engine.clone(), name.clone()).await.alarm_status,
        AlarmStatus::Ok
    );
    assert_eq!(engine.compute_overview().await.unwrap().alarm_unknown, 0);

    let unmeasured = |seq: i64| {
        let mut r = report(seq as u64);
        r.health = SiteHealth::Unknown;
        for e in &mut r.endpoints {
            e.sync_status = SyncStatus::Unknown;
        }
        r
    };
    let t = t0 + 3 * INTERVAL;
    g.accept_report(&secret, unmeasured(t), Millis(t)).unwrap();
    engine.health_tick(Millis(t)).await.unwrap();
    let s = status(engine.clone(), name.clone()).await;
    assert_eq!(
        (s.availability, s.alarm_status, s.sync_status),
        (
            AvailabilityStatus::Online,
            AlarmStatus::Unknown,
            SyncStatus::Unknown
        )
    );
    let o = engine.compute_overview().await.unwrap();
    assert_eq!((o.alarm_unknown, o.online), (1, 3));
    let digest = engine.status_digest().await.unwrap();
    assert_eq!(digest.health_unknown, 1);
    assert!(!digest.all_clear);

    // An unchanged unmeasured report keeps it unknown (no flip back to OK on a quiet tick).
    let t = t0 + 4 * INTERVAL;
    g.accept_report(&secret, unmeasured(t), Millis(t)).unwrap();
    engine.health_tick(Millis(t)).await.unwrap();
    assert_eq!(
        status(engine.clone(), name.clone()).await.alarm_status,
        AlarmStatus::Unknown
    );

    // Silence: offline, and (managed) the controller's own critical alarm outranks "unknown".
    let t = t0 + 10 * INTERVAL;
    all_report(&engine, &sites, t, &[name.as_str()]).await;
    let s = status(engine.clone(), name.clone()).await;
    let expected = if s.management == ManagementState::Managed {
        AlarmStatus::Critical
    } else {
        AlarmStatus::Unknown
    };
    assert_eq!(
        (s.availability, s.alarm_status),
        (AvailabilityStatus::Offline, expected)
    );

    // Back with measured health: online and OK again.
    for k in 11..14 {
        all_report(&engine, &sites, t0 + k * INTERVAL, &[]).await;
    }
    let s = status(engine.clone(), name.clone()).await;
    assert_eq!(
        (s.availability, s.alarm_status, s.sync_status),
        (
            AvailabilityStatus::Online,
            AlarmStatus::Ok,
            SyncStatus::InSync
        )
    );
    assert_eq!(engine.compute_overview().await.unwrap().alarm_unknown, 0);
}

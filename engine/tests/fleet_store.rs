//! The fleet store, end to end on a real database: the same suite on SQLite and PostgreSQL.

use engine::both_backends;
use engine::events::Event;
use engine::fleet::demo::{self, generate};
use engine::fleet::*;
use engine::health::{AlarmCounts, AlarmSeverity, AlarmStatus};
use engine::store::Backend;
use engine::testing::TestDb;
use engine::Error;

both_backends!(
    migrations_are_idempotent_and_create_default_group,
    seeding_is_idempotent_audited_and_announced,
    resizing_removes_sites_and_their_rows,
    overview_matches_the_generated_fleet,
    filters_match_the_generated_fleet,
    sorting_and_pagination_are_stable,
    detail_has_every_field_and_clear_errors,
    hostile_search_text_is_literal,
    the_map_places_and_classifies_every_site,
    the_status_digest_counts_and_orders_the_problems,
);

async fn migrations_are_idempotent_and_create_default_group(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine
        .store()
        .migrate()
        .await
        .expect("second migrate is a no-op");
    let groups = engine.subcloud_groups().await.unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].id, 1);
    assert_eq!(groups[0].name, "Default");
    assert_eq!(groups[0].update_apply_type, ApplyType::Parallel);
    assert_eq!(groups[0].max_parallel_subclouds, 2);
}

async fn seeding_is_idempotent_audited_and_announced(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let mut events = engine.events().subscribe();
    // The default demo size: every generated combination of alarms must fit the schema.
    let n = demo::DEFAULT_SUBCLOUDS;
    let r = engine.seed_demo(n).await.unwrap();
    assert_eq!(
        (r.subclouds, r.added, r.removed),
        (u64::from(n), u64::from(n), 0)
    );
    match events.try_recv() {
        Ok(Event::FleetSeeded {
            subclouds: 2000,
            added: 2000,
            removed: 0,
            ..
        }) => {}
        other => panic!("expected a FleetSeeded event, got {other:?}"),
    }
    let audit = engine.recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].entry.action, "demo.seed");

    let before = engine.overview().await.unwrap();
    let r = engine.seed_demo(n).await.unwrap();
    assert_eq!((r.subclouds, r.added, r.removed), (u64::from(n), 0, 0));
    assert!(events.try_recv().is_err(), "no change, no event");
    assert_eq!(
        engine.recent_audit(10).await.unwrap().len(),
        1,
        "no change, no audit entry"
    );
    let after = engine.overview().await.unwrap();
    assert_eq!(
        Overview {
            as_of: before.as_of,
            ..after
        },
        before
    );

    // Reopening the same store (a restart) sees the same fleet.
    drop(engine);
    let engine = db.engine().await;
    assert_eq!(engine.overview().await.unwrap().total, u64::from(n));

    for bad in [0, demo::MAX_SUBCLOUDS + 1] {
        match engine.seed_demo(bad).await {
            Err(Error::Validation(e)) => assert_eq!(e.field, "subclouds"),
            other => panic!("{bad}: expected a validation error, got {other:?}"),
        }
    }
    assert_eq!(
        engine.overview().await.unwrap().total,
        u64::from(n),
        "bad input changed nothing"
    );
}

async fn resizing_removes_sites_and_their_rows(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(300).await.unwrap();
    // Read (and cache) the overview before the change: the change must show at once.
    assert_eq!(engine.overview().await.unwrap().total, 300);
    let r = engine.seed_demo(120).await.unwrap();
    assert_eq!(
        engine.overview().await.unwrap().total,
        120,
        "a change invalidates the cached overview"
    );
    assert_eq!((r.subclouds, r.added, r.removed), (120, 0, 180));
    let pool = engine.store().pool();
    let endpoints: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM subcloud_endpoints")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(endpoints, 120 * 7);
    let alarms: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM alarms")
        .fetch_one(pool)
        .await
        .unwrap();
    let expected: usize = generate(120).iter().map(|s| s.alarms.len()).sum();
    assert_eq!(alarms as usize, expected);
    let r = engine.seed_demo(400).await.unwrap();
    assert_eq!((r.subclouds, r.added, r.removed), (400, 280, 0));
}

async fn overview_matches_the_generated_fleet(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(500).await.unwrap();
    let fleet = generate(500);
    let o = engine.overview().await.unwrap();
    let n = |f: &dyn Fn(&demo::DemoSubcloud) -> bool| fleet.iter().filter(|s| f(s)).count() as u64;
    assert_eq!(o.total, 500);
    assert_eq!(
        o.online,
        n(&|s| s.availability == AvailabilityStatus::Online)
    );
    assert_eq!(o.offline, 500 - o.online);
    assert_eq!(o.managed, n(&|s| s.management == ManagementState::Managed));
    assert_eq!(
        o.alarm_critical,
        n(&|s| s.alarm_counts().status() == AlarmStatus::Critical)
    );
    assert_eq!(
        o.alarm_degraded,
        n(&|s| s.alarm_counts().status() == AlarmStatus::Degraded)
    );
    assert_eq!(
        o.out_of_sync,
        n(&|s| s.sync_status() == SyncStatus::OutOfSync)
    );
    assert_eq!(
        o.sync_unknown,
        n(&|s| s.sync_status() == SyncStatus::Unknown)
    );
    assert_eq!(o.deploy_failed, n(&|s| s.deploy_status.is_failure()));
    assert_eq!(
        o.deploy_in_progress,
        n(&|s| s.deploy_status.is_in_progress())
    );
    let all = AlarmCounts::of(
        fleet
            .iter()
            .flat_map(|s| s.alarms.iter().map(|a| &a.severity)),
    );
    assert_eq!(o.active_alarms, all);
    assert!(all.critical > 0 && all.major > 0 && all.warnings > 0);
    assert_eq!(o.controllers.len(), 3);
    assert_eq!(o.controllers.iter().map(|c| c.subclouds).sum::<u64>(), 500);
    for c in &o.controllers {
        let mine = n(&|s| s.controller == c.name);
        assert_eq!(c.subclouds, mine, "{}", c.name);
        assert_eq!(c.online + c.offline, c.subclouds);
        assert!(c.capacity >= c.subclouds);
    }
    assert_eq!(o.software_versions.iter().map(|(_, k)| k).sum::<u64>(), 500);
    assert!(o.software_versions.windows(2).all(|w| w[0].1 >= w[1].1));
}

async fn filters_match_the_generated_fleet(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(600).await.unwrap();
    let fleet = generate(600);
    let count = |q: SubcloudQuery| {
        let engine = engine.clone();
        async move { engine.list_subclouds(&q).await.unwrap().matching }
    };
    let n = |f: &dyn Fn(&demo::DemoSubcloud) -> bool| fleet.iter().filter(|s| f(s)).count() as u64;
    let q = SubcloudQuery::default();
    assert_eq!(count(q.clone()).await, 600);
    assert_eq!(
        count(SubcloudQuery {
            availability: Some(AvailabilityStatus::Offline),
            ..q.clone()
        })
        .await,
        n(&|s| s.availability == AvailabilityStatus::Offline)
    );
    assert_eq!(
        count(SubcloudQuery {
            management: Some(ManagementState::Unmanaged),
            ..q.clone()
        })
        .await,
        n(&|s| s.management == ManagementState::Unmanaged)
    );
    assert_eq!(
        count(SubcloudQuery {
            deploy: Some(DeployStatus::Complete),
            ..q.clone()
        })
        .await,
        n(&|s| s.deploy_status == DeployStatus::Complete)
    );
    for class in DeployClass::ALL {
        let expected = n(&|s| class.contains(s.deploy_status));
        assert!(expected > 0, "{class}");
        assert_eq!(
            count(SubcloudQuery {
                deploy_class: Some(*class),
                ..q.clone()
            })
            .await,
            expected,
            "{class}"
        );
    }
    assert_eq!(
        count(SubcloudQuery {
            sync: Some(SyncStatus::OutOfSync),
            ..q.clone()
        })
        .await,
        n(&|s| s.sync_status() == SyncStatus::OutOfSync)
    );
    assert_eq!(
        count(SubcloudQuery {
            alarm: Some(AlarmStatus::Critical),
            ..q.clone()
        })
        .await,
        n(&|s| s.alarm_counts().status() == AlarmStatus::Critical)
    );
    assert_eq!(
        count(SubcloudQuery {
            group: Some("ran-far-edge".into()),
            ..q.clone()
        })
        .await,
        n(&|s| s.group == "ran-far-edge")
    );
    assert_eq!(
        count(SubcloudQuery {
            peer_group: Some("pg-eu-west".into()),
            ..q.clone()
        })
        .await,
        n(&|s| s.peer_group == Some("pg-eu-west"))
    );
    // Combined filters AND together; search matches name or city, case-insensitively.
    let combined = SubcloudQuery {
        availability: Some(AvailabilityStatus::Online),
        search: Some("LON".into()),
        ..q.clone()
    };
    let expected = n(&|s| {
        s.availability == AvailabilityStatus::Online
            && (s.name.contains("lon") || s.city.name.to_lowercase().contains("lon"))
    });
    assert!(expected > 0);
    assert_eq!(count(combined).await, expected);
    assert_eq!(
        count(SubcloudQuery {
            group: Some("no-such-group".into()),
            ..q
        })
        .await,
        0
    );
}

async fn sorting_and_pagination_are_stable(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(230).await.unwrap();
    let mut names: Vec<String> = generate(230).into_iter().map(|s| s.name).collect();
    names.sort();
    let mut collected = Vec::new();
    for page in 1..=5 {
        let p = engine
            .list_subclouds(&SubcloudQuery {
                page,
                per_page: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(p.matching, 230);
        assert_eq!(p.page_count(), 5);
        collected.extend(p.rows.into_iter().map(|r| r.name));
    }
    assert_eq!(collected, names);

    let worst_first = engine
        .list_subclouds(&SubcloudQuery {
            sort: SortKey::Alarm,
            dir: SortDir::Desc,
            per_page: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    let rank = |s: AlarmStatus| match s {
        AlarmStatus::Critical => 4,
        AlarmStatus::Degraded => 3,
        AlarmStatus::Unknown => 2,
        AlarmStatus::Ok => 1,
        AlarmStatus::Disabled => 0,
    };
    assert!(worst_first.rows.windows(2).all(|w| {
        let (a, b) = (rank(w[0].alarm_status), rank(w[1].alarm_status));
        a > b || (a == b && w[0].name < w[1].name)
    }));
    assert_eq!(worst_first.rows[0].alarm_status, AlarmStatus::Critical);

    let by_city = engine
        .list_subclouds(&SubcloudQuery {
            sort: SortKey::City,
            per_page: 500,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(by_city.rows.windows(2).all(|w| w[0].city <= w[1].city));

    let beyond = engine
        .list_subclouds(&SubcloudQuery {
            page: 99,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(beyond.rows.is_empty());
    assert_eq!(beyond.matching, 230);
}

async fn detail_has_every_field_and_clear_errors(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(200).await.unwrap();
    let fleet = generate(200);
    let s = fleet
        .iter()
        .find(|s| s.alarms.len() >= 2)
        .expect("a site with several alarms");
    let d = engine.subcloud_detail(&s.name).await.unwrap();
    assert_eq!(d.summary.name, s.name);
    assert_eq!(d.summary.availability, s.availability);
    assert_eq!(d.summary.deploy_status, s.deploy_status);
    assert_eq!(d.summary.sync_status, s.sync_status());
    assert_eq!(d.summary.alarms, s.alarm_counts());
    assert_eq!(d.summary.group, s.group);
    assert_eq!(d.summary.controller, s.controller);
    assert_eq!(d.summary.city, s.city.name);
    assert!((d.lat - s.lat).abs() < 1e-9 && (d.lon - s.lon).abs() < 1e-9);
    assert_eq!(d.endpoints.len(), 7);
    for (e, st) in &s.endpoints {
        let got = d.endpoints.iter().find(|x| x.endpoint == *e).unwrap();
        assert_eq!(got.status, *st, "{e}");
    }
    assert_eq!(d.alarms.len(), s.alarms.len());
    assert!(d.alarms.windows(2).all(|w| w[0].severity <= w[1].severity));
    assert!(d.alarms.iter().all(|a| a.cleared_at.is_none()));
    if s.alarms
        .iter()
        .any(|a| a.severity == AlarmSeverity::Critical)
    {
        assert_eq!(d.alarms[0].severity, AlarmSeverity::Critical);
    }

    match engine.subcloud_detail("nowhere-0001").await {
        Err(Error::NotFound {
            what: "subcloud",
            key,
        }) => assert_eq!(key, "nowhere-0001"),
        other => panic!("expected not found, got {other:?}"),
    }
    match engine.subcloud_detail("../../etc/passwd").await {
        Err(Error::Validation(e)) => assert_eq!(e.field, "name"),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

async fn hostile_search_text_is_literal(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(100).await.unwrap();
    for text in [
        "'; DROP TABLE subclouds; --",
        "%",
        "_",
        "\\",
        "\" OR 1=1 --",
        "<script>",
        "\u{202e}x",
        "😀",
    ] {
        let p = engine
            .list_subclouds(&SubcloudQuery {
                search: Some(text.into()),
                ..Default::default()
            })
            .await
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(p.matching, 0, "{text:?} matched as a pattern");
    }
    assert_eq!(engine.overview().await.unwrap().total, 100);
    let bad = SubcloudQuery {
        per_page: 0,
        ..Default::default()
    };
    assert!(matches!(
        engine.list_subclouds(&bad).await,
        Err(Error::Validation(_))
    ));
}

/// The fleet map's read model against the generated fleet: every site counted once under its
/// worst condition, filters and the viewport narrow it, and a cell lists exactly the sites
/// drawn in it.
async fn the_map_places_and_classifies_every_site(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(600).await.unwrap();
    let fleet = generate(600);
    let status_of = |s: &demo::DemoSubcloud| {
        let c = s.alarm_counts();
        MapStatus::of(
            s.management == ManagementState::Managed,
            s.availability == AvailabilityStatus::Online,
            c.critical as i64,
            c.major as i64,
            (c.minor + c.warnings) as i64,
            // The demo fleet's seeded sites all measure their health.
            true,
        )
    };
    let world = engine.fleet_map(&MapQuery::default()).await.unwrap();
    assert_eq!((world.matching, world.in_view), (600, 600));
    for (status, n) in &world.totals {
        let expected = fleet.iter().filter(|s| status_of(s) == *status).count() as u64;
        assert_eq!(*n, expected, "{status}");
    }
    let drawn: u64 = world.layers.iter().map(|l| l.count).sum();
    assert_eq!(drawn, 600);
    let in_cells: u64 = world.cells.iter().map(|c| c.sites).sum();
    assert_eq!(in_cells, 600, "every site is in one cell of the world view");
    // Worst first, drawn last (on top).
    assert!(world
        .totals
        .windows(2)
        .all(|w| w[0].0.rank() > w[1].0.rank()));
    assert!(world
        .layers
        .windows(2)
        .all(|w| w[0].status.rank() < w[1].status.rank()));

    // A status and a peer-group filter.
    let offline = engine
        .fleet_map(&MapQuery {
            status: Some(MapStatus::Offline),
            ..MapQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        offline.matching,
        fleet
            .iter()
            .filter(|s| status_of(s) == MapStatus::Offline)
            .count() as u64
    );
    assert!(offline
        .layers
        .iter()
        .all(|l| l.status == MapStatus::Offline));
    let pg = fleet.iter().find_map(|s| s.peer_group).unwrap();
    let by_group = engine
        .fleet_map(&MapQuery {
            peer_group: Some(pg.to_string()),
            ..MapQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_group.matching,
        fleet.iter().filter(|s| s.peer_group == Some(pg)).count() as u64
    );

    // Zoomed on Europe: fewer in view, and the busiest cell lists exactly its sites.
    let europe = MapQuery::from_params([("region", "europe")]).unwrap();
    let view = engine.fleet_map(&europe).await.unwrap();
    assert!(view.in_view > 0 && view.in_view < 600, "{}", view.in_view);
    let busiest = view.cells.iter().max_by_key(|c| c.sites).unwrap().clone();
    let listed = engine
        .fleet_map(&MapQuery {
            cell: Some((busiest.col, busiest.row)),
            ..europe.clone()
        })
        .await
        .unwrap()
        .selected
        .unwrap();
    assert_eq!(listed.len() as u64, busiest.sites);
    let (vx, vy, _, _) = europe.view_box();
    let size = europe.cell_size();
    for site in &listed {
        let s = fleet.iter().find(|f| f.name == site.name).unwrap();
        let (x, y) = engine::fleet::map::project(s.lon, s.lat);
        assert_eq!(
            ((x - vx) / size).floor() as u32,
            busiest.col,
            "{}",
            site.name
        );
        assert_eq!(
            ((y - vy) / size).floor() as u32,
            busiest.row,
            "{}",
            site.name
        );
        assert_eq!(site.status, status_of(s));
    }
    // Worst first.
    assert!(listed
        .windows(2)
        .all(|w| w[0].status.rank() >= w[1].status.rank()));
}

/// The status page's digest against the generated fleet: counts equal the fleet's, problems
/// come worst first and oldest first within a severity, each naming where it is.
async fn the_status_digest_counts_and_orders_the_problems(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(600).await.unwrap();
    let fleet = generate(600);
    let d = engine.status_digest().await.unwrap();
    assert_eq!(d.sites, 600);
    let offline = fleet
        .iter()
        .filter(|s| {
            s.management == ManagementState::Managed
                && s.availability == AvailabilityStatus::Offline
        })
        .count() as u64;
    assert_eq!(d.offline, offline);
    let (critical, major) = fleet.iter().fold((0u64, 0u64), |(c, m), s| {
        let a = s.alarm_counts();
        (c + u64::from(a.critical), m + u64::from(a.major))
    });
    assert_eq!((d.critical_alarms, d.major_alarms), (critical, major));
    assert_eq!(d.all_clear, offline + critical + major == 0);
    assert!(!d.problems.is_empty() && d.problems.len() <= engine::health::MAX_PROBLEMS);
    for w in d.problems.windows(2) {
        assert!(
            w[0].severity < w[1].severity
                || (w[0].severity == w[1].severity && w[0].since.0 <= w[1].since.0),
            "{:?} before {:?}",
            w[0],
            w[1]
        );
    }
    for p in &d.problems {
        assert!(
            p.href.starts_with('/') && !p.place.is_empty() && !p.what.is_empty(),
            "{p:?}"
        );
        assert!(matches!(
            p.severity,
            AlarmSeverity::Critical | AlarmSeverity::Major
        ));
    }
}

//! The controller over real HTTP: the server is started on port 0 against a real store
//! (SQLite file and PostgreSQL database, the same suite on each) and queried with reqwest.

use app::components::group_digits as grouped;
use engine::both_backends;
use engine::fleet::{SubcloudPage, SubcloudQuery};
use engine::store::Backend;
use engine::testing::TestDb;
use engine::Engine;
use reqwest::StatusCode;
use server::config::{Config, LogFormat};
use server::Application;

struct TestApp {
    base: String,
    engine: Engine,
    client: reqwest::Client,
    /// Session cookie of the demo admin.
    admin: String,
    _db: TestDb,
}

impl TestApp {
    async fn spawn(backend: Backend, subclouds: u32) -> Self {
        Self::spawn_with(backend, subclouds, Default::default()).await
    }

    async fn spawn_with(
        backend: Backend,
        subclouds: u32,
        session: engine::auth::SessionPolicy,
    ) -> Self {
        let db = TestDb::new(backend).await;
        let engine = db.engine().await;
        engine.seed_demo(subclouds).await.expect("seed");
        engine.ensure_demo_users().await.expect("demo users");
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            site_root: std::env::temp_dir(),
            log_format: LogFormat::Text,
            public_url: None,
            session,
            health: Default::default(),
            geo: None,
            demo: false,
        };
        let app = Application::build(&config, engine.clone())
            .await
            .expect("build app");
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut app = Self {
            base,
            engine,
            client,
            admin: String::new(),
            _db: db,
        };
        app.admin = app.login("admin", "admin-demo-password").await;
        app
    }

    /// Signs in through the login form and returns the session cookie.
    async fn login(&self, user: &str, password: &str) -> String {
        let res = self
            .client
            .post(format!("{}/login", self.base))
            .header("origin", &self.base)
            .form(&[("username", user), ("password", password), ("next", "/")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        let cookie = res.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("cookie", &self.admin)
            .send()
            .await
            .expect("request")
    }

    async fn html(&self, path: &str, status: StatusCode) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), status, "{path}");
        let ct = res.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        res.text().await.unwrap()
    }
}

both_backends!(
    overview_page_shows_engine_figures,
    list_page_filters_server_side,
    detail_page_and_errors,
    rest_api_matches_the_engine,
    rest_api_refuses_bad_input_clearly,
    server_functions_answer_json,
    event_stream_resyncs_a_client_that_fell_behind,
    background_refreshes_do_not_keep_a_session_alive,
    event_stream_ends_when_the_session_does,
    rest_writes_follow_roles_and_refuse_bad_input,
    rest_strategies_follow_roles_and_refuse_bad_input,
);

/// An API token of a demo user.
async fn token_of(app: &TestApp, user: &str) -> String {
    let u = app
        .engine
        .list_users(&engine::auth::Actor::system())
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.name == user)
        .unwrap();
    app.engine
        .create_api_token(&engine::auth::Actor::user(&u, None), "test")
        .await
        .unwrap()
        .secret
}

async fn rest_writes_follow_roles_and_refuse_bad_input(b: Backend) {
    use serde_json::{json, Value};
    let app = TestApp::spawn(b, 20).await;
    let (admin, operator, viewer) = (
        token_of(&app, "admin").await,
        token_of(&app, "operator").await,
        token_of(&app, "viewer").await,
    );
    let send = |method: reqwest::Method, path: &str, token: &str, body: Value| {
        app.client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    let new = json!({"name": "grenoble-0001", "city": "Grenoble", "country": "France",
        "region": "Europe", "lat": 45.19, "lon": 5.72, "controller": "sc-amsterdam"});
    // Viewers may not write at all; operators may not add subclouds or mint credentials.
    let r = send(
        reqwest::Method::POST,
        "/api/v1/subclouds",
        &viewer,
        new.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        reqwest::Method::POST,
        "/api/v1/subclouds",
        &operator,
        new.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "forbidden"
    );
    let r = send(
        reqwest::Method::POST,
        "/api/v1/enrollments",
        &operator,
        json!({"all": true}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Bad input: a clear 400 naming the problem; nothing added.
    for (body, field) in [
        (json!({"name": "x"}), "body"),
        (
            json!({"name": "bad name!", "city": "A", "region": "Europe", "lat": 1.0, "lon": 1.0, "controller": "sc-amsterdam"}),
            "name",
        ),
        (
            json!({"name": "ok-1", "city": "A", "region": "Atlantis", "lat": 1.0, "lon": 1.0, "controller": "sc-amsterdam"}),
            "region",
        ),
        (
            json!({"name": "ok-1", "city": "A", "region": "Europe", "lat": 91.0, "lon": 1.0, "controller": "sc-amsterdam"}),
            "lat",
        ),
    ] {
        let r = send(
            reqwest::Method::POST,
            "/api/v1/subclouds",
            &admin,
            body.clone(),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    assert!(app.engine.subcloud_detail("ok-1").await.is_err());
    // The admin adds one: 201 with a one-time enrollment token; again is a conflict.
    let r = send(
        reqwest::Method::POST,
        "/api/v1/subclouds",
        &admin,
        new.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let t: Value = r.json().await.unwrap();
    assert!(t["token"].as_str().unwrap().starts_with("mme_"));
    assert_eq!(t["subcloud"], "grenoble-0001");
    let r = send(
        reqwest::Method::POST,
        "/api/v1/subclouds",
        &admin,
        new.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Acknowledging: operators may; the alarm then says who.
    let active = app
        .engine
        .alarm_page(&engine::health::AlarmQuery::default())
        .await
        .unwrap();
    let id = active
        .rows
        .iter()
        .find(|a| !a.acknowledged)
        .expect("an unacknowledged alarm")
        .id;
    let r = send(
        reqwest::Method::POST,
        "/api/v1/alarms/acknowledge",
        &viewer,
        json!({"ids": [id]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        reqwest::Method::POST,
        "/api/v1/alarms/acknowledge",
        &operator,
        json!({"ids": "all"}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = send(
        reqwest::Method::POST,
        "/api/v1/alarms/acknowledge",
        &operator,
        json!({"ids": [id]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["acknowledged"], 1);
    let r = send(
        reqwest::Method::POST,
        "/api/v1/alarms/acknowledge",
        &operator,
        json!({"ids": [id]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let list: Value = app
        .client
        .get(format!("{}/api/v1/alarms/list?ack=yes&state=all", app.base))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list["rows"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["id"] == id && a["acknowledged_by"] == "operator"));
    // Commands: operators may queue; an unknown action is refused.
    let r = send(
        reqwest::Method::POST,
        "/api/v1/subclouds/grenoble-0001/commands",
        &operator,
        json!({"action": {"kind": "sync_endpoints"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = send(
        reqwest::Method::POST,
        "/api/v1/subclouds/grenoble-0001/commands",
        &operator,
        json!({"action": {"kind": "format_disk"}}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Revoking needs an admin, and a credential to revoke.
    let r = send(
        reqwest::Method::DELETE,
        "/api/v1/subclouds/grenoble-0001/agent",
        &operator,
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = send(
        reqwest::Method::DELETE,
        "/api/v1/subclouds/grenoble-0001/agent",
        &admin,
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = send(
        reqwest::Method::DELETE,
        "/api/v1/subclouds/nowhere-0001/agent",
        &admin,
        json!({}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let audit = app.engine.recent_audit(20).await.unwrap();
    for action in [
        "subcloud.added",
        "alarm.acknowledged",
        "agent.command_queued",
        "agent.revoked",
    ] {
        assert!(
            audit.iter().any(|a| a.entry.action == action),
            "{action} audited"
        );
    }
}

async fn event_stream_ends_when_the_session_does(b: Backend) {
    use std::time::Duration;
    let policy = engine::auth::SessionPolicy {
        idle: Duration::from_millis(2_000),
        absolute: Duration::from_secs(3_600),
    };
    let app = TestApp::spawn_with(b, 5, policy).await;
    let user = app.login("viewer", "viewer-demo-password").await;
    let mut res = app
        .client
        .get(format!("{}/api/v1/events", app.base))
        .header("cookie", &user)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert!(read_until(&mut res, "snapshot").await.contains("snapshot"));
    let out = app
        .client
        .post(format!("{}/logout", app.base))
        .header("cookie", &user)
        .header("origin", &app.base)
        .send()
        .await
        .unwrap();
    assert!(out.status().is_redirection(), "{}", out.status());
    // The stream closes within a recheck period (idle / 2 = 1 s) plus an event or two; the
    // deadline leaves a busy machine ample room.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut ended = false;
    while std::time::Instant::now() < deadline {
        app.engine
            .events()
            .publish(engine::events::Event::UserChanged { name: "x".into() });
        match tokio::time::timeout(Duration::from_millis(500), res.chunk()).await {
            Ok(Ok(None)) | Ok(Err(_)) => {
                ended = true;
                break;
            }
            _ => {}
        }
    }
    assert!(ended, "the event stream outlived the session");
}

async fn background_refreshes_do_not_keep_a_session_alive(b: Backend) {
    use std::time::Duration;
    // An explicit clock: a one-minute idle limit, and idle time passes by moving a user's
    // sessions' last activity back in the store. Real time only adds to it, so the calls that
    // must still be inside the limit have 10 s of margin, and those that must be past it
    // cannot be early.
    let policy = engine::auth::SessionPolicy {
        idle: Duration::from_secs(60),
        absolute: Duration::from_secs(3_600),
    };
    let app = TestApp::spawn_with(b, 5, policy).await;
    let idle = |user: &'static str, ms: i64| {
        let pool = app.engine.store().pool().clone();
        async move {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = last_seen_at - $1 \
                 WHERE user_id = (SELECT id FROM users WHERE name = $2)",
            )
            .bind(ms)
            .bind(user)
            .execute(&pool)
            .await
            .unwrap();
        }
    };
    // User activity (a plain call) keeps the session: three calls each after 50 s idle, 150 s
    // in all.
    for _ in 0..3 {
        idle("admin", 50_000).await;
        assert_eq!(app.get("/ui/fleet/overview").await.status(), StatusCode::OK);
    }
    // Live refreshes alone do not: answered while the session lasts, then it expires.
    let user = app.login("viewer", "viewer-demo-password").await;
    let call = |path: &'static str| {
        app.client
            .get(format!("{}{path}", app.base))
            .header("cookie", &user)
            .send()
    };
    idle("viewer", 50_000).await;
    assert_eq!(
        call("/ui/fleet/overview?background=true")
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    idle("viewer", 11_000).await;
    let res = call("/ui/fleet/overview?background=true").await.unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "61 s without user activity ends a 60 s idle session"
    );
    // Neither that refresh nor the event stream reconnecting uses up the dead cookie: the
    // user's next page load is the one told that the session expired.
    assert!(res.headers().get("set-cookie").is_none(), "{res:?}");
    let res = call("/api/v1/events").await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res.headers().get("set-cookie").is_none(), "{res:?}");
    let res = call("/subclouds").await.unwrap();
    assert!(res.status().is_redirection(), "{}", res.status());
    assert_eq!(
        res.headers()["location"],
        "/login?next=/subclouds&expired=1"
    );
    let cleared = res.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cleared.starts_with("murmur_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
}

/// Reads the event stream until `needle` appears (or 10 s pass); returns what was read.
async fn read_until(res: &mut reqwest::Response, needle: &str) -> String {
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains(needle) && std::time::Instant::now() < deadline {
        match tokio::time::timeout(std::time::Duration::from_secs(2), res.chunk()).await {
            Ok(Ok(Some(c))) => seen.push_str(&String::from_utf8_lossy(&c)),
            Ok(_) => break,
            Err(_) => {}
        }
    }
    seen
}

async fn event_stream_resyncs_a_client_that_fell_behind(b: Backend) {
    use engine::events::{Event, EventBus};
    let app = TestApp::spawn(b, 10).await;
    let mut res = app.get("/api/v1/events").await;
    assert_eq!(res.status(), StatusCode::OK);
    let first = read_until(&mut res, "\n\n").await;
    assert!(first.starts_with("event: snapshot"), "{first}");
    // One event: a coalesced `change` naming it.
    app.engine.events().publish(Event::UserChanged {
        name: "alice".into(),
    });
    let change = read_until(&mut res, "alice").await;
    assert!(
        change.contains("event: change") && change.contains("user_changed"),
        "{change}"
    );
    // A burst larger than the bus holds while the client waits: it gets a fresh snapshot
    // instead of a partial history.
    for i in 0..(EventBus::CAPACITY + 100) {
        app.engine.events().publish(Event::UserChanged {
            name: format!("u{i}"),
        });
    }
    let generation = app.engine.events().generation();
    let resync = read_until(&mut res, &format!("\"generation\":{generation}")).await;
    assert!(resync.contains("event: snapshot"), "{resync}");
}

async fn overview_page_shows_engine_figures(b: Backend) {
    let app = TestApp::spawn(b, 400).await;
    let o = app.engine.overview().await.unwrap();
    let html = app.html("/", StatusCode::OK).await;
    for (label, value) in [
        ("Subclouds", o.total),
        ("Online", o.online),
        ("Offline", o.offline),
        ("Critical alarm", o.alarm_critical),
        ("Out of sync", o.out_of_sync),
    ] {
        let needle = format!("data-kpi=\"{label}\" class=\"kpi");
        let at = html
            .find(&needle)
            .unwrap_or_else(|| panic!("no KPI {label}"));
        let value_html = format!("<span class=\"kpi-value\">{}</span>", grouped(value));
        assert!(
            html[at..].starts_with(&needle) && html[at..at + 400].contains(&value_html),
            "{label} should be {value}"
        );
    }
    for c in &o.controllers {
        assert!(html.contains(&format!("data-controller=\"{}\"", c.name)));
    }
    assert!(
        html.contains("/pkg/murmur.js"),
        "hydration script is linked"
    );
}

async fn list_page_filters_server_side(b: Backend) {
    let app = TestApp::spawn(b, 400).await;
    let q = SubcloudQuery::from_params([
        ("availability", "offline"),
        ("sort", "alarm"),
        ("dir", "desc"),
    ])
    .unwrap();
    let expected = app.engine.list_subclouds(&q).await.unwrap();
    let html = app
        .html(
            "/subclouds?availability=offline&sort=alarm&dir=desc",
            StatusCode::OK,
        )
        .await;
    let rows: Vec<&str> = html
        .split("<tr data-subcloud=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    let names: Vec<&str> = expected.rows.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rows, names);
    assert!(html.contains(&format!("of {} subclouds", grouped(expected.matching))));
    // The filter form reflects the URL, so a reload or a shared link shows the same view.
    assert!(html.contains("<option value=\"offline\" selected"));
}

async fn detail_page_and_errors(b: Backend) {
    let app = TestApp::spawn(b, 200).await;
    let name = app
        .engine
        .list_subclouds(&SubcloudQuery::default())
        .await
        .unwrap()
        .rows[0]
        .name
        .clone();
    let html = app
        .html(&format!("/subclouds/{name}"), StatusCode::OK)
        .await;
    assert!(html.contains(&format!("<h1>{name}</h1>")));
    assert_eq!(html.matches("<tr data-endpoint=").count(), 7);

    let html = app
        .html("/subclouds/nowhere-0001", StatusCode::NOT_FOUND)
        .await;
    assert!(html.contains("role=\"alert\"") && html.contains("not found"));
    let html = app
        .html("/subclouds?availability=sideways", StatusCode::BAD_REQUEST)
        .await;
    assert!(html.contains("not a valid availability"));
    app.html("/no/such/page", StatusCode::NOT_FOUND).await;
}

async fn rest_api_matches_the_engine(b: Backend) {
    let app = TestApp::spawn(b, 300).await;
    let res = app
        .get("/api/v1/subclouds?availability=offline&per_page=10&page=2")
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: SubcloudPage = res.json().await.unwrap();
    let q = SubcloudQuery::from_params([
        ("availability", "offline"),
        ("per_page", "10"),
        ("page", "2"),
    ])
    .unwrap();
    assert_eq!(page, app.engine.list_subclouds(&q).await.unwrap());

    let name = &page.rows[0].name;
    let res = app.get(&format!("/api/v1/subclouds/{name}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    let d: serde_json::Value = res.json().await.unwrap();
    assert_eq!(d["summary"]["name"], name.as_str());
    assert_eq!(d["endpoints"].as_array().unwrap().len(), 7);

    let o: serde_json::Value = app.get("/api/v1/overview").await.json().await.unwrap();
    assert_eq!(o["total"], 300);
    let health: serde_json::Value = app.get("/healthz").await.json().await.unwrap();
    assert_eq!(health["store"], b.as_str());
    let pgs: serde_json::Value = app.get("/api/v1/peer-groups").await.json().await.unwrap();
    assert_eq!(pgs.as_array().unwrap().len(), 9);
    let groups: serde_json::Value = app
        .get("/api/v1/subcloud-groups")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(groups[0]["name"], "Default");
    let summary: serde_json::Value = app.get("/api/v1/alarms").await.json().await.unwrap();
    let rows = summary["alarm_summary"].as_array().unwrap();
    assert_eq!(rows.len(), 300);
    let critical = rows
        .iter()
        .filter(|r| r["cloud_status"] == "critical")
        .count() as u64;
    assert_eq!(
        critical,
        app.engine.overview().await.unwrap().alarm_critical
    );
    assert!(
        rows.iter()
            .all(|r| (r["critical_alarms"].as_u64().unwrap() > 0)
                == (r["cloud_status"] == "critical"))
    );
    let ctrls: serde_json::Value = app.get("/api/v1/controllers").await.json().await.unwrap();
    assert_eq!(ctrls.as_array().unwrap().len(), 3);
}

async fn rest_api_refuses_bad_input_clearly(b: Backend) {
    let app = TestApp::spawn(b, 100).await;
    let before = app.engine.overview().await.unwrap();
    for (path, status, field) in [
        (
            "/api/v1/subclouds?availability=sideways",
            400,
            Some("availability"),
        ),
        ("/api/v1/subclouds?page=0", 400, Some("page")),
        ("/api/v1/subclouds?per_page=100000", 400, Some("per_page")),
        (
            "/api/v1/subclouds?sort=name%3B%20DROP%20TABLE%20subclouds",
            400,
            Some("sort"),
        ),
        ("/api/v1/subclouds?page=%FF", 400, Some("page")),
        (
            "/api/v1/subclouds/..%2F..%2Fetc%2Fpasswd",
            400,
            Some("name"),
        ),
        ("/api/v1/subclouds/%3Cscript%3E", 400, Some("name")),
        ("/api/v1/subclouds/nowhere-0001", 404, None),
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status().as_u16(), status, "{path}");
        let body: serde_json::Value = res
            .json()
            .await
            .unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{path}: {body}"
        );
        if let Some(f) = field {
            assert_eq!(body["error"]["field"], f, "{path}: {body}");
        }
    }
    // Injection-shaped and invalid UTF-8 search text is just text (decoded lossily).
    for q in ["%27%20OR%201%3D1%20--", "%FF%FE", "%25%25", "a%00b"] {
        let res = app.get(&format!("/api/v1/subclouds?q={q}")).await;
        let status = res.status();
        let body = res.text().await.unwrap();
        if q == "a%00b" {
            // Control characters are refused by validation.
            assert_eq!(status, StatusCode::BAD_REQUEST, "{q}: {body}");
            continue;
        }
        assert_eq!(status, StatusCode::OK, "{q}: {body}");
        let page: SubcloudPage = serde_json::from_str(&body).unwrap();
        assert_eq!(page.matching, 0, "{q}");
    }
    // Oversized bodies are refused before anything reads them.
    let res = app
        .client
        .post(format!("{}/ui/fleet/overview", app.base))
        .header("cookie", &app.admin)
        .header("origin", &app.base)
        // Just over the 64 KiB limit: small enough to be written whole before the refusal.
        .body(vec![b'x'; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let after = app.engine.overview().await.unwrap();
    assert_eq!(
        engine::fleet::Overview {
            as_of: before.as_of,
            ..after
        },
        before
    );
}

async fn server_functions_answer_json(b: Backend) {
    let app = TestApp::spawn(b, 150).await;
    let res = app.get("/ui/fleet/overview").await;
    assert_eq!(res.status(), StatusCode::OK);
    let o: serde_json::Value = res.json().await.unwrap();
    assert_eq!(o["total"], 150);
    let res = app.get("/ui/fleet/subcloud?name=nowhere-0001").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app.get("/ui/fleet/subcloud?name=..%2Fx").await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
}

/// Strategies over REST: reads and previews for everyone, writes for operators, every refusal a
/// JSON error naming the problem and changing nothing, the state machine's refusals as 409.
async fn rest_strategies_follow_roles_and_refuse_bad_input(b: Backend) {
    use serde_json::{json, Value};
    let app = TestApp::spawn(b, 20).await;
    let (operator, viewer) = (
        token_of(&app, "operator").await,
        token_of(&app, "viewer").await,
    );
    let call = |method: reqwest::Method, path: &str, token: &str, body: Option<Value>| {
        let r = app
            .client
            .request(method, format!("{}{path}", app.base))
            .bearer_auth(token);
        match body {
            Some(b) => r.json(&b).send(),
            None => r.send(),
        }
    };
    let strategies = || async {
        let v: Value = call(reqwest::Method::GET, "/api/v1/strategies", &viewer, None)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["matching"].as_u64().unwrap()
    };
    let new = json!({"type": "sw-deploy", "release": "26.03", "target": {"kind": "all"},
        "max_parallel": 5, "canary": {"size": {"sites": 2}, "soak_secs": 0, "approval": "operator"}});
    // A viewer previews (nothing saved) but may not create.
    let r = call(
        reqwest::Method::POST,
        "/api/v1/strategies/preview",
        &viewer,
        Some(new.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["total_sites"], 20);
    assert_eq!(p["waves"][0]["name"], "canary");
    assert_eq!(p["waves"][0]["sites"], 2);
    let r = call(
        reqwest::Method::POST,
        "/api/v1/strategies",
        &viewer,
        Some(new.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(strategies().await, 0);
    // Bad input: a 400 naming the field; nothing created.
    for (body, field) in [
        (json!({"type": "sw-deploy"}), "body"),
        (
            json!({"type": "teleport", "target": {"kind": "all"}}),
            "body",
        ),
        (
            json!({"type": "sw-deploy", "release": "99.99", "target": {"kind": "all"}}),
            "release",
        ),
        (
            json!({"type": "sw-deploy", "release": "26.03", "target": {"kind": "all"}, "max_parallel": 0}),
            "max_parallel",
        ),
        (
            json!({"type": "prestage", "release": "26.03", "target": {"kind": "all"}, "max_parallel": 251}),
            "max_parallel",
        ),
        (
            json!({"type": "sw-deploy", "release": "26.03", "target": {"kind": "group", "name": "nowhere"}}),
            "target_name",
        ),
        (
            json!({"type": "sw-deploy", "release": "26.03", "target": {"kind": "filter", "query": "q=no-such-site"}}),
            "target",
        ),
    ] {
        let r = call(
            reqwest::Method::POST,
            "/api/v1/strategies",
            &operator,
            Some(body.clone()),
        )
        .await
        .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["field"], field, "{body}: {v}");
    }
    assert_eq!(strategies().await, 0);
    // The operator creates it; a second of the same type conflicts.
    let r = call(
        reqwest::Method::POST,
        "/api/v1/strategies",
        &operator,
        Some(new.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let r = call(
        reqwest::Method::POST,
        "/api/v1/strategies",
        &operator,
        Some(new.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Actions: by role, by state, by name.
    let act = |token: &str, action: &str| {
        call(
            reqwest::Method::POST,
            &format!("/api/v1/strategies/{id}/actions"),
            token,
            Some(json!({ "action": action })),
        )
    };
    assert_eq!(
        act(&viewer, "apply").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        act(&operator, "resume").await.unwrap().status(),
        StatusCode::CONFLICT
    );
    let r = act(&operator, "launch").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["field"], "action");
    let r = act(&operator, "apply").await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "applying");
    // Reads: the detail, the step table and its filter; bad ids and queries are 400/404.
    let d: Value = call(
        reqwest::Method::GET,
        &format!("/api/v1/strategies/{id}"),
        &viewer,
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(d["summary"]["total"], 20);
    assert_eq!(d["waves"][0]["name"], "canary");
    assert!(d["actions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "pause"));
    let steps: Value = call(
        reqwest::Method::GET,
        &format!("/api/v1/strategies/{id}/steps?per_page=7&page=2"),
        &viewer,
        None,
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        (
            steps["matching"].as_u64(),
            steps["rows"].as_array().unwrap().len()
        ),
        (Some(20), 7)
    );
    for (path, status, field) in [
        (
            format!("/api/v1/strategies/{id}/steps?state=exploded"),
            StatusCode::BAD_REQUEST,
            Some("state"),
        ),
        (
            format!("/api/v1/strategies/{id}/steps?per_page=0"),
            StatusCode::BAD_REQUEST,
            Some("per_page"),
        ),
        (
            "/api/v1/strategies/abc".to_string(),
            StatusCode::BAD_REQUEST,
            Some("id"),
        ),
        (
            "/api/v1/strategies/999".to_string(),
            StatusCode::NOT_FOUND,
            None,
        ),
        (
            "/api/v1/strategies/999/steps".to_string(),
            StatusCode::NOT_FOUND,
            None,
        ),
    ] {
        let r = call(reqwest::Method::GET, &path, &viewer, None)
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{path}");
        if let Some(f) = field {
            assert_eq!(
                r.json::<Value>().await.unwrap()["error"]["field"],
                f,
                "{path}"
            );
        }
    }
    let r = act(&operator, "abort").await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "abort requested");
    let releases: Value = call(reqwest::Method::GET, "/api/v1/releases", &viewer, None)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(releases
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["version"] == "26.03"));
    let audit = app.engine.recent_audit(20).await.unwrap();
    for action in ["strategy.created", "strategy.apply", "strategy.abort"] {
        assert!(audit.iter().any(|a| a.entry.action == action), "{action}");
    }
}

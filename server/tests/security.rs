//! Security of the controller over real HTTP: the server is started on port 0 against a real
//! store (SQLite file and PostgreSQL database) and attacked with reqwest and raw TCP.
//!
//! - A route crawler walks ONE table of every page, REST route, server function and form post
//!   as anonymous, with a garbage cookie, as viewer, operator and admin; a second test proves
//!   the table covers every server function Leptos registered and every page route.
//! - Cross-site posts (Origin, Sec-Fetch-Site) are refused; API tokens need no Origin.
//! - Malformed, oversized and injection-shaped input is refused with a 4xx and a message, the
//!   store stays unchanged and the server healthy.
//! - Security headers, cookies, HSTS, API tokens, sessions and redirects.
//!
//! Every test runs in the normal suite; none is ignored.

use std::time::Duration;

use engine::audit::AuditQuery;
use engine::auth::{Actor, ApiToken, Role, User};
use engine::both_backends;
use engine::fleet::{Overview, SubcloudQuery};
use engine::health::AlarmQuery;
use engine::store::Backend;
use engine::testing::TestDb;
use engine::time::Millis;
use engine::Engine;
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use server::config::{Config, LogFormat};
use server::Application;

const ADMIN_PASSWORD: &str = "admin-demo-password";
const OPERATOR_PASSWORD: &str = "operator-demo-password";
const VIEWER_PASSWORD: &str = "viewer-demo-password";
/// A password every rule accepts.
const GOOD_PASSWORD: &str = "correct horse battery staple";
/// The strategy of the orchestration routes: `TestApp::spawn` creates it (firmware over every
/// subcloud, never applied) first in its fresh store, so this is its id.
const STRATEGY: i64 = 1;
/// The user the admin crawl creates (and the others try to).
const CRAWLED_USER: &str = "crawler-made";
const BACKENDS: [Backend; 2] = [Backend::Sqlite, Backend::Postgres];

// ---------------------------------------------------------------------------------------------
// The test application
// ---------------------------------------------------------------------------------------------

struct TestApp {
    base: String,
    /// The origin browsers use (what same-site posts send as `Origin`).
    origin: String,
    engine: Engine,
    client: reqwest::Client,
    /// Session cookies (`murmur_session=...`) of the demo users.
    admin: String,
    operator: String,
    viewer: String,
    /// A real subcloud name.
    subcloud: String,
    /// An active, unacknowledged alarm (its store id), for the acknowledge route.
    alarm: i64,
    _db: TestDb,
}

/// One HTTP answer, read completely.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }

    /// The `Set-Cookie` values for the session cookie.
    fn session_cookies(&self) -> Vec<String> {
        self.headers
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.starts_with("murmur_session="))
            .map(str::to_string)
            .collect()
    }
}

/// Geo-redundancy as sc-amsterdam (demo mode), with peers on closed ports: they never
/// answer, so every geo route has something to do. pg-eu-west (home sc-amsterdam) is set as
/// taken over by sc-dallas, so a failback has somewhere to go.
async fn start_geo(engine: &Engine, base: &str) {
    let closed = |n: u16| format!("http://127.0.0.1:{n}");
    engine
        .start_agent_gateway(engine::agents::IntakePolicy {
            this_controller: engine::agents::wire::ControllerRef {
                name: "sc-amsterdam".into(),
                url: base.to_string(),
            },
            ..Default::default()
        })
        .await
        .expect("gateway");
    let peers = ["sc-dallas", "sc-singapore"]
        .iter()
        .enumerate()
        .map(|(k, n)| engine::georedundancy::PeerConfig {
            name: n.to_string(),
            url: closed(9 + k as u16),
            secret: "security-test-peer-secret".into(),
        })
        .collect();
    let config = engine::georedundancy::GeoConfig {
        this: "sc-amsterdam".into(),
        url: base.to_string(),
        capacity: 100,
        reserved_capacity: 10,
        heartbeat: engine::georedundancy::HeartbeatSettings::default(),
        peers,
        quorum_percent: 50,
        evidence_window_ms: 30_000,
        resync_ms: 10_000,
        failback_hold_down_s: 0,
        demo: true,
    };
    let link = server::peers::HttpPeerLink::new("sc-amsterdam", Duration::from_secs(1)).unwrap();
    sqlx::query(
        "UPDATE peer_groups SET leader_id = (SELECT id FROM system_controllers WHERE name = 'sc-dallas') \
         WHERE name = 'pg-eu-west'",
    )
    .execute(engine.store().pool())
    .await
    .unwrap();
    engine.start_geo(config, link).await.expect("geo");
}

impl TestApp {
    async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, None).await
    }

    async fn spawn_with(backend: Backend, public_url: Option<&str>) -> Self {
        let db = TestDb::new(backend).await;
        let engine = db.engine().await;
        engine.seed_demo(30).await.expect("seed");
        engine.ensure_demo_users().await.expect("demo users");
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: db.url.clone(),
            site_root: std::env::temp_dir(),
            log_format: LogFormat::Text,
            public_url: public_url.map(str::to_string),
            session: Default::default(),
            health: Default::default(),
            geo: None,
            demo: false,
        };
        let app = Application::build(&config, engine.clone())
            .await
            .expect("build app");
        let base = format!("http://{}", app.local_addr());
        start_geo(&engine, &base).await;
        let origin = app.public_origin().to_string();
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let subcloud = engine
            .list_subclouds(&SubcloudQuery::default())
            .await
            .unwrap()
            .rows[0]
            .name
            .clone();
        let alarm = engine
            .alarm_page(&AlarmQuery {
                acknowledged: Some(false),
                ..Default::default()
            })
            .await
            .unwrap()
            .rows
            .first()
            .expect("the demo fleet has an active, unacknowledged alarm")
            .id;
        let strategy = engine
            .create_strategy(
                &Actor::system(),
                &engine::orchestration::NewStrategy::new(
                    engine::orchestration::StrategyType::Firmware,
                    engine::orchestration::Target::All,
                ),
            )
            .await
            .expect("create the strategy of the orchestration routes");
        assert_eq!(strategy, STRATEGY, "the first strategy of a fresh store");
        let mut app = Self {
            base,
            origin,
            engine,
            client,
            admin: String::new(),
            operator: String::new(),
            viewer: String::new(),
            subcloud,
            alarm,
            _db: db,
        };
        app.admin = app.login("admin", ADMIN_PASSWORD).await;
        app.operator = app.login("operator", OPERATOR_PASSWORD).await;
        app.viewer = app.login("viewer", VIEWER_PASSWORD).await;
        app
    }

    /// Signs in through the login form and returns the session cookie.
    async fn login(&self, user: &str, password: &str) -> String {
        let res = self
            .login_form(&[("username", user), ("password", password)])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "login {user}: {res:?}");
        let cookies = res.session_cookies();
        assert_eq!(cookies.len(), 1, "login {user}: {res:?}");
        cookies[0].split(';').next().unwrap().to_string()
    }

    async fn login_form(&self, fields: &[(&str, &str)]) -> Answer {
        self.send(
            self.request(Method::POST, "/login")
                .header("origin", &self.origin)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(fields)),
        )
        .await
    }

    fn request(&self, method: Method, target: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{target}", self.base))
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Answer {
        let res = rb.send().await.expect("request");
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.text().await.unwrap_or_default();
        Answer {
            status,
            headers,
            body,
        }
    }

    /// A browser-like request: the cookie (if any), and for anything but GET the same-site
    /// `Origin` and a form body.
    async fn call(&self, method: Method, target: &str, cookie: Option<&str>, body: &str) -> Answer {
        let mut rb = self.request(method.clone(), target);
        if let Some(c) = cookie {
            rb = rb.header("cookie", c);
        }
        if method != Method::GET && method != Method::HEAD {
            rb = rb
                .header("origin", &self.origin)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_string());
        }
        self.send(rb).await
    }

    async fn get(&self, target: &str, cookie: &str) -> Answer {
        self.call(Method::GET, target, Some(cookie), "").await
    }

    async fn post(&self, target: &str, cookie: &str, body: &str) -> Answer {
        self.call(Method::POST, target, Some(cookie), body).await
    }

    /// Sends `bytes` as they are over a fresh connection (for what reqwest will not send:
    /// truncated bodies, raw invalid bytes, dot segments, huge URLs) and reads the answer
    /// while writing. `half_close`: end the request there (a truncated body). `None`: the
    /// server closed the connection without answering.
    async fn raw(&self, bytes: Vec<u8>, half_close: bool) -> Option<Answer> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.base.trim_start_matches("http://");
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut rd, mut wr) = s.into_split();
        let writer = tokio::spawn(async move {
            // The server may answer (413) and close before reading everything.
            let _ = wr.write_all(&bytes).await;
            if half_close {
                let _ = wr.shutdown().await;
            }
            wr
        });
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(40), rd.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "the server did not answer a raw request");
        drop(writer.await);
        (!out.is_empty()).then(|| parse_raw_response(&out))
    }

    /// [`Self::raw`] for requests that must be answered.
    async fn raw_answer(&self, bytes: Vec<u8>) -> Answer {
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(120)]).to_string();
        self.raw(bytes, false)
            .await
            .unwrap_or_else(|| panic!("no answer to {head:?}"))
    }

    /// A raw HTTP/1.1 request with the headers a same-site browser post has.
    fn raw_request(
        &self,
        method: &str,
        target: &str,
        cookie: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Vec<u8> {
        let host = self.base.trim_start_matches("http://");
        let mut head =
            format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        if let Some(c) = cookie {
            head.push_str(&format!("Cookie: {c}\r\n"));
        }
        head.push_str(&format!("Origin: {}\r\n", self.origin));
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        bytes
    }

    /// The server answers its health check.
    async fn assert_healthy(&self) {
        let res = self.send(self.request(Method::GET, "/healthz")).await;
        assert_eq!(res.status, StatusCode::OK, "healthz: {res:?}");
        assert_eq!(res.json()["status"], "ok");
    }

    async fn user(&self, name: &str) -> Option<User> {
        self.engine
            .list_users(&Actor::system())
            .await
            .unwrap()
            .into_iter()
            .find(|u| u.name == name)
    }

    async fn tokens_of(&self, name: &str) -> Vec<ApiToken> {
        let user = self.user(name).await.expect("user");
        self.engine
            .list_api_tokens(&Actor::user(&user, None))
            .await
            .unwrap()
    }

    /// Audit records, newest first (at most 500).
    async fn audit(&self) -> Vec<engine::audit::AuditRecord> {
        self.engine
            .audit_page(
                &Actor::system(),
                &AuditQuery {
                    per_page: 500,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .rows
    }

    /// Successful logins recorded (each session is opened in the same transaction as its
    /// `auth.login` audit record, so this counts sessions ever created).
    async fn sessions_opened(&self) -> usize {
        self.audit()
            .await
            .iter()
            .filter(|r| r.entry.action == "auth.login" && r.entry.outcome == "ok")
            .count()
    }

    /// What must not change when a request is refused.
    async fn snapshot(&self) -> Snapshot {
        let users = self.engine.list_users(&Actor::system()).await.unwrap();
        let mut tokens = Vec::new();
        for u in &users {
            for t in self
                .engine
                .list_api_tokens(&Actor::user(u, None))
                .await
                .unwrap()
            {
                // last_used_at moves on every authenticated use; it is not a change.
                tokens.push((u.name.clone(), t.id, t.name, t.prefix, t.revoked_at));
            }
        }
        let page = self
            .engine
            .audit_page(
                &Actor::system(),
                &AuditQuery {
                    per_page: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        let overview = Overview {
            as_of: Millis(0),
            ..self.engine.overview().await.unwrap()
        };
        Snapshot {
            users,
            tokens,
            last_audit_id: page.rows.first().map(|r| r.id),
            overview,
        }
    }
}

/// Fails when the store changed: users, tokens or the fleet, or an audit record of anything
/// but a refusal (refused logins and password changes are audited with outcome `denied`; every
/// change and every session opened is audited `ok`).
async fn assert_unchanged(app: &TestApp, before: &Snapshot, what: &str) {
    let now = app.snapshot().await;
    assert_eq!(now.users, before.users, "{what}: users changed");
    assert_eq!(now.tokens, before.tokens, "{what}: API tokens changed");
    assert_eq!(now.overview, before.overview, "{what}: the fleet changed");
    let since = before.last_audit_id.unwrap_or(0);
    let changes: Vec<_> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.id > since && r.entry.outcome != "denied")
        .map(|r| r.entry)
        .collect();
    assert!(
        changes.is_empty(),
        "{what}: changes were audited: {changes:?}"
    );
}

/// Users, API tokens, audit log and the fleet overview. Sessions are not listed by the engine;
/// every session is created together with an `auth.login` audit record, so an unchanged audit
/// log also proves that no session was opened.
#[derive(Debug, PartialEq)]
struct Snapshot {
    users: Vec<User>,
    tokens: Vec<(String, i64, String, String, Option<Millis>)>,
    last_audit_id: Option<i64>,
    overview: Overview,
}

fn parse_raw_response(out: &[u8]) -> Answer {
    let text = String::from_utf8_lossy(out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or("");
    let code: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"));
    let mut headers = HeaderMap::new();
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            if let (Ok(k), Ok(v)) = (
                reqwest::header::HeaderName::from_bytes(k.trim().as_bytes()),
                reqwest::header::HeaderValue::from_str(v.trim()),
            ) {
                headers.append(k, v);
            }
        }
    }
    let chunked = headers
        .get("transfer-encoding")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let body = if chunked {
        let mut out = String::new();
        let mut rest = body;
        while let Some((size, after)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 || after.len() < n {
                break;
            }
            out.push_str(&after[..n]);
            rest = after[n..].trim_start_matches("\r\n");
        }
        out
    } else {
        body.to_string()
    };
    Answer {
        status: StatusCode::from_u16(code).unwrap(),
        headers,
        body,
    }
}

/// Percent-encodes everything but unreserved characters (what browsers do for forms).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `application/x-www-form-urlencoded` body.
fn form(fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The gate's encoding of `next` in the login redirect.
fn next_param(s: &str) -> String {
    engine::url::encode_query_value(s)
}

/// The answer carries a message a person can act on: the REST/gate JSON error, the JSON of
/// `app::ApiError` (not the opaque `Internal`, not `Transport`, which claims the server was
/// unreachable), or, for framework-level refusals (413, 414), a non-empty text.
fn clear_message(a: &Answer) -> Result<String, String> {
    let is_json = a
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/json"));
    if is_json {
        let v: Value = serde_json::from_str(&a.body).map_err(|e| format!("bad JSON: {e}"))?;
        if let Some(m) = v["error"]["message"].as_str().filter(|m| !m.is_empty()) {
            return Ok(m.to_string());
        }
        return match serde_json::from_value::<app::ApiError>(v) {
            Ok(app::ApiError::Internal) => Err("opaque ApiError::Internal".into()),
            Ok(app::ApiError::Transport(m)) => Err(format!("ApiError::Transport({m})")),
            Ok(e) if !e.to_string().is_empty() => Ok(e.to_string()),
            Ok(e) => Err(format!("empty message in {e:?}")),
            Err(e) => Err(format!("neither an error object nor an ApiError: {e}")),
        };
    }
    if a.body.trim().is_empty() {
        Err("empty body".into())
    } else {
        Ok(a.body.chars().take(200).collect())
    }
}

#[track_caller]
fn assert_refused_clearly(a: &Answer, what: &str) {
    assert!(
        a.status.is_client_error(),
        "{what}: expected a 4xx, got {} {}",
        a.status,
        a.body.chars().take(300).collect::<String>()
    );
    if let Err(e) = clear_message(a) {
        panic!("{what}: {} without a clear message: {e}", a.status);
    }
}

#[track_caller]
fn assert_gate_json(a: &Answer, status: StatusCode, code: &str, what: &str) {
    assert_eq!(a.status, status, "{what}: {}", a.body);
    let v = a.json();
    assert_eq!(v["error"]["code"], code, "{what}: {v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
    if status == StatusCode::UNAUTHORIZED {
        assert!(
            a.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{what}: no WWW-Authenticate"
        );
    }
}

/// Injection-shaped values: none is a valid user name or subcloud name.
fn hostile_values() -> Vec<(&'static str, String)> {
    vec![
        ("sql", "' OR 1=1 --".into()),
        ("sql-drop", "x'; DROP TABLE users; --".into()),
        ("html", "<script>alert(1)</script>".into()),
        ("attribute", "\"><img src=x onerror=alert(1)>".into()),
        ("path", "../../etc/passwd".into()),
        ("nul", "a\0b".into()),
        ("crlf", "a\r\nSet-Cookie: x=y".into()),
        ("10KB", "x".repeat(10 * 1024)),
        ("long-unicode", "é".repeat(5000)),
        ("rtl-override", "\u{202E}nimda".into()),
        ("zero-width-joiner", "ad\u{200D}min".into()),
        ("zero-width-space", "admin\u{200B}".into()),
        ("emoji", "🐦\u{200D}🔥".into()),
        ("nfd", "cafe\u{301}".into()),
        ("homoglyph", "\u{0430}dmin".into()),
        ("empty", String::new()),
    ]
}

// ---------------------------------------------------------------------------------------------
// 1. The route table and the crawler
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Dashboard page (HTML).
    Page,
    /// REST API under /api/v1.
    Rest,
    /// Leptos server function under /ui.
    ServerFn,
    /// Plain form post handled by the server (not a server function).
    Form,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Every signed-in user.
    Anyone,
    /// One's own session and account (viewers too).
    OwnAccount,
    /// Admins and operators (audit log).
    Audit,
    /// Admins and operators (fleet actions: acknowledging alarms; orchestration).
    Operate,
    /// Admins only (user management).
    Admin,
}

#[derive(Debug, Clone)]
struct Route {
    kind: Kind,
    method: Method,
    /// The registered path (pattern).
    path: &'static str,
    /// Path and query of the request the crawler sends.
    target: String,
    /// Form body of a POST: valid, so that any refusal comes from access control.
    body: String,
    access: Access,
}

impl Route {
    fn mutating(&self) -> bool {
        self.method != Method::GET
    }
}

/// Every route of the controller, in an order in which the admin crawl can run them all
/// (creations before the changes that need them, logout last). `own_token` is an API token id
/// of the admin's for the revoke; `alarm` an active, unacknowledged alarm's id.
fn route_table(subcloud: &str, own_token: i64, alarm: i64) -> Vec<Route> {
    use Access::*;
    use Kind::*;
    let get = |kind, path: &'static str, target: String, access| Route {
        kind,
        method: Method::GET,
        path,
        target,
        body: String::new(),
        access,
    };
    let post = |kind, path: &'static str, body: String, access| Route {
        kind,
        method: Method::POST,
        path,
        target: path.to_string(),
        body,
        access,
    };
    vec![
        // Pages.
        get(Page, "/", "/".into(), Anyone),
        get(
            Page,
            "/subclouds",
            "/subclouds?availability=online&sort=name".into(),
            Anyone,
        ),
        get(
            Page,
            "/subclouds/{name}",
            format!("/subclouds/{subcloud}"),
            Anyone,
        ),
        get(
            Page,
            "/map",
            "/map?region=europe&status=ok&cell=3,4".into(),
            Anyone,
        ),
        get(Page, "/users", "/users".into(), Admin),
        get(Page, "/embeds", "/embeds".into(), Admin),
        get(Page, "/account", "/account".into(), OwnAccount),
        get(Page, "/audit", "/audit".into(), Audit),
        get(
            Page,
            "/alarms",
            "/alarms?severity=critical&severity=major&state=all&ack=no".into(),
            Anyone,
        ),
        get(Page, "/orchestration", "/orchestration?page=1".into(), Anyone),
        get(
            Page,
            "/orchestration/new",
            "/orchestration/new?type=firmware&target=all".into(),
            Anyone,
        ),
        get(
            Page,
            "/orchestration/{id}",
            format!("/orchestration/{STRATEGY}?state=initial"),
            Anyone,
        ),
        get(Page, "/controllers", "/controllers".into(), Anyone),
        get(Page, "/peer-groups", "/peer-groups".into(), Anyone),
        get(
            Page,
            "/peer-groups/{name}",
            "/peer-groups/pg-na-west?to=sc-singapore".into(),
            Anyone,
        ),
        get(Page, "/drill", "/drill?controller=sc-dallas".into(), Anyone),
        // REST.
        get(Rest, "/api/v1/overview", "/api/v1/overview".into(), Anyone),
        get(Rest, "/api/v1/geo", "/api/v1/geo".into(), Anyone),
        get(
            Rest,
            "/api/v1/geo/drill",
            "/api/v1/geo/drill?controller=sc-singapore".into(),
            Anyone,
        ),
        get(Rest, "/api/v1/system-peers", "/api/v1/system-peers".into(), Anyone),
        get(
            Rest,
            "/api/v1/peer-groups/{name}",
            "/api/v1/peer-groups/pg-oceania".into(),
            Anyone,
        ),
        get(
            Rest,
            "/api/v1/subclouds",
            "/api/v1/subclouds?per_page=5&sort=name".into(),
            Anyone,
        ),
        get(
            Rest,
            "/api/v1/subclouds/{name}",
            format!("/api/v1/subclouds/{subcloud}"),
            Anyone,
        ),
        get(Rest, "/api/v1/controllers", "/api/v1/controllers".into(), Anyone),
        get(
            Rest,
            "/api/v1/subcloud-groups",
            "/api/v1/subcloud-groups".into(),
            Anyone,
        ),
        get(
            Rest,
            "/api/v1/peer-groups",
            "/api/v1/peer-groups".into(),
            Anyone,
        ),
        get(Rest, "/api/v1/alarms", "/api/v1/alarms".into(), Anyone),
        get(
            Rest,
            "/api/v1/alarms/list",
            "/api/v1/alarms/list?severity=critical&state=all&per_page=5".into(),
            Anyone,
        ),
        get(
            Rest,
            "/api/v1/subclouds/{name}/timeline",
            format!("/api/v1/subclouds/{subcloud}/timeline"),
            Anyone,
        ),
        // Server functions: reads.
        get(
            ServerFn,
            "/ui/fleet/overview",
            "/ui/fleet/overview".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/fleet/subclouds",
            "/ui/fleet/subclouds?query[availability]=online&query[sort]=name&query[dir]=asc&query[page]=1&query[per_page]=10".into(),
            Anyone,
        ),
        get(ServerFn, "/ui/clock", "/ui/clock".into(), Anyone),
        get(ServerFn, "/ui/status", "/ui/status".into(), Anyone),
        get(Page, "/status", "/status".into(), Anyone),
        get(
            ServerFn,
            "/ui/fleet/map",
            "/ui/fleet/map?view=x%3D500%26y%3D240%26z%3D2%26status%3Dok".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/fleet/subcloud",
            format!("/ui/fleet/subcloud?name={subcloud}"),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/fleet/filter-choices",
            "/ui/fleet/filter-choices".into(),
            Anyone,
        ),
        get(ServerFn, "/ui/account/me", "/ui/account/me".into(), OwnAccount),
        get(
            ServerFn,
            "/ui/account/tokens",
            "/ui/account/tokens".into(),
            OwnAccount,
        ),
        get(ServerFn, "/ui/users/list", "/ui/users/list".into(), Admin),
        get(ServerFn, "/ui/embeds/list", "/ui/embeds/list".into(), Admin),
        get(
            ServerFn,
            "/ui/audit/page",
            "/ui/audit/page?query[page]=1&query[per_page]=20".into(),
            Audit,
        ),
        get(
            ServerFn,
            "/ui/alarms/page",
            "/ui/alarms/page?severities[0]=critical&state=active&page=1&per_page=10".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/orchestration/strategies",
            "/ui/orchestration/strategies?page=1&per_page=10".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/orchestration/strategy",
            format!("/ui/orchestration/strategy?id={STRATEGY}&query[page]=1&query[per_page]=10"),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/orchestration/preview",
            "/ui/orchestration/preview?type=kube-rootca-update&target=all".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/orchestration/releases",
            "/ui/orchestration/releases".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/orchestration/deployments",
            "/ui/orchestration/deployments".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/orchestration/subcloud-steps",
            format!("/ui/orchestration/subcloud-steps?name={subcloud}"),
            Anyone,
        ),
        get(ServerFn, "/ui/geo/overview", "/ui/geo/overview".into(), Anyone),
        get(
            ServerFn,
            "/ui/geo/peer-group",
            "/ui/geo/peer-group?name=pg-eu-west".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/geo/drill",
            "/ui/geo/drill?controller=sc-dallas".into(),
            Anyone,
        ),
        get(
            ServerFn,
            "/ui/geo/migrate-preview",
            "/ui/geo/migrate-preview?group=pg-eu-west&to=sc-singapore".into(),
            Anyone,
        ),
        // Server functions: changes.
        post(
            ServerFn,
            "/ui/users/create",
            form(&[
                ("username", CRAWLED_USER),
                ("password", GOOD_PASSWORD),
                ("role", "viewer"),
            ]),
            Admin,
        ),
        post(
            ServerFn,
            "/ui/users/role",
            form(&[("username", CRAWLED_USER), ("role", "operator")]),
            Admin,
        ),
        post(
            ServerFn,
            "/ui/users/disabled",
            form(&[("username", CRAWLED_USER), ("disabled", "true")]),
            Admin,
        ),
        post(
            ServerFn,
            "/ui/users/password",
            form(&[
                ("username", CRAWLED_USER),
                ("password", "another fine passphrase"),
            ]),
            Admin,
        ),
        post(
            ServerFn,
            "/ui/account/token-create",
            form(&[("name", "crawler")]),
            OwnAccount,
        ),
        post(
            ServerFn,
            "/ui/account/token-revoke",
            form(&[("id", &own_token.to_string())]),
            OwnAccount,
        ),
        post(
            ServerFn,
            "/ui/account/password",
            form(&[
                ("current", ADMIN_PASSWORD),
                ("password", GOOD_PASSWORD),
                ("confirm", GOOD_PASSWORD),
            ]),
            OwnAccount,
        ),
        post(
            ServerFn,
            "/ui/alarms/acknowledge",
            form(&[("ids[]", &alarm.to_string()), ("back", "?state=active")]),
            Operate,
        ),
        // Another type than `STRATEGY`'s: one active strategy per type.
        post(
            ServerFn,
            "/ui/orchestration/create",
            form(&[("type", "kube-rootca-update"), ("target", "all")]),
            Operate,
        ),
        post(
            ServerFn,
            "/ui/orchestration/action",
            form(&[("id", &STRATEGY.to_string()), ("action", "abort")]),
            Operate,
        ),
        // sc-dallas never answers: the operator's migrate takes its group here.
        post(
            ServerFn,
            "/ui/geo/migrate",
            form(&[("group", "pg-na-east"), ("to", "sc-amsterdam")]),
            Operate,
        ),
        post(
            ServerFn,
            "/ui/geo/fail-back",
            form(&[("group", "pg-eu-west")]),
            Operate,
        ),
        post(
            ServerFn,
            "/ui/geo/takeover-paused",
            form(&[("paused", "true")]),
            Operate,
        ),
        post(
            ServerFn,
            "/ui/geo/demo-controller",
            form(&[("controller", "sc-amsterdam"), ("running", "true")]),
            Admin,
        ),
        // The crawl's link is the store's first (id 1); the origin is added, then removed.
        post(
            ServerFn,
            "/ui/embeds/create",
            form(&[
                ("kind", "status"),
                ("target", ""),
                ("label", "crawler"),
                ("expires_in", "1"),
                ("unit", "days"),
            ]),
            Admin,
        ),
        post(ServerFn, "/ui/embeds/revoke", form(&[("id", "1")]), Admin),
        post(
            ServerFn,
            "/ui/embeds/origin-add",
            form(&[("origin", "https://portal.example")]),
            Admin,
        ),
        post(
            ServerFn,
            "/ui/embeds/origin-remove",
            form(&[("origin", "https://portal.example")]),
            Admin,
        ),
        // Form posts.
        post(Form, "/logout", String::new(), OwnAccount),
    ]
}

/// The embed views and their server functions: no session, their token is the credential
/// (tested in `embeds_open_with_their_token_only`, not by the session crawls).
const EMBED_PAGES: [&str; 4] = [
    "/embed/map",
    "/embed/peer-group",
    "/embed/status",
    "/embed/strategy",
];
const EMBED_SERVER_FNS: [&str; 4] = [
    "/ui/embed/map",
    "/ui/embed/peer-group",
    "/ui/embed/status",
    "/ui/embed/strategy",
];

/// Creates an API token for `user` through the engine; returns (id, secret).
async fn engine_token(app: &TestApp, user: &str, name: &str) -> (i64, String) {
    let u = app.user(user).await.expect("user");
    let t = app
        .engine
        .create_api_token(&Actor::user(&u, None), name)
        .await
        .expect("create token");
    (t.token.id, t.secret)
}

/// The table covers every server function Leptos registered (path and method) and every page
/// route of the app, and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn route_table_is_complete() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let table = route_table(&app.subcloud, 1, app.alarm);

    let mut registered: Vec<(String, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    registered.sort();
    let mut ours: Vec<(String, String)> = table
        .iter()
        .filter(|r| r.kind == Kind::ServerFn)
        .map(|r| (r.path.to_string(), r.method.to_string()))
        .chain(EMBED_SERVER_FNS.map(|p| (p.to_string(), "GET".to_string())))
        .collect();
    ours.sort();
    assert!(
        registered.len() >= 15,
        "the registry should list the server functions: {registered:?}"
    );
    assert_eq!(
        ours, registered,
        "the route table and the registered server functions differ"
    );

    // Pages: every app route is in the table (the login and setup pages are pre-auth and
    // tested separately), with the path parameter in axum's syntax.
    let mut pages: Vec<String> = server::startup::page_routes()
        .iter()
        .map(|r| r.path().to_string())
        .filter(|p| p != "/login" && p != "/setup")
        .collect();
    pages.sort();
    pages.dedup();
    let mut ours: Vec<String> = table
        .iter()
        .filter(|r| r.kind == Kind::Page)
        .map(|r| r.path.to_string())
        .chain(EMBED_PAGES.map(str::to_string))
        .collect();
    ours.sort();
    assert_eq!(ours, pages, "the route table and the app's pages differ");

    // Every route of the table exists: an admin GET of each read answers 200.
    for r in table.iter().filter(|r| !r.mutating()) {
        let res = app.get(&r.target, &app.admin).await;
        assert_eq!(res.status, StatusCode::OK, "{}: {}", r.target, res.body);
    }
}

both_backends!(
    crawl_anonymous_and_garbage_cookie,
    crawl_viewer_is_read_only,
    crawl_operator_cannot_manage_users,
    crawl_admin_can_do_everything,
    cross_site_posts_are_refused,
    rest_endpoints_refuse_bad_input,
    server_functions_refuse_invalid_values,
    malformed_server_function_calls_change_nothing,
    oversized_requests_are_refused,
    login_and_setup_forms_refuse_bad_input,
    hostile_text_is_stored_verbatim_and_escaped,
    api_tokens,
    sessions_end_when_they_should,
    embeds_open_with_their_token_only,
);

async fn crawl_anonymous_and_garbage_cookie(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (own, _) = engine_token(&app, "admin", "crawl").await;
    let table = route_table(&app.subcloud, own, app.alarm);
    let before = app.snapshot().await;
    let garbage = "murmur_session=not-a-session-3f9c";
    for (cookie, expired) in [(None, false), (Some(garbage), true)] {
        for r in &table {
            let res = app.call(r.method.clone(), &r.target, cookie, &r.body).await;
            let what = format!("{} {} (cookie {cookie:?})", r.method, r.target);
            match (r.kind, r.mutating()) {
                (Kind::Page, false) => {
                    assert_eq!(res.status, StatusCode::SEE_OTHER, "{what}: {}", res.body);
                    let mut want = format!("/login?next={}", next_param(&r.target));
                    if expired {
                        want.push_str("&expired=1");
                    }
                    assert_eq!(res.header("location"), Some(want.as_str()), "{what}");
                }
                _ => assert_gate_json(&res, StatusCode::UNAUTHORIZED, "unauthenticated", &what),
            }
            let cleared = res.session_cookies();
            if expired {
                assert_eq!(cleared.len(), 1, "{what}: the stale cookie is cleared");
                assert!(
                    cleared[0].starts_with("murmur_session=;") && cleared[0].contains("Max-Age=0"),
                    "{what}: {cleared:?}"
                );
            } else {
                assert!(cleared.is_empty(), "{what}: {cleared:?}");
            }
        }
    }
    // Methods nobody routes are refused too, never run.
    for m in [Method::PUT, Method::DELETE, Method::PATCH] {
        let res = app.call(m.clone(), "/ui/users/create", None, "").await;
        assert_gate_json(
            &res,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            m.as_str(),
        );
    }
    assert_unchanged(&app, &before, "store").await;

    // Reachable without a session: health, icon (404 here: the test site root has none),
    // bundle, the login and setup pages.
    for (path, ok) in [
        ("/healthz", Some(StatusCode::OK)),
        ("/favicon.ico", None),
        ("/pkg/murmur.js", None),
        ("/login", Some(StatusCode::OK)),
        ("/login?next=%2Fsubclouds&expired=1", Some(StatusCode::OK)),
        ("/setup", Some(StatusCode::OK)),
    ] {
        for cookie in [None, Some(garbage)] {
            let res = app.call(Method::GET, path, cookie, "").await;
            match ok {
                Some(s) => assert_eq!(res.status, s, "{path}: {}", res.body),
                None => assert!(
                    res.status != StatusCode::UNAUTHORIZED
                        && res.status != StatusCode::SEE_OTHER
                        && !res.status.is_server_error(),
                    "{path}: {}",
                    res.status
                ),
            }
        }
    }
}

async fn crawl_viewer_is_read_only(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (own, _) = engine_token(&app, "admin", "crawl").await;
    let table = route_table(&app.subcloud, own, app.alarm);
    let before = app.snapshot().await;
    for r in &table {
        let what = format!("viewer {} {}", r.method, r.target);
        let self_service = r.path.starts_with("/ui/account/") || r.path == "/logout";
        if r.mutating() && self_service {
            continue; // Own account: allowed, checked below.
        }
        let res = app
            .call(r.method.clone(), &r.target, Some(&app.viewer), &r.body)
            .await;
        if r.mutating() {
            assert_gate_json(&res, StatusCode::FORBIDDEN, "forbidden", &what);
        } else if matches!(r.access, Access::Anyone | Access::OwnAccount) {
            assert_eq!(res.status, StatusCode::OK, "{what}: {}", res.body);
        } else {
            // Users and audit log: never shown to a viewer. (The exact status is
            // `viewer_and_operator_are_refused_with_403`.)
            assert!(!res.status.is_success(), "{what}: {}", res.status);
            assert!(
                !res.body.contains("\"auth.login\""),
                "{what}: audit rows leaked"
            );
        }
    }
    // Other methods on the REST API and the server functions: refused for a viewer.
    for target in [
        "/api/v1/overview",
        "/api/v1/subclouds",
        "/ui/fleet/overview",
    ] {
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            let res = app.call(m.clone(), target, Some(&app.viewer), "").await;
            assert_gate_json(
                &res,
                StatusCode::FORBIDDEN,
                "forbidden",
                &format!("{m} {target}"),
            );
        }
    }
    assert_unchanged(&app, &before, "a viewer changed the store").await;
    assert!(app.user(CRAWLED_USER).await.is_none());

    // Dot segments and doubled slashes do not smuggle a viewer past the self-service rule.
    let body = form(&[
        ("username", "smuggled"),
        ("password", GOOD_PASSWORD),
        ("role", "admin"),
    ]);
    for target in [
        "/ui/account/../users/create",
        "/ui/account/%2e%2e/users/create",
        "/ui/account/..%2Fusers/create",
        "//ui/users/create",
        "/ui//users/create",
        "/UI/users/create",
    ] {
        let res = app
            .raw_answer(app.raw_request(
                "POST",
                target,
                Some(&app.viewer),
                &[("Content-Type", "application/x-www-form-urlencoded")],
                body.as_bytes(),
            ))
            .await;
        assert!(
            res.status.is_client_error(),
            "{target}: {} {}",
            res.status,
            res.body
        );
    }
    assert!(app.user("smuggled").await.is_none());

    // Own account: a viewer may create and revoke their tokens and sign out.
    let res = app
        .post(
            "/ui/account/token-create",
            &app.viewer,
            &form(&[("name", "mine")]),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let id = res.json()["token"]["id"].as_i64().unwrap();
    assert_eq!(app.tokens_of("viewer").await.len(), 1);
    // Someone else's token is not theirs to revoke (and not revealed).
    let res = app
        .post(
            "/ui/account/token-revoke",
            &app.viewer,
            &format!("id={own}"),
        )
        .await;
    assert_eq!(res.status, StatusCode::NOT_FOUND, "{}", res.body);
    assert!(app.tokens_of("admin").await[0].revoked_at.is_none());
    let res = app
        .post("/ui/account/token-revoke", &app.viewer, &format!("id={id}"))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    let res = app.post("/logout", &app.viewer, "").await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let res = app.get("/api/v1/overview", &app.viewer).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED, "signed out");
}

async fn crawl_operator_cannot_manage_users(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (own, _) = engine_token(&app, "admin", "crawl").await;
    let table = route_table(&app.subcloud, own, app.alarm);
    let before = app.snapshot().await;
    for r in table.iter().filter(|r| r.kind != Kind::Form) {
        // Own account: allowed, not a change to others. Fleet actions: allowed, checked below.
        if r.mutating() && matches!(r.access, Access::OwnAccount | Access::Operate) {
            continue;
        }
        let what = format!("operator {} {}", r.method, r.target);
        let res = app
            .call(r.method.clone(), &r.target, Some(&app.operator), &r.body)
            .await;
        if r.access == Access::Admin {
            assert!(!res.status.is_success(), "{what}: {}", res.status);
        } else {
            assert_eq!(res.status, StatusCode::OK, "{what}: {}", res.body);
        }
    }
    // Nothing changed, and the operator cannot touch other users either.
    for (path, fields) in [
        (
            "/ui/users/role",
            vec![("username", "operator"), ("role", "admin")],
        ),
        (
            "/ui/users/disabled",
            vec![("username", "admin"), ("disabled", "true")],
        ),
        (
            "/ui/users/password",
            vec![("username", "admin"), ("password", GOOD_PASSWORD)],
        ),
    ] {
        let res = app.post(path, &app.operator, &form(&fields)).await;
        assert!(!res.status.is_success(), "{path}: {}", res.status);
    }
    assert_unchanged(&app, &before, "an operator changed users").await;
    assert_eq!(app.user("operator").await.unwrap().role, Role::Operator);
    // Fleet actions are the operator's: each one works (and is audited).
    for r in table
        .iter()
        .filter(|r| r.mutating() && r.access == Access::Operate)
    {
        let res = app
            .call(r.method.clone(), &r.target, Some(&app.operator), &r.body)
            .await;
        assert_eq!(
            res.status,
            StatusCode::OK,
            "operator {}: {}",
            r.target,
            res.body
        );
    }
    assert!(app
        .audit()
        .await
        .iter()
        .any(|r| r.entry.actor == "operator" && r.entry.action == "alarm.acknowledged"));
    // The admin still signs in with the old password.
    app.login("admin", ADMIN_PASSWORD).await;
}

async fn crawl_admin_can_do_everything(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (own, _) = engine_token(&app, "admin", "crawl").await;
    let table = route_table(&app.subcloud, own, app.alarm);
    for r in &table {
        let what = format!("admin {} {}", r.method, r.target);
        let res = app
            .call(r.method.clone(), &r.target, Some(&app.admin), &r.body)
            .await;
        match r.kind {
            Kind::Form => {
                assert_eq!(res.status, StatusCode::SEE_OTHER, "{what}");
                assert_eq!(res.header("location"), Some("/login?loggedout=1"));
            }
            _ => assert_eq!(res.status, StatusCode::OK, "{what}: {}", res.body),
        }
        let ct = res.header("content-type").unwrap_or("");
        match r.kind {
            Kind::Page => assert!(ct.starts_with("text/html"), "{what}: {ct}"),
            Kind::Rest | Kind::ServerFn => {
                assert!(ct.starts_with("application/json"), "{what}: {ct}")
            }
            Kind::Form => {}
        }
    }
    // Every change happened.
    let made = app.user(CRAWLED_USER).await.expect("created");
    assert_eq!(made.role, Role::Operator);
    assert!(made.disabled);
    let tokens = app.tokens_of("admin").await;
    assert!(tokens
        .iter()
        .any(|t| t.name == "crawler" && t.revoked_at.is_none()));
    assert!(tokens.iter().any(|t| t.id == own && t.revoked_at.is_some()));
    let actions: Vec<String> = app
        .audit()
        .await
        .into_iter()
        .filter(|r| r.entry.actor == "admin")
        .map(|r| r.entry.action)
        .collect();
    for a in [
        "user.create",
        "user.role",
        "user.disable",
        "user.password_reset",
        "token.create",
        "token.revoke",
        "user.password_change",
        "alarm.acknowledged",
        "geo.migrate",
        "geo.takeover_paused",
        "demo.controller_started",
        "embed.create",
        "embed.revoke",
        "embed.origin_add",
        "embed.origin_remove",
        "auth.logout",
    ] {
        assert!(actions.iter().any(|x| x == a), "no {a} in {actions:?}");
    }
    // Signed out; the new password works.
    let res = app.get("/api/v1/overview", &app.admin).await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);
    app.login("admin", GOOD_PASSWORD).await;
}

/// The exact refusal for roles that may not read users or the audit log, or manage users.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn viewer_and_operator_are_refused_with_403() {
    for b in BACKENDS {
        let app = TestApp::spawn(b).await;
        let (own, _) = engine_token(&app, "admin", "crawl").await;
        for r in route_table(&app.subcloud, own, app.alarm) {
            for (who, cookie, role) in [
                ("operator", app.operator.as_str(), Role::Operator),
                ("viewer", app.viewer.as_str(), Role::Viewer),
            ] {
                let refused = match r.access {
                    Access::Admin => true,
                    Access::Audit | Access::Operate => role == Role::Viewer,
                    _ => false,
                };
                if !refused {
                    continue;
                }
                let what = format!("{b:?} {who} {} {}", r.method, r.target);
                let res = app
                    .call(r.method.clone(), &r.target, Some(cookie), &r.body)
                    .await;
                assert_eq!(res.status, StatusCode::FORBIDDEN, "{what}: {}", res.body);
                let by_gate = role == Role::Viewer && r.mutating();
                if r.kind == Kind::ServerFn && !by_gate {
                    // Refused by the engine: the server function's own error type.
                    match serde_json::from_str::<app::ApiError>(&res.body) {
                        Ok(app::ApiError::Forbidden(m)) => assert!(!m.is_empty(), "{what}"),
                        other => panic!("{what}: expected ApiError::Forbidden, got {other:?}"),
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Cross-site requests
// ---------------------------------------------------------------------------------------------

async fn cross_site_posts_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let target = "/ui/account/token-create";
    let body = form(&[("name", "csrf")]);
    let before = app.snapshot().await;
    let evil_cases: Vec<Vec<(&str, String)>> = vec![
        vec![("origin", "http://evil.example".into())],
        vec![("sec-fetch-site", "cross-site".into())],
        // A trusted Sec-Fetch-Site wins over a matching Origin.
        vec![
            ("sec-fetch-site", "cross-site".into()),
            ("origin", app.origin.clone()),
        ],
        vec![("sec-fetch-site", "same-site".into())],
        vec![("origin", "null".into())],
        vec![("origin", format!("{}.evil.example", app.origin))],
        vec![("origin", app.origin.replace("http://", "https://"))],
        vec![("origin", "http://127.0.0.1:1".into())],
        // Neither header: refused (browsers always send one; scripts use tokens).
        vec![],
    ];
    for headers in &evil_cases {
        for (path, body, cookie) in [
            (target, body.as_str(), app.admin.as_str()),
            (
                "/ui/users/create",
                &*form(&[
                    ("username", "csrf-user"),
                    ("password", GOOD_PASSWORD),
                    ("role", "admin"),
                ]),
                app.admin.as_str(),
            ),
            ("/logout", "", app.admin.as_str()),
            // Login CSRF (signing the victim into the attacker's account).
            (
                "/login",
                &*form(&[("username", "viewer"), ("password", VIEWER_PASSWORD)]),
                "",
            ),
        ] {
            let mut rb = app
                .request(Method::POST, path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body.to_string());
            if !cookie.is_empty() {
                rb = rb.header("cookie", cookie);
            }
            for (k, v) in headers {
                rb = rb.header(*k, v);
            }
            let res = app.send(rb).await;
            let what = format!("{path} with {headers:?}");
            assert_eq!(res.status, StatusCode::FORBIDDEN, "{what}: {}", res.body);
            if path.starts_with("/ui/") {
                assert_gate_json(&res, StatusCode::FORBIDDEN, "cross_site", &what);
            } else {
                assert!(!res.body.is_empty(), "{what}");
            }
            assert!(res.session_cookies().is_empty(), "{what}");
        }
    }
    assert_unchanged(&app, &before, "a cross-site post changed the store").await;
    // The session survived the cross-site logout.
    assert_eq!(
        app.get("/api/v1/overview", &app.admin).await.status,
        StatusCode::OK
    );

    // Same-origin by Sec-Fetch-Site (no Origin), or by Origin: allowed.
    for (k, v) in [
        ("origin", app.origin.as_str()),
        ("sec-fetch-site", "same-origin"),
    ] {
        let res = app
            .send(
                app.request(Method::POST, target)
                    .header("cookie", &app.admin)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .header(k, v)
                    .body(body.clone()),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{k}: {v}: {}", res.body);
    }
    assert_eq!(app.tokens_of("admin").await.len(), 2);

    // Scripts: a bearer token needs no Origin (no cookie, no ambient authority). The REST API
    // has no changes yet, so an admin's POST reaches the router (405), not the CSRF check.
    let (_, secret) = engine_token(&app, "admin", "script").await;
    let res = app
        .send(
            app.request(Method::POST, "/api/v1/overview")
                .header("authorization", format!("Bearer {secret}")),
        )
        .await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{}", res.body);
    let res = app
        .send(
            app.request(Method::GET, "/api/v1/overview")
                .header("authorization", format!("Bearer {secret}"))
                .header("sec-fetch-site", "cross-site"),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    // A cookie-authenticated cross-site GET is a read: allowed (SameSite=Lax sends it on
    // top-level navigations), and changes nothing.
    let res = app
        .send(
            app.request(Method::GET, "/api/v1/overview")
                .header("cookie", &app.admin)
                .header("origin", "http://evil.example"),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK);
    // GET never reaches a changing server function.
    let res = app
        .get(
            &format!(
                "/ui/users/create?{}",
                form(&[
                    ("username", "via-get"),
                    ("password", GOOD_PASSWORD),
                    ("role", "admin")
                ])
            ),
            &app.admin,
        )
        .await;
    assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(app.user("via-get").await.is_none());
}

// ---------------------------------------------------------------------------------------------
// 3. Bad input
// ---------------------------------------------------------------------------------------------

async fn rest_endpoints_refuse_bad_input(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.snapshot().await;
    let mut cases: Vec<String> = Vec::new();
    for (label, v) in hostile_values() {
        // As a subcloud name: never valid.
        if label != "empty" {
            cases.push(format!("/api/v1/subclouds/{}", enc(&v)));
        }
        // As an enum, sort key or number: never valid.
        for key in [
            "availability",
            "management",
            "deploy",
            "deploy_class",
            "sync",
            "alarm",
            "sort",
            "dir",
            "page",
            "per_page",
        ] {
            if label != "empty" {
                cases.push(format!("/api/v1/subclouds?{key}={}", enc(&v)));
            }
        }
    }
    for q in [
        "page=abc",
        "page=-1",
        "page=1.5",
        "page=99999999999999999999",
        "per_page=0",
        "per_page=100000",
        "page=%FF",
        "sort=name%3B%20DROP%20TABLE%20subclouds",
        "dir=sideways",
        "role=superuser&disabled=maybe&availability=maybe",
    ] {
        cases.push(format!("/api/v1/subclouds?{q}"));
    }
    // Free text: control characters and over-long text are refused.
    for key in ["q", "group", "peer_group"] {
        for v in ["a\0b", "a\r\nb", &"x".repeat(10 * 1024), &"é".repeat(5000)] {
            cases.push(format!("/api/v1/subclouds?{key}={}", enc(v)));
        }
    }
    for target in &cases {
        let res = app.get(target, &app.admin).await;
        let what: String = target.chars().take(120).collect();
        assert_refused_clearly(&res, &what);
        assert!(
            res.header("content-type")
                .is_some_and(|c| c.starts_with("application/json")),
            "{what}: REST errors are JSON"
        );
    }
    // Injection-shaped search text is only text: nothing matches, nothing breaks.
    for (label, v) in hostile_values() {
        if matches!(label, "nul" | "crlf" | "10KB" | "long-unicode" | "empty") {
            continue;
        }
        for key in ["q", "group", "peer_group"] {
            let res = app
                .get(&format!("/api/v1/subclouds?{key}={}", enc(&v)), &app.admin)
                .await;
            assert_eq!(res.status, StatusCode::OK, "{key}={label}: {}", res.body);
            assert_eq!(res.json()["matching"], 0, "{key}={label}");
        }
    }
    // A well-formed but unknown name: 404 with a message.
    let res = app.get("/api/v1/subclouds/nowhere-0001", &app.admin).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_refused_clearly(&res, "unknown subcloud");
    // Methods the REST API does not have.
    for r in route_table(&app.subcloud, 1, app.alarm)
        .iter()
        .filter(|r| r.kind == Kind::Rest)
    {
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            // Adding a subcloud is a POST on the list's path (tested in http.rs).
            if r.path == "/api/v1/subclouds" && m == Method::POST {
                continue;
            }
            let res = app
                .call(m.clone(), &r.target, Some(&app.admin), "x=1")
                .await;
            assert_eq!(
                res.status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{m} {}",
                r.target
            );
        }
    }
    assert_unchanged(&app, &before, "store").await;
    app.assert_healthy().await;
}

/// Values each server function must refuse, with the status the engine's validation gives.
async fn server_functions_refuse_invalid_values(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.snapshot().await;
    let mut cases: Vec<(&str, String)> = Vec::new();
    for (label, v) in hostile_values() {
        cases.push((
            "/ui/users/create",
            form(&[
                ("username", &v),
                ("password", GOOD_PASSWORD),
                ("role", "viewer"),
            ]),
        ));
        if label == "nul" {
            continue; // Looked up unvalidated: see `nul_bytes_are_refused_on_every_store`.
        }
        cases.push((
            "/ui/users/role",
            form(&[("username", &v), ("role", "admin")]),
        ));
        cases.push((
            "/ui/users/disabled",
            form(&[("username", &v), ("disabled", "true")]),
        ));
    }
    for (label, v) in hostile_values() {
        // Names the user-name rule refuses before hashing; these cost an Argon2 hash each.
        if matches!(label, "sql" | "path" | "rtl-override") {
            cases.push((
                "/ui/users/password",
                form(&[("username", &v), ("password", GOOD_PASSWORD)]),
            ));
        }
    }
    for (field_user, pw) in [
        ("viewer", "short"),
        ("viewer", "aaaaaaaaaaaaaaaaaaaa"),
        ("viewer", &"x1".repeat(5 * 1024)),
        ("viewer", ""),
    ] {
        cases.push((
            "/ui/users/password",
            form(&[("username", field_user), ("password", pw)]),
        ));
        cases.push((
            "/ui/users/create",
            form(&[
                ("username", "fresh-user"),
                ("password", pw),
                ("role", "viewer"),
            ]),
        ));
        cases.push((
            "/ui/account/password",
            form(&[
                ("current", ADMIN_PASSWORD),
                ("password", pw),
                ("confirm", pw),
            ]),
        ));
    }
    // Wrong current password (injection-shaped): refused after verifying.
    cases.push((
        "/ui/account/password",
        form(&[
            ("current", "' OR 1=1 --"),
            ("password", GOOD_PASSWORD),
            ("confirm", GOOD_PASSWORD),
        ]),
    ));
    // Token names the rules refuse: empty, control characters, too long.
    for v in [
        String::new(),
        "   ".into(),
        "a\0b".into(),
        "a\r\nb".into(),
        "x".repeat(10 * 1024),
        "é".repeat(5000),
        "🐦".repeat(65),
    ] {
        cases.push(("/ui/account/token-create", form(&[("name", &v)])));
    }
    for id in ["-1", "0", "9223372036854775807"] {
        cases.push(("/ui/account/token-revoke", form(&[("id", id)])));
    }
    let mut gets: Vec<String> = Vec::new();
    for (_, v) in hostile_values() {
        gets.push(format!("/ui/fleet/subcloud?name={}", enc(&v)));
    }
    let q = "query[sort]=name&query[dir]=asc";
    for extra in [
        "query[page]=0&query[per_page]=10",
        "query[page]=1&query[per_page]=100000",
        "query[page]=1&query[per_page]=10&query[search]=a%00b",
        &format!(
            "query[page]=1&query[per_page]=10&query[search]={}",
            "x".repeat(10 * 1024)
        ),
        &format!(
            "query[page]=1&query[per_page]=10&query[group]={}",
            "é".repeat(300)
        ),
    ] {
        gets.push(format!("/ui/fleet/subclouds?{q}&{extra}"));
    }
    gets.push("/ui/audit/page?query[page]=0&query[per_page]=10".into());
    gets.push("/ui/audit/page?query[page]=1&query[per_page]=0".into());
    gets.push(
        "/ui/audit/page?query[page]=1&query[per_page]=10&query[from]=2000&query[to]=1000".into(),
    );

    for (path, body) in &cases {
        let res = app.post(path, &app.admin, body).await;
        let what = format!("POST {path} {}", body.chars().take(80).collect::<String>());
        assert_refused_clearly(&res, &what);
    }
    for target in &gets {
        let res = app.get(target, &app.admin).await;
        let what: String = target.chars().take(100).collect();
        assert_refused_clearly(&res, &what);
    }
    assert_unchanged(&app, &before, "invalid input changed the store").await;
    app.assert_healthy().await;
}

/// Requests whose arguments cannot even be decoded: missing fields, wrong types, duplicate
/// keys, the wrong content type, truncated bodies, raw invalid UTF-8.
fn malformed_server_fn_calls(app: &TestApp) -> Vec<(String, Vec<u8>, bool)> {
    let mut out: Vec<(String, Vec<u8>, bool)> = Vec::new();
    let post = |path: &str, ct: &str, body: &[u8], extra: &[(&str, &str)]| {
        let mut headers = vec![("Content-Type", ct)];
        headers.extend_from_slice(extra);
        (
            format!(
                "POST {path} {}",
                String::from_utf8_lossy(body)
                    .chars()
                    .take(60)
                    .collect::<String>()
            ),
            app.raw_request("POST", path, Some(&app.admin), &headers, body),
            extra.iter().any(|(k, _)| *k == "Content-Length"),
        )
    };
    let urlenc = "application/x-www-form-urlencoded";
    for (path, body) in [
        (
            "/ui/users/create",
            "username=mal&password=correct%20horse%20battery",
        ),
        ("/ui/users/create", ""),
        ("/ui/users/create", "&&&==="),
        ("/ui/users/role", "username=viewer"),
        ("/ui/users/disabled", "username=viewer&disabled=maybe"),
        ("/ui/users/disabled", "username=viewer&disabled=1"),
        ("/ui/users/disabled", "username=viewer"),
        ("/ui/users/password", "password=correct%20horse%20battery"),
        ("/ui/account/token-revoke", "id=abc"),
        ("/ui/account/token-revoke", "id=1.5"),
        ("/ui/account/token-revoke", "id=99999999999999999999999"),
        ("/ui/account/token-revoke", ""),
        ("/ui/account/token-create", "name=a&name=b"),
        ("/ui/account/token-create", "nam"),
        ("/ui/account/password", "current=x"),
    ] {
        out.push(post(path, urlenc, body.as_bytes(), &[]));
    }
    out.push(post(
        "/ui/account/token-create",
        "application/json",
        br#"{"name":"json"}"#,
        &[],
    ));
    out.push(post(
        "/ui/account/token-create",
        urlenc,
        b"name=\xff\xfe",
        &[],
    ));
    // Truncated: announces 100 bytes, sends 8, closes.
    out.push(post(
        "/ui/account/token-create",
        urlenc,
        b"name=abc",
        &[("Content-Length", "100")],
    ));
    for target in [
        "/ui/fleet/subcloud",
        "/ui/fleet/subcloud?nam=x",
        "/ui/fleet/subclouds",
        "/ui/fleet/subclouds?query[sort]=bogus&query[dir]=asc&query[page]=1&query[per_page]=10",
        "/ui/fleet/subclouds?query[sort]=name&query[dir]=asc&query[page]=abc&query[per_page]=10",
        "/ui/fleet/subclouds?query[sort]=name&query[dir]=asc&query[page]=1&query[per_page]=10&query[availability]=maybe",
        "/ui/audit/page",
        "/ui/audit/page?query[page]=-1&query[per_page]=10",
        "/ui/audit/page?query[page]=1&query[per_page]=10&query[from]=yesterday",
    ] {
        out.push((
            format!("GET {target}"),
            app.raw_request("GET", target, Some(&app.admin), &[], b""),
            false,
        ));
    }
    out
}

/// Argument values the dashboard itself refuses, returned without an HTTP status.
fn unparsed_values() -> Vec<(&'static str, String)> {
    vec![
        (
            "/ui/users/create",
            form(&[
                ("username", "role-test"),
                ("password", GOOD_PASSWORD),
                ("role", "superuser"),
            ]),
        ),
        (
            "/ui/users/create",
            form(&[
                ("username", "role-test"),
                ("password", GOOD_PASSWORD),
                ("role", ""),
            ]),
        ),
        (
            "/ui/users/role",
            form(&[("username", "viewer"), ("role", "' OR 1=1 --")]),
        ),
        (
            "/ui/users/role",
            form(&[("username", "viewer"), ("role", "ADMIN")]),
        ),
        (
            "/ui/account/password",
            form(&[
                ("current", ADMIN_PASSWORD),
                ("password", GOOD_PASSWORD),
                ("confirm", "correct horse battery stapler"),
            ]),
        ),
    ]
}

async fn malformed_server_function_calls_change_nothing(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.snapshot().await;
    for (what, bytes, truncated) in malformed_server_fn_calls(&app) {
        // A truncated body ends the connection; the server may just close it.
        let Some(res) = app.raw(bytes, truncated).await else {
            assert!(truncated, "{what}: no answer");
            continue;
        };
        assert!(
            !res.status.is_success() && !res.status.is_redirection(),
            "{what}: {} {}",
            res.status,
            res.body
        );
    }
    for (path, body) in unparsed_values() {
        let res = app.post(path, &app.admin, &body).await;
        assert!(!res.status.is_success(), "{path} {body}: {}", res.status);
    }
    assert_unchanged(&app, &before, "malformed calls changed the store").await;
    assert_eq!(app.user("viewer").await.unwrap().role, Role::Viewer);
    app.login("admin", ADMIN_PASSWORD).await;
    app.assert_healthy().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn malformed_server_function_calls_answer_400() {
    for b in BACKENDS {
        let app = TestApp::spawn(b).await;
        let before = app.snapshot().await;
        for (what, bytes, truncated) in malformed_server_fn_calls(&app) {
            match app.raw(bytes, truncated).await {
                Some(res) => assert_refused_clearly(&res, &format!("{b:?} {what}")),
                // The client went away mid-body: closing is a fine answer.
                None => assert!(truncated, "{b:?} {what}: no answer"),
            }
        }
        // Over the body limit without a Content-Length (chunked): 413, like with one.
        let body = chunked_over_limit();
        let res = app
            .raw_answer(app.raw_request(
                "POST",
                "/ui/account/token-create",
                Some(&app.admin),
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Transfer-Encoding", "chunked"),
                ],
                &body,
            ))
            .await;
        assert_eq!(
            res.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{b:?} chunked: {}",
            res.body
        );
        assert_unchanged(&app, &before, "store").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn invalid_role_and_confirmation_answer_400() {
    for b in BACKENDS {
        let app = TestApp::spawn(b).await;
        let before = app.snapshot().await;
        for (path, body) in unparsed_values() {
            let res = app.post(path, &app.admin, &body).await;
            let what = format!("{b:?} {path} {body}");
            assert_eq!(res.status, StatusCode::BAD_REQUEST, "{what}: {}", res.body);
            match serde_json::from_str::<app::ApiError>(&res.body) {
                Ok(app::ApiError::Invalid { field, message }) => {
                    assert!(
                        ["role", "confirm"].contains(&field.as_str()) && !message.is_empty(),
                        "{what}"
                    )
                }
                other => panic!("{what}: {other:?}"),
            }
        }
        assert_unchanged(&app, &before, "store").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn invalid_percent_encoding_is_refused() {
    for b in BACKENDS {
        let app = TestApp::spawn(b).await;
        let before = app.snapshot().await;
        for body in [
            "name=%2",
            "name=%ZZtoken",
            "name=%FF%FE",
            "name=ok%E2%82",
            "name=%C0%AF",
        ] {
            let res = app.post("/ui/account/token-create", &app.admin, body).await;
            assert_refused_clearly(&res, &format!("{b:?} {body}"));
        }
        assert_unchanged(
            &app,
            &before,
            &format!("{b:?}: a malformed name was stored"),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn bidi_controls_are_refused_in_names() {
    for b in BACKENDS {
        let app = TestApp::spawn(b).await;
        let before = app.snapshot().await;
        for c in [
            '\u{202A}', '\u{202B}', '\u{202C}', '\u{202D}', '\u{202E}', '\u{2066}', '\u{2067}',
            '\u{2068}', '\u{2069}',
        ] {
            let name = format!("invoice{c}fdp.exe");
            let res = app
                .post(
                    "/ui/account/token-create",
                    &app.admin,
                    &form(&[("name", &name)]),
                )
                .await;
            assert_refused_clearly(&res, &format!("{b:?} U+{:04X}", u32::from(c)));
        }
        assert_unchanged(&app, &before, "store").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn audit_filters_are_validated_on_the_server_function() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (key, v) in [
        ("actor", "a\0b".to_string()),
        ("action", "a\r\nb".to_string()),
        ("target", "x".repeat(10 * 1024)),
    ] {
        let target = format!(
            "/ui/audit/page?query[page]=1&query[per_page]=10&query[{key}]={}",
            enc(&v)
        );
        let res = app.get(&target, &app.admin).await;
        assert_refused_clearly(&res, key);
        assert_eq!(res.status, StatusCode::BAD_REQUEST, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn nul_bytes_are_refused_on_every_store() {
    for b in BACKENDS {
        let app = TestApp::spawn(b).await;
        let before = app.snapshot().await;
        for (path, body) in [
            (
                "/ui/users/role",
                form(&[("username", "a\0b"), ("role", "admin")]),
            ),
            (
                "/ui/users/disabled",
                form(&[("username", "a\0b"), ("disabled", "true")]),
            ),
            (
                "/ui/users/password",
                form(&[("username", "a\0b"), ("password", GOOD_PASSWORD)]),
            ),
        ] {
            let res = app.post(path, &app.admin, &body).await;
            assert_refused_clearly(&res, &format!("{b:?} {path}"));
        }
        // Sign-in: the usual answer for a wrong name, not the "server" one.
        let res = app
            .login_form(&[("username", "a\0b"), ("password", "whatever it is")])
            .await;
        let loc = res.header("location").unwrap_or("");
        assert!(
            loc.starts_with("/login?error=invalid"),
            "{b:?} login: {loc}"
        );
        assert_unchanged(&app, &before, &format!("{b:?}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn conflicts_are_reported_as_conflicts() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let res = app
        .post(
            "/ui/users/disabled",
            &app.admin,
            &form(&[("username", "admin"), ("disabled", "true")]),
        )
        .await;
    assert_eq!(res.status, StatusCode::CONFLICT, "{}", res.body);
    assert!(
        matches!(serde_json::from_str::<app::ApiError>(&res.body), Ok(app::ApiError::Conflict(ref m)) if !m.is_empty()),
        "{}",
        res.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn rest_refusals_are_always_json() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (_, secret) = engine_token(&app, "admin", "json").await;
    let bearer = format!("Bearer {secret}");
    let big = (70 * 1024).to_string();
    for (method, target, length) in [
        ("POST", "/api/v1/subclouds", big.as_str()),
        ("GET", "/api/v1/overview", big.as_str()),
        ("DELETE", "/api/v1/subclouds", "0"),
        ("GET", "/api/v1/no-such-thing", "0"),
    ] {
        let res = app
            .raw_answer(app.raw_request(
                method,
                target,
                None,
                &[("Authorization", &bearer), ("Content-Length", length)],
                b"",
            ))
            .await;
        let what = format!("{method} {target}");
        assert!(res.status.is_client_error(), "{what}: {}", res.status);
        let v: Value = serde_json::from_str(&res.body)
            .unwrap_or_else(|e| panic!("{what}: {} is not JSON ({e}): {:?}", res.status, res.body));
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
    }
}

async fn oversized_requests_are_refused(b: Backend) {
    let app = TestApp::spawn(b).await;
    let before = app.snapshot().await;
    let big = vec![b'x'; 70 * 1024];
    let mut targets: Vec<(Method, String)> = route_table(&app.subcloud, 1, app.alarm)
        .into_iter()
        .map(|r| (r.method, r.target))
        .collect();
    targets.push((Method::POST, "/login".into()));
    targets.push((Method::POST, "/setup".into()));
    for (method, target) in targets {
        // Announced 70 KiB: refused before a byte of it is read (so nothing is sent here).
        let head = app.raw_request(
            method.as_str(),
            &target,
            Some(&app.admin),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", &big.len().to_string()),
            ],
            b"",
        );
        let res = app.raw_answer(head).await;
        let what = format!("{method} {target}");
        assert_eq!(
            res.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "{what}: {}",
            res.body
        );
        assert!(clear_message(&res).is_ok(), "{what}: {:?}", res.body);
    }
    // Sent in full, with a Content-Length (as browsers do), signed in and anonymous.
    for (target, cookie) in [
        ("/ui/account/token-create", Some(app.admin.as_str())),
        ("/login", None),
    ] {
        let res = app
            .raw_answer(app.raw_request(
                "POST",
                target,
                cookie,
                &[("Content-Type", "application/x-www-form-urlencoded")],
                &[b"name=".as_slice(), &big].concat(),
            ))
            .await;
        assert_eq!(res.status, StatusCode::PAYLOAD_TOO_LARGE, "{target}");
    }
    // Chunked (no length announced) to a form handler: read up to the limit, then refused.
    let chunked = chunked_over_limit();
    let res = app
        .raw_answer(app.raw_request(
            "POST",
            "/login",
            None,
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Transfer-Encoding", "chunked"),
            ],
            &chunked,
        ))
        .await;
    assert!(
        res.status.is_client_error()
            || res
                .header("location")
                .is_some_and(|l| l.starts_with("/login?error=")),
        "chunked login: {} {:?}",
        res.status,
        res.header("location")
    );
    assert!(res.session_cookies().is_empty());
    // 70 KiB in the URL.
    let res = app
        .raw_answer(app.raw_request(
            "GET",
            &format!("/api/v1/subclouds?q={}", "x".repeat(70 * 1024)),
            Some(&app.admin),
            &[],
            b"",
        ))
        .await;
    assert!(res.status.is_client_error(), "{}", res.status);
    // 10 KB values are refused by validation (see the other tests) and a 60 KiB body within
    // the limit is read and refused with a message.
    let res = app
        .post(
            "/ui/account/token-create",
            &app.admin,
            &form(&[("name", &"n".repeat(60 * 1024))]),
        )
        .await;
    assert_refused_clearly(&res, "60 KiB token name");
    assert_unchanged(&app, &before, "store").await;
    app.assert_healthy().await;
}

async fn login_and_setup_forms_refuse_bad_input(b: Backend) {
    let app = TestApp::spawn(b).await;
    let users_before = app.engine.list_users(&Actor::system()).await.unwrap();
    let opened = app.sessions_opened().await;
    let huge = "x".repeat(10 * 1024);
    let mut cases: Vec<Vec<(&str, String)>> = vec![
        vec![("username", huge.clone()), ("password", huge.clone())],
        vec![("username", "admin".into()), ("password", huge.clone())],
        vec![
            ("username", "admin".into()),
            ("password", "x".repeat(60 * 1024)),
        ],
        vec![("username", "admin".into())],
        vec![("password", ADMIN_PASSWORD.into())],
        vec![("next", "/".into())],
        vec![],
        vec![("username", String::new()), ("password", String::new())],
        vec![
            ("username", "admin".into()),
            ("password", format!("{ADMIN_PASSWORD}\0")),
        ],
    ];
    for (label, v) in hostile_values() {
        // (NUL: see `nul_bytes_are_refused_on_every_store`.)
        if matches!(
            label,
            "sql" | "html" | "crlf" | "rtl-override" | "homoglyph" | "long-unicode"
        ) {
            cases.push(vec![
                ("username", v.clone()),
                ("password", "' OR 1=1 --".into()),
            ]);
        }
    }
    for fields in &cases {
        let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let res = app.login_form(&pairs).await;
        let what = format!(
            "login {:?}",
            pairs
                .iter()
                .map(|(k, v)| (k, v.chars().take(20).collect::<String>()))
                .collect::<Vec<_>>()
        );
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{what}: {}", res.body);
        let loc = res.header("location").unwrap_or("");
        assert!(loc.starts_with("/login?error=invalid"), "{what}: {loc}");
        assert!(loc.len() < 1024, "{what}: the redirect stays short");
        assert!(res.session_cookies().is_empty(), "{what}");
    }
    // Not a form at all.
    for (ct, body) in [
        (
            "application/json",
            br#"{"username":"admin","password":"admin-demo-password"}"#.to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"username=admin&password=\xff\xfe".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"username=%E&password=%".to_vec(),
        ),
        ("text/plain", b"admin admin-demo-password".to_vec()),
    ] {
        let res = app
            .send(
                app.request(Method::POST, "/login")
                    .header("origin", &app.origin)
                    .header("content-type", ct)
                    .body(body),
            )
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{ct}");
        assert!(
            res.header("location")
                .unwrap_or("")
                .starts_with("/login?error="),
            "{ct}"
        );
        assert!(res.session_cookies().is_empty());
    }
    // Truncated body.
    let res = app
        .raw(
            app.raw_request(
                "POST",
                "/login",
                None,
                &[
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    ("Content-Length", "400"),
                ],
                b"username=admin&password=admin-demo-password",
            ),
            true,
        )
        .await;
    if let Some(res) = res {
        assert!(
            res.status.is_client_error()
                || res
                    .header("location")
                    .is_some_and(|l| l.starts_with("/login?error=")),
            "truncated login: {} {:?}",
            res.status,
            res.header("location")
        );
        assert!(res.session_cookies().is_empty());
    }
    assert_eq!(
        app.sessions_opened().await,
        opened,
        "a bad login opened a session"
    );

    // The setup form: refused without a valid one-time token, whatever the input.
    let setup_cases: Vec<String> = vec![
        String::new(),
        "token=abc".into(),
        form(&[
            ("token", "abc"),
            ("username", "mallory"),
            ("password", GOOD_PASSWORD),
            ("confirm", GOOD_PASSWORD),
        ]),
        form(&[
            ("token", ""),
            ("username", "mallory"),
            ("password", GOOD_PASSWORD),
            ("confirm", GOOD_PASSWORD),
        ]),
        form(&[
            ("token", &huge),
            ("username", &huge),
            ("password", &huge),
            ("confirm", &huge),
        ]),
        form(&[
            ("token", "' OR 1=1 --"),
            ("username", "<script>"),
            ("password", "a\0b"),
            ("confirm", "x"),
        ]),
    ];
    for body in &setup_cases {
        let res = app
            .send(
                app.request(Method::POST, "/setup")
                    .header("origin", &app.origin)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(body.clone()),
            )
            .await;
        let what = format!("setup {}", body.chars().take(60).collect::<String>());
        assert_eq!(res.status, StatusCode::SEE_OTHER, "{what}: {}", res.body);
        let loc = res.header("location").unwrap_or("");
        assert!(
            loc.starts_with("/setup?") && loc.contains("error="),
            "{what}: {loc}"
        );
        assert!(res.session_cookies().is_empty(), "{what}");
    }
    assert_eq!(
        app.engine.list_users(&Actor::system()).await.unwrap(),
        users_before,
        "users changed"
    );
    assert_eq!(
        app.sessions_opened().await,
        opened,
        "a bad setup opened a session"
    );
    // The real password still works (bad attempts were on other names or never verified).
    app.login("admin", ADMIN_PASSWORD).await;
    app.assert_healthy().await;
}

/// Free text that is valid (token names) is stored exactly as sent and always rendered
/// escaped; reflected parameters are escaped too.
async fn hostile_text_is_stored_verbatim_and_escaped(b: Backend) {
    let app = TestApp::spawn(b).await;
    let names = [
        "<script>alert(1)</script>",
        "\"><img src=x onerror=alert(1)>",
        "' OR 1=1 --",
        "../../etc/passwd",
        "🐦\u{200D}🔥 fire",
        "café",
        "cafe\u{301}",
        "{{7*7}} ${7*7}",
    ];
    for name in names {
        let res = app
            .post(
                "/ui/account/token-create",
                &app.admin,
                &form(&[("name", name)]),
            )
            .await;
        assert_eq!(res.status, StatusCode::OK, "{name}: {}", res.body);
        assert_eq!(res.json()["token"]["name"], name);
    }
    let stored: Vec<String> = app
        .tokens_of("admin")
        .await
        .into_iter()
        .map(|t| t.name)
        .collect();
    for name in names {
        // Byte-exact: NFC and NFD spellings stay distinct, nothing is trimmed or mangled.
        assert_eq!(
            stored.iter().filter(|s| s.as_str() == name).count(),
            1,
            "{name:?}"
        );
    }
    for page in ["/account", "/audit"] {
        let html = app.get(page, &app.admin).await.body;
        assert!(!html.contains("<script>alert(1)"), "{page}: raw script tag");
        assert!(!html.contains("<img src=x"), "{page}: raw img tag");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{page}: the escaped name is missing; the page's main content was: {}",
            html.split("<main")
                .nth(1)
                .unwrap_or(&html)
                .chars()
                .take(3000)
                .collect::<String>()
        );
        assert!(!html.contains("\"><img"), "{page}: attribute break-out");
    }
    // Reflected query parameters.
    for target in [
        "/login?error=invalid&user=%3Cscript%3Ealert(1)%3C%2Fscript%3E&next=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        "/setup?token=%22%3E%3Cscript%3Ealert(1)%3C%2Fscript%3E&error=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    ] {
        let res = app.call(Method::GET, target, None, "").await;
        assert_eq!(res.status, StatusCode::OK, "{target}");
        assert!(!res.body.contains("<script>alert(1)"), "{target}: {}", res.body);
        assert!(!res.body.contains("\"><script>alert"), "{target}");
    }
    let res = app
        .get(
            "/subclouds?q=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
            &app.admin,
        )
        .await;
    assert!(!res.body.contains("<script>alert(1)"));
    // (The subcloud name in the URL reaches the page title: see
    // `page_title_escapes_the_subcloud_name`.)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn page_title_escapes_the_subcloud_name() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let payload = "</title><meta http-equiv=refresh content=\"0;url=https://evil.example\"><script>alert(1)</script>";
    let res = app
        .get(&format!("/subclouds/{}", enc(payload)), &app.admin)
        .await;
    assert_eq!(res.status, StatusCode::BAD_REQUEST);
    let head = &res.body[..res.body.find("</head>").unwrap_or(res.body.len())];
    assert!(
        !head.contains("<meta http-equiv=refresh"),
        "injected meta refresh: {head}"
    );
    assert!(
        !res.body.contains("<script>alert(1)"),
        "injected script tag"
    );
    let title = head
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or("");
    assert!(!title.contains('<'), "unescaped title: {title}");
}

// ---------------------------------------------------------------------------------------------
// 4. Headers and cookies
// ---------------------------------------------------------------------------------------------

/// The value of one CSP directive, split into sources.
fn csp_directive<'a>(csp: &'a str, name: &str) -> Option<Vec<&'a str>> {
    csp.split(';').map(str::trim).find_map(|d| {
        let mut parts = d.split_whitespace();
        (parts.next() == Some(name)).then(|| parts.collect())
    })
}

/// Every `nonce="..."` attribute in an HTML body.
fn nonce_attributes(html: &str) -> Vec<&str> {
    html.split("nonce=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap_or(0)])
        .collect()
}

#[track_caller]
fn assert_page_headers(res: &Answer, what: &str, hsts: bool) {
    let ct = res.header("content-type").unwrap_or("");
    assert!(ct.starts_with("text/html"), "{what}: {ct}");
    let csp = res.header("content-security-policy").expect("CSP");
    assert_eq!(
        csp_directive(csp, "frame-ancestors"),
        Some(vec!["'none'"]),
        "{what}: {csp}"
    );
    assert!(!csp.contains("'unsafe-inline'"), "{what}: {csp}");
    let scripts = csp_directive(csp, "script-src").expect("script-src");
    assert!(!scripts.contains(&"'unsafe-eval'"), "{what}: {csp}");
    assert!(!scripts.contains(&"*"), "{what}: {csp}");
    let nonces: Vec<&str> = scripts
        .iter()
        .filter_map(|s| s.strip_prefix("'nonce-")?.strip_suffix('\''))
        .collect();
    assert_eq!(nonces.len(), 1, "{what}: {csp}");
    let nonce = nonces[0];
    assert!(nonce.len() >= 16, "{what}: nonce too short: {nonce}");
    let attrs = nonce_attributes(&res.body);
    assert!(!attrs.is_empty(), "{what}: no nonce attribute in the page");
    assert!(
        attrs.iter().all(|a| *a == nonce),
        "{what}: CSP nonce {nonce}, page nonces {attrs:?}"
    );
    // Every inline script carries the nonce.
    for tag in res.body.split("<script").skip(1) {
        let open = &tag[..tag.find('>').unwrap_or(0)];
        assert!(
            open.contains(&format!("nonce=\"{nonce}\"")),
            "{what}: script without nonce: <script{open}>"
        );
    }
    assert_common_headers(res, what, hsts);
}

#[track_caller]
fn assert_common_headers(res: &Answer, what: &str, hsts: bool) {
    assert_eq!(
        res.header("x-content-type-options"),
        Some("nosniff"),
        "{what}"
    );
    assert!(res.header("referrer-policy").is_some(), "{what}");
    assert!(res.header("permissions-policy").is_some(), "{what}");
    assert!(res.header("content-security-policy").is_some(), "{what}");
    let ct = res.header("content-type").unwrap_or("");
    if ct.starts_with("text/html") || ct.starts_with("application/json") {
        assert_eq!(res.header("cache-control"), Some("no-store"), "{what}");
    }
    if hsts {
        let h = res
            .header("strict-transport-security")
            .unwrap_or_else(|| panic!("{what}: no HSTS"));
        let age: u64 = h
            .split(';')
            .find_map(|p| p.trim().strip_prefix("max-age="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        assert!(age >= 180 * 24 * 3600, "{what}: {h}");
    } else {
        assert!(res.header("strict-transport-security").is_none(), "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_cookies() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut seen_nonces = Vec::new();
    for r in route_table(&app.subcloud, 1, app.alarm)
        .iter()
        .filter(|r| r.kind == Kind::Page)
    {
        let res = app.get(&r.target, &app.admin).await;
        assert_eq!(res.status, StatusCode::OK, "{}", r.target);
        assert_page_headers(&res, &r.target, false);
        seen_nonces.push(nonce_attributes(&res.body)[0].to_string());
    }
    for target in ["/login", "/setup", "/login?error=invalid&user=x"] {
        let res = app.call(Method::GET, target, None, "").await;
        assert_page_headers(&res, target, false);
        seen_nonces.push(nonce_attributes(&res.body)[0].to_string());
    }
    let res = app.get("/no/such/page", &app.admin).await;
    assert_eq!(res.status, StatusCode::NOT_FOUND);
    assert_page_headers(&res, "404 page", false);
    // A fresh nonce for every response.
    let mut unique = seen_nonces.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        seen_nonces.len(),
        "nonces repeat: {seen_nonces:?}"
    );

    // JSON answers, refusals and redirects: the same headers, never cached.
    for (target, cookie) in [
        ("/api/v1/overview", Some(app.admin.as_str())),
        ("/ui/fleet/overview", Some(app.admin.as_str())),
        ("/api/v1/subclouds/nowhere-0001", Some(app.admin.as_str())),
        ("/api/v1/overview", None),
        ("/ui/users/list", None),
        ("/healthz", None),
        ("/", None),
    ] {
        let res = app.call(Method::GET, target, cookie, "").await;
        assert_common_headers(&res, target, false);
        if res
            .header("content-type")
            .is_some_and(|c| c.contains("json"))
        {
            assert_eq!(res.header("cache-control"), Some("no-store"), "{target}");
        }
    }

    // The session cookie: HttpOnly, SameSite=Lax, whole site, not Secure over http.
    let res = app
        .login_form(&[("username", "viewer"), ("password", VIEWER_PASSWORD)])
        .await;
    assert_common_headers(&res, "login redirect", false);
    let cookie = &res.session_cookies()[0];
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    assert!(attrs.contains(&"HttpOnly"), "{cookie}");
    assert!(attrs.contains(&"SameSite=Lax"), "{cookie}");
    assert!(attrs.contains(&"Path=/"), "{cookie}");
    assert!(
        !attrs.iter().any(|a| a.eq_ignore_ascii_case("secure")),
        "{cookie}"
    );
    let value = attrs[0].trim_start_matches("murmur_session=");
    assert!(value.len() >= 40, "a session secret of 256 bits: {value}");
    // Logout clears it with the same attributes.
    let res = app.post("/logout", attrs[0], "").await;
    let cleared = &res.session_cookies()[0];
    assert!(
        cleared.starts_with("murmur_session=;")
            && cleared.contains("Max-Age=0")
            && cleared.contains("HttpOnly"),
        "{cleared}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_public_url_means_secure_cookies_and_hsts() {
    let app = TestApp::spawn_with(Backend::Sqlite, Some("https://noc.example.com")).await;
    assert_eq!(app.origin, "https://noc.example.com");
    // The cookie: Secure as well.
    let res = app
        .login_form(&[("username", "viewer"), ("password", VIEWER_PASSWORD)])
        .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER);
    let cookie = &res.session_cookies()[0];
    let attrs: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for a in ["HttpOnly", "SameSite=Lax", "Secure"] {
        assert!(attrs.contains(&a), "{a} missing: {cookie}");
    }
    assert_common_headers(&res, "login redirect", true);
    // HSTS everywhere.
    let res = app.get("/", &app.admin).await;
    assert_page_headers(&res, "/", true);
    for (target, cookie) in [
        ("/healthz", None),
        ("/login", None),
        ("/api/v1/overview", Some(app.admin.as_str())),
        ("/api/v1/overview", None),
    ] {
        let res = app.call(Method::GET, target, cookie, "").await;
        assert_common_headers(&res, target, true);
    }
    // Cross-site checks compare with the public origin, not the bound address.
    let before = app.tokens_of("admin").await.len();
    for (origin, ok) in [
        ("https://noc.example.com", true),
        ("https://NOC.example.com", true),
        (app.base.as_str(), false),
        ("http://noc.example.com", false),
        ("https://noc.example.com.evil.example", false),
        ("https://evil.example", false),
    ] {
        let res = app
            .send(
                app.request(Method::POST, "/ui/account/token-create")
                    .header("cookie", &app.admin)
                    .header("origin", origin)
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("name=tls"),
            )
            .await;
        if ok {
            assert_eq!(res.status, StatusCode::OK, "{origin}: {}", res.body);
        } else {
            assert_gate_json(&res, StatusCode::FORBIDDEN, "cross_site", origin);
        }
    }
    assert_eq!(app.tokens_of("admin").await.len(), before + 2);
    // Clearing cookies are Secure too.
    let res = app.get("/api/v1/overview", "murmur_session=stale").await;
    assert!(res.session_cookies()[0].contains("Secure"));
}

// ---------------------------------------------------------------------------------------------
// 5. API tokens
// ---------------------------------------------------------------------------------------------

async fn api_tokens(b: Backend) {
    let app = TestApp::spawn(b).await;
    let (admin_id, admin_token) = engine_token(&app, "admin", "ci").await;
    let (_, viewer_token) = engine_token(&app, "viewer", "grafana").await;
    let (_, operator_token) = engine_token(&app, "operator", "ansible").await;
    let bearer = |t: &str| format!("Bearer {t}");
    let with = |method: Method, target: &str, auth: String| {
        app.request(method, target).header("authorization", auth)
    };

    // Every REST read works with a token of any role.
    for token in [&admin_token, &viewer_token, &operator_token] {
        for r in route_table(&app.subcloud, 1, app.alarm)
            .iter()
            .filter(|r| r.kind == Kind::Rest)
        {
            let res = app.send(with(Method::GET, &r.target, bearer(token))).await;
            assert_eq!(res.status, StatusCode::OK, "{}: {}", r.target, res.body);
        }
    }
    let res = app
        .send(with(Method::GET, "/api/v1/overview", bearer(&admin_token)))
        .await;
    assert_eq!(res.json()["total"], 30);
    assert!(app.tokens_of("admin").await[0].last_used_at.is_some());

    // Tokens are for the REST API only: pages, server functions and forms refuse them.
    let before = app.snapshot().await;
    for r in route_table(&app.subcloud, admin_id, app.alarm)
        .iter()
        .filter(|r| r.kind != Kind::Rest)
    {
        let res = app
            .send(
                with(r.method.clone(), &r.target, bearer(&admin_token))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(r.body.clone()),
            )
            .await;
        assert_gate_json(
            &res,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            &format!("token on {} {}", r.method, r.target),
        );
    }
    assert_unchanged(&app, &before, "a token changed something outside /api").await;

    // Malformed and unknown tokens.
    let mut wrong = admin_token.clone();
    wrong.pop();
    wrong.push(if admin_token.ends_with('A') { 'B' } else { 'A' });
    for auth in [
        "Bearer".to_string(),
        "Bearer ".into(),
        "Bearer abc".into(),
        "Bearer mmt_".into(),
        format!("Bearer mmt_{}", "A".repeat(43)),
        format!("Bearer mmt_{}", "A".repeat(300)),
        format!("Bearer {admin_token}x"),
        format!("Bearer {wrong}"),
        format!("Bearer {}", admin_token.to_uppercase()),
        "Bearer ' OR 1=1 --".to_string(),
        format!("Basic {admin_token}"),
        format!("bearer{admin_token}"),
        // A session secret is not an API token.
        format!("Bearer {}", app.admin.trim_start_matches("murmur_session=")),
    ] {
        let res = app
            .send(with(Method::GET, "/api/v1/overview", auth.clone()))
            .await;
        assert_gate_json(&res, StatusCode::UNAUTHORIZED, "unauthenticated", &auth);
    }
    // Nor is an API token a session.
    let res = app
        .get("/api/v1/overview", &format!("murmur_session={admin_token}"))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // A viewer's token may not change anything, even where the REST API has no route yet;
    // an admin's reaches the router (no such method).
    for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let res = app
            .send(with(m.clone(), "/api/v1/overview", bearer(&viewer_token)))
            .await;
        assert_gate_json(
            &res,
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("viewer {m}"),
        );
        for t in [&admin_token, &operator_token] {
            let res = app
                .send(with(m.clone(), "/api/v1/overview", bearer(t)))
                .await;
            assert!(
                res.status.is_client_error() && res.status != StatusCode::UNAUTHORIZED,
                "{m}: {}",
                res.status
            );
        }
    }

    // Revoked: refused at once.
    let admin = app.user("admin").await.unwrap();
    app.engine
        .revoke_api_token(&Actor::user(&admin, None), admin_id)
        .await
        .unwrap();
    let res = app
        .send(with(Method::GET, "/api/v1/overview", bearer(&admin_token)))
        .await;
    assert_gate_json(&res, StatusCode::UNAUTHORIZED, "unauthenticated", "revoked");
    // Revoked through the dashboard too.
    let res = app
        .post("/ui/account/token-create", &app.admin, "name=dash")
        .await;
    let v = res.json();
    let (id, secret) = (
        v["token"]["id"].as_i64().unwrap(),
        v["secret"].as_str().unwrap().to_string(),
    );
    let res = app
        .send(with(Method::GET, "/api/v1/alarms", bearer(&secret)))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let res = app
        .post("/ui/account/token-revoke", &app.admin, &format!("id={id}"))
        .await;
    assert_eq!(res.status, StatusCode::OK);
    let res = app
        .send(with(Method::GET, "/api/v1/alarms", bearer(&secret)))
        .await;
    assert_eq!(res.status, StatusCode::UNAUTHORIZED);

    // A disabled user's token stops working; enabling brings it back.
    let system = Actor::system();
    app.engine
        .set_user_disabled(&system, "operator", true)
        .await
        .unwrap();
    let res = app
        .send(with(
            Method::GET,
            "/api/v1/overview",
            bearer(&operator_token),
        ))
        .await;
    assert_gate_json(
        &res,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        "disabled user",
    );
    app.engine
        .set_user_disabled(&system, "operator", false)
        .await
        .unwrap();
    let res = app
        .send(with(
            Method::GET,
            "/api/v1/overview",
            bearer(&operator_token),
        ))
        .await;
    assert_eq!(res.status, StatusCode::OK);
}

// ---------------------------------------------------------------------------------------------
// Sessions and redirects
// ---------------------------------------------------------------------------------------------

async fn sessions_end_when_they_should(b: Backend) {
    let app = TestApp::spawn(b).await;
    let alive = |c: String| {
        let app = &app;
        async move { app.get("/api/v1/overview", &c).await.status == StatusCode::OK }
    };
    // Logging in again with a session rotates it: the old one ends (no fixation).
    let res = app
        .send(
            app.request(Method::POST, "/login")
                .header("origin", &app.origin)
                .header("cookie", &app.viewer)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form(&[
                    ("username", "viewer"),
                    ("password", VIEWER_PASSWORD),
                ])),
        )
        .await;
    let rotated = res.session_cookies()[0]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(rotated, app.viewer);
    assert!(
        !alive(app.viewer.clone()).await,
        "the pre-login session survived"
    );
    assert!(alive(rotated.clone()).await);
    // Logout ends the session on the server, not just in the browser.
    app.post("/logout", &rotated, "").await;
    assert!(!alive(rotated).await);

    // A password change ends the user's other sessions and keeps this one.
    let other = app.login("operator", OPERATOR_PASSWORD).await;
    let res = app
        .post(
            "/ui/account/password",
            &app.operator,
            &form(&[
                ("current", OPERATOR_PASSWORD),
                ("password", GOOD_PASSWORD),
                ("confirm", GOOD_PASSWORD),
            ]),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(alive(app.operator.clone()).await);
    assert!(
        !alive(other).await,
        "another session survived a password change"
    );
    let res = app
        .login_form(&[("username", "operator"), ("password", OPERATOR_PASSWORD)])
        .await;
    assert!(res
        .header("location")
        .unwrap_or("")
        .starts_with("/login?error="));

    // Disabling a user ends their sessions; an admin's reset ends them too.
    let res = app
        .post(
            "/ui/users/disabled",
            &app.admin,
            &form(&[("username", "operator"), ("disabled", "true")]),
        )
        .await;
    assert_eq!(res.status, StatusCode::OK, "{}", res.body);
    assert!(!alive(app.operator.clone()).await);
    let res = app
        .login_form(&[("username", "operator"), ("password", GOOD_PASSWORD)])
        .await;
    assert!(
        res.session_cookies().is_empty(),
        "a disabled user signed in"
    );

    // Throttling: after repeated failures even the right password is refused for a while.
    for _ in 0..5 {
        let res = app
            .login_form(&[("username", "viewer"), ("password", "wrong password!")])
            .await;
        assert!(res.session_cookies().is_empty());
    }
    let res = app
        .login_form(&[("username", "viewer"), ("password", VIEWER_PASSWORD)])
        .await;
    assert!(
        res.session_cookies().is_empty(),
        "throttled login succeeded"
    );
    let loc = res.header("location").unwrap_or("").to_string();
    assert!(loc.starts_with("/login?error=throttled"), "{loc}");
    let page = app.call(Method::GET, &loc, None, "").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_redirects_stay_on_site() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (next, want) in [
        ("/subclouds?alarm=critical", "/subclouds?alarm=critical"),
        ("//evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/\\evil.example", "/"),
        ("/\t/evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("\\\\evil.example", "/"),
    ] {
        let res = app
            .login_form(&[
                ("username", "viewer"),
                ("password", VIEWER_PASSWORD),
                ("next", next),
            ])
            .await;
        assert_eq!(res.status, StatusCode::SEE_OTHER);
        assert_eq!(res.header("location"), Some(want), "next={next:?}");
    }
    // The page's own redirect to the login form keeps `next` local too.
    let res = app.call(Method::GET, "//evil.example/x", None, "").await;
    if res.status == StatusCode::SEE_OTHER {
        let loc = res.header("location").unwrap_or("");
        assert!(
            loc.starts_with("/login?next=") && !loc.contains("//evil"),
            "{loc}"
        );
    }
}

/// A chunked request body of 70 KiB (over the 64 KiB limit) that announces no length.
fn chunked_over_limit() -> Vec<u8> {
    let mut body = Vec::new();
    for _ in 0..70 {
        body.extend_from_slice(b"400\r\n");
        body.extend_from_slice(&[b'x'; 1024]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

/// Embeds: each view opens with its own valid token and nothing else, without a session and
/// setting none; only the listed origins may frame them; they are read-only.
async fn embeds_open_with_their_token_only(b: Backend) {
    use engine::embeds::{EmbedKind, NewEmbedLink};
    let app = TestApp::spawn(b).await;
    let admin = Actor::user(&app.user("admin").await.expect("admin"), None);
    let create = |kind, target: &str| {
        let req = NewEmbedLink {
            kind,
            target: target.into(),
            label: "portal".into(),
            expires_in_secs: 3600,
        };
        let engine = app.engine.clone();
        let admin = admin.clone();
        async move { engine.create_embed_link(&admin, &req).await.expect("link") }
    };
    let links = [
        (create(EmbedKind::Status, "").await, "Fleet status"),
        (
            create(EmbedKind::Map, "region=europe").await,
            "sites in view",
        ),
        (
            create(EmbedKind::Strategy, &STRATEGY.to_string()).await,
            "Waves",
        ),
        (
            create(EmbedKind::PeerGroup, "pg-eu-west").await,
            "pg-eu-west",
        ),
    ];
    app.engine
        .add_embed_origin(&admin, "http://portal.test:8080")
        .await
        .expect("origin");
    let garbage = "murmur_session=not-a-session-3f9c";
    for (link, shows) in &links {
        let token = link.path.split_once("?t=").expect("token").1;
        for cookie in [None, Some(garbage)] {
            let res = app.call(Method::GET, &link.path, cookie, "").await;
            let what = format!("{} (cookie {cookie:?})", link.path);
            assert_eq!(res.status, StatusCode::OK, "{what}: {}", res.body);
            assert!(res
                .header("content-type")
                .unwrap_or("")
                .starts_with("text/html"));
            let csp = res.header("content-security-policy").unwrap_or("");
            assert!(
                csp.contains("frame-ancestors http://portal.test:8080"),
                "{what}: {csp}"
            );
            assert_eq!(res.header("x-frame-options"), None, "{what}");
            assert!(
                res.headers.get("set-cookie").is_none(),
                "{what} set a cookie"
            );
            assert!(
                res.body.contains(shows),
                "{what}: no {shows:?} in {}",
                res.body
            );
            assert!(!res.body.contains("<form"), "{what}: an embed has no forms");
            assert!(
                !res.body.contains("Sign out"),
                "{what}: no dashboard header"
            );
        }
        let f = format!("/ui{}?token={token}", link.path.split_once('?').unwrap().0);
        let res = app.call(Method::GET, &f, None, "").await;
        assert_eq!(res.status, StatusCode::OK, "{f}: {}", res.body);
        assert_eq!(res.json()["label"], "portal");
        // Read-only: no method but GET reaches the view.
        let res = app.call(Method::POST, &f, None, "token=x").await;
        assert_eq!(res.status, StatusCode::METHOD_NOT_ALLOWED, "{f}");
    }
    let (status, _) = &links[0];
    let status_token = status.path.split_once("?t=").unwrap().1.to_string();
    // The map's token does not open the status view; no token, a forged one neither.
    let map_token = links[1].0.path.split_once("?t=").unwrap().1;
    let (id, sig) = status_token.split_once('.').unwrap();
    let forged = format!("{id}.{}", sig.chars().rev().collect::<String>());
    for (target, reason) in [
        (
            format!("/embed/status?t={map_token}"),
            "opens the fleet map view",
        ),
        ("/embed/status".to_string(), "not valid"),
        (format!("/embed/status?t={forged}"), "not valid"),
    ] {
        let res = app.call(Method::GET, &target, None, "").await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{target}");
        assert!(res.body.contains(reason), "{target}: {}", res.body);
    }
    // Dashboard pages still refuse every frame, and need a session.
    let res = app.get("/status", &app.admin).await;
    assert!(res
        .header("content-security-policy")
        .is_some_and(|c| c.contains("frame-ancestors 'none'")));
    // Revoked: refused at once.
    app.engine
        .revoke_embed_link(&admin, status.id)
        .await
        .expect("revoke");
    let res = app.call(Method::GET, &status.path, None, "").await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert!(res.body.contains("revoked"), "{}", res.body);
    // An origin taken off the list may no longer frame.
    app.engine
        .remove_embed_origin(&admin, "http://portal.test:8080")
        .await
        .expect("remove");
    let res = app.call(Method::GET, &links[1].0.path, None, "").await;
    assert!(res
        .header("content-security-policy")
        .is_some_and(|c| c.contains("frame-ancestors 'none'")));
}

//! Building controllers in a process that is already serving pages must never stall a page.
//!
//! The cause this guards against: generating Leptos' route list renders the app with a
//! process-wide "suppress resource loads" flag set (leptos_server), and a resource whose
//! loader is first polled while it is set, in any request of any app in the process, waits
//! forever. Each `Application::build` used to generate the list, so a process that built an
//! app while another served (the demo's peer controllers, parallel tests) could leave a page
//! hanging until the 30 s request timeout answered 408. The list is now generated once per
//! process ([`server::startup::page_routes`]).
//!
//! The server's own request timeout is the detector: a stalled page answers 408 (or the
//! client gives up), never a slow 200, so the test asserts outcomes, not durations.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::store::Backend;
use engine::testing::TestDb;
use engine::Engine;
use reqwest::StatusCode;
use server::config::{Config, LogFormat};
use server::Application;

/// Apps built while pages render. Each build used to open a window in which any page of the
/// process could stall; before the fix this many builds stalled a page in every run tried.
const BUILDS: usize = 24;
/// Pages that load data through resources (server functions), rendered over and over.
const PAGES: [&str; 6] = [
    "/",
    "/subclouds",
    "/alarms",
    "/status",
    "/orchestration",
    "/peer-groups",
];

fn config(db: &TestDb) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: db.url.clone(),
        site_root: std::env::temp_dir(),
        log_format: LogFormat::Text,
        public_url: None,
        session: Default::default(),
        health: Default::default(),
        geo: None,
        demo: false,
    }
}

/// Builds and starts an app on `engine`; returns its base URL.
async fn serve(db: &TestDb, engine: &Engine) -> String {
    let app = Application::build(&config(db), engine.clone())
        .await
        .expect("build app");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped());
    base
}

async fn login(client: &reqwest::Client, base: &str) -> String {
    let res = client
        .post(format!("{base}/login"))
        .header("origin", base)
        .form(&[
            ("username", "viewer"),
            ("password", "viewer-demo-password"),
            ("next", "/"),
        ])
        .send()
        .await
        .expect("login request");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "demo viewer login");
    let cookie = res.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn building_apps_while_pages_render_stalls_no_page() {
    let db = TestDb::new(Backend::Sqlite).await;
    let engine = db.engine().await;
    engine.seed_demo(30).await.expect("seed");
    engine.ensure_demo_users().await.expect("demo users");
    let base = serve(&db, &engine).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // Longer than the server's 30 s request timeout: a stall shows as its 408.
        .timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    let cookie = login(&client, &base).await;

    // Two readers render pages without pause until every build is done.
    let stop = Arc::new(AtomicBool::new(false));
    let rendered = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for offset in 0..2 {
        let (client, base, cookie) = (client.clone(), base.clone(), cookie.clone());
        let (stop, rendered) = (stop.clone(), rendered.clone());
        readers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut i = offset;
            while !stop.load(Ordering::Relaxed) {
                let page = PAGES[i % PAGES.len()];
                i += 1;
                match client
                    .get(format!("{base}{page}"))
                    .header("cookie", &cookie)
                    .send()
                    .await
                {
                    Ok(res) if res.status() == StatusCode::OK => {
                        // The whole body: a stall can also strike after the head was sent.
                        match res.text().await {
                            Ok(body) if body.contains("</html>") => {
                                rendered.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(_) => failures.push(format!("{page}: the page never finished")),
                            Err(e) => failures.push(format!("{page}: body: {e}")),
                        }
                    }
                    Ok(res) => failures.push(format!("{page}: {}", res.status())),
                    Err(e) => failures.push(format!("{page}: {e}")),
                }
            }
            failures
        }));
    }

    // Meanwhile: more controllers in the same process, each serving a page at once too.
    let mut built = Vec::new();
    for _ in 0..BUILDS {
        built.push(serve(&db, &engine).await);
    }
    let mut failures = Vec::new();
    for other in &built {
        let res = client
            .get(format!("{other}/status"))
            .header("cookie", &cookie)
            .send()
            .await;
        match res {
            Ok(r) if r.status() == StatusCode::OK => {}
            Ok(r) => failures.push(format!("{other}/status: {}", r.status())),
            Err(e) => failures.push(format!("{other}/status: {e}")),
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        failures.extend(r.await.expect("reader task"));
    }
    assert!(
        failures.is_empty(),
        "pages stalled or failed while apps were built: {failures:?}"
    );
    assert!(
        rendered.load(Ordering::Relaxed) >= 2,
        "the readers rendered pages while the apps were built"
    );
}

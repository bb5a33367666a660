//! Test databases on both backends: a fresh SQLite file in a temporary directory, or a fresh
//! PostgreSQL database on the machine's server, created for one test and dropped after it.
//! PostgreSQL is not optional: if it cannot be reached the test fails and says why.
//! Compiled only with the `testing` feature (the test suites of this workspace enable it).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::store::{Backend, Store};
use crate::Engine;

/// Where the PostgreSQL server for tests is; any database on it will do for creating others.
pub fn postgres_admin_url() -> String {
    std::env::var("MURMUR_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A database that exists for the lifetime of this value.
pub struct TestDb {
    pub url: String,
    pub backend: Backend,
    _dir: Option<tempfile::TempDir>,
    pg_name: Option<String>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("murmur.db").display());
                Self {
                    url,
                    backend,
                    _dir: Some(dir),
                    pg_name: None,
                }
            }
            Backend::Postgres => {
                let name = format!(
                    "murmur_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.subsec_nanos())
                        .unwrap_or(0)
                );
                let admin = admin_store().await;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(admin.pool())
                    .await
                    .expect("create test database");
                admin.close().await;
                let base = postgres_admin_url();
                let root = base.rsplit_once('/').map(|(r, _)| r).unwrap_or(&base);
                Self {
                    url: format!("{root}/{name}"),
                    backend,
                    _dir: None,
                    pg_name: Some(name),
                }
            }
        }
    }

    pub async fn engine(&self) -> Engine {
        Engine::open(&self.url).await.expect("open store")
    }
}

async fn admin_store() -> Store {
    let url = postgres_admin_url();
    match Store::connect(&url).await {
        Ok(s) => s,
        Err(e) => panic!(
            "PostgreSQL is required for the test suite and is unreachable at {url}: {e}. \
             Start it (pg_ctlcluster --skip-systemctl-redirect 15 main start) or point \
             MURMUR_TEST_POSTGRES_URL at a server."
        ),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            // Drop runs outside any runtime guarantee: use a private one on its own thread.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async {
                        if let Ok(admin) = Store::connect(&postgres_admin_url()).await {
                            let _ = sqlx::query(&format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            ))
                            .execute(admin.pool())
                            .await;
                            admin.close().await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

/// Runs each listed `async fn(Backend)` as two tests, one per backend.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::store::Backend::Sqlite).await }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() { super::$name($crate::store::Backend::Postgres).await }
            )+
        }
    };
}

/// The agent intake of tests: reports every `interval_ms`, offline after 3 missed, online after
/// 2 good ones.
pub fn intake_policy(interval_ms: i64) -> crate::agents::IntakePolicy {
    crate::agents::IntakePolicy {
        hysteresis: crate::health::HysteresisPolicy {
            interval_ms,
            offline_after_missed: 3,
            online_after_reports: 2,
        },
        ..Default::default()
    }
}

/// A signed-in user with `role` (an operator "op", a viewer "view"…).
pub fn user_actor(name: &str, role: crate::auth::Role) -> crate::auth::Actor {
    crate::auth::Actor {
        user_id: Some(2),
        name: name.into(),
        role: Some(role),
        client_addr: None,
    }
}

/// Enrolls the agent of every subcloud (the gateway must be started); returns (name, secret).
pub async fn enroll_all(engine: &Engine) -> Vec<(String, String)> {
    use crate::agents::wire::{EnrollRequest, PROTOCOL_VERSION};
    let tokens = engine
        .issue_enrollments(
            &crate::auth::Actor::system(),
            &crate::agents::EnrollmentRequest {
                subclouds: vec![],
                all: true,
            },
        )
        .await
        .expect("enrollment tokens");
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        let e = engine
            .enroll_agent(&EnrollRequest {
                protocol: PROTOCOL_VERSION,
                subcloud: t.subcloud.clone(),
                enrollment_token: t.token,
            })
            .await
            .expect("enrollment");
        out.push((t.subcloud, e.secret));
    }
    out
}

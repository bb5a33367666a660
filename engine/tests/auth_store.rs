//! Users, sessions, API tokens, the login throttle, first-start setup and the audit query,
//! end to end on a real database: the same suite on SQLite and PostgreSQL.
//!
//! Password hashing is Argon2id (19 MiB) and slow in debug builds, so each test creates only
//! the users it needs.

use std::time::Duration;

use engine::audit::{AuditPage, AuditQuery, AuditRecord};
use engine::auth::throttle::{Limit, ThrottlePolicy};
use engine::auth::{Actor, Role, SessionPolicy, User};
use engine::both_backends;
use engine::events::Event;
use engine::store::{Backend, Store};
use engine::testing::TestDb;
use engine::time::Millis;
use engine::{Engine, Error};
use sha2::{Digest, Sha256};

both_backends!(
    create_user_is_admin_only_validated_and_audited,
    login_keeps_only_a_hash_and_failures_look_alike,
    sessions_end_on_logout_idle_and_absolute_expiry,
    throttle_blocks_per_user_then_per_address,
    roles_and_disabling_are_audited_and_keep_an_admin,
    password_reset_and_change_end_other_sessions,
    api_tokens_authenticate_until_revoked,
    setup_creates_the_first_admin_once,
    demo_users_are_created_once_and_log_in,
    audit_page_filters_and_paginates,
);

/// The message every failed login gets, whatever the reason.
const LOGIN_REFUSED: &str = "wrong user name or password";
const ADMIN_PW: &str = "root password 0001";
const ALICE_PW: &str = "alice password 0001";
const BOB_PW: &str = "bob password 0001";

/// What the store keeps of session and API token secrets: SHA-256, lowercase hex. (The
/// engine's own `secret_hash` lives in a private module, so it is recomputed here.)
fn sha256_hex(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn policy() -> SessionPolicy {
    SessionPolicy::default()
}

fn actor(user: &User) -> Actor {
    Actor::user(user, Some("192.0.2.10".into()))
}

/// An actor with `role` that exists only as a claim (for permission checks).
fn actor_with(role: Role, name: &str) -> Actor {
    Actor {
        user_id: Some(9_999),
        name: name.into(),
        role: Some(role),
        client_addr: None,
    }
}

async fn scalar(engine: &Engine, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(engine.store().pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn audit_count(engine: &Engine) -> i64 {
    scalar(engine, "SELECT COUNT(*) FROM audit_log").await
}

async fn last_audit(engine: &Engine) -> AuditRecord {
    engine
        .recent_audit(1)
        .await
        .unwrap()
        .pop()
        .expect("an audit record")
}

async fn sessions_with_hash(engine: &Engine, token: &str) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM sessions WHERE token_hash = $1")
        .bind(sha256_hex(token))
        .fetch_one(engine.store().pool())
        .await
        .unwrap()
}

#[track_caller]
fn expect_validation<T: std::fmt::Debug>(r: Result<T, Error>, field: &str) {
    match r {
        Err(Error::Validation(e)) => assert_eq!(e.field, field, "{e}"),
        other => panic!("expected a validation error on {field:?}, got {other:?}"),
    }
}

#[track_caller]
fn expect_forbidden<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::Forbidden(_))),
        "expected forbidden, got {r:?}"
    );
}

#[track_caller]
fn expect_conflict<T: std::fmt::Debug>(r: Result<T, Error>) {
    assert!(
        matches!(r, Err(Error::Conflict(_))),
        "expected a conflict, got {r:?}"
    );
}

#[track_caller]
fn expect_not_found<T: std::fmt::Debug>(r: Result<T, Error>, what: &str) {
    match r {
        Err(Error::NotFound { what: w, .. }) => assert_eq!(w, what),
        other => panic!("expected {what} not found, got {other:?}"),
    }
}

/// The message of an `Unauthenticated` error (anything else fails the test).
#[track_caller]
fn unauthenticated<T: std::fmt::Debug>(r: Result<T, Error>) -> String {
    match r {
        Err(Error::Unauthenticated(m)) => m,
        other => panic!("expected unauthenticated, got {other:?}"),
    }
}

#[track_caller]
fn throttled<T: std::fmt::Debug>(r: Result<T, Error>) -> u64 {
    match r {
        Err(Error::Throttled { retry_after_secs }) => retry_after_secs,
        other => panic!("expected throttled, got {other:?}"),
    }
}

async fn create(engine: &Engine, by: &Actor, name: &str, password: &str, role: Role) -> User {
    engine
        .create_user(by, name, password, role)
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"))
}

async fn login(engine: &Engine, name: &str, password: &str) -> String {
    engine
        .login(name, password, "192.0.2.1", policy())
        .await
        .unwrap_or_else(|e| panic!("login {name}: {e}"))
        .session_token
}

async fn create_user_is_admin_only_validated_and_audited(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    assert_eq!(engine.user_count().await.unwrap(), 0);
    let mut events = engine.events().subscribe();

    let root = create(&engine, &Actor::system(), "root", ADMIN_PW, Role::Admin).await;
    assert_eq!((root.name.as_str(), root.role), ("root", Role::Admin));
    assert!(!root.disabled && root.last_login_at.is_none());
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.role.as_str(), a.action.as_str()),
        ("system", "system", "user.create")
    );
    match events.try_recv() {
        Ok(Event::UserChanged { name }) => assert_eq!(name, "root"),
        other => panic!("expected a UserChanged event, got {other:?}"),
    }

    let before = Millis::now();
    let alice = create(&engine, &actor(&root), "alice", ALICE_PW, Role::Operator).await;
    assert_eq!(alice.role, Role::Operator);
    assert!(alice.created_at >= before && alice.created_at <= Millis::now());
    assert_ne!(alice.id, root.id);
    let a = last_audit(&engine).await.entry;
    assert_eq!(a.actor, "root");
    assert_eq!(a.role, "admin");
    assert_eq!(a.action, "user.create");
    assert_eq!(a.target, "alice");
    assert_eq!(a.outcome, "ok");
    assert_eq!(a.client_addr.as_deref(), Some("192.0.2.10"));
    assert!(a.summary.contains("operator"), "{}", a.summary);
    let vic = create(&engine, &actor(&root), "vic", BOB_PW, Role::Viewer).await;

    let users = engine.list_users(&actor(&root)).await.unwrap();
    let names: Vec<&str> = users.iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["alice", "root", "vic"]);
    assert_eq!(users[0], alice);

    // Operators and viewers may not manage users, and their attempts change nothing.
    let users_before = engine.user_count().await.unwrap();
    let audit_before = audit_count(&engine).await;
    for who in [actor(&alice), actor(&vic)] {
        expect_forbidden(
            engine
                .create_user(&who, "mallory", "mallory password 1", Role::Admin)
                .await,
        );
        expect_forbidden(engine.list_users(&who).await);
    }
    assert_eq!(engine.user_count().await.unwrap(), users_before);
    assert_eq!(audit_count(&engine).await, audit_before);

    // Bad input is refused with the field at fault, and changes nothing either.
    let admin = actor(&root);
    expect_validation(
        engine
            .create_user(&admin, "alice", "another password 1", Role::Viewer)
            .await,
        "username",
    );
    let long = "a".repeat(65);
    for bad in ["", ".alice", "a b", "ädmin", "x'--", "x/y", long.as_str()] {
        expect_validation(
            engine
                .create_user(&admin, bad, "a fine password 1", Role::Viewer)
                .await,
            "username",
        );
    }
    let too_long = "ab".repeat(129);
    for bad in [
        "short",
        "elevenchars",
        "aaaaaaaaaaaaaaaaaaaa",
        too_long.as_str(),
    ] {
        expect_validation(
            engine
                .create_user(&admin, "newcomer", bad, Role::Viewer)
                .await,
            "password",
        );
    }
    assert_eq!(engine.user_count().await.unwrap(), users_before);
    assert_eq!(audit_count(&engine).await, audit_before);
    // The refused duplicate did not touch the existing user's password.
    login(&engine, "alice", ALICE_PW).await;
}

async fn login_keeps_only_a_hash_and_failures_look_alike(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    create(&engine, &Actor::system(), "alice", ALICE_PW, Role::Operator).await;

    let before = Millis::now();
    let out = engine
        .login("alice", ALICE_PW, "198.51.100.7", policy())
        .await
        .unwrap();
    let token = out.session_token.clone();
    assert_eq!(token.len(), 43, "256 bits of base64url");
    assert!(token
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    assert_eq!(out.user.name, "alice");
    assert_eq!(out.user.role, Role::Operator);
    let logged_at = out.user.last_login_at.expect("last login is set");
    assert!(logged_at >= before);
    let day = 24 * 3600 * 1000;
    assert!(out.expires_at.0 >= before.0 + day && out.expires_at.0 <= Millis::now().0 + day);
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.outcome.as_str()),
        ("alice", "auth.login", "ok")
    );
    assert_eq!(a.client_addr.as_deref(), Some("198.51.100.7"));

    // The store holds the SHA-256 of the token, never the token.
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT token_hash, client_addr FROM sessions")
            .fetch_all(engine.store().pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [(sha256_hex(&token), Some("198.51.100.7".to_string()))]
    );
    assert!(!rows[0].0.contains(&token));
    let stored: Option<i64> = sqlx::query_scalar("SELECT last_login_at FROM users WHERE name = $1")
        .bind("alice")
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    assert_eq!(stored, Some(logged_at.0));

    let second = login(&engine, "alice", ALICE_PW).await;
    assert_ne!(second, token, "every login gets its own secret");
    assert_eq!(scalar(&engine, "SELECT COUNT(*) FROM sessions").await, 2);

    // Wrong password, unknown user, wrong case: the same answer, each audited as denied.
    let audit_before = audit_count(&engine).await;
    let wrong = engine
        .login("alice", "not alices password", "203.0.113.5", policy())
        .await;
    let wrong_msg = unauthenticated(wrong);
    let unknown = engine
        .login("nobody", ALICE_PW, "203.0.113.5", policy())
        .await;
    let unknown_msg = unauthenticated(unknown);
    let cased = unauthenticated(
        engine
            .login("ALICE", ALICE_PW, "203.0.113.5", policy())
            .await,
    );
    assert_eq!(wrong_msg, LOGIN_REFUSED);
    assert_eq!(unknown_msg, wrong_msg);
    assert_eq!(cased, wrong_msg);
    let audit = engine.recent_audit(3).await.unwrap();
    assert_eq!(audit_count(&engine).await, audit_before + 3);
    let tried: Vec<&str> = audit.iter().map(|r| r.entry.actor.as_str()).collect();
    assert_eq!(tried, ["ALICE", "nobody", "alice"], "newest first");
    for r in &audit {
        let e = &r.entry;
        assert_eq!(e.action, "auth.login");
        assert_eq!(e.outcome, "denied");
        assert_eq!(e.role, "anonymous");
        assert_eq!(e.target, e.actor);
        assert_eq!(e.client_addr.as_deref(), Some("203.0.113.5"));
        assert!(!e.summary.contains(ALICE_PW), "{}", e.summary);
    }
    assert_eq!(
        scalar(&engine, "SELECT COUNT(*) FROM sessions").await,
        2,
        "failures open no session"
    );

    // A disabled user cannot log in, even with the right password.
    engine
        .set_user_disabled(&Actor::system(), "alice", true)
        .await
        .unwrap();
    let msg = unauthenticated(
        engine
            .login("alice", ALICE_PW, "198.51.100.7", policy())
            .await,
    );
    assert_eq!(msg, LOGIN_REFUSED);
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.outcome.as_str()),
        ("alice", "auth.login", "denied")
    );
    assert_eq!(scalar(&engine, "SELECT COUNT(*) FROM sessions").await, 0);
}

async fn sessions_end_on_logout_idle_and_absolute_expiry(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let alice = create(&engine, &Actor::system(), "alice", ALICE_PW, Role::Viewer).await;
    let me = actor(&alice);

    let token = login(&engine, "alice", ALICE_PW).await;
    let u = engine.authenticate_session(&token, policy()).await.unwrap();
    assert_eq!(
        (u.id, u.name.as_str(), u.role),
        (alice.id, "alice", Role::Viewer)
    );
    for bogus in [
        "",
        "x",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        sha256_hex(&token).as_str(),
    ] {
        unauthenticated(engine.authenticate_session(bogus, policy()).await);
    }

    // Logout ends the session and is audited; logging out twice is harmless and silent.
    engine.logout(&me, &token).await.unwrap();
    unauthenticated(engine.authenticate_session(&token, policy()).await);
    assert_eq!(sessions_with_hash(&engine, &token).await, 0);
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str()),
        ("alice", "auth.logout")
    );
    let audit_before = audit_count(&engine).await;
    engine.logout(&me, &token).await.unwrap();
    assert_eq!(audit_count(&engine).await, audit_before);

    // Idle: a session unused for longer than the policy's idle time ends and is deleted.
    let idle = login(&engine, "alice", ALICE_PW).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let short_idle = SessionPolicy {
        idle: Duration::from_millis(200),
        ..policy()
    };
    unauthenticated(engine.authenticate_session(&idle, short_idle).await);
    assert_eq!(sessions_with_hash(&engine, &idle).await, 0, "row deleted");
    unauthenticated(engine.authenticate_session(&idle, policy()).await);

    // Use refreshes the idle timer (written at most once a minute).
    let busy = login(&engine, "alice", ALICE_PW).await;
    let long_ago = Millis::now().0 - 61_000;
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
        .bind(long_ago)
        .bind(sha256_hex(&busy))
        .execute(engine.store().pool())
        .await
        .unwrap();
    let two_minutes = SessionPolicy {
        idle: Duration::from_secs(120),
        ..policy()
    };
    engine
        .authenticate_session(&busy, two_minutes)
        .await
        .unwrap();
    let seen: i64 = sqlx::query_scalar("SELECT last_seen_at FROM sessions WHERE token_hash = $1")
        .bind(sha256_hex(&busy))
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    assert!(seen > long_ago + 60_000, "last_seen_at was refreshed");
    let ten_seconds = SessionPolicy {
        idle: Duration::from_secs(10),
        ..policy()
    };
    engine
        .authenticate_session(&busy, ten_seconds)
        .await
        .expect("refreshed session is not idle");

    // Absolute: a session ends at its expiry however busy it is.
    let brief = SessionPolicy {
        absolute: Duration::from_millis(1),
        ..policy()
    };
    let start = Millis::now();
    let out = engine
        .login("alice", ALICE_PW, "192.0.2.1", brief)
        .await
        .unwrap();
    assert!(out.expires_at.0 <= Millis::now().0 + 1 && out.expires_at >= start);
    tokio::time::sleep(Duration::from_millis(50)).await;
    unauthenticated(
        engine
            .authenticate_session(&out.session_token, policy())
            .await,
    );
    assert_eq!(sessions_with_hash(&engine, &out.session_token).await, 0);

    // Expired sessions are swept at the next login even if never presented again.
    let forgotten = engine
        .login("alice", ALICE_PW, "192.0.2.1", brief)
        .await
        .unwrap()
        .session_token;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(sessions_with_hash(&engine, &forgotten).await, 1);
    let fresh = login(&engine, "alice", ALICE_PW).await;
    assert_eq!(sessions_with_hash(&engine, &forgotten).await, 0, "swept");
    engine.authenticate_session(&fresh, policy()).await.unwrap();
    engine.authenticate_session(&busy, policy()).await.unwrap();
}

async fn throttle_blocks_per_user_then_per_address(b: Backend) {
    let db = TestDb::new(b).await;
    let minute = Duration::from_secs(60);
    let engine = Engine::with_throttle(
        Store::open(&db.url).await.unwrap(),
        ThrottlePolicy {
            per_user: Limit {
                max_failures: 3,
                window: minute,
            },
            per_address: Limit {
                max_failures: 10,
                window: minute,
            },
        },
    );
    let system = Actor::system();
    create(&engine, &system, "alice", ALICE_PW, Role::Operator).await;
    create(&engine, &system, "bob", BOB_PW, Role::Viewer).await;
    create(
        &engine,
        &system,
        "carol",
        "carol password 0001",
        Role::Viewer,
    )
    .await;

    // Per user: three failures, then even the right password (from anywhere) must wait.
    for _ in 0..3 {
        let r = engine
            .login("alice", "a wrong password", "10.0.0.1", policy())
            .await;
        assert_eq!(unauthenticated(r), LOGIN_REFUSED);
    }
    for addr in ["10.0.0.1", "10.0.0.2"] {
        let wait = throttled(engine.login("alice", ALICE_PW, addr, policy()).await);
        assert!((1..=60).contains(&wait), "retry after {wait} s");
    }
    assert_eq!(
        scalar(&engine, "SELECT COUNT(*) FROM sessions").await,
        0,
        "a throttled login opens no session"
    );
    // The same address still serves other users.
    engine
        .login("bob", BOB_PW, "10.0.0.1", policy())
        .await
        .expect("bob is not throttled by alice's failures");

    // A success clears the user's failures: 2 + 2 failures around one success never block.
    for round in 0..2 {
        for _ in 0..2 {
            unauthenticated(engine.login("bob", "bad", "10.0.0.3", policy()).await);
        }
        engine
            .login("bob", BOB_PW, "10.0.0.3", policy())
            .await
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
    }

    // Per address: ten failures spread over names (none reaching the per-user limit) block
    // every name from that address, but not the same name from another address.
    for i in 0..10 {
        let r = engine
            .login(
                &format!("ghost{}", i / 2),
                "guess guess",
                "10.0.0.9",
                policy(),
            )
            .await;
        unauthenticated(r);
    }
    let wait = throttled(
        engine
            .login("carol", "carol password 0001", "10.0.0.9", policy())
            .await,
    );
    assert!((1..=60).contains(&wait), "retry after {wait} s");
    engine
        .login("carol", "carol password 0001", "10.0.0.10", policy())
        .await
        .expect("carol from another address");
}

async fn roles_and_disabling_are_audited_and_keep_an_admin(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let system = Actor::system();
    let root = create(&engine, &system, "root", ADMIN_PW, Role::Admin).await;
    let alice = create(&engine, &system, "alice", ALICE_PW, Role::Operator).await;
    create(&engine, &system, "bob", BOB_PW, Role::Viewer).await;
    let admin = actor(&root);

    let changed = engine
        .set_user_role(&admin, "alice", Role::Viewer)
        .await
        .unwrap();
    assert_eq!((changed.id, changed.role), (alice.id, Role::Viewer));
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("root", "user.role", "alice")
    );
    assert_eq!(a.summary, "role operator -> viewer");
    // Setting the same role again is a no-op, not a new audit entry.
    let audit_before = audit_count(&engine).await;
    engine
        .set_user_role(&admin, "alice", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(audit_count(&engine).await, audit_before);

    expect_not_found(
        engine.set_user_role(&admin, "nobody", Role::Viewer).await,
        "user",
    );
    expect_not_found(
        engine.set_user_disabled(&admin, "nobody", true).await,
        "user",
    );
    for role in [Role::Operator, Role::Viewer] {
        let who = actor_with(role, "someone");
        expect_forbidden(engine.set_user_role(&who, "bob", Role::Admin).await);
        expect_forbidden(engine.set_user_disabled(&who, "root", true).await);
    }
    assert_eq!(audit_count(&engine).await, audit_before);

    // The last enabled admin can be neither demoted nor disabled.
    expect_conflict(engine.set_user_role(&admin, "root", Role::Operator).await);
    expect_conflict(engine.set_user_disabled(&admin, "root", true).await);
    let users = engine.list_users(&admin).await.unwrap();
    let r = users.iter().find(|u| u.name == "root").unwrap();
    assert_eq!((r.role, r.disabled), (Role::Admin, false));
    assert_eq!(audit_count(&engine).await, audit_before);

    // A disabled second admin does not count.
    engine
        .set_user_role(&admin, "alice", Role::Admin)
        .await
        .unwrap();
    let off = engine
        .set_user_disabled(&admin, "alice", true)
        .await
        .unwrap();
    assert!(off.disabled);
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.action.as_str(), a.target.as_str(), a.outcome.as_str()),
        ("user.disable", "alice", "ok")
    );
    expect_conflict(engine.set_user_role(&admin, "root", Role::Viewer).await);
    let on = engine
        .set_user_disabled(&admin, "alice", false)
        .await
        .unwrap();
    assert!(!on.disabled);
    assert_eq!(last_audit(&engine).await.entry.action, "user.enable");
    // With another enabled admin, root may step down.
    let demoted = engine
        .set_user_role(&admin, "root", Role::Operator)
        .await
        .unwrap();
    assert_eq!(demoted.role, Role::Operator);

    // Disabling a user ends its sessions at once; enabling does not revive them.
    let t1 = login(&engine, "bob", BOB_PW).await;
    let t2 = login(&engine, "bob", BOB_PW).await;
    engine.authenticate_session(&t1, policy()).await.unwrap();
    let alice_admin = actor(&on);
    engine
        .set_user_disabled(&alice_admin, "bob", true)
        .await
        .unwrap();
    for t in [&t1, &t2] {
        assert_eq!(
            sessions_with_hash(&engine, t).await,
            0,
            "deleted on disable"
        );
        unauthenticated(engine.authenticate_session(t, policy()).await);
    }
    engine
        .set_user_disabled(&alice_admin, "bob", false)
        .await
        .unwrap();
    unauthenticated(engine.authenticate_session(&t1, policy()).await);
    let t3 = login(&engine, "bob", BOB_PW).await;
    engine.authenticate_session(&t3, policy()).await.unwrap();

    let actions: Vec<String> = engine
        .recent_audit(100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry.action)
        .filter(|a| a.starts_with("user.") && a != "user.create")
        .collect();
    assert_eq!(
        actions,
        [
            "user.enable",
            "user.disable",
            "user.role",
            "user.enable",
            "user.disable",
            "user.role",
            "user.role"
        ]
    );
}

async fn password_reset_and_change_end_other_sessions(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let system = Actor::system();
    let root = create(&engine, &system, "root", ADMIN_PW, Role::Admin).await;
    let alice = create(&engine, &system, "alice", ALICE_PW, Role::Operator).await;
    let admin = actor(&root);
    let root_session = login(&engine, "root", ADMIN_PW).await;

    // Reset by an admin: every session of the target ends, only the new password works.
    let s1 = login(&engine, "alice", ALICE_PW).await;
    let s2 = login(&engine, "alice", ALICE_PW).await;
    let audit_before = audit_count(&engine).await;
    expect_forbidden(
        engine
            .reset_password(&actor(&alice), "root", "taken over 12345")
            .await,
    );
    expect_validation(
        engine.reset_password(&admin, "alice", "short").await,
        "password",
    );
    expect_not_found(
        engine
            .reset_password(&admin, "nobody", "whatever password 1")
            .await,
        "user",
    );
    assert_eq!(audit_count(&engine).await, audit_before);
    engine.authenticate_session(&s1, policy()).await.unwrap();

    let reset_pw = "reset by admin 0002";
    engine
        .reset_password(&admin, "alice", reset_pw)
        .await
        .unwrap();
    for s in [&s1, &s2] {
        unauthenticated(engine.authenticate_session(s, policy()).await);
    }
    engine
        .authenticate_session(&root_session, policy())
        .await
        .expect("other users' sessions are untouched");
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("root", "user.password_reset", "alice")
    );
    assert!(!a.summary.contains(reset_pw));
    unauthenticated(engine.login("alice", ALICE_PW, "192.0.2.1", policy()).await);
    let kept = login(&engine, "alice", reset_pw).await;
    let other = login(&engine, "alice", reset_pw).await;

    // Changing one's own password needs the current one.
    let me = actor(&alice);
    let own_pw = "changed by alice 0003";
    let audit_before = audit_count(&engine).await;
    expect_validation(
        engine
            .change_own_password(&me, "not my password", own_pw, Some(&kept))
            .await,
        "current_password",
    );
    expect_validation(
        engine
            .change_own_password(&me, reset_pw, "short", Some(&kept))
            .await,
        "password",
    );
    expect_forbidden(
        engine
            .change_own_password(&Actor::system(), reset_pw, own_pw, None)
            .await,
    );
    // Only the wrong current password is audited (as a refused attempt): guessing it from a
    // stolen session must leave a trace.
    assert_eq!(audit_count(&engine).await, audit_before + 1);
    let last = &engine.recent_audit(1).await.unwrap()[0].entry;
    assert_eq!(
        (last.action.as_str(), last.outcome.as_str()),
        ("user.password_change", "denied")
    );
    for s in [&kept, &other] {
        engine
            .authenticate_session(s, policy())
            .await
            .expect("refused changes end no session");
    }
    unauthenticated(engine.login("alice", own_pw, "192.0.2.1", policy()).await);

    engine
        .change_own_password(&me, reset_pw, own_pw, Some(&kept))
        .await
        .unwrap();
    let u = engine
        .authenticate_session(&kept, policy())
        .await
        .expect("the session that changed the password stays");
    assert_eq!(u.id, alice.id);
    unauthenticated(engine.authenticate_session(&other, policy()).await);
    engine
        .authenticate_session(&root_session, policy())
        .await
        .unwrap();
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("alice", "user.password_change", "alice")
    );
    unauthenticated(engine.login("alice", reset_pw, "192.0.2.1", policy()).await);
    let newest = login(&engine, "alice", own_pw).await;

    // Without a session to keep, all of the user's sessions end.
    engine
        .change_own_password(&me, own_pw, ALICE_PW, None)
        .await
        .unwrap();
    for s in [&kept, &newest] {
        unauthenticated(engine.authenticate_session(s, policy()).await);
    }
    login(&engine, "alice", ALICE_PW).await;
}

async fn api_tokens_authenticate_until_revoked(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let system = Actor::system();
    let root = create(&engine, &system, "root", ADMIN_PW, Role::Admin).await;
    let alice = create(&engine, &system, "alice", ALICE_PW, Role::Operator).await;
    let bob = create(&engine, &system, "bob", BOB_PW, Role::Viewer).await;
    let (admin, me, other) = (actor(&root), actor(&alice), actor(&bob));

    let before = Millis::now();
    let first = engine.create_api_token(&me, "ci pipeline").await.unwrap();
    let secret = first.secret.clone();
    assert!(secret.starts_with("mmt_"), "{secret}");
    assert_eq!(secret.len(), 4 + 43);
    let t = &first.token;
    assert_eq!(t.name, "ci pipeline");
    assert_eq!(t.prefix, secret[..10]);
    assert!(t.created_at >= before);
    assert_eq!((t.last_used_at, t.revoked_at), (None, None));
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("alice", "token.create", "alice/ci pipeline")
    );
    assert!(!a.summary.contains(&secret));

    // Only the hash and the short prefix are stored.
    let (hash, prefix): (String, String) =
        sqlx::query_as("SELECT token_hash, prefix FROM api_tokens WHERE id = $1")
            .bind(t.id)
            .fetch_one(engine.store().pool())
            .await
            .unwrap();
    assert_eq!(hash, sha256_hex(&secret));
    assert_eq!(prefix, t.prefix);

    let second = engine.create_api_token(&me, "  grafana  ").await.unwrap();
    assert_eq!(second.token.name, "grafana", "names are trimmed");
    assert_ne!(second.secret, secret);
    let listed = engine.list_api_tokens(&me).await.unwrap();
    assert_eq!(
        listed,
        [second.token.clone(), first.token.clone()],
        "newest first"
    );
    assert!(engine.list_api_tokens(&other).await.unwrap().is_empty());
    assert!(engine.list_api_tokens(&system).await.unwrap().is_empty());

    let u = engine.authenticate_api_token(&secret).await.unwrap();
    assert_eq!(
        (u.id, u.name.as_str(), u.role),
        (alice.id, "alice", Role::Operator)
    );
    let listed = engine.list_api_tokens(&me).await.unwrap();
    assert!(listed[1].last_used_at.is_some(), "use is recorded");
    assert!(listed[0].last_used_at.is_none());
    // The role is read at each use, not frozen into the token.
    engine
        .set_user_role(&admin, "alice", Role::Viewer)
        .await
        .unwrap();
    assert_eq!(
        engine.authenticate_api_token(&secret).await.unwrap().role,
        Role::Viewer
    );

    let session = login(&engine, "alice", ALICE_PW).await;
    let near_miss = format!("{}x", &secret[..secret.len() - 1]);
    for bogus in [
        "",
        "mmt_",
        session.as_str(),
        &secret[4..],
        near_miss.as_str(),
        &secret[..10],
    ] {
        unauthenticated(engine.authenticate_api_token(bogus).await);
    }

    // Validation and permission.
    let audit_before = audit_count(&engine).await;
    expect_validation(engine.create_api_token(&me, "   ").await, "token_name");
    expect_validation(
        engine.create_api_token(&me, &"n".repeat(65)).await,
        "token_name",
    );
    expect_validation(engine.create_api_token(&me, "a\nb").await, "token_name");
    expect_forbidden(engine.create_api_token(&system, "ops").await);
    // Someone else's token looks like no token at all, and stays valid.
    expect_not_found(
        engine.revoke_api_token(&other, first.token.id).await,
        "API token",
    );
    expect_not_found(engine.revoke_api_token(&me, 987_654).await, "API token");
    assert_eq!(audit_count(&engine).await, audit_before);
    engine.authenticate_api_token(&secret).await.unwrap();

    // The owner revokes: the token stops working, stays listed as revoked.
    engine.revoke_api_token(&me, first.token.id).await.unwrap();
    unauthenticated(engine.authenticate_api_token(&secret).await);
    let listed = engine.list_api_tokens(&me).await.unwrap();
    assert!(listed[1].revoked_at.is_some() && listed[0].revoked_at.is_none());
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("alice", "token.revoke", "alice")
    );
    expect_not_found(
        engine.revoke_api_token(&me, first.token.id).await,
        "API token",
    );

    // An admin may revoke anyone's token.
    engine.authenticate_api_token(&second.secret).await.unwrap();
    engine
        .revoke_api_token(&admin, second.token.id)
        .await
        .unwrap();
    unauthenticated(engine.authenticate_api_token(&second.secret).await);
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("root", "token.revoke", "alice")
    );

    // A disabled user's tokens do not authenticate.
    let bobs = engine.create_api_token(&other, "reports").await.unwrap();
    assert_eq!(
        engine
            .authenticate_api_token(&bobs.secret)
            .await
            .unwrap()
            .id,
        bob.id
    );
    engine.set_user_disabled(&admin, "bob", true).await.unwrap();
    unauthenticated(engine.authenticate_api_token(&bobs.secret).await);
}

async fn setup_creates_the_first_admin_once(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let setup_rows = "SELECT COUNT(*) FROM settings WHERE key = 'auth.setup_token'";

    unauthenticated(
        engine
            .complete_setup("anything", "root", ADMIN_PW, "192.0.2.50")
            .await,
    );
    let stale = engine
        .issue_setup_token()
        .await
        .unwrap()
        .expect("no users yet");
    let secret = engine
        .issue_setup_token()
        .await
        .unwrap()
        .expect("no users yet");
    assert_eq!(secret.len(), 43);
    assert_ne!(stale, secret);
    let stored: String = sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind("auth.setup_token")
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    assert!(!stored.contains(&secret), "only the hash is stored");
    assert!(stored.ends_with(&sha256_hex(&secret)));

    // Wrong, superseded, or used with bad input: nothing is created.
    for wrong in ["", "wrong", stale.as_str(), &secret[..42]] {
        unauthenticated(
            engine
                .complete_setup(wrong, "root", ADMIN_PW, "192.0.2.50")
                .await,
        );
    }
    expect_validation(
        engine
            .complete_setup(&secret, "root", "short", "192.0.2.50")
            .await,
        "password",
    );
    expect_validation(
        engine
            .complete_setup(&secret, "../root", ADMIN_PW, "192.0.2.50")
            .await,
        "username",
    );
    assert_eq!(engine.user_count().await.unwrap(), 0);
    assert_eq!(audit_count(&engine).await, 0);

    // The right secret (still valid after refused input) creates the first admin.
    let root = engine
        .complete_setup(&secret, "root", ADMIN_PW, "192.0.2.50")
        .await
        .unwrap();
    assert_eq!((root.name.as_str(), root.role), ("root", Role::Admin));
    assert!(!root.disabled);
    assert_eq!(engine.user_count().await.unwrap(), 1);
    assert_eq!(
        scalar(&engine, setup_rows).await,
        0,
        "the secret is consumed"
    );
    let a = last_audit(&engine).await.entry;
    assert_eq!(
        (a.actor.as_str(), a.action.as_str(), a.target.as_str()),
        ("setup", "user.create", "root")
    );
    assert_eq!(a.client_addr.as_deref(), Some("192.0.2.50"));

    // Used once: the same secret cannot make a second admin, and no new secret is issued.
    unauthenticated(
        engine
            .complete_setup(&secret, "root2", ADMIN_PW, "192.0.2.50")
            .await,
    );
    assert_eq!(engine.user_count().await.unwrap(), 1);
    assert_eq!(engine.issue_setup_token().await.unwrap(), None);
    assert_eq!(scalar(&engine, setup_rows).await, 0);
    let out = engine
        .login("root", ADMIN_PW, "192.0.2.50", policy())
        .await
        .unwrap();
    assert_eq!(out.user.role, Role::Admin);
}

async fn demo_users_are_created_once_and_log_in(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    // engine::auth's DEMO_USERS is not exported; these are its documented values.
    let demo = [
        ("admin", "admin-demo-password", Role::Admin),
        ("operator", "operator-demo-password", Role::Operator),
        ("viewer", "viewer-demo-password", Role::Viewer),
    ];
    assert_eq!(engine.ensure_demo_users().await.unwrap(), 3);
    assert_eq!(engine.user_count().await.unwrap(), 3);
    assert_eq!(engine.ensure_demo_users().await.unwrap(), 0);
    assert_eq!(engine.user_count().await.unwrap(), 3);
    assert_eq!(engine.issue_setup_token().await.unwrap(), None);
    let audit = engine.recent_audit(10).await.unwrap();
    assert_eq!(audit.len(), 3, "one audit entry per created user");
    assert!(audit.iter().all(|r| r.entry.action == "user.create"));

    for (name, password, role) in demo {
        let out = engine
            .login(name, password, "192.0.2.1", policy())
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(out.user.role, role, "{name}");
        let u = engine
            .authenticate_session(&out.session_token, policy())
            .await
            .unwrap();
        assert_eq!((u.name.as_str(), u.role), (name, role));
    }
    // A missing demo user is recreated; the others are left alone.
    let admin = engine
        .login("admin", "admin-demo-password", "192.0.2.1", policy())
        .await
        .unwrap();
    sqlx::query("DELETE FROM users WHERE name = 'viewer'")
        .execute(engine.store().pool())
        .await
        .unwrap();
    assert_eq!(engine.ensure_demo_users().await.unwrap(), 1);
    engine
        .authenticate_session(&admin.session_token, policy())
        .await
        .expect("existing users untouched");
}

async fn audit_page_filters_and_paginates(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let system = Actor::system();
    let root = create(&engine, &system, "root", ADMIN_PW, Role::Admin).await;
    let admin = actor(&root);
    create(&engine, &admin, "alice", ALICE_PW, Role::Operator).await;
    let bob = create(&engine, &admin, "bob", BOB_PW, Role::Viewer).await;
    // Audit times are milliseconds: leave gaps so the range boundaries are unambiguous.
    let gap = || tokio::time::sleep(Duration::from_millis(25));
    gap().await;
    let t1 = Millis::now();
    gap().await;
    engine
        .set_user_role(&admin, "alice", Role::Viewer)
        .await
        .unwrap();
    engine.set_user_disabled(&admin, "bob", true).await.unwrap();
    engine
        .set_user_disabled(&admin, "bob", false)
        .await
        .unwrap();
    unauthenticated(
        engine
            .login("Alice", ALICE_PW, "203.0.113.9", policy())
            .await,
    );
    gap().await;
    let t2 = Millis::now();
    gap().await;
    let token = engine
        .create_api_token(&actor(&bob), "nightly 50%")
        .await
        .unwrap();
    engine
        .revoke_api_token(&admin, token.token.id)
        .await
        .unwrap();
    // History, oldest first:
    //  1 system user.create root      5 root user.disable bob     8 bob  token.create bob/nightly 50%
    //  2 root   user.create alice     6 root user.enable bob      9 root token.revoke bob
    //  3 root   user.create bob       7 Alice auth.login Alice (denied)
    //  4 root   user.role alice
    let all = engine.recent_audit(100).await.unwrap();
    assert_eq!(all.len(), 9);

    let page = |q: AuditQuery| {
        let engine = engine.clone();
        let admin = admin.clone();
        async move { engine.audit_page(&admin, &q).await.unwrap() }
    };
    let actions =
        |p: &AuditPage| -> Vec<String> { p.rows.iter().map(|r| r.entry.action.clone()).collect() };

    let everything = page(AuditQuery::default()).await;
    assert_eq!(everything.matching, 9);
    assert_eq!(everything.rows, all, "newest first, same as recent_audit");

    let by_root = page(AuditQuery {
        actor: Some("root".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(by_root.matching, 6);
    assert!(by_root.rows.iter().all(|r| r.entry.actor == "root"));
    let by_system = page(AuditQuery {
        actor: Some("system".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(actions(&by_system), ["user.create"]);
    let failed = page(AuditQuery {
        actor: Some("Alice".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(failed.matching, 1, "actor is exact, case-sensitive");
    assert_eq!(failed.rows[0].entry.outcome, "denied");

    let family = page(AuditQuery {
        action: Some("user.".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(
        actions(&family),
        [
            "user.enable",
            "user.disable",
            "user.role",
            "user.create",
            "user.create",
            "user.create"
        ]
    );
    let exact = page(AuditQuery {
        action: Some("user.create".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(exact.matching, 3);
    for no_family in ["user", "user%", "user_", "token"] {
        let p = page(AuditQuery {
            action: Some(no_family.into()),
            ..Default::default()
        })
        .await;
        assert_eq!(p.matching, 0, "{no_family:?} is an exact action");
    }
    let tokens = page(AuditQuery {
        action: Some("token.".into()),
        actor: Some("root".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(actions(&tokens), ["token.revoke"], "filters combine");

    let target = |t: &str| {
        page(AuditQuery {
            target: Some(t.into()),
            ..Default::default()
        })
    };
    let alice_rows = target("ALI").await;
    assert_eq!(
        alice_rows.matching, 3,
        "create, role, failed login as Alice"
    );
    assert!(alice_rows
        .rows
        .iter()
        .all(|r| r.entry.target.to_lowercase().contains("ali")));
    assert_eq!(target("50%").await.matching, 1);
    assert_eq!(target("%").await.matching, 1, "% is literal");
    assert_eq!(target("_").await.matching, 0, "_ is literal");
    assert_eq!(target("nobody").await.matching, 0);

    let range = |from: Option<Millis>, to: Option<Millis>| {
        page(AuditQuery {
            from,
            to,
            ..Default::default()
        })
    };
    let middle = range(Some(t1), Some(t2)).await;
    assert_eq!(
        actions(&middle),
        ["auth.login", "user.enable", "user.disable", "user.role"]
    );
    assert_eq!(range(None, Some(t1)).await.matching, 3);
    assert_eq!(range(Some(t2), None).await.matching, 2);
    assert_eq!(range(Some(Millis::now()), None).await.matching, 0);
    let first = all.last().unwrap().at;
    assert_eq!(range(Some(first), Some(first)).await.rows[0].id, all[8].id);

    // Pages of two walk the same newest-first order, each with the full matching count.
    let mut walked = Vec::new();
    for n in 1..=5 {
        let p = page(AuditQuery {
            page: n,
            per_page: 2,
            ..Default::default()
        })
        .await;
        assert_eq!((p.matching, p.page, p.per_page), (9, n, 2));
        assert_eq!(p.rows.len(), if n < 5 { 2 } else { 1 });
        walked.extend(p.rows);
    }
    assert_eq!(walked, all);
    let beyond = page(AuditQuery {
        page: 6,
        per_page: 2,
        ..Default::default()
    })
    .await;
    assert!(beyond.rows.is_empty());
    assert_eq!(beyond.matching, 9);
    let filtered_page = page(AuditQuery {
        action: Some("user.".into()),
        page: 2,
        per_page: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(filtered_page.matching, 6);
    assert_eq!(actions(&filtered_page), ["user.role", "user.create"]);

    // Viewers may not read the audit log; operators may. Bad queries are refused.
    expect_forbidden(
        engine
            .audit_page(&actor_with(Role::Viewer, "vic"), &AuditQuery::default())
            .await,
    );
    engine
        .audit_page(&actor_with(Role::Operator, "op"), &AuditQuery::default())
        .await
        .unwrap();
    expect_validation(
        engine
            .audit_page(
                &admin,
                &AuditQuery {
                    per_page: 0,
                    ..Default::default()
                },
            )
            .await,
        "per_page",
    );
    expect_validation(
        engine
            .audit_page(
                &admin,
                &AuditQuery {
                    from: Some(t2),
                    to: Some(t1),
                    ..Default::default()
                },
            )
            .await,
        "to",
    );
}

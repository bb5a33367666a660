//! Operators' changes succeed while other connections keep writing, as they do on a live
//! controller (agents report every few seconds). On SQLite a deferred transaction that reads
//! before it writes fails with `SQLITE_BUSY_SNAPSHOT` when another connection commits in
//! between; every state change must take the write lock up front instead.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use engine::auth::Role;
use engine::both_backends;
use engine::store::{Backend, Store};
use engine::testing::{user_actor, TestDb};

both_backends!(read_then_write_changes_succeed_under_concurrent_commits);

/// Commits one small write after another on its own connection until told to stop.
fn busy_writer(
    url: String,
    stop: Arc<AtomicBool>,
    commits: Arc<AtomicU64>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("writer runtime");
        rt.block_on(async move {
            let store = Store::connect(&url).await.expect("writer connects");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ('test_writer', $1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(n.to_string())
                .execute(store.pool())
                .await
                .expect("the writer's own commit");
                commits.fetch_add(1, Ordering::Relaxed);
            }
            store.close().await;
        });
    })
}

async fn read_then_write_changes_succeed_under_concurrent_commits(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let admin = user_actor("root", Role::Admin);
    let stop = Arc::new(AtomicBool::new(false));
    let commits = Arc::new(AtomicU64::new(0));
    let writer = busy_writer(db.url.clone(), stop.clone(), commits.clone());
    while commits.load(Ordering::Relaxed) == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let before = commits.load(Ordering::Relaxed);

    // Adding an origin reads the list (duplicates, the limit) and then inserts; removing
    // deletes. Each is one transaction with an audit entry.
    const ROUNDS: u32 = 60;
    let mut failures = Vec::new();
    for i in 0..ROUNDS {
        let origin = format!("https://portal-{i}.example.net");
        if let Err(e) = engine.add_embed_origin(&admin, &origin).await {
            failures.push(format!("add {origin}: {e}"));
        }
        if let Err(e) = engine.remove_embed_origin(&admin, &origin).await {
            failures.push(format!("remove {origin}: {e}"));
        }
        // SQLite's busy handler polls: give the writer a moment to get its turn.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer thread");
    let during = commits.load(Ordering::Relaxed) - before;

    assert!(
        during >= u64::from(ROUNDS),
        "the other connection committed only {during} times: the test proved nothing"
    );
    assert!(
        failures.is_empty(),
        "{} of {} changes failed while another connection committed {during} times: {failures:?}",
        failures.len(),
        ROUNDS * 2
    );
    // Every change was recorded once, and none left anything behind.
    let audited = engine
        .recent_audit(ROUNDS * 2 + 10)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.entry.action.starts_with("embed.origin_"))
        .count();
    assert_eq!(audited, ROUNDS as usize * 2);
    assert!(engine.embed_origins().await.unwrap().is_empty());
}

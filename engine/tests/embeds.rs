//! Portal embed links and the frame-ancestors allow-list, end to end on a real database: the
//! same suite on SQLite and PostgreSQL.

use std::time::Duration;

use engine::auth::{Actor, Role};
use engine::both_backends;
use engine::embeds::{EmbedKind, EmbedLinkState, NewEmbedLink};
use engine::events::Event;
use engine::store::Backend;
use engine::testing::{user_actor, TestDb};
use engine::{Engine, Error};

both_backends!(
    links_open_their_view_until_revoked_or_expired,
    tampered_or_mismatched_tokens_are_refused,
    only_admins_manage_links_and_bad_requests_change_nothing,
    origin_allow_list_is_validated_audited_and_announced,
);

fn admin() -> Actor {
    user_actor("root", Role::Admin)
}

fn link(kind: EmbedKind, target: &str, secs: i64) -> NewEmbedLink {
    NewEmbedLink {
        kind,
        target: target.into(),
        label: "NOC portal".into(),
        expires_in_secs: secs,
    }
}

fn token(path: &str) -> &str {
    path.split_once("?t=").expect("a token in the path").1
}

async fn last_action(engine: &Engine) -> (String, String, String) {
    let a = engine.recent_audit(1).await.unwrap().pop().unwrap().entry;
    (a.actor, a.action, a.target)
}

async fn links_open_their_view_until_revoked_or_expired(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(50).await.unwrap();
    let mut events = engine.events().subscribe();

    let status = engine
        .create_embed_link(&admin(), &link(EmbedKind::Status, "", 3600))
        .await
        .unwrap();
    assert_eq!(status.state, EmbedLinkState::Active);
    assert!(
        status.path.starts_with("/embed/status?t="),
        "{}",
        status.path
    );
    assert!(matches!(events.try_recv(), Ok(Event::EmbedsChanged { .. })));
    assert_eq!(
        last_action(&engine).await,
        (
            "root".into(),
            "embed.create".into(),
            format!("embed #{}", status.id)
        )
    );
    // The token is not stored anywhere: only the row it is computed from.
    let stored: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM embed_links WHERE target LIKE $1 OR label LIKE $1",
    )
    .bind(format!("%{}%", token(&status.path)))
    .fetch_one(engine.store().pool())
    .await
    .unwrap();
    assert_eq!(stored, 0);

    let grant = engine
        .open_embed(token(&status.path), EmbedKind::Status)
        .await
        .unwrap();
    assert_eq!((grant.link_id, grant.kind), (status.id, EmbedKind::Status));
    // The grant reads as a viewer: nothing it reaches can change anything.
    assert_eq!(grant.actor().role, Some(Role::Viewer));

    // A peer group's link carries its target; the list shows the same address again.
    let group: String = sqlx::query_scalar("SELECT name FROM peer_groups ORDER BY name LIMIT 1")
        .fetch_one(engine.store().pool())
        .await
        .unwrap();
    let pg = engine
        .create_embed_link(&admin(), &link(EmbedKind::PeerGroup, &group, 3600))
        .await
        .unwrap();
    let opened = engine
        .open_embed(token(&pg.path), EmbedKind::PeerGroup)
        .await
        .unwrap();
    assert_eq!(opened.target, group);
    let listed = engine.embed_links(&admin()).await.unwrap();
    assert_eq!(
        listed.iter().map(|l| l.id).collect::<Vec<_>>(),
        vec![pg.id, status.id]
    );
    assert_eq!(listed[0].path, pg.path);

    // Revoked: refused with that reason, listed as revoked, audited, announced.
    engine.revoke_embed_link(&admin(), status.id).await.unwrap();
    let err = engine
        .open_embed(token(&status.path), EmbedKind::Status)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.contains("revoked")),
        "{err}"
    );
    assert_eq!(last_action(&engine).await.1, "embed.revoke".to_string());
    let states: Vec<_> = engine
        .embed_links(&admin())
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.id, l.state))
        .collect();
    assert!(states.contains(&(status.id, EmbedLinkState::Revoked)));
    assert!(matches!(
        engine.revoke_embed_link(&admin(), status.id).await,
        Err(Error::Conflict(_))
    ));
    // The other link is untouched.
    engine
        .open_embed(token(&pg.path), EmbedKind::PeerGroup)
        .await
        .unwrap();

    // Expired: a one-second link works, then is refused with its expiry.
    let short = engine
        .create_embed_link(
            &admin(),
            &link(EmbedKind::Map, "region=europe&status=offline", 1),
        )
        .await
        .unwrap();
    engine
        .open_embed(token(&short.path), EmbedKind::Map)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let err = engine
        .open_embed(token(&short.path), EmbedKind::Map)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.contains("expired at")),
        "{err}"
    );
    let listed = engine.embed_links(&admin()).await.unwrap();
    assert_eq!(listed[0].state, EmbedLinkState::Expired);
}

async fn tampered_or_mismatched_tokens_are_refused(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    let map = engine
        .create_embed_link(&admin(), &link(EmbedKind::Map, "z=2", 3600))
        .await
        .unwrap();
    let good = token(&map.path).to_string();
    let (id, sig) = good.split_once('.').unwrap();
    let mut flipped = sig.to_string();
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    let other = engine
        .create_embed_link(&admin(), &link(EmbedKind::Map, "z=4", 3600))
        .await
        .unwrap();
    let other_sig = token(&other.path).split_once('.').unwrap().1;
    for bad in [
        String::new(),
        "garbage".into(),
        format!("{id}.{flipped}"),
        // A genuine signature under another id.
        format!("{id}.{other_sig}"),
        format!("999.{sig}"),
        format!("{id}.{sig}x"),
        format!("{id}.{sig}\0"),
    ] {
        let err = engine.open_embed(&bad, EmbedKind::Map).await.unwrap_err();
        assert!(
            matches!(&err, Error::Unauthenticated(m) if m == "this embed link is not valid"),
            "{bad:?}: {err}"
        );
    }
    // A genuine token opens only its own view.
    let err = engine
        .open_embed(&good, EmbedKind::Status)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthenticated(m) if m.contains("fleet map")),
        "{err}"
    );
    engine.open_embed(&good, EmbedKind::Map).await.unwrap();
    // A signature made under another controller's key fails: each store has its own key.
    let db2 = TestDb::new(b).await;
    let engine2 = db2.engine().await;
    let elsewhere = engine2
        .create_embed_link(&admin(), &link(EmbedKind::Map, "z=2", 3600))
        .await
        .unwrap();
    assert_eq!(elsewhere.id, map.id);
    assert_ne!(elsewhere.path, map.path);
    assert!(engine
        .open_embed(token(&elsewhere.path), EmbedKind::Map)
        .await
        .is_err());
}

async fn only_admins_manage_links_and_bad_requests_change_nothing(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    engine.seed_demo(20).await.unwrap();
    for role in [Role::Operator, Role::Viewer] {
        let who = user_actor("someone", role);
        assert!(matches!(
            engine
                .create_embed_link(&who, &link(EmbedKind::Status, "", 60))
                .await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            engine.embed_links(&who).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            engine.revoke_embed_link(&who, 1).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            engine
                .add_embed_origin(&who, "https://portal.example")
                .await,
            Err(Error::Forbidden(_))
        ));
    }
    let invalid = |r: Result<engine::embeds::EmbedLink, Error>, field: &str| match r {
        Err(Error::Validation(v)) => assert_eq!(v.field, field, "{}", v.message),
        other => panic!("expected a validation error on {field}, got {other:?}"),
    };
    invalid(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::Status, "", 0))
            .await,
        "expires_in_secs",
    );
    invalid(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::Status, "", 400 * 86_400))
            .await,
        "expires_in_secs",
    );
    invalid(
        engine
            .create_embed_link(
                &admin(),
                &NewEmbedLink {
                    label: "  ".into(),
                    ..link(EmbedKind::Status, "", 60)
                },
            )
            .await,
        "label",
    );
    invalid(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::Status, "x", 60))
            .await,
        "target",
    );
    invalid(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::Strategy, "first", 60))
            .await,
        "target",
    );
    assert!(matches!(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::Strategy, "4242", 60))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::PeerGroup, "no-such-group", 60))
            .await,
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        engine
            .create_embed_link(&admin(), &link(EmbedKind::Map, "z=99", 60))
            .await,
        Err(Error::Validation(_))
    ));
    assert!(matches!(
        engine.revoke_embed_link(&admin(), 77).await,
        Err(Error::NotFound { .. })
    ));
    // Nothing above wrote a link or an audit entry.
    assert!(engine.embed_links(&admin()).await.unwrap().is_empty());
    let audited: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'embed.%'")
            .fetch_one(engine.store().pool())
            .await
            .unwrap();
    assert_eq!(audited, 0);
}

async fn origin_allow_list_is_validated_audited_and_announced(b: Backend) {
    let db = TestDb::new(b).await;
    let engine = db.engine().await;
    assert!(engine.embed_origins().await.unwrap().is_empty());
    let mut events = engine.events().subscribe();
    let added = engine
        .add_embed_origin(&admin(), " HTTPS://Portal.Example.com/ ")
        .await
        .unwrap();
    assert_eq!(added.as_str(), "https://portal.example.com");
    assert!(matches!(events.try_recv(), Ok(Event::EmbedsChanged { .. })));
    assert_eq!(
        last_action(&engine).await,
        (
            "root".into(),
            "embed.origin_add".into(),
            "https://portal.example.com".into()
        )
    );
    engine
        .add_embed_origin(&admin(), "http://localhost:4001")
        .await
        .unwrap();
    assert!(matches!(
        engine
            .add_embed_origin(&admin(), "https://portal.example.com")
            .await,
        Err(Error::Conflict(_))
    ));
    for bad in [
        "portal.example.com",
        "https://a.example/x",
        "*",
        "https://a.example; x",
    ] {
        assert!(
            matches!(
                engine.add_embed_origin(&admin(), bad).await,
                Err(Error::Validation(_))
            ),
            "{bad}"
        );
    }
    let list: Vec<String> = engine
        .embed_origins()
        .await
        .unwrap()
        .iter()
        .map(|o| o.as_str().to_string())
        .collect();
    assert_eq!(
        list,
        ["http://localhost:4001", "https://portal.example.com"]
    );

    engine
        .remove_embed_origin(&admin(), "https://portal.example.com")
        .await
        .unwrap();
    assert_eq!(last_action(&engine).await.1, "embed.origin_remove");
    assert!(matches!(
        engine
            .remove_embed_origin(&admin(), "https://portal.example.com")
            .await,
        Err(Error::NotFound { .. })
    ));
    assert_eq!(engine.embed_origins().await.unwrap().len(), 1);
}

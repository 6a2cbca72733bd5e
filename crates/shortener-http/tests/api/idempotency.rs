//! `Idempotency-Key` on the creates: a retry gets the first answer and creates nothing,
//! under concurrency and across instances too; keys are per account, bound to their
//! request, and pruned after 24 hours.

use awc::http::{Method, StatusCode};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::bulk::links_and_entries;
use crate::support::{Api, Reply, TestApp};

async fn create(api: &Api, key: &str, idem: &str, body: Value) -> Reply {
    api.request_with(
        Method::POST,
        "/api/v1/links",
        Some(key),
        Some(body),
        &[("Idempotency-Key", idem)],
    )
    .await
}

#[track_caller]
fn assert_same(first: &Reply, again: &Reply) {
    assert_eq!(again.status, first.status, "{}", again.body);
    assert_eq!(again.raw, first.raw);
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
}

#[actix_web::test]
async fn a_retry_gets_the_first_answer_and_creates_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"url": "https://example.com/", "expires_at": "2999-01-01T00:00:00Z"});
    let first = create(&app, &key, "order-1", body.clone()).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.header("idempotent-replayed").is_none());
    let code = first.body["code"].as_str().unwrap();
    assert_eq!(
        first.header("location"),
        Some(format!("/api/v1/links/{code}"))
    );
    let again = create(&app, &key, "order-1", body).await;
    assert_same(&first, &again);
    // The same body with its fields in another order is the same request.
    let reordered = app
        .raw(
            Method::POST,
            "/api/v1/links",
            &key,
            Some("application/json"),
            br#"{ "expires_at": "2999-01-01T00:00:00Z", "url": "https://example.com/" }"#.to_vec(),
        )
        .await;
    assert_eq!(reordered.status, StatusCode::CREATED);
    assert_eq!(links_and_entries(&app).await, (2, 2), "raw sends no key");
    let reordered = app
        .request_with(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"expires_at": "2999-01-01T00:00:00Z", "url": "https://example.com/"})),
            &[("Idempotency-Key", "\"order-1\"")],
        )
        .await;
    assert_same(&first, &reordered);
    assert_eq!(links_and_entries(&app).await, (2, 2));
}

#[actix_web::test]
async fn the_same_key_with_another_body_or_path_is_a_conflict() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let first = create(&app, &key, "k", json!({"url": "https://example.com/a"})).await;
    assert_eq!(first.status, StatusCode::CREATED);
    create(&app, &key, "k", json!({"url": "https://example.com/b"}))
        .await
        .assert_problem(422, "idempotency-conflict");
    app.request_with(
        Method::POST,
        "/api/v1/links/bulk",
        Some(&key),
        Some(json!({"links": [{"url": "https://example.com/a"}]})),
        &[("Idempotency-Key", "k")],
    )
    .await
    .assert_problem(422, "idempotency-conflict");
    assert_eq!(links_and_entries(&app).await, (1, 1));
}

#[actix_web::test]
async fn a_refusal_is_recorded_and_replayed() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"url": "ftp://example.com/"});
    let first = create(&app, &key, "bad", body.clone()).await;
    first.assert_problem(400, "invalid-url");
    let again = create(&app, &key, "bad", body).await;
    assert_same(&first, &again);
    again.assert_problem(400, "invalid-url");
    // The key is spent on that request.
    create(&app, &key, "bad", json!({"url": "https://example.com/"}))
        .await
        .assert_problem(422, "idempotency-conflict");
    assert_eq!(links_and_entries(&app).await, (0, 0));
}

#[actix_web::test]
async fn a_refusal_after_writes_is_recorded_without_them() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__LINKS_PER_MONTH", "1")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    app.code(&key, "https://example.com/first").await;
    let body = json!({"url": "https://example.com/second"});
    let first = create(&app, &key, "q", body.clone()).await;
    first.assert_problem(403, "quota-exceeded");
    assert_same(&first, &create(&app, &key, "q", body).await);
    assert_eq!(links_and_entries(&app).await, (1, 1));
}

#[actix_web::test]
async fn ten_racing_retries_make_one_link() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "0"),
        ("SHORTENER__DATABASE__POOL_SIZE", "16"),
    ])
    .await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"url": "https://example.com/"});
    let replies = join_all((0..10).map(|_| create(&app, &key, "race", body.clone()))).await;
    let created: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert!(!created.is_empty(), "the first of them answers 201");
    for r in &replies {
        if r.status == StatusCode::CREATED {
            assert_eq!(r.raw, created[0].raw, "every 201 is the first answer");
        } else {
            r.assert_problem(409, "idempotency-in-progress");
        }
    }
    assert_eq!(links_and_entries(&app).await, (1, 1));
    assert_same(created[0], &create(&app, &key, "race", body).await);
}

#[actix_web::test]
async fn two_instances_with_one_key_make_one_link() {
    let app = TestApp::spawn().await;
    let other = app.spawn_beside().await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"url": "https://example.com/"});
    for round in 0..5 {
        let idem = format!("both-{round}");
        let (a, b) = futures_util::future::join(
            create(&app, &key, &idem, body.clone()),
            create(&other, &key, &idem, body.clone()),
        )
        .await;
        for r in [&a, &b] {
            if r.status != StatusCode::CREATED {
                r.assert_problem(409, "idempotency-in-progress");
            }
        }
        assert!(a.status == StatusCode::CREATED || b.status == StatusCode::CREATED);
        if a.status == b.status {
            assert_eq!(a.raw, b.raw);
        }
        assert_eq!(links_and_entries(&app).await.0, round + 1);
    }
}

#[actix_web::test]
async fn keys_belong_to_their_account() {
    let app = TestApp::spawn().await;
    let (_, acme) = app.account("Acme").with_key().await;
    let (_, globex) = app.account("Globex").with_key().await;
    let body = json!({"url": "https://example.com/"});
    let a = create(&app, &acme, "shared", body.clone()).await;
    let b = create(&app, &globex, "shared", body).await;
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    assert_ne!(a.body["code"], b.body["code"]);
    assert!(b.header("idempotent-replayed").is_none());
    assert_eq!(links_and_entries(&app).await, (2, 2));
}

#[actix_web::test]
async fn a_key_must_be_1_to_255_visible_ascii_characters() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"url": "https://example.com/"});
    let long = "k".repeat(256);
    for bad in ["", "a b", "\"\"", long.as_str()] {
        create(&app, &key, bad, body.clone())
            .await
            .assert_problem(400, "validation");
    }
    let longest = "k".repeat(255);
    let r = create(&app, &key, &longest, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(links_and_entries(&app).await, (1, 1));
}

#[actix_web::test]
async fn bulk_creates_replay_too() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"links": [{"url": "https://example.com/0"}, {"url": "nope"}]});
    let send = || {
        app.request_with(
            Method::POST,
            "/api/v1/links/bulk",
            Some(&key),
            Some(body.clone()),
            &[("Idempotency-Key", "batch-1")],
        )
    };
    let first = send().await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert_same(&first, &send().await);
    assert_eq!(links_and_entries(&app).await, (1, 1));
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[actix_web::test]
async fn keys_older_than_a_day_are_pruned() {
    // The sweep that also prunes runs at start, then not again during the test.
    let app = TestApp::spawn_with(&[("SHORTENER__SUBSCRIPTIONS__EXPIRY_SWEEP", "1h")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let body = json!({"url": "https://example.com/"});
    let old = create(&app, &key, "old", body.clone()).await;
    let fresh = create(&app, &key, "fresh", body.clone()).await;
    let mut conn = app.db.conn().await;
    diesel::sql_query(
        "UPDATE shortener.idempotency_keys SET created_at = created_at - interval '25 hours' \
         WHERE key = 'old'",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let db = shortener_pg::Db::connect(&app.db.service_url, &Default::default()).unwrap();
    let now = chrono::Utc::now();
    let pruned = shortener_http::prune_idempotency_keys(&db, now - shortener_app::KEEP_KEYS).await;
    // The app's own sweep prunes with the same function and may have got there first (a
    // slow machine): either way the old key is gone and the fresh one kept.
    assert!(pruned <= 1, "{pruned}");
    let left: Count = diesel::sql_query("SELECT count(*) AS n FROM shortener.idempotency_keys")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(left.n, 1);
    // The fresh key still replays; the pruned one is free again and creates anew.
    assert_same(&fresh, &create(&app, &key, "fresh", body.clone()).await);
    let again = create(&app, &key, "old", body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_ne!(again.body["code"], old.body["code"]);
    assert_eq!(links_and_entries(&app).await, (3, 3));
}

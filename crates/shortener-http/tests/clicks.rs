//! Batched click counting end to end on real PostgreSQL: a redirect never waits for the
//! write, every click lands within a second, and a graceful shutdown writes every click
//! the drained requests counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use awc::http::StatusCode;
use common::TestApp;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use serde_json::json;

#[derive(QueryableByName)]
struct Sums {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    daily: i64,
}

async fn sums(app: &TestApp) -> (i64, i64) {
    let mut conn = app.db.conn().await;
    let s: Sums = diesel::sql_query(
        "SELECT (SELECT coalesce(sum(clicks), 0)::bigint FROM shortener.links) AS total, \
                (SELECT coalesce(sum(clicks), 0)::bigint FROM shortener.link_daily_clicks) AS daily",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    (s.total, s.daily)
}

#[actix_web::test]
async fn n_redirects_are_n_clicks_after_a_graceful_shutdown() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").await;
    let mut codes = Vec::new();
    for i in 0..3 {
        let link = app
            .link(&key, json!({"url": format!("https://example.com/{i}")}))
            .await;
        codes.push(link["code"].as_str().unwrap().to_owned());
    }
    const N: usize = 300;
    let replies = join_all((0..N).map(|i| {
        let path = format!("/{}", codes[i % codes.len()]);
        let app = &app;
        async move { app.get(&path, None).await.status }
    }))
    .await;
    assert!(replies.iter().all(|s| *s == StatusCode::FOUND));
    assert_eq!(app.shutdown().await, 0, "nothing lost");
    assert_eq!(sums(&app).await, (N as i64, N as i64));
}

#[actix_web::test]
async fn clicks_land_within_a_second_without_anyone_asking() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").await;
    let code = app.link(&key, json!({"url": "https://example.com/"})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..4 {
        assert_eq!(
            app.get(&format!("/{code}"), None).await.status,
            StatusCode::FOUND
        );
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let clicks = app
            .get(&format!("/api/v1/links/{code}"), Some(&key))
            .await
            .body["clicks"]
            .clone();
        if clicks == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "clicks: {clicks}");
        actix_web::rt::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(sums(&app).await, (4, 4));
}

#[actix_web::test]
async fn counting_can_be_switched_off() {
    let app = TestApp::spawn_with(&[("SHORTENER__REDIRECT__COUNT_CLICKS", "false")]).await;
    let (_, key) = app.account("Acme").await;
    let code = app.link(&key, json!({"url": "https://example.com/"})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/{code}"), None).await.status,
            StatusCode::FOUND
        );
    }
    app.flush_clicks().await;
    assert_eq!(app.shutdown().await, 0);
    assert_eq!(sums(&app).await, (0, 0));
}

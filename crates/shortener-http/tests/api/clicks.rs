//! Batched click counting end to end on real PostgreSQL: a redirect never waits for the
//! write, every click lands within a second, and a graceful shutdown writes every click
//! the drained requests counted.

use awc::http::StatusCode;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use serde_json::json;

use crate::support::{Api, TestApp};

#[derive(QueryableByName)]
struct Sums {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// Clicks in the database, journalled or folded (totals are computed from them).
async fn sums(app: &TestApp) -> i64 {
    sums_in(&app.db).await
}

async fn sums_in(db: &shortener_testing::TestDb) -> i64 {
    let mut conn = db.conn().await;
    let s: Sums =
        diesel::sql_query("SELECT coalesce(sum(clicks), 0)::bigint AS total FROM shortener.clicks")
            .get_result(&mut conn)
            .await
            .unwrap();
    s.total
}

#[actix_web::test]
async fn n_redirects_are_n_clicks_after_a_graceful_shutdown() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
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
    assert_eq!(sums(&app).await, N as i64);
}

#[actix_web::test]
async fn clicks_land_within_a_second_without_anyone_asking() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
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
    assert_eq!(sums(&app).await, 4);
}

#[actix_web::test]
async fn counting_can_be_switched_off() {
    let app = TestApp::spawn_with(&[("SHORTENER__REDIRECT__COUNT_CLICKS", "false")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/{code}"), None).await.status,
            StatusCode::FOUND
        );
    }
    app.flush_clicks().await;
    assert_eq!(app.shutdown().await, 0);
    assert_eq!(sums(&app).await, 0);
}

/// The real binary, with visit analytics on: clicks counted by requests that were
/// answered before SIGTERM are all in the database once the process has exited, and so
/// are their visits (each dimension adds up to the clicks).
#[actix_web::test]
async fn sigterm_writes_every_counted_click_before_exit() {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    const KEY: &str = "sigterm-test-bootstrap-key-0123456789abcdef";
    let db = shortener_testing::TestDb::new().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shortener"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("SHORTENER__DATABASE__URL", &db.service_url)
        .env("SHORTENER__DATABASE__OWNER_URL", &db.url)
        .env("SHORTENER__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("SHORTENER__ADMIN__BOOTSTRAP_KEY", KEY)
        .env("SHORTENER__LOG__FILTER", "warn")
        .env("SHORTENER__ANALYTICS__ENABLED", "true")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::builder().disable_redirects().finish();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !matches!(client.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == StatusCode::OK)
    {
        assert!(Instant::now() < deadline, "not ready");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    let api = Api::at(&base, KEY);
    let (_, key) = api.account("A").with_key().await;
    let code = api.code(&key, "https://example.com/").await;

    const N: usize = 200;
    let statuses = join_all((0..N).map(|i| {
        let client = &client;
        let url = format!("{base}/{code}");
        let referrer = format!("https://site{}.example/", i % 7);
        async move {
            client
                .get(url)
                .insert_header(("referer", referrer))
                .send()
                .await
                .unwrap()
                .status()
        }
    }))
    .await;
    assert!(statuses.iter().all(|s| *s == StatusCode::FOUND));

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop on SIGTERM");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert_eq!(sums_in(&db).await, N as i64);
    assert_eq!(
        visits_per_dimension(&db, &code).await,
        vec![N as i64; 5],
        "each dimension adds up to the clicks"
    );
}

/// The visits of link `code` in each dimension, journalled or folded, in dimension order.
async fn visits_per_dimension(db: &shortener_testing::TestDb, code: &str) -> Vec<i64> {
    let mut conn = db.conn().await;
    let rows: Vec<Sums> = diesel::sql_query(
        "SELECT sum(v.clicks)::bigint AS total \
         FROM shortener.links l, \
              shortener.link_visits_between(l.id, '2000-01-01', '2100-01-01') v \
         WHERE l.code = $1 GROUP BY v.dimension ORDER BY v.dimension",
    )
    .bind::<diesel::sql_types::Text, _>(code)
    .load(&mut conn)
    .await
    .unwrap();
    rows.into_iter().map(|r| r.total).collect()
}

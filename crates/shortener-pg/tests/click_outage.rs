//! Clicks counted while PostgreSQL is down are written once it is back: the counter keeps
//! them and the pool replaces its broken connections. Runs on a PostgreSQL of its own,
//! since it stops the server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use chrono::Utc;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shortener_app::{
    AccountService, ClickCounter, ClickSettings, LinkService, NewLink, SystemClock,
};
use shortener_domain::{KeyId, Link, UrlPolicy};
use shortener_pg::local::LocalPostgres;
use shortener_pg::{Db, PgStore, PoolSettings};
use subscriptions::Plans;

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

async fn total(url: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(
        "SELECT coalesce(sum(clicks), 0)::bigint AS total FROM shortener.link_daily_clicks",
    )
    .get_result::<Total>(&mut conn)
    .await
    .unwrap()
    .total
}

/// A new account with one link, and the link service that made it (counting into
/// `clicks`).
async fn link_of_a_new_account(
    store: &PgStore,
    clicks: ClickCounter,
) -> (LinkService<PgStore>, Link) {
    let clock = std::sync::Arc::new(SystemClock);
    let account = AccountService::new(store.clone(), clock.clone(), Plans::default())
        .create(KeyId::new(), "Acme")
        .await
        .unwrap()
        .account
        .id;
    let policy = UrlPolicy::new(&url::Url::parse("https://sho.rt").unwrap(), false);
    let links = LinkService::new(
        store.clone(),
        clock,
        policy,
        Plans::default(),
        clicks,
        std::sync::Arc::new(shortener_app::ResolveCache::new(100)),
    );
    let link = links
        .create(
            account,
            NewLink {
                url: "https://example.com/".into(),
                ..NewLink::default()
            },
        )
        .await
        .unwrap();
    (links, link)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_made_while_postgres_is_stopped_are_written_after_it_restarts() {
    let dir = std::env::temp_dir().join(format!("shortener-outage-{}", uuid::Uuid::new_v4()));
    let start = {
        let dir = dir.clone();
        move || LocalPostgres::start_fast(&dir).unwrap()
    };
    let local = tokio::task::spawn_blocking(start.clone()).await.unwrap();
    shortener_pg::ensure_database(&local.url("postgres"), "clicks")
        .await
        .unwrap();
    let url = local.url("clicks");
    shortener_pg::run_pending_migrations(&url).await.unwrap();
    let settings = PoolSettings {
        max_size: 2,
        wait_timeout: Duration::from_secs(2),
        statement_timeout: Duration::from_secs(5),
    };
    let store = PgStore::new(Db::connect(&url, &settings).unwrap());
    let (clicks, _) = ClickCounter::start(
        store.clone(),
        ClickSettings {
            flush_every: Duration::from_secs(3600),
            ..ClickSettings::default()
        },
    );
    let (links, link) = link_of_a_new_account(&store, clicks.clone()).await;
    // The redirect resolves before the outage; the clicks are counted during it.
    links.follow(link.code.as_str()).await.unwrap();

    tokio::task::spawn_blocking(move || local.stop().unwrap())
        .await
        .unwrap();
    for _ in 0..49 {
        clicks.count(link.id, Utc::now().date_naive());
    }
    clicks.flush().await; // fails: nobody is listening
    assert_eq!(clicks.dropped(), 0);

    let local = tokio::task::spawn_blocking(start).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while total(&url).await != 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "clicks were not written"
        );
        clicks.flush().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(clicks.dropped(), 0);
    tokio::task::spawn_blocking(move || local.stop().unwrap())
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_batch_written_twice_counts_once() {
    use shortener_app::{ClickBatch, ClickCount, ClickStore};

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, link) = link_of_a_new_account(&store, ClickCounter::off()).await;
    let batch = ClickBatch {
        id: uuid::Uuid::now_v7(),
        counts: vec![ClickCount {
            link: link.id,
            day: Utc::now().date_naive(),
            clicks: 21,
        }],
    };
    store.add_clicks(&batch).await.unwrap();
    // The answer was lost, say, and the counter tries again with the same batch.
    store.add_clicks(&batch).await.unwrap();
    assert_eq!(total(&db.url).await, 21);
    let other = ClickBatch {
        id: uuid::Uuid::now_v7(),
        ..batch
    };
    store.add_clicks(&other).await.unwrap();
    assert_eq!(total(&db.url).await, 42);
}

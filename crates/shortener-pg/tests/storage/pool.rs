//! The pool's promises: every connection carries the configured `statement_timeout`, a
//! slow statement or an exhausted pool becomes `Unavailable` (a 503 upstream), never a hang.

use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl;
use shortener_pg::{Db, PgError, PoolSettings};
use shortener_testing::TestDb;

#[derive(QueryableByName)]
struct Setting {
    #[diesel(sql_type = Text)]
    statement_timeout: String,
}

fn settings(max_size: usize, wait_ms: u64, statement_ms: u64) -> PoolSettings {
    PoolSettings {
        max_size,
        wait_timeout: Duration::from_millis(wait_ms),
        statement_timeout: Duration::from_millis(statement_ms),
    }
}

#[tokio::test]
async fn every_connection_has_the_statement_timeout_and_slow_statements_are_unavailable() {
    let test = TestDb::new().await;
    let db = Db::connect(&test.url, &settings(2, 2000, 250)).unwrap();
    let mut conn = db.conn().await.unwrap();
    let s: Setting = diesel::sql_query("SHOW statement_timeout")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(s.statement_timeout, "250ms");

    let started = Instant::now();
    let slow = diesel::sql_query("SELECT pg_sleep(5)")
        .execute(&mut conn)
        .await;
    let err = PgError::from(slow.unwrap_err());
    assert!(matches!(err, PgError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(4));
    db.ping().await.unwrap();
}

#[tokio::test]
async fn an_exhausted_pool_times_out_as_unavailable() {
    let test = TestDb::new().await;
    let db = Db::connect(&test.url, &settings(1, 200, 1000)).unwrap();
    let held = db.conn().await.unwrap();
    let err = db
        .conn()
        .await
        .err()
        .expect("no second connection while the only one is held");
    assert!(matches!(err, PgError::Unavailable(_)), "{err:?}");
    drop(held);
    let _again = db.conn().await.unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_not_a_hang() {
    let db = Db::connect(
        "postgres://postgres@127.0.0.1:1/nothing",
        &settings(1, 500, 1000),
    )
    .unwrap();
    let started = Instant::now();
    assert!(matches!(db.ping().await, Err(PgError::Unavailable(_))));
    assert!(started.elapsed() < Duration::from_secs(5));
}

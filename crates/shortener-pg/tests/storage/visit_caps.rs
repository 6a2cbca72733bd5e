//! Capped visit days (migration 000019), on real PostgreSQL: a day two days old keeps, per
//! link and dimension, its 100 values with most clicks and the rest as one `(other)` row,
//! with every click kept; younger days and other links' days are left alone; capping again
//! changes nothing, and what a late fold adds to a capped day is capped on the next run;
//! a stored `(other)` is never a top value in the stats.
//!
//! Visit rows are written straight into `shortener.link_daily_visits` (as the fold writes
//! them), as the migrations' owner; capping runs as the service.

use chrono::{Days, NaiveDate, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Date, SmallInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use shortener_app::{LinkStore, SystemClock, VisitReport};
use shortener_domain::Link;
use shortener_domain::visit::Dimension;
use shortener_pg::{Db, PgStore, PoolSettings};
use shortener_testing::TestDb;

use crate::support::Fixtures;

fn fixtures(store: &PgStore) -> Fixtures {
    Fixtures::new(store, std::sync::Arc::new(SystemClock))
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn ago(days: u64) -> NaiveDate {
    today().checked_sub_days(Days::new(days)).unwrap()
}

async fn owner(db: &TestDb) -> AsyncPgConnection {
    AsyncPgConnection::establish(&db.url).await.unwrap()
}

/// Writes `values` values of `dimension` on `day` for `link`: `v0`, `v1`, ... with
/// `1 + (i * 7) % 40` clicks (ties included), added to what is there as the fold adds.
async fn visits(
    conn: &mut AsyncPgConnection,
    link: &Link,
    dimension: i16,
    day: NaiveDate,
    prefix: &str,
    values: u32,
) {
    conn.batch_execute(&format!(
        "INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks) \
         SELECT '{}', {dimension}, '{day}', '{prefix}' || i, 1 + (i * 7) % 40 \
         FROM generate_series(0, {} - 1) AS i \
         ON CONFLICT (link_id, dimension, day, value) DO UPDATE \
         SET clicks = link_daily_visits.clicks + excluded.clicks",
        link.id.as_uuid(),
        values
    ))
    .await
    .unwrap();
}

#[derive(QueryableByName, Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Row {
    #[diesel(sql_type = SmallInt)]
    dimension: i16,
    #[diesel(sql_type = Date)]
    day: NaiveDate,
    #[diesel(sql_type = Text)]
    value: String,
    #[diesel(sql_type = BigInt)]
    clicks: i64,
}

/// Every stored row of `link`, in key order.
async fn rows(conn: &mut AsyncPgConnection, link: &Link) -> Vec<Row> {
    diesel::sql_query(
        "SELECT dimension, day, value, clicks FROM shortener.link_daily_visits \
         WHERE link_id = $1 ORDER BY dimension, day, value COLLATE \"C\"",
    )
    .bind::<diesel::sql_types::Uuid, _>(link.id.as_uuid())
    .load(conn)
    .await
    .unwrap()
}

/// `rows` of one dimension and day.
fn of(rows: &[Row], dimension: i16, day: NaiveDate) -> Vec<Row> {
    rows.iter()
        .filter(|r| r.dimension == dimension && r.day == day)
        .cloned()
        .collect()
}

fn sum(rows: &[Row]) -> i64 {
    rows.iter().map(|r| r.clicks).sum()
}

/// The `n` values with most clicks, ties by value bytewise: what a capped day keeps.
fn top(rows: &[Row], n: usize) -> Vec<Row> {
    let mut ranked: Vec<Row> = rows
        .iter()
        .filter(|r| r.value != "(other)")
        .cloned()
        .collect();
    ranked.sort_by(|a, b| {
        b.clicks
            .cmp(&a.clicks)
            .then_with(|| a.value.as_bytes().cmp(b.value.as_bytes()))
    });
    ranked.truncate(n);
    ranked.sort();
    ranked
}

/// Caps everything due up to `last_day`, as the sweep does (as the service, a few pairs
/// a statement); returns the pairs capped.
async fn cap(db: &TestDb, last_day: NaiveDate) -> usize {
    let pool = Db::connect(&db.service_url, &PoolSettings::default()).unwrap();
    let mut done = 0;
    loop {
        let n = pool.compact_visit_days(last_day, 2).await.unwrap();
        done += n;
        if n < 2 {
            return done;
        }
    }
}

async fn report(store: &PgStore, link: &Link) -> VisitReport {
    store
        .link_visits(link.id, ago(30), today(), 10)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_day_two_days_old_keeps_its_top_100_values_and_the_rest_as_other() {
    let db = TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(2).await;
    let (a, b) = (&made[0], &made[1]);
    let mut conn = owner(&db).await;
    let closed = [ago(2), ago(3)];
    for day in closed {
        visits(&mut conn, a, 1, day, "h", 250).await;
        visits(&mut conn, a, 2, day, "C", 120).await;
        visits(&mut conn, a, 3, day, "B", 5).await;
    }
    // Young days of `a` and `b`, and a closed day of `b` with no tail.
    for day in [ago(1), today()] {
        visits(&mut conn, a, 1, day, "h", 250).await;
        visits(&mut conn, b, 1, day, "h", 250).await;
    }
    visits(&mut conn, b, 1, ago(5), "h", 100).await;
    let (rows_a, rows_b) = (rows(&mut conn, a).await, rows(&mut conn, b).await);
    let (stats_a, stats_b) = (report(&store, a).await, report(&store, b).await);

    assert_eq!(cap(&db, ago(2)).await, 3, "a's two closed days and b's");

    let capped = rows(&mut conn, a).await;
    for day in closed {
        for (dimension, values) in [(1, 250), (2, 120), (3, 5)] {
            let was = of(&rows_a, dimension, day);
            let now = of(&capped, dimension, day);
            assert_eq!(
                sum(&now),
                sum(&was),
                "dimension {dimension} on {day}: every click kept"
            );
            assert_eq!(top(&now, 100), top(&was, 100), "the same top 100");
            let other: Vec<&Row> = now.iter().filter(|r| r.value == "(other)").collect();
            if values > 100 {
                assert_eq!(now.len(), 101);
                assert_eq!(other.len(), 1);
                assert_eq!(other[0].clicks, sum(&was) - sum(&top(&was, 100)));
            } else {
                assert_eq!(now, was, "a dimension of 100 values or fewer is left alone");
            }
        }
    }
    for day in [ago(1), today()] {
        assert_eq!(
            of(&capped, 1, day),
            of(&rows_a, 1, day),
            "a young day is left alone"
        );
    }
    assert_eq!(rows(&mut conn, b).await, rows_b, "b's days are left alone");
    // The stats read the same: totals, top 10 and the rest.
    assert_eq!(report(&store, a).await, stats_a);
    assert_eq!(report(&store, b).await, stats_b);

    // Capping again changes nothing.
    assert_eq!(cap(&db, ago(2)).await, 0);
    assert_eq!(rows(&mut conn, a).await, capped);

    // A day later, yesterday is two days old: capped then, and only then.
    cap(&db, ago(1)).await;
    let later = rows(&mut conn, a).await;
    assert_eq!(of(&later, 1, ago(1)).len(), 101);
    assert_eq!(sum(&of(&later, 1, ago(1))), sum(&of(&rows_a, 1, ago(1))));
    assert_eq!(of(&later, 1, today()), of(&rows_a, 1, today()));
    assert_eq!(report(&store, a).await, stats_a);
}

#[tokio::test]
async fn what_a_late_fold_adds_to_a_capped_day_is_capped_on_the_next_run_and_kept() {
    let db = TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(1).await;
    let a = &made[0];
    let mut conn = owner(&db).await;
    let day = ago(4);
    visits(&mut conn, a, 1, day, "h", 250).await;
    cap(&db, ago(2)).await;
    let capped = of(&rows(&mut conn, a).await, 1, day);
    assert_eq!(capped.len(), 101);

    // Clicks held through an outage: again on every value (the kept ones add up, the
    // merged ones come back as rows), and 30 values new to the day.
    visits(&mut conn, a, 1, day, "h", 250).await;
    visits(&mut conn, a, 1, day, "late", 30).await;
    let late = of(&rows(&mut conn, a).await, 1, day);
    assert!(late.len() > 101);
    let stats = report(&store, a).await;

    assert_eq!(
        cap(&db, ago(2)).await,
        1,
        "the late fold queued the day again"
    );
    let now = of(&rows(&mut conn, a).await, 1, day);
    assert_eq!(now.len(), 101);
    assert_eq!(sum(&now), sum(&late), "nothing lost, nothing doubled");
    let new_values: i64 = late
        .iter()
        .filter(|r| r.value.starts_with("late"))
        .map(|r| r.clicks)
        .sum();
    assert_eq!(sum(&late), 2 * sum(&capped) + new_values);
    let other = now.iter().find(|r| r.value == "(other)").unwrap().clicks;
    assert_eq!(other, sum(&now) - sum(&top(&now, 100)));
    assert_eq!(report(&store, a).await, stats);
}

#[tokio::test]
async fn a_stored_other_is_never_a_top_value_in_the_stats() {
    let db = TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(1).await;
    let a = &made[0];
    let mut conn = owner(&db).await;
    visits(&mut conn, a, 1, ago(3), "h", 3).await;
    conn.batch_execute(&format!(
        "INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks) \
         VALUES ('{0}', 1, '{1}', '(other)', 1000), ('{0}', 1, '{2}', '(other)', 500)",
        a.id.as_uuid(),
        ago(3),
        ago(4)
    ))
    .await
    .unwrap();
    let stats = report(&store, a).await;
    let referrers = stats
        .breakdowns
        .iter()
        .find(|b| b.dimension == Dimension::Referrer)
        .unwrap();
    assert!(referrers.top.iter().all(|(v, _)| v != "(other)"));
    assert_eq!(
        referrers.top.len(),
        3,
        "the three real values, though fewer clicks"
    );
    assert_eq!(referrers.other, 1500);
    let one = store.link_visits(a.id, ago(30), today(), 1).await.unwrap();
    let referrers = one
        .breakdowns
        .iter()
        .find(|b| b.dimension == Dimension::Referrer)
        .unwrap();
    assert_eq!(referrers.top.len(), 1);
    assert_ne!(referrers.top[0].0, "(other)");
    assert_eq!(referrers.total(), 1500 + 8 + 15 + 1);
}

#[tokio::test]
async fn runs_at_once_cap_every_day_once_and_lose_nothing() {
    let db = TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(4).await;
    let mut conn = owner(&db).await;
    for link in &made {
        for d in 2..12 {
            visits(&mut conn, link, 1, ago(d), "h", 150).await;
        }
    }
    let mut before = Vec::new();
    for link in &made {
        before.push(rows(&mut conn, link).await);
    }
    let runs = tokio::join!(
        cap(&db, ago(2)),
        cap(&db, ago(2)),
        cap(&db, ago(2)),
        cap(&db, ago(2))
    );
    let capped = runs.0 + runs.1 + runs.2 + runs.3;
    assert_eq!(
        capped,
        made.len() * 10,
        "each (link, day) capped by one run"
    );
    for (link, was) in made.iter().zip(&before) {
        let now = rows(&mut conn, link).await;
        for d in 2..12 {
            let (was, now) = (of(was, 1, ago(d)), of(&now, 1, ago(d)));
            assert_eq!(now.len(), 101);
            assert_eq!(sum(&now), sum(&was));
            assert_eq!(top(&now, 100), top(&was, 100));
        }
    }
}

//! The redirect's resolve cache across instances, on real PostgreSQL: two instances share
//! one database; a change made through one stops the other from serving the old answer
//! within a second (LISTEN/NOTIFY), and a listener that loses its connection keeps the
//! cache, reconnects, and catches up with what changed while it was away. Through a
//! stopped PostgreSQL, cached redirects keep answering (and counting), misses are
//! unavailable, and the clicks counted meanwhile land once it is back.

use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use serde_json::json;
use shortener_app::{Clock, ManualClock};
use shortener_http::DatabaseUrls;
use shortener_testing::PrivatePostgres;

use crate::support::TestApp;

/// Polls `GET /{code}` on `app` until it answers `status` (and `location`, when given);
/// fails after `within`.
async fn until<D>(
    app: &TestApp<D>,
    code: &str,
    status: u16,
    location: Option<&str>,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    loop {
        let r = app.get(&format!("/{code}"), None).await;
        let loc = r.header("location");
        if r.status.as_u16() == status && (location.is_none() || loc.as_deref() == location) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {} {loc:?} after {within:?}, wanted {status} {location:?}",
            r.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_change_on_one_instance_reaches_the_other_within_a_second() {
    let a = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__CUSTOM_CODES", "true")]).await;
    let b = a.spawn_beside().await;
    let (_, key) = a.account("Acme").with_key().await;
    let second = Duration::from_secs(1);

    // A code nobody has yet: B remembers that it is unknown...
    b.get("/promo-2026", None)
        .await
        .assert_problem(404, "not-found");
    // ...until A creates it.
    a.link(
        &key,
        json!({"url": "https://one.example/", "code": "promo-2026"}),
    )
    .await;
    until(&b, "promo-2026", 302, Some("https://one.example/"), second).await;

    // B now serves it from its cache; A edits it.
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/links/promo-2026",
            Some(&key),
            Some(json!({"url": "https://two.example/"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    until(&b, "promo-2026", 302, Some("https://two.example/"), second).await;

    // Expiry needs no message: it is checked at every request.
    let soon = (a.clock.now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/links/promo-2026",
            Some(&key),
            Some(json!({"expires_at": soon})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Time passes for both instances (they share the clock, as machines share the time).
    a.clock.advance(chrono::Duration::seconds(2));
    until(&b, "promo-2026", 410, None, Duration::from_secs(3)).await;
    let r = a
        .request(
            Method::PATCH,
            "/api/v1/links/promo-2026",
            Some(&key),
            Some(json!({"expires_at": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    until(&b, "promo-2026", 302, Some("https://two.example/"), second).await;

    // Deleted on A: 404 on B.
    let r = a
        .request(Method::DELETE, "/api/v1/links/promo-2026", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    until(&b, "promo-2026", 404, None, second).await;
}

#[derive(diesel::QueryableByName)]
struct N {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Connections of the invalidation listener on this test's database.
async fn listeners(conn: &mut diesel_async::AsyncPgConnection) -> i64 {
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = '{}' \
         AND datname = current_database()",
        shortener_pg::listen::APPLICATION_NAME
    );
    diesel::sql_query(sql)
        .get_result::<N>(conn)
        .await
        .unwrap()
        .n
}

/// Waits (30 s at most) until the invalidation listener on the database at `url` (its
/// owner's, who sees every session's statement) is past the cache clearing its first
/// connection does: only then does what is cached stay cached.
async fn until_listener_settled(url: &str) {
    let sql = format!(
        "SELECT count(*) AS n FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database() \
           AND (query LIKE 'DELETE FROM shortener.link_changes%' \
                OR clock_timestamp() - backend_start > interval '6 seconds')",
        shortener_pg::listen::APPLICATION_NAME
    );
    let mut conn =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(url)
            .await
            .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let settled: N = diesel::sql_query(&sql).get_result(&mut conn).await.unwrap();
        if settled.n > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the listener did not settle");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_lost_listener_catches_up_with_edits_made_while_it_was_away() {
    let a = TestApp::spawn().await;
    let b = a.spawn_beside().await;
    let (_, key) = a.account("Acme").with_key().await;
    let code = a.code(&key, "https://old.example/").await;
    until(
        &a,
        &code,
        302,
        Some("https://old.example/"),
        Duration::from_secs(1),
    )
    .await;

    let mut conn = a.db.conn().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while listeners(&mut conn).await != 2 {
        assert!(Instant::now() < deadline, "no listener connections");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    // Cut the listeners off, and edit the link on B while nobody listens: the notification
    // is sent to no one, so only catching up on reconnect can make A let go.
    conn.batch_execute(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        shortener_pg::listen::APPLICATION_NAME
    ))
    .await
    .unwrap();
    while listeners(&mut conn).await != 0 {
        assert!(Instant::now() < deadline, "the listeners did not go");
        actix_web::rt::time::sleep(Duration::from_millis(10)).await;
    }
    let r = b
        .request(
            Method::PATCH,
            &format!("/api/v1/links/{code}"),
            Some(&key),
            Some(json!({"url": "https://new.example/"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // A still answers from its cache while it is away, then within its reconnection (a
    // second) and one more second, the new target.
    until(
        &a,
        &code,
        302,
        Some("https://new.example/"),
        Duration::from_secs(3),
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while listeners(&mut conn).await != 2 {
        assert!(Instant::now() < deadline, "the listeners did not reconnect");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn the_cache_answers_without_the_database() {
    let a = TestApp::spawn().await;
    let (_, key) = a.account("Acme").with_key().await;
    let code = a.code(&key, "https://cached.example/").await;
    until(
        &a,
        &code,
        302,
        Some("https://cached.example/"),
        Duration::from_secs(1),
    )
    .await;
    a.get("/nosuchcode", None)
        .await
        .assert_problem(404, "not-found");
    // Take the pool's connections away and let no new one in (the listener stays, so
    // the cache is not cleared): only memory can answer now.
    let mut conn = a.db.conn().await;
    #[derive(diesel::QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    let name = diesel::sql_query("SELECT current_database() AS name")
        .get_result::<Name>(&mut conn)
        .await
        .unwrap()
        .name;
    let maintenance = a.db.url.replacen(&format!("/{name}"), "/postgres", 1);
    let mut admin =
        <diesel_async::AsyncPgConnection as diesel_async::AsyncConnection>::establish(&maintenance)
            .await
            .unwrap();
    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND application_name <> '{}'",
            shortener_pg::listen::APPLICATION_NAME
        ))
        .await
        .unwrap();
    // A code never asked for needs the database, which is gone...
    until(&a, "neverasked", 503, None, Duration::from_secs(10)).await;
    // ...while known and unknown codes alike are still answered, from memory.
    let r = a.get(&format!("/{code}"), None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://cached.example/")
    );
    a.get("/nosuchcode", None)
        .await
        .assert_problem(404, "not-found");
    // When the database lets connections in again, the workers' lookup pools reconnect
    // and a code never asked for is looked up again.
    admin
        .batch_execute(&format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    until(&a, "neverasked", 404, None, Duration::from_secs(10)).await;
    a.get("/neverasked", None)
        .await
        .assert_problem(404, "not-found");
}

#[actix_web::test]
async fn cached_redirects_answer_through_a_stopped_postgres() {
    let mut pg = PrivatePostgres::start("outage").await;
    let urls = DatabaseUrls {
        url: pg.service_url.clone(),
        owner_url: pg.url.clone(),
    };
    let a = TestApp::spawn_over((), urls, ManualClock::new(), &[]).await;
    let (_, key) = a.account("Acme").with_key().await;
    let target = "https://cached.example/";
    let code = a.code(&key, target).await;
    let limited = a.link(&key, json!({"url": target, "max_visits": 5})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    until_listener_settled(&pg.url).await;
    until(&a, &code, 302, Some(target), Duration::from_secs(1)).await;
    until(&a, &limited, 302, Some(target), Duration::from_secs(1)).await;
    // Every 302 answered is a click (`until` stops at the first).
    let mut redirected = 1;

    pg.stop().await;
    // PostgreSQL is gone: what is cached still redirects (and counts)...
    for _ in 0..9 {
        let r = a.get(&format!("/{code}"), None).await;
        assert_eq!(r.status, StatusCode::FOUND, "body: {}", r.body);
        assert_eq!(r.header("location").as_deref(), Some(target));
        redirected += 1;
    }
    // ...what is not is unavailable, not "not found"; so is a limited link, cached or
    // not: its visits are taken in the database, and none is given without it.
    a.get("/neverseen", None)
        .await
        .assert_problem(503, "service-unavailable");
    a.get(&format!("/{limited}"), None)
        .await
        .assert_problem(503, "service-unavailable");
    actix_web::rt::time::sleep(Duration::from_secs(2)).await; // the listener notices, retries
    let r = a.get(&format!("/{code}"), None).await;
    assert_eq!(r.status, StatusCode::FOUND, "body: {}", r.body);
    assert_eq!(r.header("location").as_deref(), Some(target));
    redirected += 1;

    pg.restart().await;
    // Back: every click counted before and during the outage lands.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        a.flush_clicks().await;
        let r = a.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
        // Until the pools have replaced their broken connections, this may be a 503.
        let counted = r.body["clicks"].as_i64();
        if r.status == StatusCode::OK && counted == Some(redirected) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{redirected} redirects, still {} {}",
            r.status,
            r.body
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    // The limited link took one visit (the redirect before the outage), none while it
    // answered 503.
    let r = a.get(&format!("/api/v1/links/{limited}"), Some(&key)).await;
    assert_eq!(r.body["visits_left"], 4, "{}", r.body);
    drop(a);
    pg.remove().await;
}

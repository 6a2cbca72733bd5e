//! Reads on a real streaming replica (`database.replica_urls`): a PostgreSQL primary of
//! the test's own and a hot standby cloned from it with `pg_basebackup -R`, some delayed
//! on purpose (`recovery_min_apply_delay`) so that the replica is seconds behind while
//! the test runs. Each test checks the replica's own state beside the service's answers,
//! so an answer that could only have come from the lagging replica would be caught.

use std::time::{Duration, Instant};

use awc::http::StatusCode;
use diesel::QueryableByName;
use diesel::sql_types::Text;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde_json::json;
use shortener_app::ManualClock;
use shortener_http::DatabaseUrls;
use shortener_testing::PrivatePostgres;

use crate::support::{Api, TestApp};

/// An instance of the service on `pg`'s primary, reading from its replica.
async fn instance(pg: &PrivatePostgres) -> TestApp<()> {
    instance_with(pg, &[]).await
}

/// [`instance`] with more settings.
async fn instance_with(pg: &PrivatePostgres, extra: &[(&str, &str)]) -> TestApp<()> {
    let urls = DatabaseUrls {
        url: pg.service_url.clone(),
        owner_url: pg.url.clone(),
    };
    TestApp::spawn_over(
        (),
        urls,
        ManualClock::new(),
        &[
            &[(
                "SHORTENER__DATABASE__REPLICA_URLS",
                pg.replica_service_url(),
            )],
            extra,
        ]
        .concat(),
    )
    .await
}

/// One sample of the instance's metrics, by its exact name and labels; 0 when absent.
async fn metric(api: &Api, series: &str) -> f64 {
    let r = api.get("/metrics", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = String::from_utf8(r.raw).expect("utf-8");
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// Waits until the instance's watcher has found the replica fit to read from.
async fn until_replica_in_use(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while metric(api, "shortener_db_replica_up{replica=\"1\"}").await != 1.0 {
        assert!(Instant::now() < deadline, "the replica was never used");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[derive(QueryableByName)]
struct Target {
    #[diesel(sql_type = Text)]
    target: String,
}

/// The target the replica itself has for `code` (`None`: it has no such link yet).
async fn on_replica(pg: &PrivatePostgres, code: &str) -> Option<String> {
    let mut conn = AsyncPgConnection::establish(pg.replica_url())
        .await
        .expect("connecting to the replica");
    diesel::sql_query("SELECT target FROM shortener.links WHERE code = $1")
        .bind::<Text, _>(code)
        .get_result::<Target>(&mut conn)
        .await
        .ok()
        .map(|t| t.target)
}

/// Waits until the replica has `code` with `target`.
async fn until_on_replica(pg: &PrivatePostgres, code: &str, target: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while on_replica(pg, code).await.as_deref() != Some(target) {
        assert!(Instant::now() < deadline, "the replica never had {code}");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The redirect's status and location.
async fn follow(api: &Api, code: &str) -> (StatusCode, Option<String>) {
    let r = api.get(&format!("/{code}"), None).await;
    (r.status, r.header("location"))
}

#[actix_web::test]
async fn a_caller_reads_its_own_writes_while_the_replica_lags_and_other_reads_use_it() {
    let pg = PrivatePostgres::start_replicated("replica_own", Duration::from_secs(2)).await;
    let a = instance(&pg).await;
    until_replica_in_use(&a).await;
    let (_, key) = a.account("Acme").with_key().await;

    // Created a moment ago: not on the replica, read anyway (by code, and in the list).
    let code = a.code(&key, "https://one.example/").await;
    let r = a.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["url"], "https://one.example/");
    let listed = a.get("/api/v1/links", Some(&key)).await;
    assert_eq!(
        listed.body["items"][0]["code"],
        code.as_str(),
        "{}",
        listed.body
    );
    assert_eq!(
        on_replica(&pg, &code).await,
        None,
        "the replica lags as meant"
    );

    // Edited once the replica has the first state: the caller sees the edit at once.
    until_on_replica(&pg, &code, "https://one.example/").await;
    a.patch_link(&key, &code, json!({"url": "https://two.example/"}))
        .await;
    let r = a.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(r.body["url"], "https://two.example/", "{}", r.body);
    let listed = a.get("/api/v1/links", Some(&key)).await;
    assert_eq!(listed.body["items"][0]["url"], "https://two.example/");
    assert_eq!(
        on_replica(&pg, &code).await.as_deref(),
        Some("https://one.example/"),
        "the replica still had the old target, so the reads above were not answered there"
    );

    // Once the replica has caught up, reads go to it.
    until_on_replica(&pg, &code, "https://two.example/").await;
    let before = metric(&a, "shortener_db_reads_total{to=\"replica\"}").await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = a.get("/api/v1/links", Some(&key)).await;
        assert_eq!(r.body["items"][0]["url"], "https://two.example/");
        if metric(&a, "shortener_db_reads_total{to=\"replica\"}").await > before {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no read ever went to the replica"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    // The audit log too, complete to the caller's latest change.
    let r = a.get("/api/v1/audit", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"][0]["action"], "link.updated", "{}", r.body);
    drop(a);
    pg.remove().await;
}

#[actix_web::test]
async fn another_instance_never_serves_an_old_target_nor_a_false_404_through_lag() {
    let pg = PrivatePostgres::start_replicated("replica_lag", Duration::from_secs(3)).await;
    let a = instance(&pg).await;
    let b = instance(&pg).await;
    until_replica_in_use(&a).await;
    until_replica_in_use(&b).await;
    let (_, key) = a.account("Acme").with_key().await;

    // Created on A, followed on B at once: B's replica does not have it yet.
    let fresh = a.code(&key, "https://fresh.example/").await;
    assert_eq!(
        follow(&b, &fresh).await,
        (StatusCode::FOUND, Some("https://fresh.example/".into()))
    );
    assert_eq!(
        on_replica(&pg, &fresh).await,
        None,
        "the replica lags as meant"
    );

    // Edited on A once B has cached the old target from a replica that has it.
    let code = a.code(&key, "https://old.example/").await;
    until_on_replica(&pg, &code, "https://old.example/").await;
    assert_eq!(
        follow(&b, &code).await,
        (StatusCode::FOUND, Some("https://old.example/".into()))
    );
    a.patch_link(&key, &code, json!({"url": "https://new.example/"}))
        .await;
    // B hears of the edit within a moment and from then on sends everyone to the new
    // target, although its replica has the old one for three seconds more.
    let edited = Instant::now();
    loop {
        let (status, location) = follow(&b, &code).await;
        assert_eq!(status, StatusCode::FOUND);
        if location.as_deref() == Some("https://new.example/") {
            break;
        }
        assert!(
            edited.elapsed() < Duration::from_millis(1500),
            "B still sends to {location:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        on_replica(&pg, &code).await.as_deref(),
        Some("https://old.example/"),
        "the replica still had the old target"
    );
    while on_replica(&pg, &code).await.as_deref() != Some("https://new.example/") {
        assert_eq!(
            follow(&b, &code).await,
            (StatusCode::FOUND, Some("https://new.example/".into()))
        );
        assert!(edited.elapsed() < Duration::from_secs(30), "never replayed");
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    drop((a, b));
    pg.remove().await;
}

#[actix_web::test]
async fn with_the_primary_stopped_misses_resolve_from_the_replica_and_clicks_wait() {
    let mut pg = PrivatePostgres::start_replicated("replica_failover", Duration::ZERO).await;
    let a = instance(&pg).await;
    until_replica_in_use(&a).await;
    // Pro: its request rate leaves room for the polling below.
    let (_, key) = a.pro_account().await;
    let codes = [
        a.code(&key, "https://a.example/").await,
        a.code(&key, "https://b.example/").await,
        a.code(&key, "https://c.example/").await,
    ];
    for (code, target) in codes.iter().zip(["a", "b", "c"]) {
        until_on_replica(&pg, code, &format!("https://{target}.example/")).await;
    }
    // Only the first is cached before the outage.
    assert_eq!(follow(&a, &codes[0]).await.0, StatusCode::FOUND);
    let mut redirected = 1;

    pg.stop().await;
    // Misses resolve from the replica, unknown codes too.
    for (code, target) in codes.iter().zip(["a", "b", "c"]) {
        assert_eq!(
            follow(&a, code).await,
            (
                StatusCode::FOUND,
                Some(format!("https://{target}.example/"))
            )
        );
        redirected += 1;
    }
    a.get("/neverseen", None)
        .await
        .assert_problem(404, "not-found");
    // Still ready: a load balancer keeps sending redirects here.
    let ready = a.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);
    // Writes cannot be made.
    let r = a
        .request(
            awc::http::Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": "https://d.example/"})),
        )
        .await;
    r.assert_problem(503, "service-unavailable");

    // Back: the clicks counted during the outage land.
    pg.restart().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        a.flush_clicks().await;
        let mut counted = 0;
        let mut seen = Vec::new();
        for code in &codes {
            let r = a.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
            counted += r.body["clicks"].as_i64().unwrap_or(0);
            seen.push(format!("{} {}", r.status, r.body));
        }
        if counted == redirected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{redirected} redirects, {counted} clicks: {seen:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    }
    drop(a);
    pg.remove().await;
}

#[actix_web::test]
async fn a_replica_lagging_past_the_limit_or_stopped_is_skipped_and_reads_stay_answered() {
    let mut pg = PrivatePostgres::start_replicated("replica_skip", Duration::from_secs(2)).await;
    let a = instance_with(&pg, &[("SHORTENER__DATABASE__REPLICA_MAX_LAG", "500ms")]).await;
    until_replica_in_use(&a).await;
    let (_, key) = a.pro_account().await;
    // Writes keep the primary moving; the replica applies them two seconds late, so it
    // is soon further behind than the 500 ms allowed.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut made = Vec::new();
    while metric(&a, "shortener_db_replica_up{replica=\"1\"}").await != 0.0 {
        made.push(a.code(&key, "https://moving.example/").await);
        assert!(
            Instant::now() < deadline,
            "the lagging replica stayed in use"
        );
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(metric(&a, "shortener_db_replica_lag_seconds{replica=\"1\"}").await > 0.5);
    // Exported as the catalog says (the metrics tests run without replicas).
    let text = String::from_utf8(a.get("/metrics", None).await.raw).unwrap();
    for kind in [
        "# TYPE shortener_db_replica_up gauge",
        "# TYPE shortener_db_replica_lag_seconds gauge",
        "# TYPE shortener_db_reads_total counter",
    ] {
        assert!(text.contains(kind), "{kind}");
    }
    // Skipped: reads go to the primary, and see everything.
    let before = metric(&a, "shortener_db_reads_total{to=\"primary\"}").await;
    let r = a.get("/api/v1/links?limit=100", Some(&key)).await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(made.len()));
    assert!(metric(&a, "shortener_db_reads_total{to=\"primary\"}").await > before);

    // Caught up again (no more writes): in use again.
    until_replica_in_use(&a).await;
    // Stopped: skipped within a moment; misses and reads are answered by the primary.
    pg.stop_replica().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while metric(&a, "shortener_db_replica_up{replica=\"1\"}").await != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the stopped replica stayed in use"
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
    for code in made.iter().take(3) {
        assert_eq!(
            follow(&a, code).await,
            (StatusCode::FOUND, Some("https://moving.example/".into()))
        );
    }
    let r = a.get("/api/v1/links?limit=100", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    drop(a);
    pg.remove().await;
}

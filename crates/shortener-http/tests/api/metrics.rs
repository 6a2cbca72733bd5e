//! `GET /metrics`, read with a real Prometheus text parser: every instrument of the
//! catalog is exported with its type, and values move with the traffic the test drives
//! (redirects by outcome, the cache, clicks, audit entries, a pool timeout, a dropped
//! click and the listener through a PostgreSQL outage). Each app has its own registry,
//! so the figures are this test's alone.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use awc::http::StatusCode;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use prom_text_format_parser::ValueType;
use shortener_app::ManualClock;
use shortener_app::metrics::{CATALOG, Kind};
use shortener_http::DatabaseUrls;
use shortener_testing::PrivatePostgres;

use crate::support::{Api, TestApp};

/// One scrape: each sample's value by its name and sorted labels, and each family's type.
struct Scrape {
    samples: HashMap<String, f64>,
    types: HashMap<String, String>,
    text: String,
}

impl Scrape {
    async fn of(api: &Api) -> Scrape {
        let r = api.get("/metrics", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("text/plain; version=0.0.4; charset=utf-8")
        );
        let text = String::from_utf8(r.raw).expect("utf-8");
        let parsed = prom_text_format_parser::Scrape::parse(&text)
            .unwrap_or_else(|e| panic!("not Prometheus text: {e:?}\n{text}"));
        let mut samples = HashMap::new();
        let mut types = HashMap::new();
        for metric in &parsed.metrics {
            let name = &metric.name;
            let kind = metric.kind.to_string();
            assert_ne!(kind, "summary", "{name}: summaries are not expected");
            for sample in &metric.samples {
                let mut le = None;
                let mut labels: Vec<String> = Vec::new();
                for label in sample.labels.iter() {
                    match label.key.as_str() {
                        "le" => le = Some(label.value.clone()),
                        _ => labels.push(format!("{}={}", label.key, label.value)),
                    }
                }
                labels.sort();
                let suffix = match (sample.value.value_type, le.as_deref()) {
                    (ValueType::Count, _) => "_count",
                    (ValueType::Sum, _) => "_sum",
                    // A histogram's `+Inf` bucket is its count; other buckets are not kept.
                    (ValueType::Sample, Some("+Inf")) => "",
                    (ValueType::Sample, Some(_)) => continue,
                    (ValueType::Sample, None) => "",
                };
                let key = format!("{name}{suffix}{{{}}}", labels.join(","));
                samples.insert(key, sample.value.value.as_f64());
            }
            types.insert(name.clone(), kind);
        }
        Scrape {
            samples,
            types,
            text,
        }
    }

    /// The value of `name` with exactly `labels` (`"k=v"`, any order); 0 when absent.
    fn value(&self, name: &str, labels: &[&str]) -> f64 {
        let mut labels: Vec<&str> = labels.to_vec();
        labels.sort();
        self.samples
            .get(&format!("{name}{{{}}}", labels.join(",")))
            .copied()
            .unwrap_or(0.0)
    }
}

#[actix_web::test]
async fn every_instrument_is_exported_and_values_move_with_traffic() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://metered.example/").await;
    let before = Scrape::of(&app).await;

    // The whole catalog, each with its type, and nothing of ours outside it; but a
    // replica's series, which exist once there are replicas (`replicas.rs` reads them).
    let per_replica = [
        shortener_app::metrics::REPLICA_UP.name,
        shortener_app::metrics::REPLICA_LAG.name,
    ];
    for i in CATALOG.iter().filter(|i| !per_replica.contains(&i.name)) {
        assert_eq!(
            before.types.get(i.name).map(String::as_str),
            Some(i.kind.as_str()),
            "{} should be exported as a {}:\n{}",
            i.name,
            i.kind.as_str(),
            before.text
        );
    }
    for name in before.types.keys() {
        assert!(
            CATALOG.iter().any(|i| i.name == *name),
            "{name} is exported but not in the catalog (nor the README)"
        );
    }
    assert!(CATALOG.iter().any(|i| i.kind == Kind::Histogram));

    for _ in 0..3 {
        let r = app.get(&format!("/{code}"), None).await;
        assert_eq!(r.status, StatusCode::FOUND);
    }
    app.get("/nosuchcode", None)
        .await
        .assert_problem(404, "not-found");
    let r = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    app.flush_clicks().await;
    let after = Scrape::of(&app).await;

    let delta =
        |name: &str, labels: &[&str]| after.value(name, labels) - before.value(name, labels);
    assert_eq!(delta("shortener_redirects_total", &["outcome=found"]), 3.0);
    assert_eq!(
        delta("shortener_redirects_total", &["outcome=not_found"]),
        1.0
    );
    assert_eq!(
        delta("shortener_redirects_total", &["outcome=expired"]),
        0.0
    );
    // Histograms by route template, method and status: the code is never a label value.
    let redirects = ["route=/{code}", "method=GET", "status=302"];
    assert_eq!(
        delta("shortener_http_request_duration_seconds", &redirects),
        3.0
    );
    let read = ["route=/api/v1/links/{code}", "method=GET", "status=200"];
    assert_eq!(delta("shortener_http_request_duration_seconds", &read), 1.0);
    assert!(!after.text.contains(&code), "a code became a label value");
    // The first redirect looked the code up (a miss), the others were cache hits; the
    // unknown code was a miss too.
    assert_eq!(delta("shortener_resolve_cache_misses_total", &[]), 2.0);
    assert_eq!(delta("shortener_resolve_cache_hits_total", &[]), 2.0);
    // The link and the unknown code were cached; the listener's late news of the link's
    // creation (a loaded machine) may have dropped the link's entry again since.
    assert!(after.value("shortener_resolve_cache_entries", &[]) >= 1.0);
    assert!(after.value("shortener_lookup_batch_size_count", &[]) >= 2.0);
    assert_eq!(delta("shortener_clicks_queued_total", &[]), 3.0);
    assert_eq!(delta("shortener_clicks_written_total", &[]), 3.0);
    assert_eq!(after.value("shortener_clicks_pending", &[]), 0.0);
    assert_eq!(after.value("shortener_clicks_dropped_total", &[]), 0.0);
    // Account, key and link: one audit entry each, at least.
    assert!(after.value("shortener_audit_entries_total", &[]) >= 3.0);
    for pool in ["shared", "lookup", "clicks"] {
        let label = format!("pool={pool}");
        assert!(
            after.value("shortener_db_pool_max", &[&label]) >= 1.0,
            "{pool}"
        );
        assert!(
            after.value("shortener_db_pool_size", &[&label]) >= 1.0,
            "{pool}"
        );
    }
    assert!(after.value("process_resident_memory_bytes", &[]) > 1e6);
    assert!(after.value("process_open_fds", &[]) > 0.0);
}

#[actix_web::test]
async fn a_pool_timeout_is_counted_as_it_happens() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__DATABASE__POOL_SIZE", "1"),
        ("SHORTENER__DATABASE__POOL_TIMEOUT", "300ms"),
    ])
    .await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://pooled.example/").await;
    let before = Scrape::of(&app).await;

    // Another session holds the links table, so a read of a link keeps the pool's only
    // connection busy; readiness then waits for a connection in vain.
    let mut locker = AsyncPgConnection::establish(&app.db.url)
        .await
        .expect("connects");
    locker
        .batch_execute("BEGIN; LOCK TABLE shortener.links IN ACCESS EXCLUSIVE MODE;")
        .await
        .expect("locks");
    let held = {
        let api = Api::at(&app.base, "unused");
        let (path, key) = (format!("/api/v1/links/{code}"), key.clone());
        actix_web::rt::spawn(async move { api.get(&path, Some(&key)).await.status })
    };
    // Once the read holds the connection, readiness times out waiting for it.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = app.get("/readyz", None).await;
        if r.status == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        assert!(Instant::now() < deadline, "readiness never waited in vain");
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let during = Scrape::of(&app).await;
    locker.batch_execute("ROLLBACK").await.expect("unlocks");
    assert_eq!(held.await.expect("joins"), StatusCode::OK);

    let timeouts = |s: &Scrape| s.value("shortener_db_pool_timeouts_total", &["pool=shared"]);
    assert!(timeouts(&during) - timeouts(&before) >= 1.0);
    assert!(
        during.value("shortener_db_pool_wait_seconds_count", &["pool=shared"])
            > before.value("shortener_db_pool_wait_seconds_count", &["pool=shared"])
    );
    let unready = ["route=/readyz", "method=GET", "status=503"];
    assert!(during.value("shortener_http_request_duration_seconds", &unready) >= 1.0);
}

/// Polls a scrape until `check` holds; fails after `within`.
async fn until_scraped<D>(
    app: &TestApp<D>,
    within: Duration,
    what: &str,
    check: impl Fn(&Scrape) -> bool,
) -> Scrape {
    let deadline = Instant::now() + within;
    loop {
        let s = Scrape::of(app).await;
        if check(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}:\n{}",
            s.text
        );
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn an_outage_shows_as_a_lost_listener_pending_clicks_and_a_dropped_click() {
    let mut pg = PrivatePostgres::start("metrics").await;
    let urls = DatabaseUrls {
        url: pg.service_url.clone(),
        owner_url: pg.url.clone(),
    };
    // Room for one link-day of clicks while the database is away.
    let backlog = [("SHORTENER__REDIRECT__CLICK_BACKLOG", "1")];
    let app = TestApp::spawn_over((), urls, ManualClock::new(), &backlog).await;
    let (_, key) = app.account("Acme").with_key().await;
    let kept = app.code(&key, "https://kept.example/").await;
    let lost = app.code(&key, "https://lost.example/").await;
    let connected = |s: &Scrape| s.value("shortener_listener_connected", &[]);
    until_scraped(&app, Duration::from_secs(10), "listener connected", |s| {
        connected(s) == 1.0
    })
    .await;
    // Cached by HEADs, which count no click.
    for code in [&kept, &lost] {
        let r = app
            .request(awc::http::Method::HEAD, &format!("/{code}"), None, None)
            .await;
        assert_eq!(r.status, StatusCode::FOUND);
    }

    pg.stop().await;
    for code in [&kept, &kept, &lost] {
        assert_eq!(
            app.get(&format!("/{code}"), None).await.status,
            StatusCode::FOUND
        );
    }
    let during = until_scraped(&app, Duration::from_secs(10), "the outage seen", |s| {
        connected(s) == 0.0
            && s.value("shortener_clicks_pending", &[]) == 2.0
            && s.value("shortener_click_write_failures_total", &[]) >= 1.0
    })
    .await;
    // The second link's click found the backlog full.
    assert_eq!(during.value("shortener_clicks_dropped_total", &[]), 1.0);
    // Two HEADs and three GETs, all answered from the cache.
    assert_eq!(
        during.value("shortener_redirects_total", &["outcome=found"]),
        5.0
    );

    pg.restart().await;
    // Waited for as a whole: under load a scrape can fall between the pending gauge's
    // update and the written counter's. Clicks lost would never make it 2.
    let after = until_scraped(&app, Duration::from_secs(30), "recovery", |s| {
        connected(s) == 1.0
            && s.value("shortener_clicks_pending", &[]) == 0.0
            && s.value("shortener_clicks_written_total", &[]) == 2.0
    })
    .await;
    assert!(after.value("shortener_listener_reconnects_total", &[]) >= 1.0);
    assert_eq!(after.value("shortener_clicks_written_total", &[]), 2.0);
    drop(app);
    pg.remove().await;
}

//! Visit analytics over HTTP: redirects from chosen browsers, crawlers and referrers give
//! exactly the breakdowns expected, and the database keeps only counts: no address, no
//! user agent, no referrer path.

use actix_web::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const IPAD_CHROME: &str = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0.6478.54 Mobile/15E148 Safari/604.1";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

/// Visit analytics on (it is off by default).
const ANALYTICS: &[(&str, &str)] = &[("SHORTENER__ANALYTICS__ENABLED", "true")];

/// `value: clicks` pairs of a breakdown, in the order listed.
fn listed(breakdown: &Value) -> Vec<(String, i64)> {
    breakdown
        .as_array()
        .unwrap_or_else(|| panic!("a list: {breakdown}"))
        .iter()
        .map(|e| {
            (
                e["value"].as_str().unwrap().to_owned(),
                e["clicks"].as_i64().unwrap(),
            )
        })
        .collect()
}

fn pairs(v: &[(&str, i64)]) -> Vec<(String, i64)> {
    v.iter().map(|(s, n)| ((*s).to_owned(), *n)).collect()
}

#[actix_web::test]
async fn redirects_are_broken_down_by_referrer_browser_os_and_device_and_only_counts_are_kept() {
    // Behind a trusted proxy, so the visitor's own address reaches the service.
    let app = TestApp::spawn_with(&[
        ("SHORTENER__ANALYTICS__ENABLED", "true"),
        ("SHORTENER__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    let own = app.base.trim_start_matches("http://").to_owned();
    let visits: &[(&str, Option<String>)] = &[
        (
            FIREFOX,
            Some("https://news.ycombinator.com/item?id=4242".into()),
        ),
        (
            FIREFOX,
            Some("https://News.YCombinator.com:443/newest?secret-path".into()),
        ),
        // Browsers send an internationalised host in its ASCII form.
        (
            FIREFOX,
            Some("https://xn--bcher-kva.example/regal/7".into()),
        ),
        (IPHONE, None),
        (IPHONE, Some(format!("http://{own}/ui/links"))),
        (
            IPAD_CHROME,
            Some("android-app://com.google.android.gm/".into()),
        ),
        (GOOGLEBOT, Some("not a referrer at all".into())),
        ("", None),
    ];
    for (agent, referrer) in visits {
        let mut headers = vec![("user-agent", *agent), ("x-forwarded-for", "203.0.113.77")];
        if let Some(r) = referrer {
            headers.push(("referer", r.as_str()));
        }
        let res = app
            .request_with(Method::GET, &format!("/{code}"), None, None, &headers)
            .await;
        assert_eq!(res.status, StatusCode::FOUND, "{agent}");
    }
    // HEAD is not a visit.
    app.request_with(
        Method::HEAD,
        &format!("/{code}"),
        None,
        None,
        &[("user-agent", FIREFOX)],
    )
    .await;
    app.flush_clicks().await;

    let stats = app
        .get(&format!("/api/v1/links/{code}/stats?days=7"), Some(&key))
        .await;
    assert_eq!(stats.status, StatusCode::OK);
    let s = &stats.body;
    assert_eq!(s["clicks"], 8);
    assert_eq!(s["bots"], 1);
    let today = s["daily"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(today["clicks"], 8);
    assert_eq!(today["bots"], 1);
    assert_eq!(
        listed(&s["referrers"]),
        pairs(&[
            ("(direct)", 5),
            ("news.ycombinator.com", 2),
            ("xn--bcher-kva.example", 1)
        ])
    );
    assert_eq!(listed(&s["countries"]), pairs(&[("(unknown)", 8)]));
    assert_eq!(
        listed(&s["browsers"]),
        pairs(&[("Firefox", 3), ("Other", 2), ("Safari", 2), ("Chrome", 1)])
    );
    assert_eq!(
        listed(&s["operating_systems"]),
        pairs(&[("Linux", 3), ("iOS", 3), ("Other", 2)])
    );
    assert_eq!(
        listed(&s["devices"]),
        pairs(&[
            ("desktop", 3),
            ("mobile", 2),
            ("bot", 1),
            ("other", 1),
            ("tablet", 1)
        ])
    );
    assert_adds_up(s, 8);

    // Everything the database holds, as text: only counts of what was kept.
    let dump = dump(&app.db.url);
    assert!(
        dump.contains("news.ycombinator.com"),
        "the dump has the visits"
    );
    for secret in [
        "203.0.113.77",
        "Gecko/20100101",
        "Googlebot/2.1",
        "iPhone OS",
        "item?id=4242",
        "secret-path",
        "/regal/7",
        "com.google.android.gm",
        "not a referrer",
    ] {
        assert!(!dump.contains(secret), "the database holds {secret:?}");
    }
}

#[actix_web::test]
async fn past_the_top_ten_values_come_together_as_other() {
    let app = TestApp::spawn_with(ANALYTICS).await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    // Twelve referring hosts: host n refers n times.
    for n in 1..=12 {
        let referrer = format!("https://site{n:02}.example/");
        for _ in 0..n {
            app.request_with(
                Method::GET,
                &format!("/{code}"),
                None,
                None,
                &[("referer", &referrer)],
            )
            .await;
        }
    }
    app.flush_clicks().await;
    let stats = app
        .get(&format!("/api/v1/links/{code}/stats"), Some(&key))
        .await;
    let referrers = listed(&stats.body["referrers"]);
    assert_eq!(referrers.len(), 11, "{referrers:?}");
    assert_eq!(referrers[0], ("site12.example".to_owned(), 12));
    assert_eq!(referrers[9], ("site03.example".to_owned(), 3));
    assert_eq!(referrers[10], ("(other)".to_owned(), 1 + 2));
    assert_eq!(stats.body["clicks"], json!((1..=12).sum::<i64>()));
}

/// Every breakdown of `stats` adds up to `clicks`.
fn assert_adds_up(stats: &Value, clicks: i64) {
    for dimension in [
        "referrers",
        "countries",
        "browsers",
        "operating_systems",
        "devices",
    ] {
        let sum: i64 = listed(&stats[dimension]).iter().map(|(_, n)| n).sum();
        assert_eq!(sum, clicks, "{dimension} adds up to the clicks: {stats}");
    }
}

#[actix_web::test]
async fn two_instances_shut_down_gracefully_count_every_visit_once() {
    let app = TestApp::spawn_with(ANALYTICS).await;
    let other = app.spawn_beside_with(ANALYTICS).await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    let agents = [FIREFOX, IPHONE, IPAD_CHROME, GOOGLEBOT];
    let referrers = [
        None,
        Some("https://a.example/x"),
        Some("https://b.example/y"),
    ];
    // 240 GETs at once, half on each instance, every agent with every referrer alike.
    const N: usize = 240;
    let replies = futures_util::future::join_all((0..N).map(|i| {
        let on = if i % 2 == 0 { &app } else { &other };
        let path = format!("/{code}");
        async move {
            let mut headers = vec![("user-agent", agents[i % 4])];
            if let Some(r) = referrers[(i / 4) % 3] {
                headers.push(("referer", r));
            }
            on.request_with(Method::GET, &path, None, None, &headers)
                .await
                .status
        }
    }))
    .await;
    assert!(replies.iter().all(|s| *s == StatusCode::FOUND));
    assert_eq!(app.shutdown().await, 0, "nothing lost on the first");
    assert_eq!(other.shutdown().await, 0, "nothing lost on the second");

    // A third instance reads what the two wrote.
    let reader = app.spawn_beside().await;
    let stats = reader
        .get(&format!("/api/v1/links/{code}/stats"), Some(&key))
        .await;
    assert_eq!(stats.status, StatusCode::OK);
    let s = &stats.body;
    assert_eq!(s["clicks"], N as i64);
    assert_eq!(s["bots"], (N / 4) as i64);
    assert_adds_up(s, N as i64);
    let third = (N / 3) as i64;
    assert_eq!(
        listed(&s["referrers"]),
        pairs(&[
            ("(direct)", third),
            ("a.example", third),
            ("b.example", third)
        ])
    );
    let quarter = (N / 4) as i64;
    assert_eq!(
        listed(&s["devices"]),
        pairs(&[
            ("bot", quarter),
            ("desktop", quarter),
            ("mobile", quarter),
            ("tablet", quarter)
        ])
    );
}

#[actix_web::test]
async fn by_default_analytics_is_off_and_only_the_totals_are_counted() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    app.request_with(
        Method::GET,
        &format!("/{code}"),
        None,
        None,
        &[("user-agent", FIREFOX), ("referer", "https://a.example/")],
    )
    .await;
    app.flush_clicks().await;
    let stats = app
        .get(&format!("/api/v1/links/{code}/stats"), Some(&key))
        .await;
    assert_eq!(stats.body["clicks"], 1);
    assert_eq!(stats.body["referrers"], json!([]));
    assert_eq!(stats.body["devices"], json!([]));
}

/// `pg_dump --data-only` of the database at `url`.
fn dump(url: &str) -> String {
    let bin = shortener_pg::local::server_bin_dir().expect("PostgreSQL's binaries");
    let out = std::process::Command::new(bin.join("pg_dump"))
        .args(["--data-only", "--no-owner", "--dbname", url])
        .output()
        .expect("pg_dump runs");
    assert!(
        out.status.success(),
        "pg_dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[actix_web::test]
async fn account_stats_add_up_every_link_and_list_the_top_links() {
    let app = TestApp::spawn_with(ANALYTICS).await;
    let (_, key) = app.account("Acme").with_key().await;
    let (_, other_key) = app.account("Other").with_key().await;
    let busy = app.code(&key, "https://example.com/busy").await;
    let quiet = app.code(&key, "https://example.com/quiet").await;
    let gone = app.code(&key, "https://example.com/gone").await;
    let elsewhere = app.code(&other_key, "https://example.com/elsewhere").await;
    for (code, n, agent) in [
        (&busy, 3, FIREFOX),
        (&quiet, 1, GOOGLEBOT),
        (&gone, 2, IPHONE),
        (&elsewhere, 5, FIREFOX),
    ] {
        for _ in 0..n {
            app.request_with(
                Method::GET,
                &format!("/{code}"),
                None,
                None,
                &[("user-agent", agent)],
            )
            .await;
        }
    }
    app.flush_clicks().await;
    let deleted = app
        .request(
            Method::DELETE,
            &format!("/api/v1/links/{gone}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let stats = app.get("/api/v1/stats?days=3", Some(&key)).await;
    assert_eq!(stats.status, StatusCode::OK);
    let s = &stats.body;
    // Every link's clicks, the deleted one's too (they happened); not another account's.
    assert_eq!(s["clicks"], 6);
    assert_eq!(s["bots"], 1);
    assert_eq!(s["daily"].as_array().unwrap().len(), 3);
    assert_eq!(s["daily"][2]["clicks"], 6);
    assert_eq!(
        listed(&s["devices"]),
        pairs(&[("desktop", 3), ("mobile", 2), ("bot", 1)])
    );
    // Live links only, most clicked first.
    assert_eq!(
        s["top_links"],
        json!([{"code": busy, "clicks": 3}, {"code": quiet, "clicks": 1}])
    );
    app.get("/api/v1/stats?days=0", Some(&key))
        .await
        .assert_problem(400, "validation");
    app.get("/api/v1/stats", None)
        .await
        .assert_problem(401, "unauthorized");
}

#[derive(diesel::QueryableByName)]
struct RowsAndClicks {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    rows: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    clicks: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    other: i64,
}

/// Referrer rows of link `code` on `day`: how many, their clicks, and the `(other)` row's.
async fn referrer_rows(app: &TestApp, code: &str, day: chrono::NaiveDate) -> RowsAndClicks {
    use diesel_async::RunQueryDsl;
    let mut conn = app.db.conn().await;
    diesel::sql_query(
        "SELECT count(*)::bigint AS rows, coalesce(sum(v.clicks), 0)::bigint AS clicks, \
                coalesce(sum(v.clicks) FILTER (WHERE v.value = '(other)'), 0)::bigint AS other \
         FROM shortener.links l JOIN shortener.link_daily_visits v ON v.link_id = l.id \
         WHERE l.code = $1 AND v.dimension = 1 AND v.day = $2",
    )
    .bind::<diesel::sql_types::Text, _>(code)
    .bind::<diesel::sql_types::Date, _>(day)
    .get_result(&mut conn)
    .await
    .unwrap()
}

/// The sweep caps a day two days old on its own: the service wires migration 000019's
/// capping into its periodic sweep.
#[actix_web::test]
async fn the_sweep_caps_a_day_two_days_old_at_its_top_100_referrers() {
    use diesel_async::RunQueryDsl;
    use shortener_app::Clock;

    let app = TestApp::spawn_with(&[
        ("SHORTENER__ANALYTICS__ENABLED", "true"),
        ("SHORTENER__SUBSCRIPTIONS__EXPIRY_SWEEP", "1s"),
    ])
    .await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    let today = app.clock.now().date_naive();
    let old = today - chrono::Days::new(3);
    let young = today - chrono::Days::new(1);
    // 150 referring hosts on each day, host n with n clicks, as the fold writes them.
    {
        let mut conn = app.db.conn().await;
        for day in [old, young] {
            diesel::sql_query(
                "INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks) \
                 SELECT l.id, 1, $2, 'site' || n || '.example', n \
                 FROM shortener.links l, generate_series(1, 150) AS n WHERE l.code = $1",
            )
            .bind::<diesel::sql_types::Text, _>(&code)
            .bind::<diesel::sql_types::Date, _>(day)
            .execute(&mut conn)
            .await
            .unwrap();
        }
    }
    let all: i64 = (1..=150).sum();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let capped = loop {
        let seen = referrer_rows(&app, &code, old).await;
        if seen.rows == 101 {
            break seen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not capped: {} rows",
            seen.rows
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(capped.clicks, all, "every click kept");
    assert_eq!(capped.other, (1..=50).sum::<i64>(), "the 50 least frequent");
    let young_rows = referrer_rows(&app, &code, young).await;
    assert_eq!(
        (young_rows.rows, young_rows.clicks),
        (150, all),
        "a young day is left alone"
    );
}

//! Accounts, keys, authentication and the operations endpoints, end to end.

use awc::http::{Method, StatusCode};
use chrono::Datelike;
use diesel::QueryableByName;
use diesel::sql_types::{Bool, Text};
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};
use shortener_http::problem::Slug;

use crate::support::{ADMIN_KEY, TestApp};

#[actix_web::test]
async fn a_new_account_starts_in_a_trial_of_the_trial_period() {
    let app = TestApp::spawn().await;
    let before = chrono::Utc::now();
    let r = app
        .admin(
            Method::POST,
            "/admin/v1/accounts",
            Some(json!({"name": "Acme"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 7);
    assert_eq!(
        r.header("location").unwrap(),
        format!("/admin/v1/accounts/{id}")
    );
    assert_eq!(r.body["name"], "Acme");
    let sub = &r.body["subscription"];
    assert_eq!(sub["state"], "trial");
    assert_eq!(sub["version"], 1);
    let expires: chrono::DateTime<chrono::Utc> =
        sub["expires_at"].as_str().unwrap().parse().unwrap();
    let days = (expires - before).num_hours() as f64 / 24.0;
    assert!(
        (13.9..=14.1).contains(&days),
        "trial lasts 14 days, got {days}"
    );

    let got = app
        .admin(Method::GET, &format!("/admin/v1/accounts/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, r.body);
}

#[actix_web::test]
async fn configured_trial_length_applies_and_a_passed_trial_reads_expired() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__PERIOD", "1h")]).await;
    let r = app
        .admin(
            Method::POST,
            "/admin/v1/accounts",
            Some(json!({"name": "Acme"})),
        )
        .await;
    let id = r.body["id"].as_str().unwrap();
    app.clock.advance(chrono::Duration::seconds(3601));
    let got = app
        .admin(Method::GET, &format!("/admin/v1/accounts/{id}"), None)
        .await;
    assert_eq!(got.body["subscription"]["state"], "expired");
    assert_eq!(
        got.body["subscription"]["expired_at"],
        r.body["subscription"]["expires_at"]
    );
}

#[actix_web::test]
async fn accounts_list_pages_and_bad_input_is_refused() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C"] {
        ids.push(
            app.admin(
                Method::POST,
                "/admin/v1/accounts",
                Some(json!({"name": name})),
            )
            .await
            .body["id"]
                .clone(),
        );
    }
    let first = app
        .admin(Method::GET, "/admin/v1/accounts?limit=2", None)
        .await;
    assert_eq!(first.body["items"].as_array().unwrap().len(), 2);
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .admin(
            Method::GET,
            &format!("/admin/v1/accounts?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(second.body["next_cursor"], Value::Null);
    let listed: Vec<Value> = first.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second.body["items"].as_array().unwrap())
        .map(|a| a["id"].clone())
        .collect();
    assert_eq!(listed, ids);

    for body in [
        json!({"name": ""}),
        json!({"name": "  "}),
        json!({}),
        json!({"name": "x", "plan": "pro"}),
        json!({"name": 3}),
    ] {
        app.admin(Method::POST, "/admin/v1/accounts", Some(body))
            .await
            .assert_problem(400, "validation");
    }
    app.admin(
        Method::GET,
        "/admin/v1/accounts/0190b3a4-0000-7000-8000-000000000000",
        None,
    )
    .await
    .assert_problem(404, "not-found");
    app.admin(Method::GET, "/admin/v1/accounts/not-a-uuid", None)
        .await
        .assert_problem(404, "not-found");
    app.admin(
        Method::POST,
        "/admin/v1/accounts/0190b3a4-0000-7000-8000-000000000000/keys",
        None,
    )
    .await
    .assert_problem(404, "not-found");
}

#[derive(QueryableByName)]
struct KeyCheck {
    #[diesel(sql_type = Bool)]
    hash_matches: bool,
    #[diesel(sql_type = Bool)]
    plaintext_anywhere: bool,
    #[diesel(sql_type = Text)]
    lookup: String,
}

#[actix_web::test]
async fn keys_are_shown_once_stored_hashed_and_revocation_is_immediate() {
    let app = TestApp::spawn().await;
    let account = app.account("Acme").await;
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/keys"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("cache-control").unwrap(), "no-store");
    let key = r.body["key"].as_str().unwrap().to_owned();
    let key_id = r.body["id"].as_str().unwrap().to_owned();
    let prefix = r.body["prefix"].as_str().unwrap();
    assert!(key.starts_with(prefix) && prefix.starts_with("shk_"));

    let mut conn = app.db.conn().await;
    let check: KeyCheck = diesel::sql_query(
        "SELECT secret_hash = sha256(convert_to($1, 'UTF8')) AS hash_matches, \
                position($1 in k::text) > 0 AS plaintext_anywhere, lookup \
         FROM shortener.api_keys k WHERE id = $2::uuid",
    )
    .bind::<Text, _>(&key)
    .bind::<Text, _>(&key_id)
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(check.hash_matches, "stored as SHA-256 of the key");
    assert!(
        !check.plaintext_anywhere,
        "the key itself is stored nowhere in its row"
    );
    assert_eq!(format!("shk_{}", check.lookup), prefix);

    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.status,
        StatusCode::OK
    );
    let revoke = app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/accounts/{account}/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);
    app.get("/api/v1/links", Some(&key))
        .await
        .assert_problem(401, "unauthorized");

    // Unknown key, or a key of another account: 404.
    let other = app.account("Other").await;
    app.admin(
        Method::DELETE,
        &format!("/admin/v1/accounts/{other}/keys/{key_id}"),
        None,
    )
    .await
    .assert_problem(404, "not-found");
    app.admin(
        Method::DELETE,
        &format!("/admin/v1/accounts/{account}/keys/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await
    .assert_problem(404, "not-found");
}

#[actix_web::test]
async fn an_accounts_keys_are_listed_newest_first_without_the_keys() {
    let app = TestApp::spawn().await;
    let account = app.account("Acme").await;
    let keys = format!("/admin/v1/accounts/{account}/keys");
    let none = app.admin(Method::GET, &keys, None).await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert_eq!(none.body, json!({"items": []}));

    let first = app.admin(Method::POST, &keys, None).await.body;
    app.clock.advance(chrono::Duration::seconds(1));
    let second = app.admin(Method::POST, &keys, None).await.body;
    // Another account's key is not listed with these.
    let other = app.account("Other").await;
    app.admin(
        Method::POST,
        &format!("/admin/v1/accounts/{other}/keys"),
        None,
    )
    .await;
    app.clock.advance(chrono::Duration::seconds(1));
    let revoke = app
        .admin(
            Method::DELETE,
            &format!("{keys}/{}", first["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(revoke.status, StatusCode::NO_CONTENT);

    let listed = app.admin(Method::GET, &keys, None).await;
    assert_eq!(listed.status, StatusCode::OK);
    let items = listed.body["items"].as_array().unwrap();
    let ids: Vec<&Value> = items.iter().map(|k| &k["id"]).collect();
    assert_eq!(ids, [&second["id"], &first["id"]], "newest first");
    for (item, made) in items.iter().zip([&second, &first]) {
        let fields: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            fields,
            ["created_at", "id", "prefix", "revoked_at"],
            "never the key or its hash"
        );
        assert_eq!(item["prefix"], made["prefix"]);
        assert_eq!(item["created_at"], made["created_at"]);
    }
    assert_eq!(items[0]["revoked_at"], Value::Null);
    let revoked_at: chrono::DateTime<chrono::Utc> =
        items[1]["revoked_at"].as_str().unwrap().parse().unwrap();
    let created_at: chrono::DateTime<chrono::Utc> =
        items[1]["created_at"].as_str().unwrap().parse().unwrap();
    assert_eq!((revoked_at - created_at).num_seconds(), 2);
    let secret = first["key"].as_str().unwrap();
    assert!(!listed.body.to_string().contains(secret));

    app.admin(
        Method::GET,
        "/admin/v1/accounts/0190b3a4-0000-7000-8000-000000000000/keys",
        None,
    )
    .await
    .assert_problem(404, "not-found");
    app.admin(Method::GET, "/admin/v1/accounts/not-a-uuid/keys", None)
        .await
        .assert_problem(404, "not-found");
}

/// The names of a page of accounts.
fn names(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn accounts_are_searched_by_name_ignoring_case_page_after_page() {
    let app = TestApp::spawn().await;
    for name in [
        "Acme Corp",
        "Other",
        "acme labs",
        "100% Pure",
        "1000 Pure",
        "snake_case",
        "snakeXcase",
        "back\\slash",
        "backslash",
    ] {
        app.account(name).await;
    }
    let mut seen = Vec::new();
    let mut path = "/admin/v1/accounts?q=ACME&limit=1".to_owned();
    let mut pages = 0;
    loop {
        let page = app.admin(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
        seen.extend(names(&page.body).into_iter().map(str::to_owned));
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/admin/v1/accounts?q=ACME&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["Acme Corp", "acme labs"]);
    assert_eq!(pages, 2);

    // `%`, `_` and `\` match only themselves; spaces around the text are dropped.
    for (q, want) in [
        ("0%25", vec!["100% Pure"]),
        ("e_c", vec!["snake_case"]),
        ("k%5C", vec!["back\\slash"]),
        ("%20%20labs%20", vec!["acme labs"]),
        ("nothing", vec![]),
    ] {
        let page = app
            .admin(Method::GET, &format!("/admin/v1/accounts?q={q}"), None)
            .await;
        assert_eq!(page.status, StatusCode::OK, "{q}: {}", page.body);
        assert_eq!(names(&page.body), want, "{q}");
    }
    let all = app.admin(Method::GET, "/admin/v1/accounts", None).await;
    assert_eq!(names(&all.body).len(), 9, "no q: every account");

    let long = "a".repeat(101);
    for q in [long.as_str(), "", "%20%20"] {
        app.admin(Method::GET, &format!("/admin/v1/accounts?q={q}"), None)
            .await
            .assert_problem(400, "validation");
    }
    let longest = "a".repeat(100);
    let page = app
        .admin(
            Method::GET,
            &format!("/admin/v1/accounts?q={longest}"),
            None,
        )
        .await;
    assert_eq!(page.status, StatusCode::OK);
}

#[actix_web::test]
async fn keys_are_checked_for_presence_validity_and_kind() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    // The last character changed: well formed, but not the key (one key in 62 ends in
    // `x` already, and "forging" it with `x` gave the key back).
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    let forged = format!("{}{last}", &key[..key.len() - 1]);
    for bad in [None, Some("nonsense"), Some(forged.as_str()), Some("")] {
        let r = app.get("/api/v1/links", bad).await;
        r.assert_problem(401, "unauthorized");
        assert_eq!(r.header("www-authenticate").unwrap(), "Bearer");
        app.get("/admin/v1/accounts", bad)
            .await
            .assert_problem(401, "unauthorized");
    }
    app.get("/api/v1/links", Some(ADMIN_KEY))
        .await
        .assert_problem(403, "forbidden");
    app.get("/admin/v1/accounts", Some(&key))
        .await
        .assert_problem(403, "forbidden");
    app.request(
        Method::POST,
        "/admin/v1/accounts",
        Some(&key),
        Some(json!({"name": "x"})),
    )
    .await
    .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn operations_endpoints_and_problem_pages() {
    let app = TestApp::spawn().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::OK);

    for slug in Slug::ALL.iter().map(|s| s.as_str()) {
        let page = app.get(&format!("/problems/{slug}"), None).await;
        assert_eq!(page.status, StatusCode::OK, "{slug}");
        assert!(
            page.header("content-type")
                .unwrap()
                .starts_with("text/html")
        );
        assert!(String::from_utf8_lossy(&page.raw).contains(&format!("/problems/{slug}")));
    }
    app.get("/problems/no-such-problem", None)
        .await
        .assert_problem(404, "not-found");
    app.get("/api/v1/nothing-here", None)
        .await
        .assert_problem(404, "not-found");
    app.get("/", None).await.assert_problem(404, "not-found");
    // A known path with the wrong method is a problem document too, never actix's default.
    app.request(Method::PUT, "/api/v1/links", None, None)
        .await
        .assert_problem(405, "method-not-allowed");
    app.request(Method::POST, "/healthz", None, None)
        .await
        .assert_problem(405, "method-not-allowed");
}

#[actix_web::test]
async fn without_a_database_health_is_ok_readiness_and_requests_are_503() {
    let env: Vec<(String, String)> = [
        ("SHORTENER__SERVER__LISTEN", "127.0.0.1:0"),
        ("SHORTENER__SERVER__WORKERS", "1"),
        (
            "SHORTENER__DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/nothing",
        ),
        ("SHORTENER__DATABASE__MIGRATE_ON_START", "false"),
        ("SHORTENER__DATABASE__POOL_TIMEOUT", "500ms"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let settings = shortener_http::config::load_from(None, |_| None, env).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let running = shortener_http::start(
        &settings,
        &shortener_http::DatabaseUrls::single("postgres://postgres@127.0.0.1:1/nothing"),
        listener,
        std::sync::Arc::new(shortener_app::SystemClock),
    )
    .await
    .unwrap();
    let base = format!("http://{}", running.addr);
    let handle = running.server.handle();
    actix_web::rt::spawn(running.server);
    let client = awc::Client::default();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut ready = client.get(format!("{base}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["type"], "/problems/service-unavailable");
    let mut create = client
        .post(format!("{base}/api/v1/links"))
        .bearer_auth("shk_abcdefghijkl_abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq")
        .send_json(&json!({"url": "https://example.com/"}))
        .await
        .unwrap();
    assert_eq!(create.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(create.headers().contains_key("retry-after"));
    let body: Value = create.json().await.unwrap();
    assert_eq!(body["type"], "/problems/service-unavailable");
    handle.stop(false).await;
}

#[actix_web::test]
async fn the_service_creates_audit_partitions_ahead_of_time() {
    // Start "400 days from now": months no migration created must be made by the service.
    let app = TestApp::spawn_at(400 * 86_400, &[]).await;
    let then = chrono::Utc::now() + chrono::Duration::days(400);
    let want = |months: u32| {
        let first = then.date_naive().with_day(1).unwrap();
        let m = first
            .checked_add_months(chrono::Months::new(months))
            .unwrap();
        format!("entries_{}", m.format("%Y_%m"))
    };
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = Text)]
        relname: String,
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut conn = app.db.conn().await;
        let names: Vec<Name> = diesel::sql_query(
            "SELECT c.relname::text AS relname FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'audit'",
        )
        .load(&mut conn)
        .await
        .unwrap();
        let names: Vec<String> = names.into_iter().map(|n| n.relname).collect();
        if (0..3).all(|m| names.contains(&want(m))) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "missing one of {:?} in {names:?}",
            (0..3).map(want).collect::<Vec<_>>()
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

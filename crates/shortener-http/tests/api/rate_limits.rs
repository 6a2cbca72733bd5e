//! Rate limits as the contract shows them (`../shared/API.md`, "Rate limits"): the fields
//! count down, the 429 names its policy and says when to retry, keys and addresses have
//! budgets of their own, two instances share a key's, `X-Forwarded-For` is believed only
//! from trusted proxies, and enumerating codes stops while real codes still redirect.
//! Windows move with the app's clock, which stands still until a test moves it.

use awc::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{Reply, TestApp};

/// Asserts the `RateLimit-Policy` and `RateLimit` fields of one answer.
#[track_caller]
fn assert_fields(r: &Reply, policy: &str, q: u32, remaining: u32) {
    assert_eq!(
        r.header("ratelimit-policy").as_deref(),
        Some(format!("\"{policy}\";q={q};w=60").as_str()),
        "status {}, body {}",
        r.status,
        r.body
    );
    let state = r.header("ratelimit").unwrap_or_default();
    let prefix = format!("\"{policy}\";r={remaining};t=");
    assert!(state.starts_with(&prefix), "{state:?} is not {prefix}…");
    let t: u32 = state[prefix.len()..].parse().unwrap();
    assert!((1..=61).contains(&t), "t={t}");
}

/// Asserts a 429 of `policy` with its `Retry-After`; returns the seconds to wait.
#[track_caller]
fn assert_limited(r: &Reply, policy: &str) -> i64 {
    r.assert_problem(429, "rate-limited");
    assert_eq!(r.body["violated-policies"], json!([policy]));
    let retry: i64 = r
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After: {:?}", r.headers));
    assert!((1..=61).contains(&retry), "Retry-After {retry}");
    retry
}

#[actix_web::test]
async fn an_account_key_counts_down_to_429_and_its_window_moves_on() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "3")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let (_, other) = app.account("Other").with_key().await;
    for left in [2, 1, 0] {
        let r = app.get("/api/v1/links", Some(&key)).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_fields(&r, "requests", 3, left);
    }
    let refused = app
        .request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": "https://example.com/"})),
        )
        .await;
    let retry = assert_limited(&refused, "requests");
    assert_fields(&refused, "requests", 3, 0);
    // Refused before the handler: nothing was created.
    app.clock.advance(chrono::Duration::seconds(retry));
    let listed = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["items"], json!([]));

    // Another key has its own budget.
    let r = app.get("/api/v1/links", Some(&other)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_fields(&r, "requests", 3, 2);
}

#[actix_web::test]
async fn waiting_one_second_less_than_retry_after_is_still_refused() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "1")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.status,
        StatusCode::OK
    );
    app.clock.advance(chrono::Duration::seconds(30));
    let retry = assert_limited(&app.get("/api/v1/links", Some(&key)).await, "requests");
    app.clock.advance(chrono::Duration::seconds(retry - 1));
    assert_limited(&app.get("/api/v1/links", Some(&key)).await, "requests");
    app.clock.advance(chrono::Duration::seconds(1));
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn two_instances_on_one_database_share_a_keys_budget() {
    let a = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "6")]).await;
    // The second instance reads the same plans: its settings are the test defaults plus
    // the same override.
    let b = a
        .spawn_beside_with(&[("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "6")])
        .await;
    let (_, key) = a.account("Acme").with_key().await;
    let mut through = 0;
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        let r = app.get("/api/v1/links", Some(&key)).await;
        match r.status {
            StatusCode::OK => through += 1,
            _ => {
                assert_limited(&r, "requests");
            }
        }
    }
    assert_eq!(through, 6, "6 in all, not 6 each");
}

#[actix_web::test]
async fn admin_keys_have_their_own_policy() {
    let app = TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__ADMIN_PER_MINUTE", "2")]).await;
    let first = app.admin(Method::GET, "/admin/v1/accounts", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_fields(&first, "admin", 2, 1);
    let second = app.admin(Method::GET, "/admin/v1/accounts", None).await;
    assert_fields(&second, "admin", 2, 0);
    assert_limited(
        &app.admin(Method::GET, "/admin/v1/accounts", None).await,
        "admin",
    );
}

#[actix_web::test]
async fn bad_keys_are_limited_per_address_before_any_key_is_looked_up() {
    let app =
        TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    for left in [2, 1, 0] {
        let r = app.get("/api/v1/links", Some("shk_nosuchkey_guess")).await;
        r.assert_problem(401, "unauthorized");
        assert_fields(&r, "auth-failures", 3, left);
    }
    // Over the limit: refused before the key is looked up, whatever the key (a client
    // cannot tell a good key from a bad one past the limit).
    assert_limited(
        &app.get("/api/v1/links", Some("shk_nosuchkey_guess")).await,
        "auth-failures",
    );
    assert_limited(&app.get("/api/v1/links", Some(&key)).await, "auth-failures");
    // A forwarded address from an untrusted peer changes nothing.
    let spoofed = app
        .request_with(
            Method::GET,
            "/api/v1/links",
            Some(&key),
            None,
            &[("x-forwarded-for", "203.0.113.9")],
        )
        .await;
    assert_limited(&spoofed, "auth-failures");
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.status,
        StatusCode::OK
    );
}

#[actix_web::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_budget() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE", "2"),
        ("SHORTENER__SERVER__TRUSTED_PROXIES", "127.0.0.1/32"),
    ])
    .await;
    let from = |ip: &'static str| {
        let app = &app;
        async move {
            app.request_with(
                Method::GET,
                "/api/v1/links",
                Some("shk_nosuchkey_guess"),
                None,
                &[("x-forwarded-for", ip)],
            )
            .await
        }
    };
    for _ in 0..2 {
        from("203.0.113.1")
            .await
            .assert_problem(401, "unauthorized");
    }
    assert_limited(&from("203.0.113.1").await, "auth-failures");
    // Another client behind the same proxy is not.
    let other = from("203.0.113.2").await;
    other.assert_problem(401, "unauthorized");
    assert_fields(&other, "auth-failures", 2, 1);
    // A client prepending an address of its choice is still itself (the proxy appends
    // what it saw, the right-most untrusted entry).
    assert_limited(&from("198.51.100.7, 203.0.113.1").await, "auth-failures");
}

#[actix_web::test]
async fn enumerating_codes_stops_while_real_codes_still_redirect() {
    let app =
        TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__UNKNOWN_CODES_PER_MINUTE", "3")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let cached = app.code(&key, "https://cached.example/").await;
    let uncached = app.code(&key, "https://uncached.example/").await;
    let hit = app.get(&format!("/{cached}"), None).await;
    assert_eq!(hit.status, StatusCode::FOUND);
    assert_eq!(hit.header("ratelimit"), None, "no fields on redirects");
    assert_eq!(hit.header("ratelimit-policy"), None);
    for n in 0..3 {
        app.get(&format!("/guess{n}"), None)
            .await
            .assert_problem(404, "not-found");
    }
    // Past the limit: unknown codes are refused, whether the database would be asked
    // (a new guess) or not (one known not to exist)...
    assert_limited(&app.get("/guess9", None).await, "unknown-codes");
    assert_limited(&app.get("/guess0", None).await, "unknown-codes");
    // ...a code in the cache still redirects...
    let still = app.get(&format!("/{cached}"), None).await;
    assert_eq!(still.status, StatusCode::FOUND);
    assert_eq!(
        still.header("location").as_deref(),
        Some("https://cached.example/")
    );
    // ...and one that would need a lookup waits for the window like any unknown code.
    let retry = assert_limited(
        &app.get(&format!("/{uncached}"), None).await,
        "unknown-codes",
    );
    app.clock.advance(chrono::Duration::seconds(retry));
    assert_eq!(
        app.get(&format!("/{uncached}"), None).await.status,
        StatusCode::FOUND
    );
    // The API is another policy: the same address still uses it.
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.status,
        StatusCode::OK
    );
}

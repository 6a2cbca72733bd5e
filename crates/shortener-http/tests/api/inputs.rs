//! Hostile input, answered as the caller's mistake (4xx problem+json) and never reaching
//! PostgreSQL as something it cannot take: NUL characters in bodies and query strings,
//! arrays in place of objects, bad keys with bad bodies, made-up cursors, and timestamps
//! past what RFC 3339 can write.

use awc::http::Method;
use serde_json::json;

use crate::support::TestApp;

#[actix_web::test]
async fn a_nul_anywhere_in_text_is_a_validation_problem() {
    let app = TestApp::spawn().await;
    let (account, key) = app.account("Acme").with_key().await;

    // Bodies: a subscription's cancel reason, an account's name, a link's URL and code.
    app.admin(
        Method::POST,
        &format!("/admin/v1/accounts/{account}/subscription/cancel"),
        Some(json!({"reason": "a\u{0}b"})),
    )
    .await
    .assert_problem(400, "validation");
    app.admin(
        Method::POST,
        "/admin/v1/accounts",
        Some(json!({"name": "Ac\u{0}me"})),
    )
    .await
    .assert_problem(400, "validation");
    for body in [
        json!({"url": "https://a.example/\u{0}"}),
        json!({"url": "https://a.example/", "code": "ab\u{0}cd"}),
        json!({"url": "https://a.example/", "\u{0}": 1}),
    ] {
        app.request(Method::POST, "/api/v1/links", Some(&key), Some(body))
            .await
            .assert_problem(400, "validation");
    }
    // Query strings, on both audit endpoints and the lists.
    app.admin(Method::GET, "/admin/v1/audit?entity_id=%00", None)
        .await
        .assert_problem(400, "validation");
    app.get("/api/v1/audit?entity_id=a%00b", Some(&key))
        .await
        .assert_problem(400, "validation");
    app.get("/api/v1/links?cursor=%00", Some(&key))
        .await
        .assert_problem(400, "validation");
    // Nothing was changed by any of it.
    let sub = app
        .admin(
            Method::GET,
            &format!("/admin/v1/accounts/{account}/subscription"),
            None,
        )
        .await;
    assert_eq!(sub.body["state"], "trial");
    let links = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(links.body["items"], json!([]));
}

#[actix_web::test]
async fn a_body_must_be_an_object() {
    let app = TestApp::spawn().await;
    let (account, key) = app.account("Acme").with_key().await;
    // Read by position, this array would have created a link with the custom code.
    app.request(
        Method::POST,
        "/api/v1/links",
        Some(&key),
        Some(json!(["https://a.example/", "mycode", null])),
    )
    .await
    .assert_problem(400, "validation");
    app.admin(Method::POST, "/admin/v1/accounts", Some(json!(["Acme"])))
        .await
        .assert_problem(400, "validation");
    app.admin(
        Method::POST,
        &format!("/admin/v1/accounts/{account}/subscription/renew"),
        Some(json!([])),
    )
    .await
    .assert_problem(400, "validation");
    app.get("/mycode", None)
        .await
        .assert_problem(404, "not-found");
}

#[actix_web::test]
async fn the_key_is_checked_before_the_body() {
    let app = TestApp::spawn().await;
    // No key, a bad key, an admin key on /api: each with a body that is not even JSON.
    let r = app
        .raw(
            Method::POST,
            "/api/v1/links",
            "",
            Some("application/json"),
            b"{".to_vec(),
        )
        .await;
    r.assert_problem(401, "unauthorized");
    app.raw(
        Method::POST,
        "/api/v1/links",
        "shk_not_a_key",
        Some("application/json"),
        b"[1, 2".to_vec(),
    )
    .await
    .assert_problem(401, "unauthorized");
    app.raw(
        Method::POST,
        "/admin/v1/accounts",
        "shk_not_a_key",
        Some("application/json"),
        b"[]".to_vec(),
    )
    .await
    .assert_problem(401, "unauthorized");
}

#[actix_web::test]
async fn made_up_cursors_are_refused() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    // Sixteen zero bytes: a well-formed UUID, but not one this service pages by.
    let zero = "AAAAAAAAAAAAAAAAAAAAAA";
    app.get(&format!("/api/v1/links?cursor={zero}"), Some(&key))
        .await
        .assert_problem(400, "validation");
    app.admin(
        Method::GET,
        &format!("/admin/v1/accounts?cursor={zero}"),
        None,
    )
    .await
    .assert_problem(400, "validation");
    app.admin(
        Method::GET,
        &format!("/admin/v1/subscriptions?cursor={zero}"),
        None,
    )
    .await
    .assert_problem(400, "validation");
    app.admin(Method::GET, &format!("/admin/v1/audit?cursor={zero}"), None)
        .await
        .assert_problem(400, "validation");
    // A cursor the service did hand out still works.
    app.code(&key, "https://a.example/1").await;
    app.code(&key, "https://a.example/2").await;
    let first = app.get("/api/v1/links?limit=1", Some(&key)).await;
    let next = first.body["next_cursor"].as_str().unwrap().to_owned();
    let second = app
        .get(&format!("/api/v1/links?limit=1&cursor={next}"), Some(&key))
        .await;
    assert_eq!(second.status.as_u16(), 200);
    assert_eq!(second.body["items"].as_array().unwrap().len(), 1);
}

#[actix_web::test]
async fn timestamps_past_year_9999_are_refused() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let far = "+10000-01-01T00:00:00Z";
    app.request(
        Method::POST,
        "/api/v1/links",
        Some(&key),
        Some(json!({"url": "https://a.example/", "expires_at": far})),
    )
    .await
    .assert_problem(400, "validation");
    let code = app.code(&key, "https://a.example/").await;
    app.request(
        Method::PATCH,
        &format!("/api/v1/links/{code}"),
        Some(&key),
        Some(json!({"expires_at": far})),
    )
    .await
    .assert_problem(400, "validation");
    // The last instant RFC 3339 can write is fine.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/links/{code}"),
            Some(&key),
            Some(json!({"expires_at": "9999-12-31T23:59:59Z"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 200);
    assert_eq!(r.body["expires_at"], "9999-12-31T23:59:59Z");
    app.admin(Method::GET, &format!("/admin/v1/audit?since={far}"), None)
        .await
        .assert_problem(400, "validation");
}

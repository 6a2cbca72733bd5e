//! Visit limits (`max_visits`): exact under concurrency on one instance and split over
//! two, HEAD takes nothing, PATCH raises, lowers and removes a limit (recorded in the
//! audit log), bad limits are refused, and links without a limit are untouched.

use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::TestApp;

/// Statuses of `n` parallel GETs of `/{code}`, the i-th sent to `apps[i % apps.len()]`:
/// (redirects, 410 `link-expired`); anything else fails the test.
async fn follow_at_once<D>(apps: &[&TestApp<D>], code: &str, n: usize) -> (usize, usize) {
    let path = format!("/{code}");
    let replies = join_all((0..n).map(|i| {
        let (app, path) = (apps[i % apps.len()], &path);
        async move { app.get(path, None).await }
    }))
    .await;
    let mut counts = (0, 0);
    for r in replies {
        match r.status.as_u16() {
            302 => counts.0 += 1,
            410 => {
                r.assert_problem(410, "link-expired");
                assert_eq!(r.body["detail"], "this link has reached its visit limit");
                counts.1 += 1;
            }
            other => panic!("GET {path}: {other} {}", r.body),
        }
    }
    counts
}

/// Polls `HEAD /{code}` on `app` (which takes no visit) until it answers `status`; fails
/// after the second within which an edit reaches every instance (and some slack).
async fn head_until<D>(app: &TestApp<D>, code: &str, status: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let r = app
            .request(Method::HEAD, &format!("/{code}"), None, None)
            .await;
        if r.status == status {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "HEAD /{code}: still {}",
            r.status
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_hundred_parallel_gets_of_a_ten_visit_link_give_exactly_ten_redirects() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app
        .link(
            &key,
            json!({"url": "https://example.com/", "max_visits": 10}),
        )
        .await;
    assert_eq!(
        (&link["max_visits"], &link["visits_left"]),
        (&json!(10), &json!(10))
    );
    let code = link["code"].as_str().unwrap();

    assert_eq!(follow_at_once(&[&app], code, 100).await, (10, 90));
    // HEAD answers what a GET would, and takes nothing.
    let head = app
        .request(Method::HEAD, &format!("/{code}"), None, None)
        .await;
    assert_eq!(head.status, StatusCode::GONE);
    let read = app
        .get(&format!("/api/v1/links/{code}"), Some(&key))
        .await
        .body;
    assert_eq!(read["visits_left"], 0);
    app.flush_clicks().await;
    let read = app
        .get(&format!("/api/v1/links/{code}"), Some(&key))
        .await
        .body;
    assert_eq!(read["clicks"], 10, "only redirects are clicks");
}

#[actix_web::test]
async fn two_instances_share_a_limit_exactly() {
    let a = TestApp::spawn().await;
    let b = a.spawn_beside().await;
    let (_, key) = a.account("Acme").with_key().await;
    let one_time = a
        .link(
            &key,
            json!({"url": "https://example.com/", "max_visits": 1}),
        )
        .await;
    let ten = a
        .link(
            &key,
            json!({"url": "https://example.com/", "max_visits": 10}),
        )
        .await;
    // Both instances know the links (cached) before the race.
    for app in [&a, &b] {
        let head = app
            .request(
                Method::HEAD,
                &format!("/{}", ten["code"].as_str().unwrap()),
                None,
                None,
            )
            .await;
        assert_eq!(head.status, StatusCode::FOUND);
    }
    let (a_ref, b_ref) = (&a, &b);
    assert_eq!(
        follow_at_once(&[a_ref, b_ref], ten["code"].as_str().unwrap(), 100).await,
        (10, 90)
    );
    assert_eq!(
        follow_at_once(&[a_ref, b_ref], one_time["code"].as_str().unwrap(), 20).await,
        (1, 19)
    );
}

#[actix_web::test]
async fn patch_raises_lowers_and_removes_a_limit_and_the_audit_log_records_it() {
    let app = TestApp::spawn().await;
    let b = app.spawn_beside().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    let path = format!("/api/v1/links/{code}");
    let patch = |body: Value| app.patch_link(&key, &code, body);
    // A link without a limit shows none, and its redirects count as clicks.
    assert_eq!(follow_at_once(&[&app, &b], &code, 4).await, (4, 0));
    app.flush_clicks().await;
    b.flush_clicks().await;
    let read = app.get(&path, Some(&key)).await.body;
    assert_eq!(
        (&read["max_visits"], &read["visits_left"]),
        (&Value::Null, &Value::Null)
    );

    // A limit put on it counts the 4 clicks it already had. (The instance that edits
    // drops its cached answer itself; the other is told, within a second.)
    let limited = patch(json!({"max_visits": 6})).await;
    assert_eq!(
        (&limited["max_visits"], &limited["visits_left"]),
        (&json!(6), &json!(2))
    );
    assert_eq!(follow_at_once(&[&app], &code, 3).await, (2, 1));
    // The other instance had cached the link without a limit: it stops believing that.
    head_until(&b, &code, StatusCode::GONE).await;
    // Raised: what was used stays used.
    assert_eq!(patch(json!({"max_visits": 8})).await["visits_left"], 2);
    assert_eq!(follow_at_once(&[&app], &code, 3).await, (2, 1));
    // Lowered below what was used: spent, not negative.
    patch(json!({"max_visits": 9})).await;
    assert_eq!(patch(json!({"max_visits": 1})).await["visits_left"], 0);
    assert_eq!(follow_at_once(&[&app], &code, 1).await, (0, 1));
    // Removed: the link redirects like any other, on every instance (the other had
    // cached it as spent).
    let removed = patch(json!({"max_visits": null})).await;
    assert_eq!(removed["visits_left"], Value::Null);
    head_until(&b, &code, StatusCode::FOUND).await;
    assert_eq!(follow_at_once(&[&app, &b], &code, 4).await, (4, 0));
    // Other fields leave the limit alone.
    patch(json!({"max_visits": 100})).await;
    let titled = patch(json!({"title": "Kept"})).await;
    assert_eq!(titled["max_visits"], 100);

    // Bad limits change nothing.
    for bad in [
        json!(0),
        json!(-1),
        json!(1_000_000_001),
        json!(2.5),
        json!("10"),
    ] {
        let r = app
            .request(
                Method::PATCH,
                &path,
                Some(&key),
                Some(json!({"max_visits": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    assert_eq!(app.get(&path, Some(&key)).await.body["max_visits"], 100);

    let log = app.link_log(&key, &code).await;
    let mut entries = log.body["items"].as_array().unwrap().clone();
    entries.reverse();
    let limits: Vec<Value> = entries
        .iter()
        .filter_map(|e| e["changes"].get("max_visits").cloned())
        .collect();
    let change = |old: Value, new: Value| json!({"old": old, "new": new});
    assert_eq!(
        limits,
        [
            change(Value::Null, json!(6)),
            change(json!(6), json!(8)),
            change(json!(8), json!(9)),
            change(json!(9), json!(1)),
            change(json!(1), Value::Null),
            change(Value::Null, json!(100)),
        ],
        "every change of the limit, and nothing for the visits taken"
    );
}

#[actix_web::test]
async fn a_limit_is_validated_at_creation_in_single_and_bulk_creates() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    for bad in [
        json!(0),
        json!(-5),
        json!(1_000_000_001),
        json!(1.5),
        json!(true),
    ] {
        let r = app
            .request(
                Method::POST,
                "/api/v1/links",
                Some(&key),
                Some(json!({"url": "https://example.com/", "max_visits": bad})),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let top = app
        .link(
            &key,
            json!({"url": "https://example.com/", "max_visits": 1_000_000_000}),
        )
        .await;
    assert_eq!(top["visits_left"], 1_000_000_000);
    let none = app
        .link(
            &key,
            json!({"url": "https://example.com/", "max_visits": null}),
        )
        .await;
    assert_eq!(none["max_visits"], Value::Null);

    let bulk = app
        .request(
            Method::POST,
            "/api/v1/links/bulk",
            Some(&key),
            Some(json!({"links": [
                {"url": "https://example.com/1", "max_visits": 3},
                {"url": "https://example.com/2", "max_visits": 0},
            ]})),
        )
        .await;
    assert_eq!(bulk.status, StatusCode::OK, "{}", bulk.body);
    assert_eq!(bulk.body["items"][0]["link"]["visits_left"], 3);
    assert_eq!(
        bulk.body["items"][1]["problem"]["type"]
            .as_str()
            .map(|t| t.ends_with("validation")),
        Some(true)
    );
}

#[actix_web::test]
async fn a_protected_limited_link_spends_a_visit_only_on_a_right_password() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app
        .link(
            &key,
            json!({"url": "https://example.com/", "max_visits": 1, "password": "open sesame"}),
        )
        .await;
    let code = link["code"].as_str().unwrap();
    let path = format!("/api/v1/links/{code}");
    let left = || async { app.get(&path, Some(&key)).await.body["visits_left"].clone() };
    let post = |password: &'static str| {
        let app = &app;
        async move {
            let body = format!("password={}", password.replace(' ', "+"));
            let ctype = Some("application/x-www-form-urlencoded");
            app.post_form(&format!("/{code}"), ctype, &body, &[]).await
        }
    };
    // The form takes nothing, nor does a wrong password.
    assert_eq!(
        app.get(&format!("/{code}"), None).await.status,
        StatusCode::OK
    );
    assert_eq!(post("wrong guess").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(left().await, 1);
    // The right one takes the visit; then the link is spent, form or not.
    let opened = post("open sesame").await;
    assert_eq!(opened.status, StatusCode::FOUND, "{}", opened.body);
    assert_eq!(left().await, 0);
    post("open sesame")
        .await
        .assert_problem(410, "link-expired");
    app.get(&format!("/{code}"), None)
        .await
        .assert_problem(410, "link-expired");
}

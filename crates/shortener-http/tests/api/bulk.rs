//! `POST /api/v1/links/bulk`: per-item answers in order, one transaction for the valid
//! items, the allowance for all of them or none, and its own body limit.

use awc::http::{Method, StatusCode};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::RunQueryDsl;
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Links stored, and `link.created` entries recorded (they must agree).
pub async fn links_and_entries(app: &TestApp) -> (i64, i64) {
    let mut conn = app.db.conn().await;
    let links: Count = diesel::sql_query("SELECT count(*) AS n FROM shortener.links")
        .get_result(&mut conn)
        .await
        .unwrap();
    let entries: Count =
        diesel::sql_query("SELECT count(*) AS n FROM audit.entries WHERE action = 'link.created'")
            .get_result(&mut conn)
            .await
            .unwrap();
    (links.n, entries.n)
}

async fn bulk(app: &TestApp, key: &str, links: Vec<Value>) -> Reply {
    app.request(
        Method::POST,
        "/api/v1/links/bulk",
        Some(key),
        Some(json!({ "links": links })),
    )
    .await
}

#[track_caller]
fn assert_item_problem(item: &Value, index: usize, status: u16, slug: &str) {
    assert_eq!(item["index"], index, "{item}");
    assert!(item.get("link").is_none(), "{item}");
    let p = &item["problem"];
    assert_eq!(p["type"], format!("/problems/{slug}"), "{item}");
    assert_eq!(p["status"], status, "{item}");
    assert!(p["title"].is_string() && p["detail"].is_string(), "{item}");
}

#[actix_web::test]
async fn mixed_items_are_answered_in_order_and_the_valid_ones_created() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    app.link(
        &key,
        json!({"url": "https://example.com/", "code": "taken1"}),
    )
    .await;
    let r = bulk(
        &app,
        &key,
        vec![
            json!({"url": "https://example.com/0"}),
            json!({"url": "ftp://example.com/"}),
            json!({"url": "https://example.com/2", "code": "mine42"}),
            json!({"url": "https://example.com/3", "code": "mine42"}),
            json!({"url": "https://example.com/4", "code": "taken1"}),
            json!({"url": "https://example.com/5", "expires_at": "2001-01-01T00:00:00Z"}),
            json!({"url": "https://example.com/6", "code": "a"}),
            json!({"url": "https://example.com/7", "expires_at": "2999-01-01T00:00:00Z"}),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 8);
    assert_eq!(items[0]["index"], 0);
    assert_eq!(items[0]["link"]["url"], "https://example.com/0");
    assert!(items[0].get("problem").is_none());
    assert_item_problem(&items[1], 1, 400, "invalid-url");
    assert_eq!(items[2]["link"]["code"], "mine42");
    assert_eq!(
        items[2]["link"]["short_url"],
        format!("{}/mine42", app.base)
    );
    assert_item_problem(&items[3], 3, 409, "code-taken");
    assert_item_problem(&items[4], 4, 409, "code-taken");
    assert_item_problem(&items[5], 5, 400, "validation");
    assert_item_problem(&items[6], 6, 400, "invalid-code");
    assert_eq!(items[7]["link"]["expires_at"], "2999-01-01T00:00:00Z");
    // Three created here, one before; each with its own entry.
    assert_eq!(links_and_entries(&app).await, (4, 4));
    let mine = app.get("/api/v1/links/mine42", Some(&key)).await;
    assert_eq!(mine.body["url"], "https://example.com/2");
    let code = items[0]["link"]["code"].as_str().unwrap();
    let redirect = app.get(&format!("/{code}"), None).await;
    assert_eq!(redirect.status, StatusCode::FOUND);
}

#[actix_web::test]
async fn a_plan_without_custom_codes_refuses_those_items_alone() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let r = bulk(
        &app,
        &key,
        vec![
            json!({"url": "https://example.com/0", "code": "mine42"}),
            json!({"url": "https://example.com/1"}),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_item_problem(&r.body["items"][0], 0, 403, "forbidden");
    assert_eq!(r.body["items"][1]["index"], 1);
    assert!(r.body["items"][1]["link"]["code"].is_string());
    assert_eq!(links_and_entries(&app).await, (1, 1));
}

#[actix_web::test]
async fn items_carry_their_tags_and_titles_and_a_bad_one_is_refused_alone() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let r = bulk(
        &app,
        &key,
        vec![
            json!({"url": "https://example.com/0", "tags": ["Q4", "launch"], "title": "Zero"}),
            json!({"url": "https://example.com/1", "tags": ["not ok"]}),
            json!({"url": "https://example.com/2", "title": ""}),
            json!({"url": "https://example.com/3"}),
        ],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[0]["link"]["tags"], json!(["q4", "launch"]));
    assert_eq!(items[0]["link"]["title"], "Zero");
    assert_item_problem(&items[1], 1, 400, "validation");
    assert_item_problem(&items[2], 2, 400, "validation");
    assert_eq!(items[3]["link"]["tags"], json!([]));
    assert_eq!(items[3]["link"]["title"], Value::Null);
    assert_eq!(links_and_entries(&app).await, (2, 2));
    // Stored as answered, and recorded.
    let code = items[0]["link"]["code"].as_str().unwrap();
    let read = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(read.body["tags"], json!(["q4", "launch"]));
    assert_eq!(read.body["title"], "Zero");
    let log = app
        .get(&format!("/api/v1/audit?entity_id={code}"), Some(&key))
        .await;
    let changes = &log.body["items"][0]["changes"];
    assert_eq!(changes["tags"]["new"], json!(["q4", "launch"]));
    assert_eq!(changes["title"]["new"], "Zero");
}

#[actix_web::test]
async fn an_allowance_short_by_one_creates_nothing() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__LINKS_PER_MONTH", "5")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    app.code(&key, "https://example.com/first").await;
    let five = (0..5)
        .map(|i| json!({"url": format!("https://example.com/{i}")}))
        .collect();
    bulk(&app, &key, five)
        .await
        .assert_problem(403, "quota-exceeded");
    assert_eq!(links_and_entries(&app).await, (1, 1));
    // Invalid items do not count against it: four valid ones fit.
    let mut four: Vec<Value> = (0..4)
        .map(|i| json!({"url": format!("https://example.com/{i}")}))
        .collect();
    four.push(json!({"url": "not a url"}));
    let r = bulk(&app, &key, four).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(links_and_entries(&app).await, (5, 5));
}

#[actix_web::test]
async fn an_inactive_subscription_refuses_the_whole_request() {
    let app = TestApp::spawn().await;
    let (id, key) = app.account("Acme").with_key().await;
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{id}/subscription/cancel"),
            Some(json!({"reason": "test"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    bulk(&app, &key, vec![json!({"url": "https://example.com/"})])
        .await
        .assert_problem(403, "subscription-inactive");
    assert_eq!(links_and_entries(&app).await, (0, 0));
}

#[actix_web::test]
async fn a_thousand_links_in_one_request_past_the_usual_body_limit() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    let path = "p".repeat(80);
    let links: Vec<Value> = (0..1000)
        .map(|i| json!({"url": format!("https://example.com/{path}/{i}")}))
        .collect();
    let size = serde_json::to_vec(&json!({ "links": links }))
        .unwrap()
        .len();
    assert!(size > 64 * 1024, "the body is {size} bytes");
    let r = bulk(&app, &key, links).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1000);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i);
        assert_eq!(
            item["link"]["url"],
            format!("https://example.com/{path}/{i}")
        );
    }
    assert_eq!(links_and_entries(&app).await, (1000, 1000));
    // The single create keeps its 64 KiB.
    let big = json!({"url": format!("https://example.com/{}", "p".repeat(70 * 1024))});
    app.request(Method::POST, "/api/v1/links", Some(&key), Some(big))
        .await
        .assert_problem(413, "payload-too-large");
}

#[actix_web::test]
async fn no_items_or_more_than_a_thousand_is_a_bad_request() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    bulk(&app, &key, vec![])
        .await
        .assert_problem(400, "validation");
    let links = (0..1001)
        .map(|i| json!({"url": format!("https://example.com/{i}")}))
        .collect();
    bulk(&app, &key, links)
        .await
        .assert_problem(400, "validation");
    let r = app
        .request(
            Method::POST,
            "/api/v1/links/bulk",
            Some(&key),
            Some(json!({"links": [{"url": "https://example.com/", "colour": "red"}]})),
        )
        .await;
    r.assert_problem(400, "validation");
    assert_eq!(links_and_entries(&app).await, (0, 0));
}

#[actix_web::test]
async fn bulk_and_export_are_not_new_codes_but_links_that_have_them_still_redirect() {
    let app = TestApp::spawn().await;
    let (account, _) = app.account("Acme").with_key().await;
    let (_, key) = app.pro_account().await;
    for code in ["bulk", "Export"] {
        app.request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": "https://example.com/", "code": code})),
        )
        .await
        .assert_problem(400, "invalid-code");
    }
    // A link made before the words were taken keeps redirecting; the API paths are the
    // bulk create's and the export's (405 naming their methods otherwise).
    let mut conn = app.db.conn().await;
    diesel::sql_query(format!(
        "INSERT INTO shortener.links (id, code, account_id, target, created_at) \
         VALUES (gen_random_uuid(), 'bulk', '{account}', 'https://example.com/old', now())"
    ))
    .execute(&mut conn)
    .await
    .unwrap();
    let r = app.get("/bulk", None).await;
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location").as_deref(),
        Some("https://example.com/old")
    );
    let r = app.get("/api/v1/links/bulk", Some(&key)).await;
    r.assert_problem(405, "method-not-allowed");
    assert_eq!(r.header("allow").as_deref(), Some("POST"));
}

#[actix_web::test]
async fn single_and_bulk_creates_racing_never_pass_the_allowance() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__PLANS__TRIAL__LINKS_PER_MONTH", "25"),
        ("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "0"),
        ("SHORTENER__DATABASE__POOL_SIZE", "16"),
    ])
    .await;
    let (_, key) = app.account("Acme").with_key().await;
    let singles = (0..12).map(|i| {
        app.request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": format!("https://example.com/s{i}")})),
        )
    });
    let bulks = (0..6).map(|b| {
        let links = (0..5)
            .map(|i| json!({"url": format!("https://example.com/b{b}/{i}")}))
            .collect();
        bulk(&app, &key, links)
    });
    let (singles, bulks) = futures_util::future::join(
        futures_util::future::join_all(singles),
        futures_util::future::join_all(bulks),
    )
    .await;
    let mut answered = 0;
    for r in &singles {
        match r.status {
            StatusCode::CREATED => answered += 1,
            _ => r.assert_problem(403, "quota-exceeded"),
        }
    }
    for r in &bulks {
        match r.status {
            StatusCode::OK => answered += r.body["items"].as_array().unwrap().len() as i64,
            _ => r.assert_problem(403, "quota-exceeded"),
        }
    }
    let (links, entries) = links_and_entries(&app).await;
    assert_eq!((links, entries), (answered, answered));
    assert!(links <= 25, "{links} links on an allowance of 25");
    let mut conn = app.db.conn().await;
    let used: Count = diesel::sql_query("SELECT links_created AS n FROM subscriptions.link_usage")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(used.n, links);
}

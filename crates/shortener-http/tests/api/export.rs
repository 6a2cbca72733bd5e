//! `GET /api/v1/links/export`: the account's live links as CSV, every page of them, and
//! nobody else's.

use awc::http::{Method, StatusCode};
use diesel_async::SimpleAsyncConnection;
use serde_json::json;

use crate::support::TestApp;

const HEADER: [&str; 9] = [
    "code",
    "short_url",
    "url",
    "title",
    "tags",
    "created_at",
    "expires_at",
    "max_visits",
    "clicks",
];

/// The export's rows, the header checked and left out.
fn records(raw: &[u8]) -> Vec<csv::StringRecord> {
    let mut reader = csv::Reader::from_reader(raw);
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(HEADER.to_vec())
    );
    reader.records().map(Result::unwrap).collect()
}

#[actix_web::test]
async fn an_export_holds_every_live_link_of_the_account_and_no_other() {
    let app = TestApp::spawn().await;
    let (account, key) = app.account("Acme").with_key().await;
    let (_, other) = app.account("Other").with_key().await;
    let plain = app.code(&key, "https://example.com/a,b?q=\"x\"").await;
    let expiring = app
        .link(
            &key,
            json!({"url": "https://example.com/later", "expires_at": "2999-01-02T03:04:05Z"}),
        )
        .await;
    let deleted = app.code(&key, "https://example.com/gone").await;
    app.request(
        Method::DELETE,
        &format!("/api/v1/links/{deleted}"),
        Some(&key),
        None,
    )
    .await;
    app.code(&other, "https://other.example/").await;
    assert_eq!(
        app.get(&format!("/{plain}"), None).await.status,
        StatusCode::FOUND
    );
    app.flush_clicks().await;

    // 1 200 more, written straight into the table, so the export spans pages.
    let mut conn = app.db.conn().await;
    conn.batch_execute(&format!(
        "INSERT INTO shortener.links (id, code, account_id, target, created_at) \
         SELECT gen_random_uuid(), 'bulk' || n, '{account}', 'https://example.com/' || n, \
                now() - interval '1 day' \
         FROM generate_series(1, 1200) AS n"
    ))
    .await
    .unwrap();

    let r = app.get("/api/v1/links/export", Some(&key)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let rows = records(&r.raw);
    assert_eq!(rows.len(), 1202, "two live links and the 1 200 more");
    let codes: std::collections::HashSet<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(codes.len(), 1202, "each link once");
    assert!(
        !codes.contains(deleted.as_str()),
        "deleted links are not exported"
    );

    let row = |code: &str| rows.iter().find(|r| &r[0] == code).unwrap().clone();
    let first = row(&plain);
    assert_eq!(&first[1], format!("{}/{plain}", app.base));
    assert_eq!(
        &first[2], "https://example.com/a,b?q=%22x%22",
        "quoted, read back whole"
    );
    assert_eq!(&first[8], "1", "its click");
    let later = row(expiring["code"].as_str().unwrap());
    assert_eq!(&later[6], "2999-01-02T03:04:05.000000Z");
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(&later[5]).unwrap(),
        chrono::DateTime::parse_from_rfc3339(expiring["created_at"].as_str().unwrap()).unwrap()
    );

    // The other account sees its one link only.
    let theirs = app.get("/api/v1/links/export", Some(&other)).await;
    assert_eq!(records(&theirs.raw).len(), 1);
    // And nobody without a key.
    app.get("/api/v1/links/export", None)
        .await
        .assert_problem(401, "unauthorized");
}

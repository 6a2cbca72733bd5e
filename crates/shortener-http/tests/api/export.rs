//! `GET /api/v1/links/export`: the account's live links as CSV, every page of them, and
//! nobody else's.

use awc::http::{Method, StatusCode};
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

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
            json!({"url": "https://example.com/later", "expires_at": "2999-01-02T03:04:05Z",
                   "title": "Later, \"maybe\"", "tags": ["Q4", "launch"]}),
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
    assert_eq!((&first[3], &first[4]), ("", ""), "no title, no tags");
    let later = row(expiring["code"].as_str().unwrap());
    assert_eq!(&later[6], "2999-01-02T03:04:05.000000Z");
    assert_eq!(
        &later[3], "Later, \"maybe\"",
        "the title, quoted, read back whole"
    );
    assert_eq!(&later[4], "q4,launch", "the tags, comma-joined, as stored");
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

/// The operator's way in: another instance's export, imported with `shortener import`,
/// makes the same links (codes, targets, expiries, titles, tags, visit limits) in an
/// account here, skips what it cannot
/// make and says why. (Codes are global and never reused, so the export of an account on
/// the same database would only meet its own codes, taken.)
#[actix_web::test]
async fn an_export_imports_into_an_account_of_another_instance() {
    let there = TestApp::spawn().await;
    let (_, from) = there.account("From").with_key().await;
    let here = TestApp::spawn().await;
    let (to_id, to) = here.account("To").with_key().await;
    // Custom codes need a plan that allows them.
    let activated = here
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{to_id}/subscription/activate"),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK);
    let one = there.code(&from, "https://example.com/one").await;
    let two = there
        .link(
            &from,
            json!({"url": "https://example.com/two?a=1,2", "expires_at": "2999-01-01T00:00:00Z",
                   "title": "Two, too", "tags": ["b", "a"], "max_visits": 5}),
        )
        .await;
    let export = there.get("/api/v1/links/export", Some(&from)).await;
    assert_eq!(export.status, StatusCode::OK);
    // Two rows the import must skip: a code already in the file, and a bad URL.
    let mut csv = export.raw.clone();
    csv.extend_from_slice(
        format!("{one},,https://example.com/again,,,,,,\nfine-code,,nota url,,,,,,\n").as_bytes(),
    );
    let file = std::env::temp_dir().join(format!("shortener-import-{}.csv", uuid::Uuid::now_v7()));
    std::fs::write(&file, &csv).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shortener"))
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env("SHORTENER__DATABASE__URL", &here.db.service_url)
        .args(["import", "--account", &to_id])
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&file);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.starts_with("imported 2 of 4 rows; 2 skipped"),
        "{stdout}"
    );
    assert!(stdout.contains("1 × code-taken"), "{stdout}");
    assert!(stdout.contains("1 × invalid-url"), "{stdout}");
    assert!(
        stdout.contains("line 4: "),
        "the skipped rows by line: {stdout}"
    );

    let imported = here.get(&format!("/api/v1/links/{one}"), Some(&to)).await;
    assert_eq!(imported.status, StatusCode::OK, "{}", imported.body);
    assert_eq!(imported.body["url"], "https://example.com/one");
    let code_two = two["code"].as_str().unwrap();
    let imported = here
        .get(&format!("/api/v1/links/{code_two}"), Some(&to))
        .await;
    assert_eq!(imported.body["url"], "https://example.com/two?a=1,2");
    assert_eq!(imported.body["expires_at"], "2999-01-01T00:00:00Z");
    assert_eq!(imported.body["title"], "Two, too");
    assert_eq!(imported.body["tags"], json!(["b", "a"]));
    assert_eq!(imported.body["max_visits"], 5);
    let unlimited = here.get(&format!("/api/v1/links/{one}"), Some(&to)).await;
    assert_eq!(unlimited.body["max_visits"], Value::Null);
    // And they redirect here.
    assert_eq!(
        here.get(&format!("/{one}"), None)
            .await
            .header("location")
            .as_deref(),
        Some("https://example.com/one")
    );
}

//! Tags, titles and search: their rules at creation and in a PATCH, their audit entries,
//! and `GET /api/v1/links?tag=&q=` with keyset pages, against a real PostgreSQL.

use awc::http::{Method, StatusCode};
use diesel_async::SimpleAsyncConnection;
use serde_json::{Value, json};

use crate::bulk::links_and_entries;
use crate::support::TestApp;

/// `s` as a query-string value: everything but letters and digits percent-encoded.
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The codes of every page of `query`, `page` a page, in order.
async fn codes_by(app: &TestApp, key: &str, query: &str, page: u32) -> Vec<String> {
    all(app, key, query, page)
        .await
        .iter()
        .map(|l| l["code"].as_str().unwrap().to_owned())
        .collect()
}

/// Codes `<prefix>0` to `<prefix><n - 1>` that `keep` keeps, newest (highest) first.
fn newest_first(prefix: &str, n: u32, keep: &dyn Fn(u32) -> bool) -> Vec<String> {
    (0..n)
        .rev()
        .filter(|n| keep(*n))
        .map(|n| format!("{prefix}{n}"))
        .collect()
}

/// Every link of the list `query` selects, following the cursor `page` links at a time;
/// asserts that no page is empty but the only one.
async fn all(app: &TestApp, key: &str, query: &str, page: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("/api/v1/links?limit={page}&{query}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, Some(key)).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        let got = r.body["items"].as_array().unwrap();
        assert!(
            cursor.is_none() || !got.is_empty(),
            "a cursor led to an empty page: {url}"
        );
        items.extend(got.iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

/// The codes of the links `query` selects, in the order listed.
async fn codes(app: &TestApp, key: &str, query: &str) -> Vec<String> {
    codes_by(app, key, query, 50).await
}

#[actix_web::test]
async fn tags_and_titles_are_kept_as_the_rules_say_and_bad_ones_create_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let plain = app.link(&key, json!({"url": "https://example.com/"})).await;
    assert_eq!(plain["tags"], json!([]), "always an array");
    assert_eq!(plain["title"], Value::Null);
    let labelled = app
        .link(
            &key,
            json!({"url": "https://example.com/", "tags": ["News", "q4", "news", "A_b-9"],
                   "title": "  Ünïcödé title, with spaces  "}),
        )
        .await;
    assert_eq!(
        labelled["tags"],
        json!(["news", "q4", "a_b-9"]),
        "lower-cased, repeats dropped, order kept"
    );
    assert_eq!(labelled["title"], "  Ünïcödé title, with spaces  ");
    let code = labelled["code"].as_str().unwrap();
    let read = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(read.body["tags"], labelled["tags"]);
    assert_eq!(read.body["title"], labelled["title"]);
    // The bounds themselves are fine.
    let ten: Vec<String> = (0..10).map(|i| format!("t{i}")).collect();
    let edge = app
        .link(
            &key,
            json!({"url": "https://example.com/", "tags": ten, "title": "é".repeat(200),
            }),
        )
        .await;
    assert_eq!(edge["tags"].as_array().unwrap().len(), 10);
    let long_tag = app
        .link(
            &key,
            json!({"url": "https://example.com/", "tags": ["a".repeat(32)], "title": null}),
        )
        .await;
    assert_eq!(long_tag["tags"][0].as_str().unwrap().len(), 32);

    let before = links_and_entries(&app).await;
    let mut eleven = ten.clone();
    eleven.push("t0".into());
    let bad = [
        (json!({"tags": eleven}), "tags"),
        (json!({"tags": [""]}), "tags"),
        (json!({"tags": ["a".repeat(33)]}), "tags"),
        (json!({"tags": ["ok", "not ok"]}), "tags"),
        (json!({"tags": ["a.b"]}), "tags"),
        (json!({"tags": ["é"]}), "tags"),
        (json!({"tags": ["\u{212A}"]}), "tags"),
        (json!({"tags": "news"}), "sequence"),
        (json!({"tags": [1]}), "string"),
        (json!({"title": ""}), "title"),
        (json!({"title": "é".repeat(201)}), "title"),
        (json!({"title": "two\nlines"}), "title"),
        (json!({"title": "bell\u{7}"}), "title"),
        (json!({"title": 7}), "string"),
    ];
    for (fields, named) in bad {
        let mut body = json!({"url": "https://example.com/"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let r = app
            .request(
                Method::POST,
                "/api/v1/links",
                Some(&key),
                Some(body.clone()),
            )
            .await;
        r.assert_problem(400, "validation");
        let detail = r.body["detail"].as_str().unwrap();
        assert!(detail.contains(named), "{body}: {detail}");
    }
    assert_eq!(
        links_and_entries(&app).await,
        before,
        "no link and no entry from a refused create"
    );
}

#[actix_web::test]
async fn patch_sets_changes_and_clears_tags_and_title_and_the_audit_log_records_each() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let created = app
        .link(
            &key,
            json!({"url": "https://example.com/", "tags": ["b", "a"], "title": "First"}),
        )
        .await;
    let code = created["code"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/links/{code}");
    let patch = |body: Value| app.patch_link(&key, &code, body);
    // Absent fields stay as they are.
    let moved = patch(json!({"url": "https://example.com/moved"})).await;
    assert_eq!(moved["tags"], json!(["b", "a"]));
    assert_eq!(moved["title"], "First");
    // Changed: the tags given replace the old ones, validated as at creation.
    let changed = patch(json!({"tags": ["C", "b", "c"], "title": "Second"})).await;
    assert_eq!(changed["tags"], json!(["c", "b"]));
    assert_eq!(changed["title"], "Second");
    // `[]` and `null` both clear the tags; `null` clears the title.
    let cleared = patch(json!({"tags": [], "title": null})).await;
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(cleared["title"], Value::Null);
    let set = patch(json!({"tags": ["x"], "title": "Third"})).await;
    assert_eq!(set["tags"], json!(["x"]));
    let cleared = patch(json!({"tags": null})).await;
    assert_eq!(cleared["tags"], json!([]));
    assert_eq!(cleared["title"], "Third");
    // Bad input changes nothing.
    for bad in [
        json!({"tags": ["no way"]}),
        json!({"title": ""}),
        json!({"title": "x".repeat(201)}),
        json!({"tags": ["ok"], "title": "bad\u{1b}"}),
    ] {
        app.request(Method::PATCH, &path, Some(&key), Some(bad))
            .await
            .assert_problem(400, "validation");
    }
    let now = app.get(&path, Some(&key)).await.body;
    assert_eq!((&now["tags"], &now["title"]), (&json!([]), &json!("Third")));

    // The log, oldest first: what each change did to the tags and the title.
    let log = app.link_log(&key, &code).await;
    let mut entries = log.body["items"].as_array().unwrap().clone();
    entries.reverse();
    let field = |i: usize, name: &str| entries[i]["changes"][name].clone();
    let change = |old: Value, new: Value| json!({"old": old, "new": new});
    assert_eq!(entries[0]["action"], "link.created");
    assert_eq!(field(0, "tags"), change(Value::Null, json!(["b", "a"])));
    assert_eq!(field(0, "title"), change(Value::Null, json!("First")));
    assert_eq!(
        entries[1]["changes"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["url"],
        "an unchanged field is not recorded"
    );
    assert_eq!(
        field(2, "tags"),
        change(json!(["b", "a"]), json!(["c", "b"]))
    );
    assert_eq!(field(2, "title"), change(json!("First"), json!("Second")));
    assert_eq!(field(3, "tags"), change(json!(["c", "b"]), Value::Null));
    assert_eq!(field(3, "title"), change(json!("Second"), Value::Null));
    assert_eq!(field(4, "tags"), change(Value::Null, json!(["x"])));
    assert_eq!(field(5, "tags"), change(json!(["x"]), Value::Null));
    assert_eq!(
        entries[5]["changes"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["tags"]
    );
    assert_eq!(entries.len(), 6, "the refused patches recorded nothing");
}

#[actix_web::test]
async fn tag_and_q_keep_the_links_that_match_case_insensitively_and_literally() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    let (_, other) = app.account("Other").with_key().await;
    let code = |l: &Value| l["code"].as_str().unwrap().to_owned();
    let a = code(
        &app.link(
            &key,
            json!({"url": "https://shop.example/sale", "code": "Alpha-Promo", "tags": ["sale"]}),
        )
        .await,
    );
    let b = code(
        &app.link(
            &key,
            json!({"url": "https://Blog.example/Post?id=1", "title": "Promo week",
                   "tags": ["blog", "sale"]}),
        )
        .await,
    );
    let c = code(
        &app.link(
            &key,
            json!({"url": "https://example.com/100%25_off", "title": "Half_price"}),
        )
        .await,
    );
    let d = code(
        &app.link(
            &key,
            json!({"url": "https://example.com/100x25-off", "title": "Halfxprice"}),
        )
        .await,
    );
    // Neither another account's link nor a deleted one is ever found.
    app.link(
        &other,
        json!({"url": "https://shop.example/promo", "title": "Promo", "tags": ["sale"]}),
    )
    .await;
    let gone = code(
        &app.link(
            &key,
            json!({"url": "https://shop.example/promo", "title": "Promo", "tags": ["sale"]}),
        )
        .await,
    );
    let r = app
        .request(
            Method::DELETE,
            &format!("/api/v1/links/{gone}"),
            Some(&key),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    let q = |text: &str| format!("q={}", enc(text));
    // The code, the URL and the title, in any letter case; newest first.
    assert_eq!(
        codes(&app, &key, &q("promo")).await,
        [b.as_str(), a.as_str()]
    );
    assert_eq!(
        codes(&app, &key, &q("PROMO")).await,
        [b.as_str(), a.as_str()]
    );
    assert_eq!(codes(&app, &key, &q("alpha-p")).await, [a.as_str()]);
    assert_eq!(
        codes(&app, &key, &q("BLOG.EXAMPLE/post")).await,
        [b.as_str()]
    );
    assert_eq!(codes(&app, &key, &q("WEEK")).await, [b.as_str()]);
    // `%`, `_` and `\` match only themselves (as wildcards, `100%25_` would find `d`'s
    // `100x25-`, and `f_p` its `Halfxprice`).
    assert_eq!(codes(&app, &key, &q("100%25_")).await, [c.as_str()]);
    assert_eq!(codes(&app, &key, &q("f_p")).await, [c.as_str()]);
    assert_eq!(codes(&app, &key, &q("%")).await, [c.as_str()]);
    assert_eq!(codes(&app, &key, &q("_")).await, [c.as_str()]);
    assert!(codes(&app, &key, &q("\\")).await.is_empty());
    // No match across two fields (the URL's end and the title's start).
    assert!(codes(&app, &key, &q("offhalf")).await.is_empty());
    // Short texts work too (no trigram in them).
    assert_eq!(codes(&app, &key, &q("0x")).await, [d.as_str()]);
    // An empty q filters nothing.
    assert_eq!(codes(&app, &key, "q=").await.len(), 4);

    // Tags, lower-cased first; and both filters together.
    assert_eq!(
        codes(&app, &key, "tag=sale").await,
        [b.as_str(), a.as_str()]
    );
    assert_eq!(
        codes(&app, &key, "tag=SALE").await,
        [b.as_str(), a.as_str()]
    );
    assert_eq!(codes(&app, &key, "tag=blog").await, [b.as_str()]);
    assert!(codes(&app, &key, "tag=none").await.is_empty());
    assert_eq!(
        codes(&app, &key, &format!("tag=sale&{}", q("promo"))).await,
        [b.as_str(), a.as_str()]
    );
    assert_eq!(
        codes(&app, &key, &format!("tag=blog&{}", q("promo"))).await,
        [b.as_str()]
    );
    assert_eq!(
        codes(&app, &key, &format!("tag=sale&{}", q("shop"))).await,
        [a.as_str()]
    );
    assert!(
        codes(&app, &key, &format!("tag=blog&{}", q("half")))
            .await
            .is_empty()
    );

    for bad in [
        "tag=".to_owned(),
        format!("tag={}", enc("not a tag")),
        format!("tag={}", "a".repeat(33)),
        format!("q={}", enc("a\u{1}b")),
        format!("q={}", "a".repeat(2049)),
    ] {
        app.get(&format!("/api/v1/links?{bad}"), Some(&key))
            .await
            .assert_problem(400, "validation");
    }
}

#[actix_web::test]
async fn filtered_pages_follow_the_cursor_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let (account, key) = app.pro_account().await;
    // 300 links written straight into the table, newest last: every third tagged `odd`,
    // every second titled with a needle in a different letter case.
    let rows: Vec<String> = (0..300)
        .map(|n| {
            let id = uuid::Uuid::now_v7();
            let tags = if n % 3 == 0 { "{odd,x}" } else { "{x}" };
            let title = if n % 2 == 0 {
                format!("'Hay NeEdLe {n}'")
            } else {
                "NULL".to_owned()
            };
            format!(
                "('{id}', 'page{n}', '{account}', 'https://example.com/{n}', now(), \
                 '{tags}', {title})"
            )
        })
        .collect();
    let mut conn = app.db.conn().await;
    conn.batch_execute(&format!(
        "INSERT INTO shortener.links (id, code, account_id, target, created_at, tags, title) \
         VALUES {}",
        rows.join(", ")
    ))
    .await
    .unwrap();
    let expect = |keep: &dyn Fn(u32) -> bool| newest_first("page", 300, keep);
    let listed = |query: &'static str, page: u32| codes_by(&app, &key, query, page);
    let both = expect(&|n| n % 6 == 0);
    assert_eq!(both.len(), 50);
    for page in [1, 7, 49, 50, 500] {
        assert_eq!(
            listed("tag=odd&q=needle", page).await,
            both,
            "pages of {page}: every match once, newest first"
        );
    }
    assert_eq!(listed("tag=odd", 9).await, expect(&|n| n % 3 == 0));
    assert_eq!(listed("q=nEEdle", 11).await, expect(&|n| n % 2 == 0));
    assert_eq!(listed("tag=x", 100).await, expect(&|_| true));
    // A page's worth exactly: the last page says there is none after it.
    let r = app
        .get("/api/v1/links?limit=50&tag=odd&q=needle", Some(&key))
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 50);
    assert_eq!(r.body["next_cursor"], Value::Null);
}

/// A search reads the newest 4 096 links one by one, then turns to the index for older
/// ones (`PgStore::search_links`): pages across that line hold every match once too.
#[actix_web::test]
async fn searches_reaching_past_the_newest_links_page_without_gaps_or_repeats() {
    let app = TestApp::spawn().await;
    let (account, key) = app.pro_account().await;
    // 6 000 links, newest last: a needle on every 90th (so sparse among the newest: the
    // index finds the older ones), every 180th also tagged; `example` on all of them.
    let mut conn = app.db.conn().await;
    for chunk in (0..6000u32).collect::<Vec<_>>().chunks(1000) {
        let rows: Vec<String> = chunk
            .iter()
            .map(|n| {
                let id = uuid::Uuid::now_v7();
                let tags = if n % 180 == 0 { "{odd}" } else { "{}" };
                let title = if n % 90 == 0 {
                    format!("'a NEEDLE {n}'")
                } else {
                    "NULL".to_owned()
                };
                format!(
                    "('{id}', 'deep{n}', '{account}', 'https://example.com/{n}', now(), \
                     '{tags}', {title})"
                )
            })
            .collect();
        conn.batch_execute(&format!(
            "INSERT INTO shortener.links (id, code, account_id, target, created_at, tags, \
             title) VALUES {}",
            rows.join(", ")
        ))
        .await
        .unwrap();
    }
    conn.batch_execute("ANALYZE shortener.links").await.unwrap();
    let expect = |keep: &dyn Fn(u32) -> bool| newest_first("deep", 6000, keep);
    let listed = |query: &'static str, page: u32| codes_by(&app, &key, query, page);
    let needles = expect(&|n| n % 90 == 0);
    assert_eq!(needles.len(), 67);
    for page in [3, 17, 50] {
        assert_eq!(listed("q=needle", page).await, needles, "pages of {page}");
    }
    assert_eq!(
        listed("q=needle&tag=odd", 4).await,
        expect(&|n| n % 180 == 0)
    );
    // Dense: every link matches; the first pages come from the newest links alone.
    let first = all(&app, &key, "q=EXAMPLE.com", 500).await;
    assert_eq!(first.len(), 6000);
    let codes: Vec<&str> = first.iter().map(|l| l["code"].as_str().unwrap()).collect();
    assert_eq!(codes, expect(&|_| true));
}

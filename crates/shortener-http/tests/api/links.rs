//! Links end to end: create, read, list, edit, delete, redirect, clicks, expiry, and every
//! error the contract names, against the real app and a real PostgreSQL.

use awc::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::TestApp;

#[actix_web::test]
async fn create_generates_a_base62_code_and_the_redirect_follows_it() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": "https://example.com/a?b=c"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let code = r.body["code"].as_str().unwrap();
    assert_eq!(code.len(), 7);
    assert!(code.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/links/{code}")
    );
    assert_eq!(r.body["short_url"], format!("{}/{code}", app.base));
    assert_eq!(r.body["url"], "https://example.com/a?b=c");
    assert_eq!(r.body["clicks"], 0);
    assert_eq!(r.body["expires_at"], Value::Null);
    assert!(r.body["created_at"].as_str().unwrap().ends_with('Z'));

    let go = app.get(&format!("/{code}"), None).await;
    assert_eq!(go.status, StatusCode::FOUND);
    assert_eq!(go.header("location").unwrap(), "https://example.com/a?b=c");
    assert_eq!(go.header("cache-control").unwrap(), "private, max-age=0");
}

#[actix_web::test]
async fn stored_target_is_exactly_what_the_redirect_sends_idn_in_punycode() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app
        .link(&key, json!({"url": "https://bücher.example/straße"}))
        .await;
    assert_eq!(link["url"], "https://xn--bcher-kva.example/stra%C3%9Fe");
    let go = app
        .get(&format!("/{}", link["code"].as_str().unwrap()), None)
        .await;
    assert_eq!(
        go.header("location").unwrap(),
        link["url"].as_str().unwrap()
    );
}

#[actix_web::test]
async fn every_url_rule_is_a_400_invalid_url() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let long = format!("https://example.com/{}", "a".repeat(2048));
    let own = format!("{}/x", app.base);
    let cases = [
        "ftp://example.com/",
        "javascript:alert(1)",
        "/relative/path",
        "example.com",
        "https://user:pass@example.com/",
        "https://example.com/a\tb",
        "https://example.com/\u{7f}",
        long.as_str(),
        "http://127.0.0.1/",
        "http://10.1.2.3/",
        "http://192.168.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data",
        "http://[2002:7f00:1::]/",
        "http://224.0.0.1/",
        "http://2130706433/",
        "http://localhost:8080/",
        own.as_str(),
        "",
    ];
    for url in cases {
        let r = app
            .request(
                Method::POST,
                "/api/v1/links",
                Some(&key),
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(
            r.status.as_u16(),
            400,
            "{url:?} should be refused: {}",
            r.body
        );
        r.assert_problem(400, "invalid-url");
    }
    let count = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(
        count.body["items"].as_array().unwrap().len(),
        0,
        "nothing was created"
    );
}

#[actix_web::test]
async fn private_targets_are_allowed_when_configured() {
    let app = TestApp::spawn_with(&[("SHORTENER__LINKS__ALLOW_PRIVATE_TARGETS", "true")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    app.link(&key, json!({"url": "http://10.1.2.3/internal"}))
        .await;
    // Still never the service itself.
    let own = format!("{}/loop", app.base);
    app.request(
        Method::POST,
        "/api/v1/links",
        Some(&key),
        Some(json!({"url": own})),
    )
    .await
    .assert_problem(400, "invalid-url");
}

#[actix_web::test]
async fn custom_codes_follow_their_rules_and_are_never_reused() {
    // Custom codes need a plan that allows them; this test is about their rules.
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__CUSTOM_CODES", "true")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let (_, other) = app.account("Other").with_key().await;
    let link = app
        .link(
            &key,
            json!({"url": "https://example.com/", "code": "my-Code_1"}),
        )
        .await;
    assert_eq!(link["code"], "my-Code_1");
    assert_eq!(app.get("/my-Code_1", None).await.status, StatusCode::FOUND);
    // Codes are case-sensitive.
    app.get("/my-code_1", None)
        .await
        .assert_problem(404, "not-found");

    for code in [
        "ab",
        &"x".repeat(65),
        "has space",
        "dot.ted",
        "slash/ed",
        "ünï",
        "api",
        "ADMIN",
        "healthz",
        "metrics",
    ] {
        let r = app
            .request(
                Method::POST,
                "/api/v1/links",
                Some(&key),
                Some(json!({"url": "https://e.com/", "code": code})),
            )
            .await;
        r.assert_problem(400, "invalid-code");
    }
    // Taken, by this account or another one.
    for k in [&key, &other] {
        app.request(
            Method::POST,
            "/api/v1/links",
            Some(k),
            Some(json!({"url": "https://e.com/", "code": "my-Code_1"})),
        )
        .await
        .assert_problem(409, "code-taken");
    }
    // Deleted codes stay taken: an old short URL must never point somewhere new.
    let del = app
        .request(Method::DELETE, "/api/v1/links/my-Code_1", Some(&key), None)
        .await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    app.request(
        Method::POST,
        "/api/v1/links",
        Some(&other),
        Some(json!({"url": "https://e.com/", "code": "my-Code_1"})),
    )
    .await
    .assert_problem(409, "code-taken");
}

#[actix_web::test]
async fn expiry_must_be_future_and_an_expired_link_is_gone() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let past = (chrono::Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    app.request(
        Method::POST,
        "/api/v1/links",
        Some(&key),
        Some(json!({"url": "https://e.com/", "expires_at": past})),
    )
    .await
    .assert_problem(400, "validation");

    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let link = app
        .link(&key, json!({"url": "https://e.com/", "expires_at": soon}))
        .await;
    let code = link["code"].as_str().unwrap();
    assert!(link["expires_at"].is_string());
    assert_eq!(
        app.get(&format!("/{code}"), None).await.status,
        StatusCode::FOUND
    );

    app.clock.advance(chrono::Duration::hours(2));
    app.get(&format!("/{code}"), None)
        .await
        .assert_problem(410, "link-expired");
    assert_eq!(
        app.request(Method::HEAD, &format!("/{code}"), None, None)
            .await
            .status,
        StatusCode::GONE
    );
    // The owner still sees it and can give it a new life.
    let later = (chrono::Utc::now() + chrono::Duration::hours(5)).to_rfc3339();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/links/{code}"),
            Some(&key),
            Some(json!({"expires_at": later})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        app.get(&format!("/{code}"), None).await.status,
        StatusCode::FOUND
    );
    // And can remove the expiry altogether.
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/links/{code}"),
            Some(&key),
            Some(json!({"expires_at": null})),
        )
        .await;
    assert_eq!(r.body["expires_at"], Value::Null);
}

#[actix_web::test]
async fn get_patch_delete_and_tenant_isolation() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let (_, other) = app.account("Other").with_key().await;
    let link = app
        .link(&key, json!({"url": "https://example.com/old"}))
        .await;
    let code = link["code"].as_str().unwrap();
    let path = format!("/api/v1/links/{code}");

    let got = app.get(&path, Some(&key)).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, link);

    // Another tenant's link reads as missing, whatever the verb.
    app.get(&path, Some(&other))
        .await
        .assert_problem(404, "not-found");
    app.request(
        Method::PATCH,
        &path,
        Some(&other),
        Some(json!({"url": "https://evil.example/"})),
    )
    .await
    .assert_problem(404, "not-found");
    app.request(Method::DELETE, &path, Some(&other), None)
        .await
        .assert_problem(404, "not-found");
    app.get(&format!("{path}/stats"), Some(&other))
        .await
        .assert_problem(404, "not-found");

    let patched = app
        .request(
            Method::PATCH,
            &path,
            Some(&key),
            Some(json!({"url": "https://example.com/new"})),
        )
        .await;
    assert_eq!(patched.status, StatusCode::OK);
    assert_eq!(patched.body["url"], "https://example.com/new");
    assert_eq!(patched.body["code"], code);
    assert_eq!(
        app.get(&format!("/{code}"), None)
            .await
            .header("location")
            .unwrap(),
        "https://example.com/new"
    );

    // Bad patches change nothing.
    app.request(Method::PATCH, &path, Some(&key), Some(json!({"url": null})))
        .await
        .assert_problem(400, "validation");
    app.request(
        Method::PATCH,
        &path,
        Some(&key),
        Some(json!({"url": "notaurl"})),
    )
    .await
    .assert_problem(400, "invalid-url");
    app.request(
        Method::PATCH,
        &path,
        Some(&key),
        Some(json!({"code": "new"})),
    )
    .await
    .assert_problem(400, "validation");
    assert_eq!(
        app.get(&path, Some(&key)).await.body["url"],
        "https://example.com/new"
    );

    assert_eq!(
        app.request(Method::DELETE, &path, Some(&key), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    app.get(&format!("/{code}"), None)
        .await
        .assert_problem(404, "not-found");
    app.get(&path, Some(&key))
        .await
        .assert_problem(404, "not-found");
    app.request(Method::DELETE, &path, Some(&key), None)
        .await
        .assert_problem(404, "not-found");
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.body["items"],
        json!([])
    );
}

#[actix_web::test]
async fn list_is_newest_first_with_keyset_pagination() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let (_, other) = app.account("Other").with_key().await;
    app.link(&other, json!({"url": "https://other.example/"}))
        .await;
    let mut made = Vec::new();
    for i in 0..5 {
        made.push(
            app.link(&key, json!({"url": format!("https://example.com/{i}")}))
                .await["code"]
                .clone(),
        );
    }
    made.reverse();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/links?limit=2&cursor={c}"),
            None => "/api/v1/links?limit=2".to_owned(),
        };
        let page = app.get(&path, Some(&key)).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        pages += 1;
        seen.extend(
            page.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["code"].clone()),
        );
        match page.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen, made,
        "every link once, newest first, no other tenant's"
    );

    let all = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 5);
    assert_eq!(all.body["next_cursor"], Value::Null);

    for bad in [
        "limit=0",
        "limit=501",
        "limit=-1",
        "limit=x",
        "cursor=!!!",
        "cursor=AAAA",
        "colour=red",
    ] {
        app.get(&format!("/api/v1/links?{bad}"), Some(&key))
            .await
            .assert_problem(400, "validation");
    }
}

#[actix_web::test]
async fn clicks_count_gets_not_heads_and_show_in_daily_stats() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.link(&key, json!({"url": "https://example.com/"})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..3 {
        assert_eq!(
            app.get(&format!("/{code}"), None).await.status,
            StatusCode::FOUND
        );
    }
    for _ in 0..2 {
        let head = app
            .request(Method::HEAD, &format!("/{code}"), None, None)
            .await;
        assert_eq!(head.status, StatusCode::FOUND);
        assert_eq!(head.header("location").unwrap(), "https://example.com/");
    }
    app.flush_clicks().await;
    assert_eq!(
        app.get(&format!("/api/v1/links/{code}"), Some(&key))
            .await
            .body["clicks"],
        3
    );

    let stats = app
        .get(&format!("/api/v1/links/{code}/stats"), Some(&key))
        .await;
    assert_eq!(stats.status, StatusCode::OK);
    assert_eq!(stats.body["code"], code.as_str());
    assert_eq!(stats.body["clicks"], 3);
    let daily = stats.body["daily"].as_array().unwrap();
    assert_eq!(daily.len(), 30);
    let today = chrono::Utc::now().date_naive().to_string();
    assert_eq!(daily[29], json!({"day": today, "clicks": 3, "bots": 0}));
    assert!(daily[..29].iter().all(|d| d["clicks"] == 0));

    let week = app
        .get(&format!("/api/v1/links/{code}/stats?days=7"), Some(&key))
        .await;
    assert_eq!(week.body["daily"].as_array().unwrap().len(), 7);
    for bad in ["days=0", "days=367", "days=abc", "weeks=2"] {
        app.get(&format!("/api/v1/links/{code}/stats?{bad}"), Some(&key))
            .await
            .assert_problem(400, "validation");
    }
}

#[actix_web::test]
async fn unknown_and_malformed_codes_are_404() {
    let app = TestApp::spawn().await;
    for path in ["/nope123", "/a.b", "/xx", "/%00", "/x%20y"] {
        app.get(path, None).await.assert_problem(404, "not-found");
    }
}

#[actix_web::test]
async fn malformed_bodies_are_validation_problems_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let post = |body: &'static [u8], ctype: Option<&'static str>| {
        app.raw(Method::POST, "/api/v1/links", &key, ctype, body.to_vec())
    };
    post(b"{not json", Some("application/json"))
        .await
        .assert_problem(400, "validation");
    post(b"{\"url\": 42}", Some("application/json"))
        .await
        .assert_problem(400, "validation");
    post(b"{}", Some("application/json"))
        .await
        .assert_problem(400, "validation");
    post(
        b"{\"url\": \"https://e.com/\", \"extra\": 1}",
        Some("application/json"),
    )
    .await
    .assert_problem(400, "validation");
    post(b"[]", Some("application/json"))
        .await
        .assert_problem(400, "validation");
    post(b"{\"url\": \"https://e.com/\"}", Some("text/plain"))
        .await
        .assert_problem(400, "validation");
    post(b"{\"url\": \"https://e.com/\"}", None)
        .await
        .assert_problem(400, "validation");
    post(
        b"{\"url\": \"https://e.com/\", \"expires_at\": \"tomorrow\"}",
        Some("application/json"),
    )
    .await
    .assert_problem(400, "validation");

    let mut huge = b"{\"url\": \"https://e.com/\", \"code\": \"".to_vec();
    huge.extend(std::iter::repeat_n(b'a', 70 * 1024));
    huge.extend(b"\"}");
    app.raw(
        Method::POST,
        "/api/v1/links",
        &key,
        Some("application/json"),
        huge,
    )
    .await
    .assert_problem(413, "payload-too-large");

    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.body["items"],
        json!([])
    );
}

#[actix_web::test]
async fn redirect_status_is_configurable() {
    let app = TestApp::spawn_with(&[("SHORTENER__REDIRECT__STATUS", "308")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.link(&key, json!({"url": "https://example.com/"})).await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let go = app.get(&format!("/{code}"), None).await;
    assert_eq!(go.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(go.header("location").unwrap(), "https://example.com/");
}

#[actix_web::test]
async fn public_url_builds_short_urls() {
    let app = TestApp::spawn_with(&[("SHORTENER__SERVER__PUBLIC_URL", "https://sho.rt/")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app.link(&key, json!({"url": "https://example.com/"})).await;
    assert_eq!(
        link["short_url"],
        format!("https://sho.rt/{}", link["code"].as_str().unwrap())
    );
    // And a target on the public host is a loop, however the host is spelled.
    for url in [
        "https://sho.rt/abc",
        "https://SHO.rt./abc",
        "https://sho.rt%2e/abc",
        "https://sho.rt\u{3002}/abc",
    ] {
        app.request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({ "url": url })),
        )
        .await
        .assert_problem(400, "invalid-url");
    }
}

/// Tried as a new user would: the public URL has a port, the target is the same host on
/// another scheme, port, letter case or with a trailing dot. Each is a redirect loop.
#[actix_web::test]
async fn a_target_on_the_services_own_host_is_a_loop_whatever_its_port_or_scheme() {
    let app =
        TestApp::spawn_with(&[("SHORTENER__SERVER__PUBLIC_URL", "http://sho.test:18767")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    for target in [
        "http://sho.test/abc",
        "https://sho.test/abc",
        "http://sho.test:18767/abc",
        "http://SHO.Test./abc",
        "https://sho.test%2e:8443/",
    ] {
        app.request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": target})),
        )
        .await
        .assert_problem(400, "invalid-url");
    }
    let other = app
        .request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": "http://www.sho.test/abc"})),
        )
        .await;
    assert_eq!(
        other.status,
        awc::http::StatusCode::CREATED,
        "{}",
        other.body
    );
}

/// Creates of one account that arrive together share a transaction (they are grouped),
/// and each is still answered as if it had been alone: a taken custom code is refused on
/// its own, the rest are created, each with its audit entry.
#[actix_web::test]
async fn concurrent_creates_of_one_account_are_each_answered_as_alone() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "0"),
        ("SHORTENER__DATABASE__POOL_SIZE", "16"),
    ])
    .await;
    let (account, key) = app.account("Acme").with_key().await;
    app.admin(
        Method::POST,
        &format!("/admin/v1/accounts/{account}/subscription/activate"),
        Some(json!({"plan": "pro"})),
    )
    .await;
    // 30 generated codes, and 5 custom codes asked for twice each.
    let bodies: Vec<Value> = (0..30)
        .map(|i| json!({"url": format!("https://example.com/g{i}")}))
        .chain((0..10).map(|i| {
            json!({"url": format!("https://example.com/c{i}"), "code": format!("twice-{}", i / 2)})
        }))
        .collect();
    let replies = futures_util::future::join_all(
        bodies
            .iter()
            .map(|b| app.request(Method::POST, "/api/v1/links", Some(&key), Some(b.clone()))),
    )
    .await;
    let created: Vec<&Value> = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .map(|r| &r.body)
        .collect();
    let taken = replies
        .iter()
        .filter(|r| r.status == StatusCode::CONFLICT && r.body["type"] == "/problems/code-taken")
        .count();
    assert_eq!(
        (created.len(), taken),
        (35, 5),
        "every reply is one or the other"
    );
    let codes: std::collections::HashSet<&str> = created
        .iter()
        .map(|l| l["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 35, "distinct codes");
    for i in 0..5 {
        assert!(codes.contains(format!("twice-{i}").as_str()));
    }
    // Each created link has its audit entry, and each redirects.
    let audit = app
        .admin(
            Method::GET,
            "/admin/v1/audit?action=link.created&limit=100",
            None,
        )
        .await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), 35);
    for link in created.iter().take(3) {
        let code = link["code"].as_str().unwrap();
        assert_eq!(
            app.get(&format!("/{code}"), None).await.status,
            StatusCode::FOUND
        );
    }
}

/// Found by Schemathesis's stateful phase: a link created a moment before is found by an
/// empty PATCH (which changes nothing and answers the link).
#[actix_web::test]
async fn an_empty_patch_of_a_new_link_answers_the_link() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = app
        .link(
            &key,
            json!({"expires_at": null, "url": "https://0h2nw.null.com"}),
        )
        .await;
    let code = link["code"].as_str().unwrap();
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/links/{code}"),
            Some(&key),
            Some(json!({})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, link);
}

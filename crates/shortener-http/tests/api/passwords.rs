//! Password-protected links (`../shared/API.md`, "Optional link fields"): the form that
//! `GET /{code}` answers (self-contained, never cached, the target nowhere in it), `POST
//! /{code}` with the right and wrong passwords, the click counted only when the password
//! was right, wrong guesses limited per address and link, PATCH setting, changing and
//! removing a password (and every instance's cache following), and the password or its
//! hash never in an answer or the audit log.

use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Reply, TestApp};

const TARGET: &str = "https://example.com/the-secret-target?campaign=x";
const PASSWORD: &str = "correct horse battery";
const FORM: &str = "application/x-www-form-urlencoded";

/// `password` as a form body.
fn form(password: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("password", password)
        .finish()
}

/// A new link of `key`'s account to [`TARGET`] behind [`PASSWORD`]; its code.
async fn protected<D>(app: &TestApp<D>, key: &str) -> String {
    app.link(key, json!({"url": TARGET, "password": PASSWORD}))
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// The answer's body as text.
fn html(r: &Reply) -> String {
    String::from_utf8(r.raw.clone()).unwrap()
}

/// Asserts the password form: its status, its headers, and nothing of the target in it.
#[track_caller]
fn assert_form(r: &Reply, status: u16, code: &str) {
    let page = html(r);
    assert_eq!(r.status.as_u16(), status, "{page}");
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(r.header("referrer-policy").as_deref(), Some("no-referrer"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(r.header("location").is_none());
    assert!(
        page.contains(&format!(r#"<form method="post" action="/{code}""#)),
        "{page}"
    );
    assert!(page.contains(r#"<label for="password">"#), "{page}");
    assert!(page.contains("<title>Password required</title>"), "{page}");
    for leak in ["example.com", "the-secret-target", "campaign"] {
        assert!(!page.contains(leak), "{leak} in the form: {page}");
    }
    assert_eq!(page.contains("Wrong password"), status == 401, "{page}");
}

/// Asserts a Link as the API shows it: protected or not, and neither the password nor
/// its hash anywhere in the answer.
#[track_caller]
fn assert_link(r: &Reply, protected: bool) {
    assert_eq!(r.body["password_protected"], protected, "{}", r.body);
    assert!(r.body.get("password").is_none(), "{}", r.body);
    assert_no_secret(r);
}

/// Asserts that no answer holds a password's text or its hash.
#[track_caller]
fn assert_no_secret(r: &Reply) {
    let text = html(r);
    for secret in ["$argon2", PASSWORD, "first password", "second password"] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

/// Waits until the link shows `clicks`.
async fn wait_for_clicks(app: &TestApp, key: &str, code: &str, clicks: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.flush_clicks().await;
        let now = app.get(&format!("/api/v1/links/{code}"), Some(key)).await;
        if now.body["clicks"] == clicks {
            return;
        }
        assert!(Instant::now() < deadline, "clicks: {}", now.body["clicks"]);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn a_protected_link_asks_for_its_password_and_counts_only_the_redirect() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let created = app
        .request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": TARGET, "password": PASSWORD})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_link(&created, true);
    let code = created.body["code"].as_str().unwrap().to_owned();
    let path = format!("/{code}");
    assert_link(
        &app.get(&format!("/api/v1/links/{code}"), Some(&key)).await,
        true,
    );
    let list = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(list.body["items"][0]["password_protected"], true);
    assert_no_secret(&list);
    // A link without a password says so.
    let open = app.link(&key, json!({"url": TARGET})).await;
    assert_eq!(open["password_protected"], false);

    // The form, twice (the second from the cache), and a HEAD: nothing counted.
    assert_form(&app.get(&path, None).await, 200, &code);
    assert_form(&app.get(&path, None).await, 200, &code);
    let head = app.request(Method::HEAD, &path, None, None).await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.raw.is_empty());
    assert_eq!(head.header("cache-control").as_deref(), Some("no-store"));
    assert!(head.header("location").is_none());

    // A wrong password: the form again, with 401 and a message.
    let wrong = app
        .post_form(&path, Some(FORM), &form("Correct horse battery"), &[])
        .await;
    assert_form(&wrong, 401, &code);
    // The right one: the redirect, as a GET of a link without a password answers it.
    let right = app.post_form(&path, Some(FORM), &form(PASSWORD), &[]).await;
    assert_eq!(right.status, StatusCode::FOUND, "{}", html(&right));
    assert_eq!(right.header("location").as_deref(), Some(TARGET));
    assert_eq!(
        right.header("cache-control").as_deref(),
        Some("private, max-age=0")
    );
    // A form whose charset is named, and a password of several-byte characters.
    let unicode = app
        .link(&key, json!({"url": TARGET, "password": "pässwörd🔑"}))
        .await;
    let unicode_path = format!("/{}", unicode["code"].as_str().unwrap());
    let r = app
        .post_form(
            &unicode_path,
            Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8"),
            &form("pässwörd🔑"),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", html(&r));

    // Exactly one click: the right password's.
    wait_for_clicks(&app, &key, &code, 1).await;
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    app.flush_clicks().await;
    let link = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(link.body["clicks"], 1, "{}", link.body);
}

#[actix_web::test]
async fn the_form_loads_nothing_from_anywhere() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = protected(&app, &key).await;
    for r in [
        app.get(&format!("/{code}"), None).await,
        app.post_form(
            &format!("/{code}"),
            Some(FORM),
            &form("wrong password"),
            &[],
        )
        .await,
    ] {
        let page = html(&r).to_ascii_lowercase();
        // Every attribute that can name a resource, and every way CSS can load one.
        for attribute in [
            "src=",
            "href=",
            "srcset=",
            "poster=",
            "data=",
            "formaction=",
        ] {
            assert!(!page.contains(attribute), "{attribute} in {page}");
        }
        for loader in [
            "<script", "<link", "<iframe", "<img", "url(", "@import", "//",
        ] {
            assert!(!page.contains(loader), "{loader} in {page}");
        }
        // The one URL in it is the form's own, on this host.
        let actions: Vec<&str> = page
            .split("action=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert_eq!(actions, [format!("/{}", code.to_ascii_lowercase())]);
        let csp = r.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'none'"), "{csp}");
        assert!(!csp.contains("script-src"), "{csp}");
    }
}

#[actix_web::test]
async fn wrong_passwords_are_limited_per_address_and_link_and_only_wrong_ones_count() {
    // Behind a trusted proxy, so each test address is its own client.
    let app = TestApp::spawn_with(&[("SHORTENER__SERVER__TRUSTED_PROXIES", "127.0.0.1/32")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let link = |password: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let created = app
                .link(&key, json!({"url": TARGET, "password": password}))
                .await;
            format!("/{}", created["code"].as_str().unwrap())
        }
    };
    let (a, b) = (link(PASSWORD).await, link("another password").await);
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let post = |path: &str, password: &str, ip: &'static str| {
        let (path, body) = (path.to_owned(), form(password));
        let app = &app;
        async move { app.post_form(&path, Some(FORM), &body, &from(ip)).await }
    };

    // Right passwords never count: more of them than the limit all redirect.
    for _ in 0..12 {
        assert_eq!(
            post(&a, PASSWORD, "203.0.113.1").await.status,
            StatusCode::FOUND
        );
    }
    // Ten wrong ones (the default `password_tries_per_minute`) are each answered 401...
    for i in 0..10 {
        let r = post(&a, &format!("wrong password {i}"), "203.0.113.1").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "try {i}: {}", html(&r));
    }
    // ...and the eleventh try is refused before it is checked, even with the right one.
    for password in ["wrong password 10", PASSWORD] {
        let r = post(&a, password, "203.0.113.1").await;
        r.assert_problem(429, "rate-limited");
        assert_eq!(r.body["violated-policies"], json!(["passwords"]));
        let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=61).contains(&retry), "Retry-After {retry}");
    }
    // The form itself is still shown, and redirects are not the policy's business.
    assert_form(&app.get(&a, None).await, 200, &a[1..]);
    // Another link from the same address, and the same link from another address, are
    // not held back.
    assert_eq!(
        post(&b, "another password", "203.0.113.1").await.status,
        StatusCode::FOUND
    );
    assert_eq!(
        post(&a, "still wrong!", "203.0.113.2").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        post(&a, PASSWORD, "203.0.113.2").await.status,
        StatusCode::FOUND
    );
    // Once the window has passed, the address may try again.
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        post(&a, PASSWORD, "203.0.113.1").await.status,
        StatusCode::FOUND
    );
}

#[actix_web::test]
async fn a_low_limit_from_configuration_holds_and_zero_turns_it_off() {
    let app =
        TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__PASSWORD_TRIES_PER_MINUTE", "2")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = protected(&app, &key).await;
    let path = format!("/{code}");
    for _ in 0..2 {
        let r = app
            .post_form(&path, Some(FORM), &form("nope nope"), &[])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    app.post_form(&path, Some(FORM), &form("nope nope"), &[])
        .await
        .assert_problem(429, "rate-limited");

    let off =
        TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__PASSWORD_TRIES_PER_MINUTE", "0")]).await;
    let (_, key) = off.account("Acme").with_key().await;
    let code = protected(&off, &key).await;
    for _ in 0..12 {
        let r = off
            .post_form(&format!("/{code}"), Some(FORM), &form("nope nope"), &[])
            .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
}

#[actix_web::test]
async fn patch_sets_changes_and_removes_a_password_on_every_instance_and_the_log_never_holds_it() {
    let app = TestApp::spawn().await;
    let other = app.spawn_beside().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, TARGET).await;
    let (api, path) = (format!("/api/v1/links/{code}"), format!("/{code}"));
    let patch = |body: Value| {
        let (app, key, api) = (&app, key.clone(), api.clone());
        async move {
            app.request(Method::PATCH, &api, Some(&key), Some(body))
                .await
        }
    };
    // Both instances have the open link cached.
    for instance in [&app, &other] {
        assert_eq!(instance.get(&path, None).await.status, StatusCode::FOUND);
    }

    // Set: both instances ask for it from now on (this one dropped its entry at once,
    // the other when told by PostgreSQL).
    let set = patch(json!({"password": "first password"})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_link(&set, true);
    assert_form(&app.get(&path, None).await, 200, &code);
    eventually(&other, &path, StatusCode::OK).await;
    let right = app
        .post_form(&path, Some(FORM), &form("first password"), &[])
        .await;
    assert_eq!(right.status, StatusCode::FOUND);

    // Change: the old password no longer opens it, anywhere.
    let changed = patch(json!({"password": "second password"})).await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_link(&changed, true);
    let deadline = Instant::now() + Duration::from_secs(10);
    for instance in [&app, &other] {
        loop {
            let old = instance
                .post_form(&path, Some(FORM), &form("first password"), &[])
                .await;
            if old.status == StatusCode::UNAUTHORIZED {
                break;
            }
            assert!(Instant::now() < deadline, "the old password still opens it");
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let new = instance
            .post_form(&path, Some(FORM), &form("second password"), &[])
            .await;
        assert_eq!(new.status, StatusCode::FOUND);
    }

    // Other fields leave it as it is.
    let titled = patch(json!({"title": "Still protected"})).await;
    assert_link(&titled, true);

    // Bad passwords change nothing.
    for bad in [
        json!({"password": "short"}),
        json!({"password": "x".repeat(129)}),
        json!({"password": 12345678}),
        json!({"password": ["an array!"]}),
    ] {
        let r = patch(bad).await;
        r.assert_problem(400, "validation");
        assert_no_secret(&r);
    }
    assert_link(&app.get(&api, Some(&key)).await, true);

    // Remove: the link redirects again, here at once and on the other instance too.
    let removed = patch(json!({"password": null})).await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_link(&removed, false);
    let r = app.get(&path, None).await;
    assert_eq!(r.status, StatusCode::FOUND, "{}", html(&r));
    assert_eq!(r.header("location").as_deref(), Some(TARGET));
    eventually(&other, &path, StatusCode::FOUND).await;
    // Now POST is not a method the link has.
    let post = app.post_form(&path, Some(FORM), &form(PASSWORD), &[]).await;
    post.assert_problem(405, "method-not-allowed");
    assert_eq!(post.header("allow").as_deref(), Some("GET, HEAD"));

    // The log: each change to the password, and never the password or its hash.
    let log = app.link_log(&key, &code).await;
    assert_no_secret(&log);
    let admin_log = app
        .admin(
            Method::GET,
            &format!("/admin/v1/audit?entity_type=link&entity_id={code}&limit=50"),
            None,
        )
        .await;
    assert_eq!(admin_log.status, StatusCode::OK);
    assert_no_secret(&admin_log);
    let mut entries = log.body["items"].as_array().unwrap().clone();
    entries.reverse();
    let password = |i: usize| entries[i]["changes"]["password"].clone();
    let change = |old: Value, new: Value| json!({"old": old, "new": new});
    assert_eq!(entries.len(), 5, "{entries:?}");
    assert_eq!(entries[0]["action"], "link.created");
    assert_eq!(password(0), Value::Null, "no password, nothing recorded");
    assert_eq!(password(1), change(Value::Null, json!("[redacted]")));
    assert_eq!(
        password(2),
        change(json!("[redacted]"), json!("[redacted]"))
    );
    assert_eq!(password(3), Value::Null, "the title's change");
    assert_eq!(password(4), change(json!("[redacted]"), Value::Null));
}

/// Waits until `path` answers `status` on `instance` (another instance's cache learns of
/// a change through PostgreSQL, within moments).
async fn eventually(instance: &TestApp, path: &str, status: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = instance.get(path, None).await;
        if r.status == status {
            return;
        }
        assert!(Instant::now() < deadline, "{path}: still {}", r.status);
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
    }
}

#[actix_web::test]
async fn passwords_are_8_to_128_characters_and_nothing_is_made_otherwise() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let create = |password: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            app.request(
                Method::POST,
                "/api/v1/links",
                Some(&key),
                Some(json!({"url": TARGET, "password": password})),
            )
            .await
        }
    };
    for bad in [
        json!("1234567"),
        json!("é".repeat(7)),
        json!("x".repeat(129)),
        json!("🔑".repeat(129)),
        json!(""),
        json!(123456789),
        json!(true),
    ] {
        let r = create(bad.clone()).await;
        r.assert_problem(400, "validation");
        if bad.is_string() {
            let detail = r.body["detail"].as_str().unwrap();
            assert!(detail.contains("password"), "{detail}");
            assert!(detail.contains("8 to 128 characters"), "{detail}");
        }
    }
    let none = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(none.body["items"], json!([]), "nothing was created");
    // Characters, not bytes: 8 two-byte characters and 128 four-byte ones are fine.
    for good in ["12345678".to_owned(), "é".repeat(8), "🔑".repeat(128)] {
        let r = create(json!(good)).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_link(&r, true);
    }
    // `null` is no password.
    let r = create(Value::Null).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_link(&r, false);
}

#[actix_web::test]
async fn a_bad_form_is_a_400_and_other_links_answer_as_a_get_would() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let soon = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let code = protected(&app, &key).await;
    let path = format!("/{code}");
    let bad_forms: [(Option<&str>, String); 7] = [
        (Some(FORM), "pass=correct+horse+battery".into()),
        (Some(FORM), String::new()),
        (Some(FORM), format!("{}&{}", form(PASSWORD), form(PASSWORD))),
        (
            Some("application/json"),
            json!({"password": PASSWORD}).to_string(),
        ),
        (Some("multipart/form-data; boundary=x"), form(PASSWORD)),
        (Some("text/plain"), form(PASSWORD)),
        (None, form(PASSWORD)),
    ];
    for (ctype, body) in bad_forms {
        let r = app.post_form(&path, ctype, &body, &[]).await;
        r.assert_problem(400, "validation");
    }
    // Nonsense encodings are read, and are wrong passwords, not errors.
    for body in [
        "password=%ZZ%",
        "password=%FF%FE%FD%FC%FB%FA%F9%F8",
        "password",
    ] {
        let r = app.post_form(&path, Some(FORM), body, &[]).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{body}: {}", html(&r));
    }
    // A body far over any password's size.
    let huge = format!("password={}", "a".repeat(8 * 1024));
    app.post_form(&path, Some(FORM), &huge, &[])
        .await
        .assert_problem(413, "payload-too-large");

    // Unknown codes, well-formed or not, and expired links answer as to a GET.
    for unknown in ["/nosuchcode", "/no%20such"] {
        app.post_form(unknown, Some(FORM), &form(PASSWORD), &[])
            .await
            .assert_problem(404, "not-found");
    }
    let expiring = app
        .link(
            &key,
            json!({"url": TARGET, "password": PASSWORD, "expires_at": soon}),
        )
        .await;
    let expiring = format!("/{}", expiring["code"].as_str().unwrap());
    assert_form(&app.get(&expiring, None).await, 200, &expiring[1..]);
    app.clock.advance(chrono::Duration::hours(2));
    app.get(&expiring, None)
        .await
        .assert_problem(410, "link-expired");
    app.post_form(&expiring, Some(FORM), &form(PASSWORD), &[])
        .await
        .assert_problem(410, "link-expired");
    // A link without a password has no POST.
    let open = app.code(&key, TARGET).await;
    let r = app
        .post_form(&format!("/{open}"), Some(FORM), &form(PASSWORD), &[])
        .await;
    r.assert_problem(405, "method-not-allowed");
    assert_eq!(r.header("allow").as_deref(), Some("GET, HEAD"));
    // Other methods on a protected link are still 405.
    let r = app.request(Method::PUT, &path, None, None).await;
    r.assert_problem(405, "method-not-allowed");
}

#[actix_web::test]
async fn bulk_creates_take_a_password_per_item_and_an_idempotent_retry_replays() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let r = app
        .request(
            Method::POST,
            "/api/v1/links/bulk",
            Some(&key),
            Some(json!({"links": [
                {"url": TARGET, "password": PASSWORD},
                {"url": TARGET, "password": "short"},
                {"url": TARGET},
            ]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_no_secret(&r);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items[0]["link"]["password_protected"], true);
    assert_eq!(items[1]["problem"]["type"], "/problems/validation");
    assert_eq!(items[2]["link"]["password_protected"], false);
    let protected = items[0]["link"]["code"].as_str().unwrap();
    assert_form(
        &app.get(&format!("/{protected}"), None).await,
        200,
        protected,
    );
    let open = items[2]["link"]["code"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/{open}"), None).await.status,
        StatusCode::FOUND
    );

    // The export has no password column, and holds no password or hash anywhere.
    let export = app.get("/api/v1/links/export", Some(&key)).await;
    assert_eq!(export.status, StatusCode::OK);
    let csv = html(&export);
    assert!(
        csv.starts_with("code,short_url,url,title,tags,created_at,expires_at,max_visits,clicks"),
        "{csv}"
    );
    assert!(csv.contains(protected), "{csv}");
    assert_no_secret(&export);

    // An idempotent create with a password: the retry gets the first link back.
    let once = |password: &'static str| {
        let (app, key) = (&app, key.clone());
        async move {
            app.request_with(
                Method::POST,
                "/api/v1/links",
                Some(&key),
                Some(json!({"url": TARGET, "password": password})),
                &[("idempotency-key", "protect-once")],
            )
            .await
        }
    };
    let first = once(PASSWORD).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = once(PASSWORD).await;
    assert_eq!(again.body["code"], first.body["code"]);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_link(&again, true);
}

#[actix_web::test]
async fn an_unlocked_click_is_a_visit_like_any_other_when_analytics_are_on() {
    let app = TestApp::spawn_with(&[("SHORTENER__ANALYTICS__ENABLED", "true")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = protected(&app, &key).await;
    let path = format!("/{code}");
    let firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0";
    let agent = [("user-agent", firefox)];
    // The form and a wrong password are no visits; the right password is one.
    let form_page = app
        .request_with(Method::GET, &path, None, None, &agent)
        .await;
    assert_eq!(form_page.status, StatusCode::OK);
    let wrong = app
        .post_form(&path, Some(FORM), &form("not the one"), &agent)
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let right = app
        .post_form(&path, Some(FORM), &form(PASSWORD), &agent)
        .await;
    assert_eq!(right.status, StatusCode::FOUND);
    wait_for_clicks(&app, &key, &code, 1).await;
    let stats = app
        .get(&format!("/api/v1/links/{code}/stats"), Some(&key))
        .await;
    assert_eq!(stats.status, StatusCode::OK, "{}", stats.body);
    assert_eq!(stats.body["clicks"], 1, "{}", stats.body);
    assert_eq!(
        stats.body["browsers"],
        json!([{"value": "Firefox", "clicks": 1}]),
        "{}",
        stats.body
    );
    assert_eq!(
        stats.body["devices"],
        json!([{"value": "desktop", "clicks": 1}]),
        "{}",
        stats.body
    );
}

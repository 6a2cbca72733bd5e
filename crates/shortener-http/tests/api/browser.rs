//! Pages in a real browser: headless Chromium (Debian's `chromium` and `chromium-driver`,
//! which `cargo xtask ci` installs when missing) driven over WebDriver, with a small
//! client of our own (the protocol is a few JSON calls). Screenshots of each page at phone
//! and desktop width go to `target/screenshots/`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::TestApp;
use crate::webdriver::Browser;

#[actix_web::test]
async fn the_password_form_works_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let target = "https://example.com/board-minutes";
    let code = app
        .link(
            &key,
            json!({"url": target, "password": "correct horse battery"}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let browser = Browser::start().await;
    let page = format!("{}/{code}", app.base);

    browser.open(&page).await;
    assert!(!browser.title().await.is_empty(), "the form has a title");
    browser.screenshots("password-form").await;
    assert!(
        !browser.source().await.contains(target),
        "the target is not in the page"
    );

    // A wrong password: the form again, saying so.
    browser
        .type_into("input[name=password]", "a wrong guess")
        .await;
    browser.click("button[type=submit]").await;
    browser.until_page_holds("Wrong password").await;
    browser.screenshots("password-form-wrong").await;

    // The right one: the browser is sent on (to a host it cannot reach here, which does
    // not matter: the redirect was answered and its click counted).
    browser
        .type_into("input[name=password]", "correct horse battery")
        .await;
    browser.click("button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        app.flush_clicks().await;
        let clicks = app
            .get(&format!("/api/v1/links/{code}"), Some(&key))
            .await
            .body["clicks"]
            .clone();
        if clicks == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "clicks: {clicks}");
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    browser.quit().await;
}

/// Some visits from different browsers and places, so the statistics have something to
/// show.
async fn visit(app: &TestApp, code: &str) {
    let visitors = [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
            "https://news.example.org/today",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "https://social.example.com/post/1",
        ),
        (
            "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
            "",
        ),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "",
        ),
    ];
    for (i, (agent, referrer)) in visitors.iter().enumerate() {
        for _ in 0..=(3 - i) * 2 {
            let mut headers = vec![("user-agent", *agent)];
            if !referrer.is_empty() {
                headers.push(("referer", *referrer));
            }
            let reply = app
                .request_with(
                    awc::http::Method::GET,
                    &format!("/{code}"),
                    None,
                    None,
                    &headers,
                )
                .await;
            assert_eq!(reply.status.as_u16(), 302);
        }
    }
    app.flush_clicks().await;
}

#[actix_web::test]
async fn an_account_manages_its_links_in_a_real_browser() {
    let app = TestApp::spawn_with(&[("SHORTENER__ANALYTICS__ENABLED", "true")]).await;
    let (_, key) = app.account("Acme Corp").with_key().await;
    let browser = Browser::start().await;
    let base = app.base.clone();

    // Signed out, the interface starts at the sign-in page.
    browser.open(&format!("{base}/ui")).await;
    browser.until_page_holds("Sign in with an API key").await;
    assert_eq!(browser.title().await, "Sign in · shortener");
    browser.assert_nothing_from_elsewhere(&base).await;
    browser.screenshots("ui-sign-in").await;
    browser.type_into("#key", "shk_wrong").await;
    browser.click("button[type=submit]").await;
    browser.until_page_holds("That key is not valid").await;
    browser.type_into("#key", &key).await;
    browser.click("button[type=submit]").await;
    browser.until_page_holds("No links yet").await;
    browser.assert_nothing_from_elsewhere(&base).await;
    browser.screenshots("ui-links-empty").await;

    // Create a link with tags, then a refusal shown beside its field.
    browser.click("a[href='/ui/links/new']").await;
    browser.until_page_holds("Target URL").await;
    browser.type_into("#url", "ftp://example.com/nope").await;
    browser.click("#link-form button[type=submit]").await;
    browser.until_page_holds("invalid-url").await;
    browser.screenshots("ui-link-form-refused").await;
    browser
        .type_into("#url", "https://example.com/spring-launch")
        .await;
    browser.type_into("#title", "Spring launch").await;
    browser.type_into("#tags", "launch, q2").await;
    browser.click("#link-form button[type=submit]").await;
    browser.until_page_holds("Link created.").await;
    let url = browser.url().await;
    let code = url
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let link = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(link.status.as_u16(), 200);
    assert_eq!(link.body["tags"], json!(["launch", "q2"]));
    assert_eq!(link.body["title"], "Spring launch");
    // And a second one the searches must not find.
    app.link(
        &key,
        json!({"url": "https://example.com/other", "tags": ["misc"]}),
    )
    .await;

    // Find it by tag, and by text.
    browser.open(&format!("{base}/ui/links")).await;
    browser.type_into("#tag", "launch").await;
    browser.click("form[role=search] button[type=submit]").await;
    browser.until_page_holds("Clear").await;
    let found = browser.source().await;
    assert!(
        found.contains(&code) && !found.contains("example.com/other"),
        "{found}"
    );
    browser.type_into("#tag", "").await;
    browser.type_into("#q", "spring").await;
    browser.click("form[role=search] button[type=submit]").await;
    browser.until_page_holds("Spring launch").await;
    assert!(!browser.source().await.contains("example.com/other"));
    browser.screenshots("ui-links-search").await;

    // Its statistics, as charts drawn on the server.
    visit(&app, &code).await;
    browser.click(&format!("a[href='/ui/links/{code}']")).await;
    browser.until_page_holds("Clicks, last 30 days").await;
    let page = browser.source().await;
    assert!(page.contains("16 in these days (1 from bots)"), "{page}");
    assert!(
        page.contains("Referrers") && page.contains("news.example.org"),
        "{page}"
    );
    assert!(page.contains("<svg class=\"chart\""), "{page}");
    browser.assert_nothing_from_elsewhere(&base).await;
    browser.screenshots_whole("ui-link").await;

    // A form posted without its CSRF token changes nothing.
    browser.open(&format!("{base}/ui/links/{code}/edit")).await;
    browser.type_into("#title", "Changed without a token").await;
    browser
        .execute("document.querySelector('#link-form input[name=csrf]').remove(); return null;")
        .await;
    browser.click("#link-form button[type=submit]").await;
    browser.until_page_holds("forbidden").await;
    let link = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(link.body["title"], "Spring launch");
    browser.screenshots("ui-error-csrf").await;

    // Delete it, after a confirmation page.
    browser.open(&format!("{base}/ui/links/{code}")).await;
    browser
        .click(&format!("a[href='/ui/links/{code}/delete']"))
        .await;
    browser.until_page_holds("Delete the link").await;
    browser.screenshots("ui-link-delete").await;
    browser.click("button.danger").await;
    browser.until_page_holds("deleted.").await;
    let gone = app.get(&format!("/api/v1/links/{code}"), Some(&key)).await;
    assert_eq!(gone.status.as_u16(), 404);
    browser.quit().await;
}

#[actix_web::test]
async fn an_operator_manages_accounts_in_a_real_browser() {
    let app = TestApp::spawn().await;
    let (account, key) = app.account("Acme Corp").with_key().await;
    app.account("Globex").await;
    let browser = Browser::start().await;
    let base = app.base.clone();

    browser.open(&format!("{base}/ui/sign-in")).await;
    browser.type_into("#key", crate::support::ADMIN_KEY).await;
    browser.click("button[type=submit]").await;
    browser.until_page_holds("New account's name").await;
    assert!(browser.source().await.contains("Globex"));
    browser.assert_nothing_from_elsewhere(&base).await;
    browser.screenshots("ui-accounts").await;

    // Search, then open the account.
    browser.type_into("#q", "acme").await;
    browser.click("form[role=search] button[type=submit]").await;
    browser.until_page_holds("Clear").await;
    assert!(!browser.source().await.contains("Globex"));
    browser
        .click(&format!("a[href='/ui/accounts/{account}']"))
        .await;
    browser.until_page_holds("Activate a paid plan").await;

    // Activate a plan.
    browser.click("#plan option[value=business]").await;
    browser
        .click("form[action$='/subscription/activate'] button")
        .await;
    browser.until_page_holds("Subscription activated.").await;
    let sub = app
        .admin(
            awc::http::Method::GET,
            &format!("/admin/v1/accounts/{account}/subscription"),
            None,
        )
        .await;
    assert_eq!(sub.body["state"], "active", "{}", sub.body);
    assert_eq!(sub.body["plan"], "business", "{}", sub.body);

    // Make a key (shown once), then revoke the first one, confirming the dialog.
    browser.click("form[action$='/keys'] button").await;
    browser.until_page_holds("shown this once").await;
    browser.assert_nothing_from_elsewhere(&base).await;
    browser.screenshots("ui-account").await;
    let prefix = &key[..16];
    browser
        .click(&format!("button[aria-label='Revoke {prefix}']"))
        .await;
    browser.accept_dialog().await;
    browser
        .until_page_holds("revoked: it stopped working")
        .await;
    let refused = app.get("/api/v1/links", Some(&key)).await;
    refused.assert_problem(401, "unauthorized");

    // The audit log, filtered to revocations.
    browser.click("a[href='/ui/audit']").await;
    browser.until_page_holds("Audit log").await;
    browser.click("#action option[value='key.revoked']").await;
    browser.click("form[role=search] button[type=submit]").await;
    browser.until_page_holds("Clear").await;
    let page = browser.source().await;
    assert!(page.contains("<code>key.revoked</code>"), "{page}");
    assert!(!page.contains("<code>account.created</code>"), "{page}");
    browser.assert_nothing_from_elsewhere(&base).await;
    browser.screenshots("ui-audit").await;
    browser.quit().await;
}

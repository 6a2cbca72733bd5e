//! The web interface over HTTP, as a browser without JavaScript uses it: sessions (sign
//! in, sign out, expiry, a revoked key), the CSRF check of every form that changes
//! something, the forms' refusals, and the embedded assets. What a real browser sees is
//! `browser.rs`'s.

use std::collections::BTreeMap;

use awc::http::{Method, StatusCode};
use serde_json::json;

use crate::support::{ADMIN_KEY, Api, Reply, TestApp};

/// A browser without JavaScript: keeps the cookies it is given, posts forms.
pub struct Person<'a> {
    api: &'a Api,
    cookies: BTreeMap<String, String>,
}

impl<'a> Person<'a> {
    pub fn new(api: &'a Api) -> Person<'a> {
        Person {
            api,
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, reply: &Reply) {
        for value in reply.headers.get_all("set-cookie") {
            let value = value.to_str().unwrap();
            let (pair, attributes) = value.split_once(';').unwrap_or((value, ""));
            let (name, content) = pair.split_once('=').unwrap();
            if attributes.contains("Max-Age=0") || content.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), content.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let cookies = self.cookie_header();
        let reply = self
            .api
            .get_sending(path, None, "cookie", cookies.as_bytes())
            .await;
        self.keep(&reply);
        reply
    }

    /// Posts `fields` as a form, exactly as given (no CSRF token added).
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        let cookies = self.cookie_header();
        let reply = self
            .api
            .post_form(
                path,
                Some("application/x-www-form-urlencoded"),
                &body,
                &[("cookie", &cookies)],
            )
            .await;
        self.keep(&reply);
        reply
    }

    /// Signs in with `key` through the sign-in form.
    pub async fn sign_in(&mut self, key: &str) -> Reply {
        let form = self.get("/ui/sign-in").await;
        assert_eq!(form.status, StatusCode::OK, "{}", text(&form));
        let token = hidden(&form, "token");
        self.post("/ui/sign-in", &[("token", &token), ("key", key)])
            .await
    }

    /// The CSRF token of the page at `path`'s forms.
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{}", text(&page));
        hidden(&page, "csrf")
    }

    pub fn has_session(&self) -> bool {
        self.cookies.contains_key("shortener_session")
    }
}

pub fn text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.raw).into_owned()
}

/// The value of the page's hidden input `name`.
fn hidden(reply: &Reply, name: &str) -> String {
    let page = text(reply);
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    page[start..][..page[start..].find('"').unwrap()].to_owned()
}

fn location(reply: &Reply) -> String {
    reply.header("location").unwrap_or_default()
}

fn set_cookie(reply: &Reply, name: &str) -> String {
    reply
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie"))
}

#[actix_web::test]
async fn signing_in_opens_the_accounts_pages_and_signing_out_ends_the_session() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let mut person = Person::new(&app);

    let away = person.get("/ui/links").await;
    assert_eq!(away.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&away), "/ui/sign-in");

    let wrong = person.sign_in("shk_not_a_key").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", text(&wrong));
    assert!(text(&wrong).contains("(unauthorized)"), "{}", text(&wrong));
    assert!(!person.has_session());

    let signed = person.sign_in(&key).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", text(&signed));
    let cookie = set_cookie(&signed, "shortener_session");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "http: {cookie}");
    assert_eq!(location(&person.get("/ui").await), "/ui/links");
    let links = person.get("/ui/links").await;
    assert_eq!(links.status, StatusCode::OK);
    let page = text(&links);
    assert!(page.contains("No links yet"), "{page}");
    assert!(page.contains("Acme"), "the account's name: {page}");
    assert_eq!(links.header("cache-control").as_deref(), Some("no-store"));
    assert!(
        links
            .header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );

    let csrf = person.csrf("/ui/links").await;
    let out = person.post("/ui/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(!person.has_session(), "the cookie is removed");

    // The old cookie, kept by someone else, opens nothing either: the session is gone.
    let stolen = cookie.split(';').next().unwrap().to_owned();
    let reply = app
        .get_sending("/ui/links", None, "cookie", stolen.as_bytes())
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/ui/sign-in?ended=1");
}

#[actix_web::test]
async fn a_session_ends_when_it_expires_and_when_its_key_is_revoked() {
    let app = TestApp::spawn_with(&[("SHORTENER__UI__SESSION_TTL", "1h")]).await;
    let account = app.account("Acme").await;
    let made = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/keys"),
            None,
        )
        .await;
    let (key, key_id) = (
        made.body["key"].as_str().unwrap().to_owned(),
        made.body["id"].as_str().unwrap().to_owned(),
    );
    let mut person = Person::new(&app);
    assert_eq!(person.sign_in(&key).await.status, StatusCode::SEE_OTHER);
    app.clock.advance(chrono::Duration::minutes(59));
    assert_eq!(person.get("/ui/links").await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::minutes(1));
    let ended = person.get("/ui/links").await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&ended), "/ui/sign-in?ended=1");
    let form = person.get(&location(&ended)).await;
    assert!(text(&form).contains("Your session has ended"));

    // Revoked: the next page is the sign-in page, however long the session had left.
    assert_eq!(person.sign_in(&key).await.status, StatusCode::SEE_OTHER);
    assert_eq!(person.get("/ui/links").await.status, StatusCode::OK);
    let revoked = app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/accounts/{account}/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT);
    let reply = person.get("/ui/links").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/ui/sign-in?ended=1");
}

#[actix_web::test]
async fn a_form_without_its_csrf_token_changes_nothing() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    let mut person = Person::new(&app);
    person.sign_in(&key).await;
    let link = [("url", "https://example.com/a"), ("code", "kept-link")];

    for csrf in [None, Some("0".repeat(64)), Some(String::new())] {
        let mut fields = link.to_vec();
        if let Some(csrf) = &csrf {
            fields.push(("csrf", csrf));
        }
        let refused = person.post("/ui/links", &fields).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{csrf:?}");
        assert!(
            text(&refused).contains("<code>forbidden</code>"),
            "{}",
            text(&refused)
        );
    }
    let listed = app.get("/api/v1/links", Some(&key)).await;
    assert_eq!(listed.body["items"], json!([]));

    // Another session's token is no better than none.
    let mut other = Person::new(&app);
    other.sign_in(&key).await;
    let others = other.csrf("/ui/links").await;
    let mut fields = link.to_vec();
    fields.push(("csrf", &others));
    assert_eq!(
        person.post("/ui/links", &fields).await.status,
        StatusCode::FORBIDDEN
    );

    let csrf = person.csrf("/ui/links/new").await;
    fields.pop();
    fields.push(("csrf", &csrf));
    let made = person.post("/ui/links", &fields).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", text(&made));
    assert_eq!(location(&made), "/ui/links/kept-link?created=1");

    // Deleting and signing out need it too.
    let refused = person.post("/ui/links/kept-link/delete", &[]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/api/v1/links/kept-link", Some(&key)).await.status,
        StatusCode::OK
    );
    assert_eq!(
        person.post("/ui/sign-out", &[]).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(person.get("/ui/links").await.status, StatusCode::OK);

    // The sign-in form's own token: without it, or with one the cookie does not match,
    // nobody is signed in.
    let mut stranger = Person::new(&app);
    let no_token = stranger.post("/ui/sign-in", &[("key", &key)]).await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);
    stranger.get("/ui/sign-in").await;
    let forged = stranger
        .post("/ui/sign-in", &[("token", "forged"), ("key", &key)])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert!(!stranger.has_session());
}

#[actix_web::test]
async fn sign_in_failures_count_toward_the_auth_failures_limit() {
    let app =
        TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE", "3")]).await;
    let (_, key) = app.account("Acme").with_key().await;
    let mut person = Person::new(&app);
    for _ in 0..3 {
        assert_eq!(
            person.sign_in("wrong").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let refused = person.sign_in(&key).await;
    assert_eq!(
        refused.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        text(&refused)
    );
    assert!(text(&refused).contains("<code>rate-limited</code>"));
    assert!(refused.header("retry-after").is_some());
    assert!(!person.has_session());
    // And the API's 401s and the sign-in form's are one count.
    let api = app.get("/api/v1/links", Some(&key)).await;
    api.assert_problem(429, "rate-limited");
}

#[actix_web::test]
async fn the_link_form_shows_the_apis_refusals_beside_their_fields_and_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    app.link(
        &key,
        json!({"url": "https://example.com/taken", "code": "taken"}),
    )
    .await;
    let mut person = Person::new(&app);
    person.sign_in(&key).await;
    let csrf = person.csrf("/ui/links/new").await;

    // (fields, status, slug, the id of the field's message)
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, &'a str, &'a str);
    let cases: [Case; 4] = [
        (
            &[("url", "ftp://example.com/x")],
            400,
            "invalid-url",
            "url-error",
        ),
        (
            &[("url", "https://example.com/b"), ("code", "taken")],
            409,
            "code-taken",
            "code-error",
        ),
        (
            &[("url", "https://example.com/b"), ("max_visits", "many")],
            400,
            "validation",
            "max_visits-error",
        ),
        (
            &[("url", "https://example.com/b"), ("tags", "ok, not ok!")],
            400,
            "validation",
            "tags-error",
        ),
    ];
    for (fields, status, slug, field) in cases {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &csrf));
        fields.push(("title", "Typed & kept"));
        let reply = person.post("/ui/links", &fields).await;
        let page = text(&reply);
        assert_eq!(reply.status.as_u16(), status, "{fields:?}: {page}");
        assert!(page.contains(&format!("({slug})")), "{slug}: {page}");
        assert!(page.contains(&format!("id=\"{field}\"")), "{field}: {page}");
        assert!(page.contains("value=\"Typed &#38; kept\""), "{page}");
    }
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "nothing was made"
    );
}

#[actix_web::test]
async fn the_pages_of_one_role_are_refused_to_the_other() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let mut account = Person::new(&app);
    account.sign_in(&key).await;
    let mut operator = Person::new(&app);
    operator.sign_in(ADMIN_KEY).await;
    assert_eq!(location(&operator.get("/ui").await), "/ui/accounts");

    let refused = operator.get("/ui/links").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(text(&refused).contains("<code>forbidden</code>"));
    let refused = account.get("/ui/accounts").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let unknown = account.get("/ui/links/nope-nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(text(&unknown).contains("<code>not-found</code>"));
    assert_eq!(
        unknown.header("content-type").as_deref(),
        Some("text/html; charset=utf-8")
    );
}

#[actix_web::test]
async fn assets_are_embedded_named_by_their_content_and_cached_for_a_year() {
    let app = TestApp::spawn().await;
    let mut person = Person::new(&app);
    let page = text(&person.get("/ui/sign-in").await);
    let start = page.find("/ui/assets/ui.").unwrap();
    let css = &page[start..][..page[start..].find('"').unwrap()];
    assert!(css.ends_with(".css"), "{css}");
    let reply = app.get(css, None).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.header("cache-control").as_deref(),
        Some("public, max-age=31536000, immutable")
    );
    assert!(text(&reply).contains("prefers-color-scheme"));
    let stale = app.get("/ui/assets/ui.0123456789abcdef.css", None).await;
    assert_eq!(stale.status, StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = TestApp::spawn_with(&[("SHORTENER__SERVER__PUBLIC_URL", "https://sho.rt")]).await;
    let mut person = Person::new(&app);
    let form = person.get("/ui/sign-in").await;
    let cookie = set_cookie(&form, "shortener_sign_in");
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
}

#[actix_web::test]
async fn a_subscription_change_from_a_stale_page_is_a_412_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let account = app.account("Acme").await;
    let mut operator = Person::new(&app);
    operator.sign_in(ADMIN_KEY).await;
    let path = format!("/ui/accounts/{account}");
    let shown = operator.get(&path).await;
    let (csrf, version) = (hidden(&shown, "csrf"), hidden(&shown, "version"));
    assert_eq!(version, "1");

    // Someone else activates it meanwhile.
    let activated = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/subscription/activate"),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(activated.status, StatusCode::OK);

    let stale = operator
        .post(
            &format!("{path}/subscription/cancel"),
            &[("csrf", &csrf), ("version", &version), ("reason", "asked")],
        )
        .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        text(&stale)
    );
    let page = text(&stale);
    assert!(page.contains("(version-mismatch)"), "{page}");
    assert!(
        page.contains("id=\"subscription-state\">active<"),
        "the current state: {page}"
    );
    let sub = app
        .admin(
            Method::GET,
            &format!("/admin/v1/accounts/{account}/subscription"),
            None,
        )
        .await;
    assert_eq!(sub.body["state"], "active");

    // From the fresh page it goes through.
    let fresh = operator.get(&path).await;
    let done = operator
        .post(
            &format!("{path}/subscription/cancel"),
            &[
                ("csrf", &csrf),
                ("version", &hidden(&fresh, "version")),
                ("reason", "asked"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", text(&done));
    let sub = app
        .admin(
            Method::GET,
            &format!("/admin/v1/accounts/{account}/subscription"),
            None,
        )
        .await;
    assert_eq!(sub.body["state"], "cancelled");
}

#[actix_web::test]
async fn hostile_requests_get_pages_never_a_server_error() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let mut person = Person::new(&app);
    person.sign_in(&key).await;
    let csrf = person.csrf("/ui/links").await;
    let long = "x".repeat(5000);
    let gets = [
        "/ui/links?cursor=not-a-cursor".to_owned(),
        "/ui/links?q=a&q=b".to_owned(),
        format!("/ui/links?q={long}"),
        "/ui/links?tag=NOT%20A%20TAG".to_owned(),
        "/ui/links/%00%ff/edit".to_owned(),
        "/ui/links/../../etc/passwd".to_owned(),
        "/ui/links/abc/qr.png".to_owned(),
        "/ui/accounts/not-a-uuid".to_owned(),
        "/ui/audit?since=yesterday".to_owned(),
        "/ui/assets/..%2f..%2fCargo.toml".to_owned(),
        "/ui/nowhere".to_owned(),
    ];
    for path in &gets {
        let reply = person.get(path).await;
        assert!(
            reply.status.is_client_error()
                || reply.status.is_success()
                || reply.status.is_redirection(),
            "{path}: {}",
            reply.status
        );
        assert!(
            reply
                .header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{path}: {:?}",
            reply.header("content-type")
        );
    }
    let posts: [Vec<(&str, &str)>; 4] = [
        vec![("csrf", &csrf), ("url", &long)],
        vec![
            ("csrf", &csrf),
            ("url", "https://example.com"),
            ("expires_at", "1999-01-01T00:00"),
        ],
        vec![
            ("csrf", &csrf),
            ("url", "https://example.com"),
            ("max_visits", "99999999999999999999"),
        ],
        vec![
            ("csrf", &csrf),
            ("url", "https://example.com"),
            ("password", "short"),
        ],
    ];
    for fields in &posts {
        let reply = person.post("/ui/links", fields).await;
        assert!(
            reply.status.is_client_error(),
            "{fields:?}: {}",
            reply.status
        );
    }
    let not_a_form = app
        .post_form("/ui/links", Some("application/json"), "{}", &[])
        .await;
    assert!(not_a_form.status.is_client_error(), "{}", not_a_form.status);
    assert_eq!(
        app.get("/api/v1/links", Some(&key)).await.body["items"],
        json!([]),
        "nothing was made"
    );
}

/// The `href` of the page's link with `rel="next"`, unescaped, if there is one.
fn next_page(reply: &Reply) -> Option<String> {
    let page = text(reply);
    let end = page.find("\" rel=\"next\"")?;
    let start = page[..end].rfind("href=\"")? + "href=\"".len();
    Some(page[start..end].replace("&#38;", "&").replace("&amp;", "&"))
}

#[actix_web::test]
async fn lists_page_through_everything_keeping_their_filters() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    for i in 0..30 {
        let tags = if i % 2 == 0 {
            json!(["even"])
        } else {
            json!(["odd"])
        };
        app.link(
            &key,
            json!({"url": format!("https://example.com/{i}"), "code": format!("page-{i:02}"), "tags": tags}),
        )
        .await;
    }
    let mut person = Person::new(&app);
    person.sign_in(&key).await;

    // All 30: 20, then 10, newest first, no code twice.
    let mut seen = Vec::new();
    let mut path = Some("/ui/links".to_owned());
    while let Some(p) = path {
        let reply = person.get(&p).await;
        assert_eq!(reply.status, StatusCode::OK, "{p}: {}", text(&reply));
        let page = text(&reply);
        seen.extend(
            (0..30)
                .map(|i| format!("page-{i:02}"))
                .filter(|code| page.contains(&format!("href=\"/ui/links/{code}\""))),
        );
        path = next_page(&reply);
    }
    assert_eq!(seen.len(), 30, "{seen:?}");
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30);

    // Only the even ones, and the filter survives the page turn.
    let first = person.get("/ui/links?tag=even&q=page").await;
    let next = next_page(&first);
    assert!(next.is_none(), "15 fit on one page: {next:?}");
    let page = text(&first);
    assert!(
        page.contains("page-28") && !page.contains("page-29"),
        "{page}"
    );

    // The audit log pages back too, with its filter kept.
    let mut operator = Person::new(&app);
    operator.sign_in(ADMIN_KEY).await;
    let first = operator.get("/ui/audit?action=link.created").await;
    let next = next_page(&first).expect("30 entries are two pages");
    assert!(
        next.contains("action=link.created") && next.contains("cursor="),
        "{next}"
    );
    let older = operator.get(&next).await;
    assert_eq!(older.status, StatusCode::OK);
    assert!(!text(&older).contains("<code>account.created</code>"));
    assert!(text(&older).contains("<code>link.created</code>"));
}

#[actix_web::test]
async fn an_expiry_typed_in_the_form_is_kept_and_shown_again_for_editing() {
    let app = TestApp::spawn().await;
    let (_, key) = app.pro_account().await;
    let mut person = Person::new(&app);
    person.sign_in(&key).await;
    let csrf = person.csrf("/ui/links/new").await;
    // A whole hour, as the browser's date picker usually sends it.
    let made = person
        .post(
            "/ui/links",
            &[
                ("csrf", &csrf),
                ("url", "https://example.com/launch"),
                ("code", "on-the-hour"),
                ("expires_at", "2030-01-31T18:00"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", text(&made));
    let link = app.get("/api/v1/links/on-the-hour", Some(&key)).await;
    assert_eq!(link.body["expires_at"], "2030-01-31T18:00:00Z");
    let edit = person.get("/ui/links/on-the-hour/edit").await;
    assert!(
        text(&edit).contains("value=\"2030-01-31T18:00\""),
        "{}",
        text(&edit)
    );
}

//! The OpenAPI document cannot drift from what the service serves: every documented
//! operation is routed (and answers one of its documented statuses), every other method on
//! a documented path is a 405, and no route is registered except through the one table
//! that also makes the document. `/api/docs` works with no other host.

use std::collections::BTreeSet;

use awc::http::Method;
use serde_json::{Value, json};

use crate::support::TestApp;

const METHODS: [&str; 7] = ["get", "head", "post", "put", "patch", "delete", "options"];

/// `template` with its parameters filled in from `values`.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut path = template.to_owned();
    for (name, value) in values {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    assert!(
        !path.contains('{'),
        "no value for a parameter of {template}"
    );
    path
}

fn documented_statuses(op: &Value) -> BTreeSet<u16> {
    op["responses"]
        .as_object()
        .unwrap()
        .keys()
        .map(|s| s.parse().unwrap())
        .collect()
}

#[actix_web::test]
async fn every_documented_operation_is_routed_and_nothing_else_is() {
    // Every path and method without a key: more 401s than the address's default
    // `auth-failures` budget, which is not what this is about.
    let app =
        TestApp::spawn_with(&[("SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE", "0")]).await;
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status.as_u16(), 200);
    assert_eq!(
        doc.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(doc.body["openapi"], "3.1.0");
    assert!(
        doc.header("ratelimit").is_none(),
        "the document is not rate limited"
    );

    let (account, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/a").await;
    // `POST /{code}` is routed for links with a password, and takes its form.
    let protected = app
        .link(
            &key,
            json!({"url": "https://example.com/p", "password": "open sesame"}),
        )
        .await["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let values = [
        ("code", code.as_str()),
        ("id", account.as_str()),
        ("key_id", "019ab2c4-5d6e-7f80-9a1b-2c3d4e5f6a7c"),
        ("slug", "not-found"),
        ("file", "index.css"),
    ];
    let mut operations = 0;
    for (template, item) in doc.body["paths"].as_object().unwrap() {
        let path = fill(template, &values);
        for method in METHODS {
            let Some(op) = item.get(method) else {
                // Not documented: a known path answers any other method with 405.
                let reply = app
                    .request(
                        Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                        &path,
                        None,
                        None,
                    )
                    .await;
                assert_eq!(
                    reply.status.as_u16(),
                    405,
                    "{method} {template} is served but not documented ({path}: {})",
                    reply.body
                );
                // RFC 9110: the 405 names the methods the path has, exactly the documented.
                let allow: BTreeSet<String> = reply
                    .header("allow")
                    .unwrap_or_default()
                    .split(',')
                    .map(|m| m.trim().to_lowercase())
                    .collect();
                let documented: BTreeSet<String> =
                    item.as_object().unwrap().keys().cloned().collect();
                assert_eq!(allow, documented, "Allow of {method} {template}");
                continue;
            };
            operations += 1;
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let secured = op.get("security").is_some();
            // Without a key a routed /api or /admin operation is 401 before anything else
            // about the request is looked at; an unrouted path would be the redirect's 404.
            let reply = if op["operationId"] == "unlock" {
                let path = fill(template, &[("code", protected.as_str())]);
                let form = Some("application/x-www-form-urlencoded");
                app.post_form(&path, form, "password=open+sesame", &[])
                    .await
            } else {
                app.request(method.clone(), &path, None, None).await
            };
            if secured {
                reply.assert_problem(401, "unauthorized");
            } else {
                assert!(
                    documented_statuses(op).contains(&reply.status.as_u16()),
                    "{method} {path}: {} is not documented",
                    reply.status
                );
                assert!(
                    reply.status.is_success() || reply.status.is_redirection(),
                    "{method} {path} is not routed: {} {}",
                    reply.status,
                    reply.body
                );
            }
        }
    }
    assert!(operations >= 27, "only {operations} operations documented");
}

#[actix_web::test]
async fn the_documented_secured_operations_answer_with_the_right_key() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    let (account, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/a").await;
    let key_id = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/keys"),
            None,
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let values = [
        ("code", code.as_str()),
        ("id", account.as_str()),
        ("key_id", key_id.as_str()),
    ];
    let bodies = json!({
        "create_link": {"url": "https://example.com/b"},
        "create_links": {"links": [{"url": "https://example.com/d"}]},
        "update_link": {"url": "https://example.com/c"},
        "create_account": {"name": "Beta"},
        "activate": {"plan": "pro"},
        "renew": {},
        "cancel": {"reason": "asked"},
    });
    // In an order where each answers its success: delete last, cancel after renew.
    let order = [
        "create_link",
        "create_links",
        "export_links",
        "list_links",
        "get_link",
        "update_link",
        "link_stats",
        "link_qr",
        "account_stats",
        "account_audit_log",
        "create_account",
        "list_accounts",
        "get_account",
        "create_key",
        "list_keys",
        "get_subscription",
        "activate",
        "renew",
        "cancel",
        "list_subscriptions",
        "audit_log",
        "revoke_key",
        "delete_link",
    ];
    let mut seen = BTreeSet::new();
    for id in order {
        let (template, method, op) = doc["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(t, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .map(move |(m, op)| (t.clone(), m.clone(), op))
            })
            .find(|(_, _, op)| op["operationId"] == id)
            .unwrap_or_else(|| panic!("{id} is not documented"));
        seen.insert(id);
        let scheme = op["security"][0]
            .as_object()
            .unwrap()
            .keys()
            .next()
            .unwrap()
            .clone();
        let path = fill(&template, &values);
        let caller = if scheme == "accountKey" {
            key.as_str()
        } else {
            support_admin_key()
        };
        let reply = app
            .request(
                Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                &path,
                Some(caller),
                bodies.get(id).cloned(),
            )
            .await;
        assert!(
            reply.status.is_success(),
            "{method} {path}: {} {}",
            reply.status,
            reply.body
        );
        assert!(documented_statuses(op).contains(&reply.status.as_u16()));
        assert!(reply.header("ratelimit-policy").is_some(), "{id}");
    }
    let secured: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter(|op| op.get("security").is_some())
        .map(|op| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(secured, seen, "every secured operation is exercised here");
}

fn support_admin_key() -> &'static str {
    crate::support::ADMIN_KEY
}

/// Routes are registered only through `Operations` (which documents each one): a route
/// added any other way would be served undocumented. A tidy check over the crate's source.
/// The web interface (`src/ui/`, under `/ui`) is the one exception: its pages are HTML
/// for people, not API operations, so they are not in the document; it registers them in
/// its own `scope()`, which `startup.rs` mounts (docs/web-interface.md).
#[test]
fn routes_are_registered_only_through_the_documented_table() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let allowed = [
        (
            "openapi.rs",
            "let resource = web::resource(path).name(template);",
        ),
        (
            "openapi.rs",
            "let mut resource = resource.default_service(web::to(move || {",
        ),
        ("openapi.rs", "let mut scope = web::scope(&prefix);"),
        ("openapi.rs", "resource = resource.route(route);"),
        ("openapi.rs", "web::route()"),
        (
            "startup.rs",
            "api_chain(web::scope(Part::Account.prefix()))",
        ),
        ("startup.rs", "api_chain(web::scope(Part::Admin.prefix()))"),
        ("startup.rs", ".service(ui::scope())"),
        (
            "startup.rs",
            ".default_service(web::to(redirect::redirect_or_not_found))",
        ),
    ];
    let needles = [
        "web::resource(",
        "web::scope(",
        "web::route(",
        "web::get(",
        "web::post(",
        "web::put(",
        "web::patch(",
        "web::delete(",
        "web::head(",
        "web::method(",
        ".route(",
        "web::to(",
        ".default_service(",
        "#[get(",
        "#[post(",
        "#[route(",
    ];
    let mut found = Vec::new();
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n != "ui") {
                    dirs.push(path);
                }
            } else {
                files.push(path);
            }
        }
    }
    for path in files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        // Unit tests (`mod tests`, at the end of a file) build Apps of their own.
        let code = text
            .lines()
            .map(str::trim)
            .take_while(|l| *l != "mod tests {");
        for line in code {
            if line.starts_with("//") {
                continue;
            }
            if needles.iter().any(|n| line.contains(n))
                && !allowed.iter().any(|(f, l)| *f == name && line.contains(l))
            {
                found.push(format!("{name}: {line}"));
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes registered outside `Operations::add` (serve them through it, so they are \
         documented):\n{}",
        found.join("\n")
    );
}

/// Attribute values `name="..."` in `html`.
fn attributes<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
    let marker = format!("{name}=\"");
    html.match_indices(&marker)
        .filter_map(|(at, _)| {
            let rest = &html[at + marker.len()..];
            rest.find('"').map(|end| &rest[..end])
        })
        .collect()
}

#[actix_web::test]
async fn the_docs_load_everything_from_the_service_itself() {
    let app = TestApp::spawn().await;
    let moved = app.get("/api/docs", None).await;
    assert_eq!(moved.status.as_u16(), 308);
    assert_eq!(moved.header("location").as_deref(), Some("/api/docs/"));
    let page = app.get("/api/docs/", None).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let html = String::from_utf8(page.raw).unwrap();
    let mut assets: Vec<&str> = attributes(&html, "src");
    assets.extend(attributes(&html, "href"));
    assert!(assets.len() >= 4, "{assets:?}");
    let mut scripts = Vec::new();
    for asset in assets {
        assert!(
            !asset.contains("//") && !asset.contains(':'),
            "{asset} is not on this service"
        );
        let path = format!("/api/docs/{}", asset.trim_start_matches("./"));
        let reply = app.get(&path, None).await;
        assert_eq!(reply.status.as_u16(), 200, "{path}");
        let ctype = reply.header("content-type").unwrap();
        let expected = match path.rsplit('.').next().unwrap() {
            "js" => "javascript",
            "css" => "text/css",
            "png" => "image/png",
            other => panic!("unexpected asset {other}"),
        };
        assert!(ctype.contains(expected), "{path}: {ctype}");
        if expected == "javascript" {
            scripts.push(String::from_utf8(reply.raw).unwrap());
        } else if expected == "text/css" {
            // Nothing a stylesheet pulls in (fonts, images, other sheets) is elsewhere.
            let css = String::from_utf8(reply.raw).unwrap();
            for far in ["url(http", "url(//", "url(\"http", "url('http", "@import"] {
                assert!(!css.contains(far), "{path} loads from elsewhere: {far}");
            }
        }
    }
    // The initializer points Swagger UI at our document, and at no validator elsewhere.
    let init = scripts
        .iter()
        .find(|s| s.contains("SwaggerUIBundle({"))
        .expect("the initializer script");
    assert!(init.contains("\"url\": \"/api/openapi.json\""), "{init}");
    assert!(init.contains("\"validatorUrl\": \"none\""), "{init}");
    assert!(
        !init.contains("http://") && !init.contains("https://"),
        "{init}"
    );
    let doc = app.get("/api/openapi.json", None).await;
    assert_eq!(doc.status.as_u16(), 200);
    assert_eq!(
        doc.header("content-type").as_deref(),
        Some("application/json")
    );
    app.get("/api/docs/no-such-file.js", None)
        .await
        .assert_problem(404, "not-found");
}

/// A `GET` or `HEAD` of one segment that is a valid code skips the router and is answered
/// as a redirect (`redirect::skip_the_router`), so no route of one segment may be a valid
/// code: each must be a reserved word or too short.
#[actix_web::test]
async fn no_route_of_one_segment_is_a_valid_code() {
    let app = TestApp::spawn().await;
    let doc = app.get("/api/openapi.json", None).await.body;
    let mut single: Vec<String> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|path| {
            let segment = path.strip_prefix('/')?;
            (!segment.contains('/') && !segment.contains('{')).then(|| segment.to_owned())
        })
        .collect();
    assert!(single.iter().any(|s| s == "healthz"), "{single:?}");
    // The web interface's root is not an API operation, so not in the document.
    single.push("ui".to_owned());
    for segment in single {
        assert!(
            shortener_domain::ShortCode::parse(&segment).is_err(),
            "/{segment} is a route and would parse as a code"
        );
        let reply = app.get(&format!("/{segment}"), None).await;
        assert_ne!(
            reply.status.as_u16(),
            302,
            "/{segment} was answered as a redirect"
        );
    }
}

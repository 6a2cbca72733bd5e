//! `X-Request-Id`: every answer carries one (the client's own when it is sane, a fresh
//! one otherwise), and problem documents repeat it.

use awc::http::Method;
use serde_json::json;

use crate::support::{Reply, TestApp};

const HEADER: &str = "x-request-id";

fn is_fresh(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The id `reply` was answered under.
#[track_caller]
fn id_of(reply: &Reply) -> String {
    reply
        .header(HEADER)
        .expect("every answer carries X-Request-Id")
}

#[actix_web::test]
async fn a_sane_id_is_echoed_by_redirects_the_api_and_problems() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("Acme").with_key().await;
    let code = app.code(&key, "https://example.com/").await;
    // Any visible ASCII goes, a proxy's format or a client's.
    let sent = r#"edge-7f3a/"quoted"\back~{1}"#;
    let with_id = [(HEADER, sent)];

    let r = app
        .request_with(Method::GET, &format!("/{code}"), None, None, &with_id)
        .await;
    assert_eq!(r.status, 302);
    assert_eq!(id_of(&r), sent);

    let r = app
        .request_with(Method::GET, "/api/v1/links", Some(&key), None, &with_id)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(id_of(&r), sent);

    // A problem names the request in its body too: the redirect's 404, the API's own
    // refusal, and a stray error response rewritten into a problem.
    for (method, path, key, status, slug) in [
        (Method::GET, "/no-such-code", None, 404, "not-found"),
        (
            Method::GET,
            "/api/v1/links/no-such-code",
            Some(key.as_str()),
            404,
            "not-found",
        ),
        (Method::POST, "/api/v1/links", None, 401, "unauthorized"),
        (Method::POST, "/healthz", None, 405, "method-not-allowed"),
    ] {
        let r = app.request_with(method, path, key, None, &with_id).await;
        r.assert_problem(status, slug);
        assert_eq!(id_of(&r), sent, "{path}");
        assert_eq!(r.body["request_id"], sent, "{path}: {}", r.body);
    }

    for path in [
        "/healthz",
        "/readyz",
        "/api/openapi.json",
        "/problems/not-found",
    ] {
        let r = app
            .request_with(Method::GET, path, None, None, &with_id)
            .await;
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(id_of(&r), sent, "{path}");
    }
}

#[actix_web::test]
async fn an_insane_id_is_replaced_by_a_fresh_one() {
    let app = TestApp::spawn().await;
    let too_long = [b'x'; 129];
    for insane in [
        &too_long[..],
        b"",
        b"tab\there",
        b"two words",
        "caf\u{e9}".as_bytes(),
        b"\xff\xfe",
    ] {
        let r = app.get_sending("/healthz", None, HEADER, insane).await;
        assert_eq!(r.status, 200);
        let id = id_of(&r);
        assert!(is_fresh(&id), "{insane:?} -> {id}");

        let r = app.get_sending("/no-such-code", None, HEADER, insane).await;
        r.assert_problem(404, "not-found");
        let id = id_of(&r);
        assert!(is_fresh(&id), "{insane:?} -> {id}");
        assert_eq!(r.body["request_id"], id.as_str(), "{}", r.body);
    }
    // The longest sane one is still taken.
    let longest = "y".repeat(128);
    let r = app
        .get_sending("/healthz", None, HEADER, longest.as_bytes())
        .await;
    assert_eq!(id_of(&r), longest);
}

#[actix_web::test]
async fn requests_without_an_id_each_get_their_own() {
    let app = TestApp::spawn().await;
    let a = app.get("/healthz", None).await;
    let b = app.get("/healthz", None).await;
    let (a, b) = (id_of(&a), id_of(&b));
    assert!(is_fresh(&a) && is_fresh(&b), "{a}, {b}");
    assert_ne!(a, b);

    let r = app
        .request(Method::POST, "/api/v1/links", None, Some(json!({})))
        .await;
    r.assert_problem(401, "unauthorized");
    assert!(is_fresh(&id_of(&r)));
    assert_eq!(r.body["request_id"], id_of(&r).as_str());
}

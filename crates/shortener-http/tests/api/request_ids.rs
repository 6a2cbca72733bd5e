//! `X-Request-Id`: every answer carries one (the client's own when it is sane, a fresh
//! one otherwise), problem documents repeat it, and the log lines of a request carry it.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use awc::http::Method;
use serde_json::{Value, json};

use crate::cli::{free_port, shortener};
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

/// `GET path` on `port` with `headers`; the status line's code and the response's
/// `X-Request-Id`.
fn get(port: u16, path: &str, headers: &str) -> (u16, Option<String>) {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let id = answer
        .lines()
        .take_while(|l| !l.is_empty())
        .find_map(|l| l.strip_prefix("x-request-id: "))
        .map(str::to_owned);
    (status, id)
}

#[test]
fn the_log_lines_of_a_request_carry_its_id() {
    // A database that is not there: the service starts (pools connect lazily), and
    // /readyz logs a warning from inside the request.
    let port = free_port();
    let nowhere = format!("postgres://nobody@127.0.0.1:{}/nothing", free_port());
    let mut child = shortener()
        .args(["serve", "--no-migrate"])
        .env("SHORTENER__SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .env("SHORTENER__DATABASE__URL", &nowhere)
        .env("SHORTENER__LOG__FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            && get(port, "/healthz", "").0 == 200;
        if up {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("shortener exited early: {status}");
        }
        assert!(Instant::now() < deadline, "service did not start");
        std::thread::sleep(Duration::from_millis(100));
    }

    let sent = format!("log-test-{}", uuid::Uuid::new_v4().simple());
    let (status, echoed) = get(port, "/readyz", &format!("X-Request-Id: {sent}\r\n"));
    assert_eq!((status, echoed.as_deref()), (503, Some(sent.as_str())));
    let (status, fresh) = get(port, "/readyz", "");
    assert_eq!(status, 503);
    let fresh = fresh.expect("a fresh id");
    assert!(is_fresh(&fresh), "{fresh}");

    child.kill().unwrap();
    let lines: Vec<Value> = BufReader::new(child.stderr.take().unwrap())
        .lines()
        .map(|l| {
            let l = l.unwrap();
            serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .collect();
    child.wait().unwrap();
    let readiness: Vec<&Value> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "readiness check failed")
        .collect();
    let ids: Vec<&str> = readiness
        .iter()
        .map(|l| l["request_id"].as_str().unwrap_or("(none)"))
        .collect();
    assert_eq!(ids, [sent.as_str(), fresh.as_str()], "{lines:#?}");
    // Lines written outside any request (start-up, background tasks) name none.
    let outside = lines
        .iter()
        .filter(|l| l["fields"]["message"] != "readiness check failed");
    for line in outside {
        assert!(line.get("request_id").is_none(), "{line}");
    }
}

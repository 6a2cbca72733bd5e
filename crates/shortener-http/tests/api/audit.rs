//! The audit log at the HTTP level, on real PostgreSQL: every change made through the API
//! is recorded once with its actor and changed fields, rejected requests record nothing,
//! the query API filters and pages as the contract says (stable while entries arrive),
//! accounts see only their own entries, and `shortener audit tail` prints the same thing.

use std::collections::HashSet;
use std::process::Command;

use awc::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{ADMIN_KEY, TestApp};

/// Every entry matching `query` (`&`-joined, may be empty), newest first, walking all pages
/// of `page` entries on `path` with `key`.
async fn all(app: &TestApp, path: &str, key: &str, query: &str, page: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{path}?limit={page}");
        if !query.is_empty() {
            url.push('&');
            url.push_str(query);
        }
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = app.get(&url, Some(key)).await;
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.body);
        items.extend(r.body["items"].as_array().unwrap().iter().cloned());
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return items,
        }
    }
}

async fn admin_log(app: &TestApp, query: &str) -> Vec<Value> {
    all(app, "/admin/v1/audit", ADMIN_KEY, query, 500).await
}

fn actions(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect()
}

#[actix_web::test]
async fn every_change_through_the_api_is_recorded_once_with_actor_and_fields() {
    let app = TestApp::spawn().await;
    let (account, key) = app.account("Acme").with_key().await;
    let keys = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/keys"),
            None,
        )
        .await;
    let second_key = keys.body["id"].as_str().unwrap().to_owned();
    let plaintext = keys.body["key"].as_str().unwrap().to_owned();
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/subscription/activate"),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.link(
        &key,
        json!({"url": "https://a.example/", "code": "audited"}),
    )
    .await;
    let r = app
        .request(
            Method::PATCH,
            "/api/v1/links/audited",
            Some(&key),
            Some(json!({"url": "https://b.example/"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .request(Method::DELETE, "/api/v1/links/audited", Some(&key), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .admin(
            Method::DELETE,
            &format!("/admin/v1/accounts/{account}/keys/{second_key}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/subscription/renew"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .admin(
            Method::POST,
            &format!("/admin/v1/accounts/{account}/subscription/cancel"),
            Some(json!({"reason": "moving on"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let log = admin_log(&app, "").await;
    assert_eq!(
        actions(&log),
        [
            "subscription.cancelled",
            "subscription.renewed",
            "key.revoked",
            "link.deleted",
            "link.updated",
            "link.created",
            "subscription.activated",
            "key.created",
            "key.created",
            "account.created",
        ],
        "newest first, one entry per change"
    );
    // The contract's shape, field by field.
    let created = &log[5];
    assert_eq!(
        created["actor"],
        json!({"kind": "account", "id": account}),
        "{created}"
    );
    assert_eq!(created["entity_type"], "link");
    assert_eq!(created["entity_id"], "audited");
    assert_eq!(
        created["changes"],
        json!({"url": {"old": null, "new": "https://a.example/"}})
    );
    assert_eq!(
        log[4]["changes"],
        json!({"url": {"old": "https://a.example/", "new": "https://b.example/"}})
    );
    assert_eq!(log[3]["changes"]["deleted_at"]["old"], Value::Null);
    // Operators act through their admin key, named by its id; the same one throughout.
    let admin_id = log[0]["actor"]["id"].as_str().unwrap().to_owned();
    for e in [&log[0], &log[1], &log[2], &log[6], &log[7], &log[9]] {
        assert_eq!(e["actor"], json!({"kind": "admin", "id": admin_id}), "{e}");
    }
    assert_eq!(log[9]["entity_type"], "account");
    assert_eq!(log[9]["entity_id"], account);
    assert_eq!(
        log[9]["changes"]["name"],
        json!({"old": null, "new": "Acme"})
    );
    assert_eq!(log[0]["entity_type"], "subscription");
    assert_eq!(log[0]["entity_id"], account);
    assert_eq!(
        log[0]["changes"]["state"],
        json!({"old": "active", "new": "cancelled"})
    );
    assert_eq!(
        log[0]["changes"]["reason"],
        json!({"old": null, "new": "moving on"})
    );
    assert_eq!(
        log[6]["changes"]["plan"],
        json!({"old": null, "new": "pro"})
    );
    assert_eq!(log[2]["entity_id"], second_key);
    for e in &log {
        let id = uuid::Uuid::parse_str(e["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        assert!(e["occurred_at"].as_str().unwrap().ends_with('Z'), "{e}");
    }
    // Key material is never recorded: not the key, not its secret half.
    let raw = serde_json::to_string(&log).unwrap();
    let secret = plaintext.rsplit('_').next().unwrap();
    assert!(!raw.contains(secret));
    assert!(!raw.contains(&key[key.len() - 20..]));
}

#[actix_web::test]
async fn rejected_requests_record_nothing() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__LINKS_PER_MONTH", "1")]).await;
    let (account, key) = app.account("Acme").with_key().await;
    app.link(&key, json!({"url": "https://a.example/"})).await;
    let before = admin_log(&app, "").await.len();

    let create = |body: Value| {
        let key = key.clone();
        let app = &app;
        async move {
            app.request(Method::POST, "/api/v1/links", Some(&key), Some(body))
                .await
        }
    };
    create(json!({"url": "ftp://nope/"}))
        .await
        .assert_problem(400, "invalid-url");
    create(json!({"url": "https://a.example/", "surprise": 1}))
        .await
        .assert_problem(400, "validation");
    create(json!({"url": "https://a.example/", "code": "mine"}))
        .await
        .assert_problem(403, "forbidden");
    create(json!({"url": "https://a.example/"}))
        .await
        .assert_problem(403, "quota-exceeded");
    app.admin(
        Method::POST,
        "/admin/v1/accounts",
        Some(json!({"name": ""})),
    )
    .await
    .assert_problem(400, "validation");
    let sub = format!("/admin/v1/accounts/{account}/subscription");
    app.admin(Method::POST, &format!("{sub}/renew"), None)
        .await
        .assert_problem(409, "invalid-transition");
    app.request_with(
        Method::POST,
        &format!("{sub}/cancel"),
        Some(ADMIN_KEY),
        Some(json!({"reason": "x"})),
        &[("If-Match", "\"9\"")],
    )
    .await
    .assert_problem(412, "version-mismatch");
    app.admin(
        Method::DELETE,
        &format!("/admin/v1/accounts/{account}/keys/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await
    .assert_problem(404, "not-found");
    app.request(
        Method::PATCH,
        "/api/v1/links/nothere",
        Some(&key),
        Some(json!({"url": "https://b.example/"})),
    )
    .await
    .assert_problem(404, "not-found");

    // A custom code that is taken: 409, and nothing recorded either.
    let r = app
        .admin(
            Method::POST,
            &format!("{sub}/activate"),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.link(&key, json!({"url": "https://a.example/", "code": "taken"}))
        .await;
    let before = before + 2;
    create(json!({"url": "https://b.example/", "code": "taken"}))
        .await
        .assert_problem(409, "code-taken");
    assert_eq!(admin_log(&app, "").await.len(), before);
}

#[actix_web::test]
async fn filters_narrow_the_log_and_bad_ones_are_400() {
    let app = TestApp::spawn().await;
    let (a, key_a) = app.account("A").with_key().await;
    let (b, key_b) = app.account("B").with_key().await;
    let first = app.link(&key_a, json!({"url": "https://a.example/"})).await;
    let code = first["code"].as_str().unwrap().to_owned();
    app.link(&key_b, json!({"url": "https://b.example/"})).await;
    // The app's clock stands still: move it, so the newest entry has an instant of its own.
    app.clock.advance(chrono::Duration::seconds(1));
    let r = app
        .request(
            Method::PATCH,
            &format!("/api/v1/links/{code}"),
            Some(&key_a),
            Some(json!({"expires_at": "2999-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let by_entity = admin_log(&app, &format!("entity_type=link&entity_id={code}")).await;
    assert_eq!(actions(&by_entity), ["link.updated", "link.created"]);
    assert_eq!(
        by_entity[0]["changes"],
        json!({"expires_at": {"old": null, "new": "2999-01-01T00:00:00Z"}})
    );
    // entity_id on its own.
    assert_eq!(admin_log(&app, &format!("entity_id={code}")).await.len(), 2);
    let by_actor = admin_log(&app, &format!("actor_id={a}")).await;
    assert_eq!(actions(&by_actor), ["link.updated", "link.created"]);
    let created = admin_log(&app, "action=link.created").await;
    assert_eq!(created.len(), 2);
    let accounts = admin_log(&app, "entity_type=account").await;
    let ids: HashSet<&str> = accounts
        .iter()
        .map(|e| e["entity_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, HashSet::from([a.as_str(), b.as_str()]));

    // since is inclusive, until exclusive: the newest entry's instant splits the log.
    let everything = admin_log(&app, "").await;
    let newest = everything[0]["occurred_at"].as_str().unwrap().to_owned();
    let newest_q = newest.replace('+', "%2B");
    let since = admin_log(&app, &format!("since={newest_q}")).await;
    assert!(since.iter().any(|e| e["id"] == everything[0]["id"]));
    let until = admin_log(&app, &format!("until={newest_q}")).await;
    assert!(until.iter().all(|e| e["id"] != everything[0]["id"]));
    assert_eq!(since.len() + until.len(), everything.len());
    assert!(
        admin_log(&app, "since=2999-01-01T00:00:00Z")
            .await
            .is_empty()
    );

    for bad in [
        "entity_type=user",
        "action=link.exploded",
        "actor_id=nobody",
        "since=yesterday",
        "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z",
        "limit=0",
        "limit=501",
        "cursor=bm90LW91cnM",
        "colour=blue",
    ] {
        app.get(&format!("/admin/v1/audit?{bad}"), Some(ADMIN_KEY))
            .await
            .assert_problem(400, "validation");
    }
}

#[actix_web::test]
async fn pages_are_stable_while_new_entries_arrive() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("A").with_key().await;
    for i in 0..7 {
        app.link(&key, json!({"url": format!("https://a.example/{i}")}))
            .await;
    }
    let before = admin_log(&app, "").await;
    assert_eq!(before.len(), 9);

    let mut seen: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let url = match &cursor {
            Some(c) => format!("/admin/v1/audit?limit=2&cursor={c}"),
            None => "/admin/v1/audit?limit=2".to_owned(),
        };
        let r = app.get(&url, Some(ADMIN_KEY)).await;
        assert_eq!(r.status, StatusCode::OK);
        seen.extend(r.body["items"].as_array().unwrap().iter().cloned());
        pages += 1;
        // New changes land between every two page fetches.
        app.link(&key, json!({"url": format!("https://new.example/{pages}")}))
            .await;
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 5);
    let ids = |items: &[Value]| -> Vec<String> {
        items
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // Exactly what was there when paging began: no duplicate, no gap, same order.
    assert_eq!(ids(&seen), ids(&before));
    assert_eq!(admin_log(&app, "").await.len(), 9 + 5);
}

#[actix_web::test]
async fn an_account_sees_only_its_own_entries() {
    let app = TestApp::spawn().await;
    let (a, key_a) = app.account("A").with_key().await;
    let (b, key_b) = app.account("B").with_key().await;
    app.link(&key_a, json!({"url": "https://a.example/"})).await;
    let b_link = app.link(&key_b, json!({"url": "https://b.example/"})).await;

    let own = all(&app, "/api/v1/audit", &key_a, "", 1).await;
    assert_eq!(
        actions(&own),
        ["link.created", "key.created", "account.created"]
    );
    assert_eq!(own[0]["actor"], json!({"kind": "account", "id": a}));
    assert_eq!(own[2]["entity_id"], a);
    assert!(!serde_json::to_string(&own).unwrap().contains(&b));
    // Filters narrow an account's view; they never widen it.
    let b_code = b_link["code"].as_str().unwrap();
    assert!(
        all(
            &app,
            "/api/v1/audit",
            &key_a,
            &format!("entity_id={b_code}"),
            50
        )
        .await
        .is_empty()
    );
    assert!(
        all(&app, "/api/v1/audit", &key_a, &format!("actor_id={b}"), 50)
            .await
            .is_empty()
    );
    let b_own = all(&app, "/api/v1/audit", &key_b, "action=link.created", 50).await;
    assert_eq!(b_own.len(), 1);
    assert_eq!(b_own[0]["entity_id"], b_code);

    app.get("/api/v1/audit", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/audit", Some(ADMIN_KEY))
        .await
        .assert_problem(403, "forbidden");
    app.get("/admin/v1/audit", Some(&key_a))
        .await
        .assert_problem(403, "forbidden");
}

#[actix_web::test]
async fn the_expiry_sweep_is_recorded_as_the_system() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__PLANS__TRIAL__PERIOD", "1s"),
        ("SHORTENER__SUBSCRIPTIONS__EXPIRY_SWEEP", "1s"),
    ])
    .await;
    let account = app.account("A").await;
    // The trial's second passes; the sweep runs every second.
    app.clock.advance(chrono::Duration::seconds(1));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let expired = loop {
        let found = admin_log(&app, "action=subscription.expired").await;
        if let Some(e) = found.into_iter().next() {
            break e;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sweep wrote no entry"
        );
        actix_web::rt::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(expired["actor"], json!({"kind": "system", "id": null}));
    assert_eq!(expired["entity_type"], "subscription");
    assert_eq!(expired["entity_id"], account);
    assert_eq!(
        expired["changes"]["state"],
        json!({"old": "trial", "new": "expired"})
    );
    assert_eq!(expired["changes"]["version"], json!({"old": 1, "new": 2}));
}

#[actix_web::test]
async fn audit_tail_prints_what_the_api_shows() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("A").with_key().await;
    for i in 0..3 {
        app.link(&key, json!({"url": format!("https://a.example/{i}")}))
            .await;
    }
    let api = app
        .get("/admin/v1/audit?entity_type=link&limit=2", Some(ADMIN_KEY))
        .await;
    let mut expected: Vec<Value> = api.body["items"].as_array().unwrap().clone();
    expected.reverse();

    let out = Command::new(env!("CARGO_BIN_EXE_shortener"))
        .args(["audit", "tail", "--entity-type", "link", "--limit", "2"])
        .env_remove("DATABASE_URL")
        .env("SHORTENER__DATABASE__URL", &app.db.service_url)
        .env("SHORTENER__LOG__FILTER", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines, expected,
        "the newest two, oldest first, as the API renders them"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_shortener"))
        .args(["audit", "tail", "--action", "link.exploded"])
        .env_remove("DATABASE_URL")
        .env("SHORTENER__DATABASE__URL", &app.db.service_url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("link.exploded"));
}

/// `shortener audit tail --follow` running against `url`, its lines read on a thread of
/// their own, so a missing line fails the test instead of hanging it.
struct Following {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Following {
    fn start(url: &str, filters: &[&str]) -> Following {
        use std::io::{BufRead, BufReader};
        use std::process::Stdio;

        let mut child = Command::new(env!("CARGO_BIN_EXE_shortener"))
            .args(["audit", "tail", "--follow"])
            .args(filters)
            .env_remove("DATABASE_URL")
            .env("SHORTENER__DATABASE__URL", url)
            .env("SHORTENER__LOG__FILTER", "warn")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    break;
                }
            }
        });
        Following { child, lines }
    }

    /// The next entry printed within `secs` seconds, if any.
    fn next(&self, secs: u64) -> Option<Value> {
        let line = self
            .lines
            .recv_timeout(std::time::Duration::from_secs(secs))
            .ok()?;
        Some(serde_json::from_str(&line).unwrap())
    }
}

impl Drop for Following {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn audit_tail_follow_prints_new_entries_as_they_commit() {
    let app = TestApp::spawn().await;
    let (_, key) = app.account("A").with_key().await;
    app.link(&key, json!({"url": "https://old.example/"})).await;
    let tail = Following::start(&app.db.service_url, &["--action", "link.created"]);
    let next = || tail.next(15).expect("a line from tail --follow");
    assert_eq!(next()["changes"]["url"]["new"], "https://old.example/");
    let fresh = app.link(&key, json!({"url": "https://new.example/"})).await;
    let line = next();
    assert_eq!(line["entity_id"], fresh["code"]);
    assert_eq!(line["changes"]["url"]["new"], "https://new.example/");
}

#[actix_web::test]
async fn audit_tail_follow_prints_an_entry_that_commits_late() {
    use diesel_async::SimpleAsyncConnection;

    let app = TestApp::spawn().await;
    let first = app.account("First").await;
    let tail = Following::start(&app.db.service_url, &[]);
    let next = |secs| tail.next(secs);
    assert_eq!(next(15).unwrap()["action"], "account.created");

    // A slow change writes its entry and does not commit; a quick one commits meanwhile.
    let mut held = app.db.conn().await;
    held.batch_execute(&format!(
        "BEGIN; INSERT INTO audit.entries (id, occurred_at, actor_kind, actor_id, action, \
         entity_type, entity_id, account_id, changes) VALUES (gen_random_uuid(), \
         clock_timestamp(), 'system', NULL, 'subscription.expired', 'subscription', \
         '{first}', '{first}', '{{}}')"
    ))
    .await
    .unwrap();
    let second = app.account("Second").await;
    // tail polls every second: while the slow change is open, the quick one is held back.
    assert!(
        next(3).is_none(),
        "nothing is printed ahead of the open change"
    );
    held.batch_execute("COMMIT").await.unwrap();
    let late = next(15).unwrap();
    assert_eq!(late["action"], "subscription.expired");
    let quick = next(15).unwrap();
    assert_eq!(quick["action"], "account.created");
    assert_eq!(quick["entity_id"], second.to_string());
}

//! Subscriptions end to end: the lifecycle endpoints, optimistic concurrency, quotas that
//! hold exactly under concurrency, and the expiry sweep.

use std::time::{Duration, Instant};

use awc::http::{Method, StatusCode};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::support::{ADMIN_KEY, Reply, TestApp};

fn sub_path(id: &str, action: &str) -> String {
    format!("/admin/v1/accounts/{id}/subscription/{action}")
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
}

async fn stored(app: &TestApp, id: &str) -> (String, i64) {
    let mut conn = app.db.conn().await;
    let r: Row = diesel::sql_query(
        "SELECT state, version FROM subscriptions.subscriptions WHERE account_id = $1::uuid",
    )
    .bind::<Text, _>(id)
    .get_result(&mut conn)
    .await
    .unwrap();
    (r.state, r.version)
}

#[actix_web::test]
async fn the_lifecycle_endpoints_follow_the_state_machine() {
    let app = TestApp::spawn().await;
    let id = app.account("Acme").await;
    let admin = |m, p: String, b: Option<Value>, h: &'static [(&'static str, &'static str)]| {
        let app = &app;
        async move { app.request_with(m, &p, Some(ADMIN_KEY), b, h).await }
    };

    let before = chrono::Utc::now();
    let r = admin(
        Method::POST,
        sub_path(&id, "activate"),
        Some(json!({"plan": "pro"})),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "active");
    assert_eq!(r.body["plan"], "pro");
    assert_eq!(r.body["version"], 2);
    assert_eq!(r.header("etag").as_deref(), Some("\"2\""));
    let renews: chrono::DateTime<chrono::Utc> =
        r.body["renews_at"].as_str().unwrap().parse().unwrap();
    let days = (renews - before).num_hours() as f64 / 24.0;
    assert!(
        (29.9..=30.1).contains(&days),
        "pro renews after 30 days, got {days}"
    );

    // Activating again: 409 naming the current state.
    let again = admin(
        Method::POST,
        sub_path(&id, "activate"),
        Some(json!({"plan": "business"})),
        &[],
    )
    .await;
    again.assert_problem(409, "invalid-transition");
    assert!(
        again.body["detail"].as_str().unwrap().contains("active"),
        "{}",
        again.body
    );

    // A stale version is 412; the current one renews, one period on from the old end.
    admin(
        Method::POST,
        sub_path(&id, "renew"),
        None,
        &[("if-match", "\"1\"")],
    )
    .await
    .assert_problem(412, "version-mismatch");
    admin(
        Method::POST,
        sub_path(&id, "renew"),
        None,
        &[("if-match", "2")],
    )
    .await
    .assert_problem(400, "validation");
    let renewed = admin(
        Method::POST,
        sub_path(&id, "renew"),
        None,
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_eq!(renewed.status, StatusCode::OK, "{}", renewed.body);
    assert_eq!(renewed.body["version"], 3);
    let next: chrono::DateTime<chrono::Utc> =
        renewed.body["renews_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(next - renews, chrono::Duration::days(30));

    // Bad input changes nothing.
    for (path, body) in [
        (sub_path(&id, "activate"), Some(json!({"plan": "gold"}))),
        (sub_path(&id, "activate"), Some(json!({"plan": "trial"}))),
        (
            sub_path(&id, "activate"),
            Some(json!({"plan": "pro", "extra": 1})),
        ),
        (sub_path(&id, "cancel"), Some(json!({"reason": "  "}))),
        (sub_path(&id, "cancel"), Some(json!({}))),
        (sub_path(&id, "cancel"), None),
        (sub_path(&id, "renew"), Some(json!({"plan": "business"}))),
    ] {
        admin(Method::POST, path, body, &[])
            .await
            .assert_problem(400, "validation");
    }
    assert_eq!(stored(&app, &id).await, ("active".into(), 3));

    let cancelled = admin(
        Method::POST,
        sub_path(&id, "cancel"),
        Some(json!({"reason": "moving on"})),
        &[],
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["state"], "cancelled");
    assert_eq!(cancelled.body["reason"], "moving on");
    assert_eq!(cancelled.body["version"], 4);
    for (action, body) in [
        ("renew", None),
        ("cancel", Some(json!({"reason": "again"}))),
    ] {
        let r = admin(Method::POST, sub_path(&id, action), body, &[]).await;
        r.assert_problem(409, "invalid-transition");
        assert!(
            r.body["detail"].as_str().unwrap().contains("cancelled"),
            "{}",
            r.body
        );
    }

    // The account and the subscription read the same, with the version as ETag.
    let acc = admin(Method::GET, format!("/admin/v1/accounts/{id}"), None, &[]).await;
    assert_eq!(acc.body["subscription"], cancelled.body);
    let sub = admin(
        Method::GET,
        format!("/admin/v1/accounts/{id}/subscription"),
        None,
        &[],
    )
    .await;
    assert_eq!(sub.body, cancelled.body);
    assert_eq!(sub.header("etag").as_deref(), Some("\"4\""));

    let unknown = uuid::Uuid::now_v7();
    admin(
        Method::POST,
        sub_path(&unknown.to_string(), "renew"),
        None,
        &[],
    )
    .await
    .assert_problem(404, "not-found");
    let (_, key) = app.account("Other").with_key().await;
    app.request(Method::POST, &sub_path(&id, "renew"), Some(&key), None)
        .await
        .assert_problem(403, "forbidden");
}

/// Input no subscription could accept is a 400 whatever the state and `If-Match` say
/// (Schemathesis found a stale `If-Match` with an empty reason answered 412).
#[actix_web::test]
async fn invalid_input_is_400_before_state_or_version_is_looked_at() {
    let app = TestApp::spawn().await;
    let id = app.account("Acme").await;
    let stale = [("If-Match", "\"7\"")];
    let cancel = |reason: &str| json!({ "reason": reason });
    app.request_with(
        Method::POST,
        &sub_path(&id, "cancel"),
        Some(ADMIN_KEY),
        Some(cancel("")),
        &stale,
    )
    .await
    .assert_problem(400, "validation");
    app.request_with(
        Method::POST,
        &sub_path(&id, "activate"),
        Some(ADMIN_KEY),
        Some(json!({"plan": "trial"})),
        &stale,
    )
    .await
    .assert_problem(400, "validation");
    let done = app
        .admin(
            Method::POST,
            &sub_path(&id, "cancel"),
            Some(cancel("asked")),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    // Cancelled is terminal, but a bad reason is still the caller's mistake first.
    app.admin(Method::POST, &sub_path(&id, "cancel"), Some(cancel(" ")))
        .await
        .assert_problem(400, "validation");
    app.admin(
        Method::POST,
        &sub_path(&id, "cancel"),
        Some(cancel("again")),
    )
    .await
    .assert_problem(409, "invalid-transition");
}

#[actix_web::test]
async fn subscriptions_list_by_effective_state_with_pagination() {
    let app = TestApp::spawn().await;
    let trial = app.account("T").await;
    let active = app.account("A").await;
    let cancelled = app.account("C").await;
    app.admin(
        Method::POST,
        &sub_path(&active, "activate"),
        Some(json!({"plan": "business"})),
    )
    .await;
    app.admin(
        Method::POST,
        &sub_path(&cancelled, "cancel"),
        Some(json!({"reason": "r"})),
    )
    .await;

    let ids = |r: &Reply| -> Vec<String> {
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["account_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = app
        .admin(Method::GET, "/admin/v1/subscriptions", None)
        .await;
    assert_eq!(
        ids(&all),
        vec![trial.clone(), active.clone(), cancelled.clone()]
    );
    assert_eq!(all.body["items"][1]["state"], "active");
    assert_eq!(all.body["items"][1]["plan"], "business");
    let trials = app
        .admin(Method::GET, "/admin/v1/subscriptions?state=trial", None)
        .await;
    assert_eq!(ids(&trials), vec![trial.clone()]);

    // Fifteen days on, the trial is expired in every read, written down or not.
    app.clock.advance(chrono::Duration::days(15));
    let trials = app
        .admin(Method::GET, "/admin/v1/subscriptions?state=trial", None)
        .await;
    assert!(ids(&trials).is_empty(), "{}", trials.body);
    let expired = app
        .admin(Method::GET, "/admin/v1/subscriptions?state=expired", None)
        .await;
    assert_eq!(ids(&expired), vec![trial.clone()]);
    assert_eq!(expired.body["items"][0]["state"], "expired");

    // Keyset pages of one.
    let mut seen = Vec::new();
    let mut path = "/admin/v1/subscriptions?limit=1".to_owned();
    loop {
        let page = app.admin(Method::GET, &path, None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        seen.extend(ids(&page));
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/admin/v1/subscriptions?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![trial, active, cancelled]);
    for bad in ["state=gone", "limit=0", "cursor=zzz", "colour=red"] {
        app.admin(Method::GET, &format!("/admin/v1/subscriptions?{bad}"), None)
            .await
            .assert_problem(400, "validation");
    }
}

#[actix_web::test]
async fn creation_is_gated_by_the_subscription_and_links_outlive_it() {
    let app = TestApp::spawn_with(&[("SHORTENER__PLANS__TRIAL__LINKS_PER_MONTH", "2")]).await;
    let (id, key) = app.account("Acme").with_key().await;
    let create = |body: Value| app.request(Method::POST, "/api/v1/links", Some(&key), Some(body));
    create(json!({"url": "https://example.com/", "code": "mine"}))
        .await
        .assert_problem(403, "forbidden");
    let first = app
        .link(&key, json!({"url": "https://example.com/1"}))
        .await;
    app.link(&key, json!({"url": "https://example.com/2"}))
        .await;
    let over = create(json!({"url": "https://example.com/3"})).await;
    over.assert_problem(403, "quota-exceeded");
    assert!(
        over.body["detail"].as_str().unwrap().contains('2'),
        "{}",
        over.body
    );

    // Pro allows custom codes and more links.
    app.admin(
        Method::POST,
        &sub_path(&id, "activate"),
        Some(json!({"plan": "pro"})),
    )
    .await;
    app.link(
        &key,
        json!({"url": "https://example.com/3", "code": "mine"}),
    )
    .await;
    // A rejected create (code taken) gives its unit of allowance back: nothing is lost.
    create(json!({"url": "https://example.com/4", "code": "mine"}))
        .await
        .assert_problem(409, "code-taken");

    app.admin(
        Method::POST,
        &sub_path(&id, "cancel"),
        Some(json!({"reason": "unpaid"})),
    )
    .await;
    create(json!({"url": "https://example.com/5"}))
        .await
        .assert_problem(403, "subscription-inactive");
    // Existing links keep redirecting whatever the subscription's state.
    let code = first["code"].as_str().unwrap();
    let r = app.get(&format!("/{code}"), None).await;
    assert_eq!(r.status, StatusCode::FOUND);

    #[derive(QueryableByName)]
    struct Used {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = app.db.conn().await;
    let used: Used = diesel::sql_query("SELECT links_created AS n FROM subscriptions.link_usage")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        used.n, 3,
        "three links were created, so three units are used"
    );
}

#[actix_web::test]
async fn quota_holds_exactly_under_concurrency() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__PLANS__TRIAL__LINKS_PER_MONTH", "10"),
        ("SHORTENER__DATABASE__POOL_SIZE", "16"),
        // 100 requests at once: the trial's rate (60 a minute) is not what this is about.
        ("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "0"),
    ])
    .await;
    let (_, key) = app.account("Acme").with_key().await;
    let replies = join_all((0..100).map(|i| {
        app.request(
            Method::POST,
            "/api/v1/links",
            Some(&key),
            Some(json!({"url": format!("https://example.com/{i}")})),
        )
    }))
    .await;
    let created = replies
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    let refused = replies
        .iter()
        .filter(|r| {
            r.status == StatusCode::FORBIDDEN && r.body["type"] == "/problems/quota-exceeded"
        })
        .count();
    assert_eq!(
        (created, refused),
        (10, 90),
        "every reply is one or the other"
    );

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    let mut conn = app.db.conn().await;
    let links: Count = diesel::sql_query("SELECT count(*) AS n FROM shortener.links")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert_eq!(links.n, 10);
}

#[actix_web::test]
async fn racing_transitions_never_both_apply_and_none_is_lost() {
    let app = TestApp::spawn().await;
    const ROUNDS: usize = 40;
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for _ in 0..ROUNDS {
        // Two conditional transitions on the same version: exactly one applies.
        let id = app.account("Race").await;
        let (a, c) = futures_util::future::join(
            app.request_with(
                Method::POST,
                &sub_path(&id, "activate"),
                Some(ADMIN_KEY),
                Some(json!({"plan": "pro"})),
                &[("if-match", "\"1\"")],
            ),
            app.request_with(
                Method::POST,
                &sub_path(&id, "cancel"),
                Some(ADMIN_KEY),
                Some(json!({"reason": "race"})),
                &[("if-match", "\"1\"")],
            ),
        )
        .await;
        let mut statuses = [a.status.as_u16(), c.status.as_u16()];
        statuses.sort();
        assert_eq!(
            statuses,
            [200, 412],
            "activate {} / cancel {}",
            a.body,
            c.body
        );
        *outcomes
            .entry(
                if a.status == StatusCode::OK {
                    "activate won"
                } else {
                    "cancel won"
                }
                .into(),
            )
            .or_default() += 1;
        assert_eq!(stored(&app, &id).await.1, 2);

        // Two unconditional renews: both are accepted, so both must be applied.
        let id = app.account("Renew").await;
        let active = app
            .admin(
                Method::POST,
                &sub_path(&id, "activate"),
                Some(json!({"plan": "pro"})),
            )
            .await;
        let start: chrono::DateTime<chrono::Utc> =
            active.body["renews_at"].as_str().unwrap().parse().unwrap();
        let (r1, r2) = futures_util::future::join(
            app.admin(Method::POST, &sub_path(&id, "renew"), None),
            app.admin(Method::POST, &sub_path(&id, "renew"), None),
        )
        .await;
        assert_eq!(
            (r1.status, r2.status),
            (StatusCode::OK, StatusCode::OK),
            "{} {}",
            r1.body,
            r2.body
        );
        let mut versions = [
            r1.body["version"].as_i64().unwrap(),
            r2.body["version"].as_i64().unwrap(),
        ];
        versions.sort();
        assert_eq!(versions, [3, 4]);
        let now = app
            .admin(
                Method::GET,
                &format!("/admin/v1/accounts/{id}/subscription"),
                None,
            )
            .await;
        let end: chrono::DateTime<chrono::Utc> =
            now.body["renews_at"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            end - start,
            chrono::Duration::days(60),
            "both renewals applied"
        );
        *outcomes
            .entry("double renew: both applied".into())
            .or_default() += 1;
    }
    eprintln!("race rounds: {ROUNDS}; outcomes: {outcomes:?}");
    assert_eq!(outcomes.values().sum::<usize>(), 2 * ROUNDS);
}

#[actix_web::test]
async fn a_short_trial_is_written_down_as_expired_by_the_sweep() {
    let app = TestApp::spawn_with(&[
        ("SHORTENER__PLANS__TRIAL__PERIOD", "2s"),
        ("SHORTENER__SUBSCRIPTIONS__EXPIRY_SWEEP", "1s"),
    ])
    .await;
    let (id, key) = app.account("Brief").with_key().await;
    app.link(&key, json!({"url": "https://example.com/"})).await;
    assert_eq!(stored(&app, &id).await, ("trial".into(), 1));

    // The trial's two seconds pass; the sweep runs every second.
    app.clock.advance(chrono::Duration::seconds(2));
    let deadline = Instant::now() + Duration::from_secs(20);
    while stored(&app, &id).await != ("expired".into(), 2) {
        assert!(Instant::now() < deadline, "the sweep wrote the expiry down");
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    }
    let sub = app
        .admin(
            Method::GET,
            &format!("/admin/v1/accounts/{id}/subscription"),
            None,
        )
        .await;
    assert_eq!(sub.body["state"], "expired");
    assert_eq!(sub.body["version"], 2);
    app.request(
        Method::POST,
        "/api/v1/links",
        Some(&key),
        Some(json!({"url": "https://example.com/2"})),
    )
    .await
    .assert_problem(403, "subscription-inactive");
    // Nothing leaves expired.
    app.admin(
        Method::POST,
        &sub_path(&id, "activate"),
        Some(json!({"plan": "pro"})),
    )
    .await
    .assert_problem(409, "invalid-transition");
}

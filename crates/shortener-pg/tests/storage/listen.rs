//! The invalidation listener through lost connections: a listener cut off while another
//! instance edits a link drops exactly that code when it is back (within a second of
//! reconnecting), not its whole cache; and through a stopped PostgreSQL, cached redirects
//! keep answering, misses fail as unavailable, and the clicks counted meanwhile land once
//! it is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Timestamptz};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shortener_app::metrics::Meter;
use shortener_app::{
    Anonymous, AppError, ClickCounter, ClickSettings, Followed, LinkPatch, Redirects, ResolveCache,
    SystemClock,
};
use shortener_pg::listen::{APPLICATION_NAME, follow_link_changes};
use shortener_testing::PrivatePostgres;

use crate::support::Fixtures;

#[derive(QueryableByName)]
struct Listener {
    #[diesel(sql_type = BigInt)]
    pid: i64,
    #[diesel(sql_type = Timestamptz)]
    since: DateTime<Utc>,
    /// Past its start: listening, and done clearing or catching up the cache (its last
    /// statement is the pruning that follows, or a heartbeat after it). Until then a
    /// first listener may still clear what a test has just cached.
    #[diesel(sql_type = Bool)]
    settled: bool,
}

impl Listener {
    fn settled(l: &Option<Listener>) -> bool {
        l.as_ref().is_some_and(|l| l.settled)
    }
}

/// The listener's backend on the database at `url` (its owner's, who sees every session),
/// if it is connected.
async fn listener(url: &str) -> Option<Listener> {
    let mut conn = AsyncPgConnection::establish(url).await.ok()?;
    diesel::sql_query(format!(
        "SELECT pid::bigint AS pid, backend_start AS since, \
                (query LIKE 'DELETE FROM shortener.link_changes%' \
                 OR clock_timestamp() - backend_start > interval '6 seconds') AS settled \
           FROM pg_stat_activity \
         WHERE application_name = '{APPLICATION_NAME}' AND datname = current_database()"
    ))
    .get_result(&mut conn)
    .await
    .ok()
}

/// Waits until `listening` says yes, for 30 s at most.
async fn until_listener(url: &str, what: &str, listening: impl Fn(&Option<Listener>) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !listening(&listener(url).await) {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn target(followed: Result<Followed, AppError>) -> String {
    match followed {
        Ok(Followed::Found(link)) => link.target.to_string(),
        other => panic!("not found: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_cut_off_drops_only_what_changed_while_it_was_away() {
    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let fixtures = Fixtures::new(&store, Arc::new(SystemClock));
    let (account, made) = fixtures.account("Acme").with_links(2).await;
    let (edited, kept) = (made[0].code.as_str(), made[1].code.as_str());

    let cache = Arc::new(ResolveCache::new(100));
    let _listening = tokio::spawn(follow_link_changes(
        db.service_url.clone(),
        cache.clone(),
        None,
        Meter::off(),
    ));
    until_listener(&db.url, "the listener", Listener::settled).await;
    let redirects = fixtures.redirects(cache.clone(), ClickCounter::off());
    assert_eq!(
        target(redirects.follow(edited, &Anonymous).await),
        "https://example.com/"
    );
    assert_eq!(
        target(redirects.follow(kept, &Anonymous).await),
        "https://example.com/"
    );
    assert_eq!(cache.len(), 2);

    // Only the listener's connection is lost; while it is away, another instance (its
    // own cache) edits one link.
    let old = listener(&db.url).await.unwrap();
    let mut admin = AsyncPgConnection::establish(&db.url).await.unwrap();
    diesel::sql_query(format!("SELECT pg_terminate_backend({})", old.pid))
        .execute(&mut admin)
        .await
        .unwrap();
    until_listener(&db.url, "the old listener to go", Option::is_none).await;
    let patch = LinkPatch {
        url: Some("https://b.example/".into()),
        expires_at: None,
        ..Default::default()
    };
    fixtures
        .link_service()
        .update(account, edited, patch)
        .await
        .unwrap();
    let edited_at = Utc::now();
    // Nobody heard it: the cache still holds both answers.
    assert_eq!(cache.len(), 2);
    assert_eq!(
        target(redirects.follow(edited, &Anonymous).await),
        "https://example.com/"
    );

    until_listener(&db.url, "a new listener", |l| {
        l.as_ref().is_some_and(|l| l.pid != old.pid)
    })
    .await;
    let back = listener(&db.url).await.unwrap();
    assert!(
        back.since > edited_at,
        "the edit happened while nobody listened"
    );
    // Within a second of reconnecting, the edited code is dropped, and only it.
    let deadline = Instant::now() + Duration::from_secs(1);
    while cache.len() != 1 {
        assert!(Instant::now() < deadline, "the edit was not caught up");
        assert!(!cache.is_empty(), "the whole cache was dropped");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        target(redirects.follow(edited, &Anonymous).await),
        "https://b.example/"
    );
    assert_eq!(
        target(redirects.follow(kept, &Anonymous).await),
        "https://example.com/"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_redirects_answer_through_a_stopped_postgres() {
    let mut pg = PrivatePostgres::start("outage").await;
    let (store, url) = (pg.store.clone(), pg.url.clone());
    let fixtures = Fixtures::new(&store, Arc::new(SystemClock));
    let (account, made) = fixtures.account("Acme").with_links(1).await;
    let code = made[0].code.as_str();
    let (clicks, _) = ClickCounter::start(store.clone(), ClickSettings::default());
    let cache = Arc::new(ResolveCache::new(100));
    let _listening = tokio::spawn(follow_link_changes(
        pg.service_url.clone(),
        cache.clone(),
        None,
        Meter::off(),
    ));
    until_listener(&url, "the listener", Listener::settled).await;
    let redirects: Redirects = fixtures.redirects(cache.clone(), clicks.clone());
    assert_eq!(
        target(redirects.follow(code, &Anonymous).await),
        "https://example.com/"
    );

    pg.stop().await;
    // PostgreSQL is gone: what is cached still redirects (and counts), what is not is
    // unavailable, not "not found".
    for _ in 0..9 {
        assert_eq!(
            target(redirects.follow(code, &Anonymous).await),
            "https://example.com/"
        );
    }
    let miss = redirects.follow("neverseen", &Anonymous).await;
    assert!(matches!(miss, Err(AppError::Unavailable(_))), "{miss:?}");
    tokio::time::sleep(Duration::from_secs(2)).await; // the listener notices, retries
    assert_eq!(
        target(redirects.follow(code, &Anonymous).await),
        "https://example.com/"
    );

    pg.restart().await;
    until_listener(&url, "the listener back", Option::is_some).await;
    // Back: nothing changed, so nothing was dropped, and every click landed.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        clicks.flush().await;
        let counted = match fixtures.link_service().get(account, code).await {
            Ok(link) => link.clicks,
            Err(_) => 0, // the pool may still be replacing its broken connections
        };
        if counted == 11 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "clicks were not written: {counted}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(cache.len(), 1, "the cached answer survived the outage");
    pg.remove().await;
}

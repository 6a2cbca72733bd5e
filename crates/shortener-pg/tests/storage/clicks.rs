//! Clicks on PostgreSQL: counted while it is down and written once it is back (the counter
//! keeps them and the pool replaces its broken connections; that test runs on a PostgreSQL
//! of its own, since it stops the server), applied once per batch, and read the same from
//! the journal, the days, or both, while folds race each other and the writes.

use std::time::Duration;

use chrono::Utc;
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shortener_app::{
    Anonymous, Click, ClickCounter, ClickSettings, Followed, SystemClock, Unfolded,
};
use shortener_domain::Link;
use shortener_pg::PgStore;
use shortener_testing::PrivatePostgres;

use crate::support::Fixtures;

#[derive(QueryableByName)]
struct Total {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// The one bigint, named `total`, that `sql` selects.
async fn select_total(url: &str, sql: &str) -> i64 {
    let mut conn = AsyncPgConnection::establish(url).await.unwrap();
    diesel::sql_query(sql)
        .get_result::<Total>(&mut conn)
        .await
        .unwrap()
        .total
}

/// Every click counted, journalled or folded.
async fn total(url: &str) -> i64 {
    select_total(
        url,
        "SELECT coalesce(sum(clicks), 0)::bigint AS total FROM shortener.clicks",
    )
    .await
}

/// Fixtures on `store`, at the wall clock's time.
fn fixtures(store: &PgStore) -> Fixtures {
    Fixtures::new(store, std::sync::Arc::new(SystemClock))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_made_while_postgres_is_stopped_are_written_after_it_restarts() {
    let mut pg = PrivatePostgres::start("clicks").await;
    let (store, url) = (pg.store.clone(), pg.url.clone());
    let (clicks, _) = ClickCounter::start(
        store.clone(),
        ClickSettings {
            flush_every: Duration::from_secs(3600),
            ..ClickSettings::default()
        },
    );
    let fixtures = fixtures(&store);
    let (_, mut made) = fixtures.account("Acme").with_links(1).await;
    let link = made.remove(0);
    // The redirect resolves before the outage; the clicks are counted during it.
    let cache = std::sync::Arc::new(shortener_app::ResolveCache::new(100));
    let redirects = fixtures.redirects(cache, clicks.clone());
    let followed = redirects.follow(link.code.as_str(), &Anonymous).await;
    assert!(matches!(followed, Ok(Followed::Found(_))), "{followed:?}");

    pg.stop().await;
    // With their visits: a bot's and browsers'.
    let bot = shortener_app::VisitKey {
        agent: shortener_domain::visit::Agent {
            device: shortener_domain::visit::Device::Bot,
            ..Default::default()
        },
        ..Default::default()
    };
    for n in 0..49 {
        clicks.count(Click {
            link: link.id,
            day: Utc::now().date_naive(),
            visit: Some(if n < 9 {
                bot.clone()
            } else {
                Default::default()
            }),
        });
    }
    clicks.flush().await; // fails: nobody is listening
    assert_eq!(clicks.dropped(), 0);

    pg.restart().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while total(&url).await != 50 {
        assert!(
            std::time::Instant::now() < deadline,
            "clicks were not written"
        );
        clicks.flush().await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(clicks.dropped(), 0);
    // The breakdowns came back with the clicks, whole.
    let today = Utc::now().date_naive();
    let visits = shortener_app::LinkStore::link_visits(&store, link.id, today, today, 10)
        .await
        .unwrap();
    assert_eq!(visits.bots_daily, vec![(today, 9)]);
    assert!(
        visits.breakdowns.iter().all(|b| b.total() == 49),
        "{visits:?}"
    );
    pg.remove().await;
}

#[tokio::test]
async fn a_batch_written_twice_counts_once() {
    use shortener_app::{ClickBatch, ClickCount, ClickStore};

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, mut made) = fixtures(&store).account("Acme").with_links(1).await;
    let link = made.remove(0);
    let batch = ClickBatch {
        id: uuid::Uuid::now_v7(),
        counts: vec![ClickCount {
            link: link.id,
            day: Utc::now().date_naive(),
            clicks: 21,
        }],
        visits: vec![],
    };
    store.add_clicks(&batch).await.unwrap();
    // The answer was lost, say, and the counter tries again with the same batch.
    store.add_clicks(&batch).await.unwrap();
    assert_eq!(total(&db.url).await, 21);
    let other = ClickBatch {
        id: uuid::Uuid::now_v7(),
        ..batch
    };
    store.add_clicks(&other).await.unwrap();
    assert_eq!(total(&db.url).await, 42);
}

fn nov(d: u32) -> chrono::NaiveDate {
    chrono::NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
}

fn batch(counts: &[(&Link, u32, u64)]) -> shortener_app::ClickBatch {
    shortener_app::ClickBatch {
        id: uuid::Uuid::now_v7(),
        counts: counts
            .iter()
            .map(|(link, d, clicks)| shortener_app::ClickCount {
                link: link.id,
                day: nov(*d),
                clicks: *clicks,
            })
            .collect(),
        visits: vec![],
    }
}

/// What a reader sees of `link`: its total and its days in November 2026.
async fn seen(store: &PgStore, link: &Link) -> (i64, Vec<(chrono::NaiveDate, i64)>) {
    use shortener_app::LinkStore;
    let total = store
        .link_by_code(&link.code)
        .await
        .unwrap()
        .unwrap()
        .clicks;
    let days = store.daily_clicks(link.id, nov(1), nov(30)).await.unwrap();
    (total, days)
}

async fn journal_rows(url: &str) -> i64 {
    select_total(
        url,
        "SELECT count(*)::bigint AS total FROM shortener.click_journal",
    )
    .await
}

#[tokio::test]
async fn journalled_clicks_read_the_same_before_and_after_they_are_folded() {
    use shortener_app::ClickStore;

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(2).await;
    let (a, b) = (&made[0], &made[1]);
    store
        .add_clicks(&batch(&[(a, 1, 3), (b, 1, 5)]))
        .await
        .unwrap();
    store.add_clicks(&batch(&[(a, 2, 2)])).await.unwrap();
    assert!(journal_rows(&db.url).await > 0, "written to the journal");
    let before = seen(&store, a).await;
    assert_eq!(before, (5, vec![(nov(1), 3), (nov(2), 2)]));
    assert_eq!(seen(&store, b).await, (5, vec![(nov(1), 5)]));

    assert_eq!(store.fold_clicks().await.unwrap(), 3, "three link-days");
    assert_eq!(journal_rows(&db.url).await, 0, "the journal is emptied");
    assert_eq!(seen(&store, a).await, before);
    assert_eq!(seen(&store, b).await, (5, vec![(nov(1), 5)]));

    // Folded and journalled clicks of the same day add up.
    store.add_clicks(&batch(&[(a, 1, 1)])).await.unwrap();
    assert_eq!(seen(&store, a).await, (6, vec![(nov(1), 4), (nov(2), 2)]));
    assert_eq!(store.fold_clicks().await.unwrap(), 1);
    assert_eq!(seen(&store, a).await, (6, vec![(nov(1), 4), (nov(2), 2)]));
    assert_eq!(
        store.fold_clicks().await.unwrap(),
        0,
        "nothing left to fold"
    );

    // One batch can hold a link twice (its clicks either side of midnight): both count.
    store
        .add_clicks(&batch(&[(b, 3, 1), (a, 3, 7), (b, 4, 2)]))
        .await
        .unwrap();
    let expected = (8, vec![(nov(1), 5), (nov(3), 1), (nov(4), 2)]);
    assert_eq!(seen(&store, b).await, expected);
    store.fold_clicks().await.unwrap();
    assert_eq!(seen(&store, b).await, expected);
}

#[tokio::test]
async fn a_fold_adds_one_link_day_up_across_the_journal_rows_of_many_batches() {
    use shortener_app::ClickStore;

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(2).await;
    let (a, b) = (&made[0], &made[1]);
    for clicks in 1..=4 {
        store
            .add_clicks(&batch(&[(a, 5, clicks), (b, 6, 10)]))
            .await
            .unwrap();
    }
    assert_eq!(journal_rows(&db.url).await, 8, "a row per batch and link");
    assert_eq!(store.fold_clicks().await.unwrap(), 2, "two link-days");
    assert_eq!(journal_rows(&db.url).await, 0);
    assert_eq!(kept_size(&db.url).await, Unfolded::default());
    assert_eq!(seen(&store, a).await, (10, vec![(nov(5), 10)]));
    assert_eq!(seen(&store, b).await, (40, vec![(nov(6), 40)]));
    let day_rows = select_total(
        &db.url,
        "SELECT count(*)::bigint AS total FROM shortener.link_daily_clicks",
    )
    .await;
    assert_eq!(day_rows, 2);
}

#[tokio::test]
async fn a_batch_retried_after_its_fold_still_counts_once() {
    use shortener_app::ClickStore;

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, mut made) = fixtures(&store).account("Acme").with_links(1).await;
    let link = made.remove(0);
    let once = batch(&[(&link, 3, 9)]);
    store.add_clicks(&once).await.unwrap();
    store.fold_clicks().await.unwrap();
    store.add_clicks(&once).await.unwrap();
    assert_eq!(journal_rows(&db.url).await, 0, "the retry wrote nothing");
    assert_eq!(seen(&store, &link).await, (9, vec![(nov(3), 9)]));
}

/// The journal's size as `shortener.click_journal_size` keeps it.
async fn kept_size(url: &str) -> Unfolded {
    Unfolded {
        counts: select_total(
            url,
            "SELECT entries AS total FROM shortener.click_journal_size",
        )
        .await as u64,
        records: select_total(
            url,
            "SELECT journal_rows AS total FROM shortener.click_journal_size",
        )
        .await as u64,
    }
}

/// The journal's size, counted in the journal itself.
async fn counted_size(url: &str) -> Unfolded {
    Unfolded {
        counts: select_total(
            url,
            "SELECT coalesce(sum(cardinality(link_ids)), 0)::bigint AS total \
             FROM shortener.click_journal",
        )
        .await as u64,
        records: journal_rows(url).await as u64,
    }
}

#[tokio::test]
async fn each_write_reports_what_the_journal_holds_and_folds_take_it_back() {
    use shortener_app::ClickStore;

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(40).await;
    let first = batch(&made.iter().map(|l| (l, 1, 2)).collect::<Vec<_>>());
    let after_first = store.add_clicks(&first).await.unwrap();
    assert_eq!(after_first.counts, 40);
    assert_eq!(after_first, counted_size(&db.url).await);
    // A retried batch adds nothing, and says what is there.
    assert_eq!(store.add_clicks(&first).await.unwrap(), after_first);
    let second = batch(&[(&made[0], 1, 1), (&made[0], 2, 1)]);
    let after_second = store.add_clicks(&second).await.unwrap();
    assert_eq!(after_second.counts, 42);
    assert_eq!(after_second, counted_size(&db.url).await);
    assert_eq!(after_second, kept_size(&db.url).await);

    store.fold_clicks().await.unwrap();
    assert_eq!(kept_size(&db.url).await, Unfolded::default());
    let third = store.add_clicks(&batch(&[(&made[1], 3, 1)])).await.unwrap();
    assert_eq!(
        third,
        Unfolded {
            counts: 1,
            records: 1
        }
    );
}

/// Whether writer `w`'s batch `i` has clicks for link `n` (two in three do).
fn sends(w: u64, i: u64, n: usize) -> bool {
    !(n as u64 + i + w).is_multiple_of(3)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folds_racing_each_other_and_the_writes_lose_and_double_nothing() {
    use shortener_app::ClickStore;

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(8).await;
    let made = std::sync::Arc::new(made);
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let folders: Vec<_> = (0..2)
        .map(|_| {
            let (store, writing) = (store.clone(), writing.clone());
            tokio::spawn(async move {
                let mut folded = 0;
                while std::sync::atomic::AtomicBool::load(
                    &writing,
                    std::sync::atomic::Ordering::SeqCst,
                ) {
                    folded += store.fold_clicks().await.unwrap();
                    tokio::task::yield_now().await;
                }
                folded
            })
        })
        .collect();
    let writers: Vec<_> = (0..4u64)
        .map(|w| {
            let (store, made) = (store.clone(), made.clone());
            tokio::spawn(async move {
                for i in 0..40u64 {
                    // Each batch: a few of the links, on one of two days.
                    let counts: Vec<_> = made
                        .iter()
                        .enumerate()
                        .filter(|(n, _)| sends(w, i, *n))
                        .map(|(n, link)| (link, 1 + (i % 2) as u32, 1 + n as u64))
                        .collect();
                    store.add_clicks(&batch(&counts)).await.unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    let mut folded = 0;
    for f in folders {
        folded += f.await.unwrap();
    }
    assert!(folded > 0, "the folds ran while the writes did");
    store.fold_clicks().await.unwrap();
    assert_eq!(journal_rows(&db.url).await, 0);
    assert_eq!(
        kept_size(&db.url).await,
        Unfolded::default(),
        "the size kept by writes and folds racing ends where the journal does"
    );

    for (n, link) in made.iter().enumerate() {
        // What the writers sent this link, day by day.
        let mut want = [0i64; 2];
        for w in 0..4u64 {
            for i in 0..40u64 {
                if sends(w, i, n) {
                    want[(i % 2) as usize] += 1 + n as i64;
                }
            }
        }
        assert_eq!(
            seen(&store, link).await,
            (
                want[0] + want[1],
                vec![(nov(1), want[0]), (nov(2), want[1])]
            ),
            "link {n}"
        );
    }
}

/// A batch of `clicks` clicks of `link` on November `d`, every one from `agent` with
/// `referrer` (a host, or `None` for direct): its visits in each dimension.
fn visited(
    link: &Link,
    d: u32,
    clicks: u64,
    referrer: Option<&str>,
    agent: shortener_domain::visit::Agent,
) -> shortener_app::ClickBatch {
    use shortener_app::{VisitCount, VisitKey};
    use shortener_domain::visit::{Country, CountryCode, RefHost};
    let key = VisitKey {
        referrer: referrer.map(|h| std::sync::Arc::new(RefHost::parse(h).expect("a host"))),
        country: CountryCode::parse("DE").map_or(Country::Unknown, Country::Known),
        agent,
    };
    let mut b = batch(&[(link, d, clicks)]);
    b.visits = vec![VisitCount {
        link: link.id,
        day: nov(d),
        visit: key,
        clicks,
    }];
    b
}

#[tokio::test]
async fn visits_are_written_once_per_batch_and_read_the_same_before_and_after_the_fold() {
    use shortener_app::{ClickStore, LinkStore};
    use shortener_domain::visit::{Agent, Browser, Device, Dimension, Os};

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, made) = fixtures(&store).account("Acme").with_links(2).await;
    let (a, b) = (&made[0], &made[1]);
    let desktop = Agent {
        browser: Browser::Firefox,
        os: Os::Linux,
        device: Device::Desktop,
    };
    let bot = Agent {
        browser: Browser::Other,
        os: Os::Other,
        device: Device::Bot,
    };
    let first = visited(a, 1, 3, Some("news.ycombinator.com"), desktop);
    store.add_clicks(&first).await.unwrap();
    store.add_clicks(&first).await.unwrap(); // a retry: nothing more
    store
        .add_clicks(&visited(a, 2, 2, None, bot))
        .await
        .unwrap();
    store
        .add_clicks(&visited(b, 2, 50, Some("elsewhere.example"), desktop))
        .await
        .unwrap();

    let report =
        |store: PgStore| async move { store.link_visits(a.id, nov(1), nov(30), 10).await.unwrap() };
    let before = report(store.clone()).await;
    assert_eq!(before.bots_daily, vec![(nov(2), 2)]);
    let of = |r: &shortener_app::VisitReport, d: Dimension| {
        r.breakdowns
            .iter()
            .find(|x| x.dimension == d)
            .map(|x| (x.top.clone(), x.other))
            .unwrap()
    };
    let owned = |v: &[(&str, i64)]| {
        v.iter()
            .map(|(s, n)| ((*s).to_owned(), *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of(&before, Dimension::Referrer),
        (owned(&[("news.ycombinator.com", 3), ("(direct)", 2)]), 0)
    );
    assert_eq!(of(&before, Dimension::Country), (owned(&[("DE", 5)]), 0));
    assert_eq!(
        of(&before, Dimension::Device),
        (owned(&[("desktop", 3), ("bot", 2)]), 0)
    );
    // Only November 2 asked for: the bot's day alone.
    let one_day = store.link_visits(a.id, nov(2), nov(2), 10).await.unwrap();
    assert_eq!(
        of(&one_day, Dimension::Browser),
        (owned(&[("Other", 2)]), 0)
    );
    // The top 1, then the rest together.
    let top1 = store.link_visits(a.id, nov(1), nov(30), 1).await.unwrap();
    assert_eq!(of(&top1, Dimension::Os), (owned(&[("Linux", 3)]), 2));

    store.fold_clicks().await.unwrap();
    assert_eq!(
        select_total(
            &db.url,
            "SELECT count(*)::bigint AS total FROM shortener.visit_journal"
        )
        .await,
        0,
        "the fold empties the visit journal"
    );
    assert_eq!(report(store.clone()).await, before);
    // Folded and journalled visits of the same day add up.
    store
        .add_clicks(&visited(a, 1, 1, Some("news.ycombinator.com"), desktop))
        .await
        .unwrap();
    let after = report(store.clone()).await;
    assert_eq!(
        of(&after, Dimension::Referrer),
        (owned(&[("news.ycombinator.com", 4), ("(direct)", 2)]), 0)
    );
}

#[tokio::test]
async fn the_retention_prune_deletes_visit_days_before_the_first_day_kept_only() {
    use shortener_app::{ClickStore, LinkStore};
    use shortener_domain::visit::{Agent, Dimension};

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, mut made) = fixtures(&store).account("Acme").with_links(1).await;
    let link = made.remove(0);
    for d in [1, 2, 3] {
        store
            .add_clicks(&visited(&link, d, u64::from(d), None, Agent::default()))
            .await
            .unwrap();
    }
    store.fold_clicks().await.unwrap();
    let pool = shortener_pg::Db::connect(&db.url, &shortener_pg::PoolSettings::default()).unwrap();
    // Five dimensions a day: November 1 goes, in batches of two.
    let mut pruned = 0;
    loop {
        let n = pool.prune_visits(nov(2), 2).await.unwrap();
        pruned += n;
        if n < 2 {
            break;
        }
    }
    assert_eq!(pruned, 5);
    let left = store
        .link_visits(link.id, nov(1), nov(30), 10)
        .await
        .unwrap();
    let devices = left
        .breakdowns
        .iter()
        .find(|b| b.dimension == Dimension::Device)
        .unwrap();
    assert_eq!(devices.total(), 2 + 3);
    // The clicks themselves are kept.
    assert_eq!(seen(&store, &link).await.0, 6);
}

/// The journal stores a visit's labels as numbers (migration 000025): every label the
/// domain has reads back as the domain shows it, journalled and folded.
#[tokio::test]
async fn every_label_reads_back_as_the_domain_shows_it() {
    use std::collections::BTreeMap;

    use shortener_app::{ClickStore, LinkStore, VisitCount, VisitKey};
    use shortener_domain::visit::{Agent, Browser, Country, CountryCode, Device, Os};

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, mut made) = fixtures(&store).account("Acme").with_links(1).await;
    let link = made.remove(0);
    let countries = ["AA", "DE", "US", "ZZ", "(unknown)"]
        .map(|c| CountryCode::parse(c).map_or(Country::Unknown, Country::Known));
    let mut expected: BTreeMap<(&str, String), i64> = BTreeMap::new();
    let mut b = batch(&[]);
    // Enough visits for every browser, OS, device and country to appear, in varied
    // company, each visit with a number of clicks of its own.
    for i in 0..Browser::ALL.len() * 2 {
        let visit = VisitKey {
            referrer: None,
            country: countries[i % countries.len()],
            agent: Agent {
                browser: Browser::ALL[i % Browser::ALL.len()],
                os: Os::ALL[i % Os::ALL.len()],
                device: Device::ALL[i % Device::ALL.len()],
            },
        };
        let clicks = i as u64 + 1;
        for value in visit.values() {
            *expected
                .entry((value.dimension().plural(), value.as_str().to_owned()))
                .or_default() += clicks as i64;
        }
        b.visits.push(VisitCount {
            link: link.id,
            day: nov(3),
            visit,
            clicks,
        });
    }
    let total: u64 = b.visits.iter().map(|v| v.clicks).sum();
    b.counts = batch(&[(&link, 3, total)]).counts;
    store.add_clicks(&b).await.unwrap();
    let read = |store: PgStore| async move {
        let report = store
            .link_visits(link.id, nov(1), nov(30), 1000)
            .await
            .unwrap();
        let mut got: BTreeMap<(&str, String), i64> = BTreeMap::new();
        for breakdown in report.breakdowns {
            assert_eq!(breakdown.other, 0);
            for (value, n) in breakdown.top {
                got.insert((breakdown.dimension.plural(), value), n);
            }
        }
        got
    };
    assert_eq!(read(store.clone()).await, expected, "journalled");
    store.fold_clicks().await.unwrap();
    assert_eq!(read(store.clone()).await, expected, "folded");
}

/// During a rolling upgrade, instances of the previous release still journal visits with
/// their labels as text (migration 000025 keeps those columns for them until a later
/// release): such rows read and fold exactly as this release's do.
#[tokio::test]
async fn visits_journalled_by_the_previous_release_read_and_fold_alike() {
    use std::collections::BTreeMap;

    use diesel::sql_types::{Date, Uuid as SqlUuid};
    use shortener_app::{ClickStore, LinkStore};
    use shortener_domain::visit::{Agent, Browser, Device, Os};

    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let (_, mut made) = fixtures(&store).account("Acme").with_links(1).await;
    let link = made.remove(0);
    let mut conn = AsyncPgConnection::establish(&db.url).await.unwrap();
    // The previous release's journal INSERT, as it names the columns.
    diesel::sql_query(
        "INSERT INTO shortener.visit_journal (bucket, batch_id, link_ids, days, referrers, \
             countries, browsers, oses, devices, clicks) \
         SELECT shortener.click_bucket($1), gen_random_uuid(), ARRAY[$1, $1], ARRAY[$2, $2], \
                ARRAY['news.example', '(direct)'], ARRAY['DE', '(unknown)'], \
                ARRAY['Samsung Internet', 'Other'], ARRAY['ChromeOS', 'Other'], \
                ARRAY['bot', 'other'], ARRAY[3::bigint, 4]",
    )
    .bind::<SqlUuid, _>(link.id.as_uuid())
    .bind::<Date, _>(nov(3))
    .execute(&mut conn)
    .await
    .unwrap();
    let desktop = Agent {
        browser: Browser::Firefox,
        os: Os::Linux,
        device: Device::Desktop,
    };
    store
        .add_clicks(&visited(&link, 3, 5, Some("news.example"), desktop))
        .await
        .unwrap();
    let expected: BTreeMap<(&str, &str), i64> = [
        (("referrers", "news.example"), 8),
        (("referrers", "(direct)"), 4),
        (("countries", "DE"), 8),
        (("countries", "(unknown)"), 4),
        (("browsers", "Firefox"), 5),
        (("browsers", "Samsung Internet"), 3),
        (("browsers", "Other"), 4),
        (("operating_systems", "Linux"), 5),
        (("operating_systems", "ChromeOS"), 3),
        (("operating_systems", "Other"), 4),
        (("devices", "desktop"), 5),
        (("devices", "bot"), 3),
        (("devices", "other"), 4),
    ]
    .into_iter()
    .collect();
    let read = |store: PgStore| async move {
        let report = store
            .link_visits(link.id, nov(1), nov(30), 10)
            .await
            .unwrap();
        let mut got = BTreeMap::new();
        for b in report.breakdowns {
            for (value, n) in b.top {
                got.insert((b.dimension.plural(), value), n);
            }
        }
        got
    };
    let owned = |m: &BTreeMap<(&'static str, &str), i64>| {
        m.iter()
            .map(|((d, v), n)| ((*d, (*v).to_owned()), *n))
            .collect::<BTreeMap<_, _>>()
    };
    assert_eq!(read(store.clone()).await, owned(&expected), "journalled");
    assert_eq!(report_bots(&store, &link).await, 3);
    store.fold_clicks().await.unwrap();
    assert_eq!(read(store.clone()).await, owned(&expected), "folded");
    assert_eq!(report_bots(&store, &link).await, 3);
}

/// The bots `link` had in November.
async fn report_bots(store: &PgStore, link: &Link) -> i64 {
    use shortener_app::LinkStore;
    let report = store
        .link_visits(link.id, nov(1), nov(30), 10)
        .await
        .unwrap();
    report.bots_daily.iter().map(|(_, n)| n).sum()
}

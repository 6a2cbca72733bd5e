//! The unit of work on real PostgreSQL: a change and its audit entry commit together, and
//! when anything fails after the change statement, neither the change nor its entry is
//! left behind.

use audit::{Action, Actor, AuditEntry, AuditFilter, Changes};
use chrono::{Datelike, Utc};
use diesel::QueryableByName;
use diesel::sql_types::BigInt;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};
use shortener_app::{AppError, AuditService, NewLink, PageRequest, SystemClock, UnitOfWork};
use shortener_domain::{Account, AccountId, AccountName};
use shortener_testing::TestDb;
use subscriptions::{PlanName, Plans, Subscription, Versioned};

use crate::support::Fixtures;

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A new account named `name` and its trial, as of `now`, to insert in a test's work.
fn in_trial(name: &str, now: chrono::DateTime<Utc>) -> (Account, Versioned) {
    let account = Account {
        id: AccountId::new(),
        name: AccountName::parse(name).unwrap(),
        created_at: now,
    };
    let trial = Versioned {
        subscription: Subscription::start_trial(now, Plans::default().get(PlanName::Trial)),
        version: 1,
    };
    (account, trial)
}

async fn count(db: &TestDb, sql: &str) -> i64 {
    let mut conn = db.conn().await;
    diesel::sql_query(sql)
        .get_result::<Count>(&mut conn)
        .await
        .unwrap()
        .n
}

#[tokio::test]
async fn an_audit_write_that_fails_after_the_change_takes_the_change_with_it() {
    let db = TestDb::new().await;
    let pg = db.store();
    let fixtures = Fixtures::new(&pg, std::sync::Arc::new(SystemClock));
    let account = fixtures.account("Acme").await;

    // The link insert succeeds, and then its entry is refused (as a full disk or a lost
    // partition would refuse it). The whole create must roll back.
    let mut conn = db.conn().await;
    conn.batch_execute(
        "CREATE FUNCTION audit.test_refuse() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'no room for this entry'; END; $$; \
         CREATE TRIGGER test_refuse BEFORE INSERT ON audit.entries \
         FOR EACH ROW EXECUTE FUNCTION audit.test_refuse();",
    )
    .await
    .unwrap();
    let links = fixtures.link_service();
    let failed = links
        .create(
            account,
            NewLink {
                url: "https://example.com/".into(),
                code: None,
                expires_at: None,
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(failed, Err(AppError::Internal { .. })),
        "{failed:?}"
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM shortener.links").await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM subscriptions.link_usage").await,
        0,
        "the allowance unit is given back"
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM audit.entries").await,
        1
    );

    // Without the refusal the same create goes through, entry and all.
    conn.batch_execute("DROP TRIGGER test_refuse ON audit.entries")
        .await
        .unwrap();
    let link = links
        .create(
            account,
            NewLink {
                url: "https://example.com/".into(),
                code: None,
                expires_at: None,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let log = AuditService::new(pg.clone())
        .page(
            AuditFilter::default(),
            PageRequest {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(log.items[0].action, Action::LinkCreated);
    assert_eq!(log.items[0].entity.id, link.code.as_str());
    assert_eq!(log.items[0].actor, Actor::Account(account.as_uuid()));
}

#[tokio::test]
async fn work_that_fails_after_writing_leaves_nothing() {
    let db = TestDb::new().await;
    let pg = db.store();
    let now = Utc::now();
    let (account, trial) = in_trial("Ghost", now);
    let outcome: Result<(), AppError> = pg
        .run(move |tx| {
            Box::pin(async move {
                tx.insert_account(&account, &trial).await?;
                tx.record(AuditEntry::new(
                    now,
                    Actor::System,
                    Action::AccountCreated,
                    account.id.as_uuid().to_string(),
                    Some(account.id.as_uuid()),
                    Changes::created(&[("name", "Ghost".into())]),
                ))
                .await?;
                Err(AppError::Validation("changed my mind".into()))
            })
        })
        .await;
    assert!(matches!(outcome, Err(AppError::Validation(_))));
    for table in [
        "shortener.accounts",
        "subscriptions.subscriptions",
        "audit.entries",
    ] {
        assert_eq!(
            count(&db, &format!("SELECT count(*) AS n FROM {table}")).await,
            0,
            "{table}"
        );
    }
}

#[tokio::test]
async fn a_rewind_drops_what_came_after_the_mark_and_keeps_what_came_before() {
    let db = TestDb::new().await;
    let pg = db.store();
    let now = Utc::now();
    let (account, trial) = in_trial("Kept", now);
    let id = account.id;
    pg.run(move |tx| {
        Box::pin(async move {
            tx.insert_account(&account, &trial).await?;
            tx.mark().await?;
            tx.record(AuditEntry::new(
                now,
                Actor::System,
                Action::AccountCreated,
                id.as_uuid().to_string(),
                Some(id.as_uuid()),
                Changes::created(&[("name", "Kept".into())]),
            ))
            .await?;
            tx.rewind().await?;
            // The transaction goes on after a rewind, and the mark stays set.
            assert!(
                tx.take_allowance(id, now.date_naive().with_day(1).unwrap(), 5, 2)
                    .await?
            );
            tx.rewind().await?;
            Ok(())
        })
    })
    .await
    .unwrap();
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM shortener.accounts").await,
        1
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM audit.entries").await,
        0
    );
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM subscriptions.link_usage").await,
        0
    );
}

#[tokio::test]
async fn units_of_the_allowance_are_taken_all_or_none() {
    let db = TestDb::new().await;
    let pg = db.store();
    let fixtures = Fixtures::new(&pg, std::sync::Arc::new(SystemClock));
    let account = fixtures.account("Acme").await;
    let month = Utc::now().date_naive().with_day(1).unwrap();
    let takes: Vec<bool> = pg
        .run(move |tx| {
            Box::pin(async move {
                let mut takes = Vec::new();
                for units in [3, 3, 6, 2, 1] {
                    takes.push(tx.take_allowance(account, month, 5, units).await?);
                }
                Ok(takes)
            })
        })
        .await
        .unwrap();
    assert_eq!(takes, [true, false, false, true, false]);
    assert_eq!(
        count(
            &db,
            "SELECT links_created AS n FROM subscriptions.link_usage"
        )
        .await,
        5
    );
}

#[tokio::test]
async fn many_links_go_in_one_insert_that_skips_taken_codes() {
    let db = TestDb::new().await;
    let pg = db.store();
    let fixtures = Fixtures::new(&pg, std::sync::Arc::new(SystemClock));
    let account = fixtures.account("Acme").await;
    let link = |code: &str| shortener_domain::Link {
        id: shortener_domain::LinkId::new(),
        code: shortener_domain::ShortCode::parse(code).unwrap(),
        account_id: account,
        target: shortener_domain::TargetUrl::from_storage("https://example.com/".into()),
        created_at: Utc::now(),
        expires_at: None,
        clicks: 0,
        tags: shortener_domain::Tags::default(),
        title: None,
        visit_limit: None,
        password: None,
    };
    let first = vec![link("one"), link("two")];
    let second = vec![link("two"), link("three"), link("three"), link("four")];
    let expected = vec![second[1].id, second[3].id];
    let (a, b) = pg
        .run(move |tx| {
            Box::pin(async move {
                let a = tx.insert_links(&first).await?;
                let b = tx.insert_links(&second).await?;
                Ok((a.len(), b))
            })
        })
        .await
        .unwrap();
    assert_eq!(a, 2);
    assert_eq!(b, expected, "a taken code and a repeated one are skipped");
    assert_eq!(
        count(&db, "SELECT count(*) AS n FROM shortener.links").await,
        4
    );
}

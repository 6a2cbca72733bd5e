//! Reading the audit log while entries commit out of order: a transaction that wrote an
//! entry and has not committed holds readers back at its start, so when it commits, its
//! entry is newer than everything a reader was handed; nothing appears behind a reader.

use std::sync::Arc;

use audit::{Action, AuditFilter};
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use shortener_app::{AuditService, PageRequest, SystemClock};

use crate::support::Fixtures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_commits_late_never_lands_behind_a_reader() {
    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let fixtures = Fixtures::new(&store, Arc::new(SystemClock));
    let log = AuditService::new(store.clone());
    let read = || async {
        let page = PageRequest {
            after: None,
            limit: 50,
        };
        log.page(AuditFilter::default(), page).await.unwrap().items
    };
    let first = fixtures.account("First").await;

    // A slow unit of work: it writes its entry, then does not commit yet.
    let mut held = AsyncPgConnection::establish(&db.url).await.unwrap();
    held.batch_execute(&format!(
        "BEGIN; INSERT INTO audit.entries (id, occurred_at, actor_kind, actor_id, action, \
         entity_type, entity_id, account_id, changes) VALUES (gen_random_uuid(), \
         clock_timestamp(), 'system', NULL, 'subscription.expired', 'subscription', \
         '{first}', '{first}', '{{}}')"
    ))
    .await
    .unwrap();
    // Meanwhile another change commits.
    fixtures.account("Second").await;

    // A reader is handed only what is older than the open transaction: the second account
    // waits, though it has committed, because the held entry would land before it.
    let seen = read().await;
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].action, Action::AccountCreated);
    assert_eq!(seen[0].entity.id, first.as_uuid().to_string());
    let passed = seen[0].occurred_at;

    held.batch_execute("COMMIT").await.unwrap();
    let seen = read().await;
    let actions: Vec<Action> = seen.iter().map(|e| e.action).collect();
    assert_eq!(
        actions,
        [
            Action::AccountCreated,
            Action::SubscriptionExpired,
            Action::AccountCreated
        ],
        "newest first: the second account, the late entry, the first account"
    );
    // Everything that appeared since the first read is newer than what it handed out.
    assert!(seen[..2].iter().all(|e| e.occurred_at > passed), "{seen:?}");
}

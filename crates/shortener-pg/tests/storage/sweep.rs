//! The expiry sweep on real PostgreSQL, with two instances sweeping at once: every due
//! subscription is expired exactly once, and nothing that is not due is touched.

use std::time::Duration;

use audit::{Action, Actor, AuditFilter};
use shortener_app::{AuditService, ManualClock, PageRequest, SubscriptionService};
use shortener_testing::TestDb;
use subscriptions::{Plan, PlanName, Plans, State};

use crate::support::Fixtures;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_sweeping_at_once_expire_each_due_subscription_once() {
    let db = TestDb::new().await;
    let plans = Plans::default().with(Plan {
        period: Duration::from_secs(60),
        ..Plan::default_for(PlanName::Trial)
    });
    let clock = ManualClock::new();
    let fixtures = Fixtures::new(&db.store(), clock.clone()).with_plans(plans.clone());
    let mut due = Vec::new();
    for i in 0..60 {
        due.push(fixtures.account(&format!("due {i}")).await);
    }
    // Created later: still in trial when the sweep runs.
    clock.advance(chrono::Duration::seconds(30));
    let fresh = fixtures.account("fresh").await;
    clock.advance(chrono::Duration::seconds(40));

    let a = SubscriptionService::new(db.store(), clock.clone(), plans.clone());
    let b = SubscriptionService::new(db.store(), clock.clone(), plans.clone());
    // Small batches so the two instances interleave over the same rows.
    let (mut total_a, mut total_b) = (0, 0);
    loop {
        let (x, y) = tokio::join!(a.expire_due(7), b.expire_due(7));
        let (x, y) = (x.unwrap(), y.unwrap());
        total_a += x;
        total_b += y;
        if x == 0 && y == 0 {
            break;
        }
    }
    assert_eq!(
        total_a + total_b,
        due.len(),
        "each due subscription expired exactly once"
    );
    // One `subscription.expired` entry per expiry, by the system, committed with it.
    let log = AuditService::new(db.store())
        .page(
            AuditFilter {
                action: Some(Action::SubscriptionExpired),
                ..AuditFilter::default()
            },
            PageRequest {
                after: None,
                limit: 500,
            },
        )
        .await
        .unwrap();
    let mut expired: Vec<String> = log.items.iter().map(|e| e.entity.id.clone()).collect();
    assert!(log.items.iter().all(|e| e.actor == Actor::System));
    expired.sort();
    let mut want: Vec<String> = due.iter().map(|id| id.as_uuid().to_string()).collect();
    want.sort();
    assert_eq!(expired, want);
    for id in due {
        let v = a.get(id).await.unwrap();
        assert_eq!((v.subscription.state(), v.version), (State::Expired, 2));
    }
    let v = a.get(fresh).await.unwrap();
    assert_eq!((v.subscription.state(), v.version), (State::Trial, 1));
}

//! Visit limits: what `take_visits` gives is exact however many instances ask at once.

use std::sync::Arc;

use shortener_app::{LinkStore, NewLink, SystemClock};
use shortener_domain::ShortCode;
use shortener_testing::TestDb;

use crate::support::Fixtures;

#[tokio::test]
async fn two_instances_taking_at_once_get_exactly_a_limits_visits_between_them() {
    let db = TestDb::new().await;
    // Two pools: two instances of the service, each with its own connections.
    let (one, two) = (db.store(), db.store());
    let fixtures = Fixtures::new(&one, Arc::new(SystemClock));
    let account = fixtures.account("Acme").await;
    let links = fixtures.link_service();
    let new = |max_visits: Option<i64>| NewLink {
        url: "https://example.com/".into(),
        max_visits,
        ..NewLink::default()
    };
    let limited = links.create(account, new(Some(10))).await.unwrap();
    let unlimited = links.create(account, new(None)).await.unwrap();

    // 20 batches at once, 10 from each instance, each asking 5 visits of the limited
    // link and 1 of the unlimited one.
    let mut batches = tokio::task::JoinSet::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { one.clone() } else { two.clone() };
        let asks = [(limited.id, 5), (unlimited.id, 1)];
        batches.spawn(async move { store.take_visits(&asks).await.unwrap() });
    }
    let mut granted = 0;
    while let Some(answer) = batches.join_next().await {
        let answer = answer.unwrap();
        assert!(
            answer.iter().all(|(id, _)| *id == limited.id),
            "a link without a limit is not in the answer: {answer:?}"
        );
        granted += answer.iter().map(|(_, left)| left.min(&5)).sum::<u64>();
    }
    assert_eq!(granted, 10);

    // Looking takes nothing; the link as read says it is spent.
    assert_eq!(
        two.take_visits(&[(limited.id, 0)]).await.unwrap(),
        vec![(limited.id, 0)]
    );
    let code = ShortCode::parse(limited.code.as_str()).unwrap();
    let read = one.link_by_code(&code).await.unwrap().unwrap();
    let limit = read.visit_limit.unwrap();
    assert_eq!((limit.max.get(), limit.used, limit.left()), (10, 10, 0));
    // What a redirect caches knows which links are limited.
    let resolved = one
        .resolve_codes(&[code, unlimited.code.clone()])
        .await
        .unwrap();
    assert_eq!(resolved.len(), 2);
    for (code, r) in &resolved {
        assert_eq!(r.limited, *code == limited.code, "{code}");
    }
}

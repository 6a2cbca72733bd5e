//! The shared rate-limit ledger (`shortener.rate_take`, migration 000015) as the service
//! role calls it: exact under concurrent instances, what is given back is free again, and
//! the window slides by whole-second slots.

use std::num::NonZeroU32;

use shortener_app::{RateLedger, Take, Taken};
use shortener_domain::rate::{Limit, Policy};
use uuid::Uuid;

fn take(partition: Uuid, q: u32, slot: u64, want: u32, give_back: Option<(u64, u32)>) -> Take {
    Take {
        policy: Policy::Requests,
        partition,
        limit: Limit {
            quota: NonZeroU32::new(q).unwrap(),
            window_secs: NonZeroU32::new(60).unwrap(),
        },
        slot,
        want,
        give_back,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takes_never_grant_more_than_the_quota() {
    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let key = Uuid::now_v7();
    let tasks: Vec<_> = (0..8u32)
        .map(|t| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut granted = 0;
                for i in 0..40u32 {
                    let want = 1 + (t + i) % 3;
                    let got = store
                        .take(&take(key, 100, 5_000, want, None))
                        .await
                        .unwrap();
                    assert!(got.counted <= 100, "{got:?}");
                    granted += got.granted;
                }
                granted
            })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += t.await.unwrap();
    }
    assert_eq!(granted, 100, "exactly the quota, asked for 8 x 40 times");
}

#[tokio::test]
async fn given_back_admissions_are_free_again_and_the_window_slides() {
    let db = shortener_testing::TestDb::new().await;
    let store = db.store();
    let key = Uuid::now_v7();
    let other = Uuid::now_v7();
    let first = store.take(&take(key, 5, 100, 4, None)).await.unwrap();
    assert_eq!(
        first,
        Taken {
            granted: 4,
            counted: 4,
            oldest: Some(100)
        }
    );
    // Two of those were not used: given back, they are granted again.
    let second = store
        .take(&take(key, 5, 101, 3, Some((100, 2))))
        .await
        .unwrap();
    assert_eq!(
        second,
        Taken {
            granted: 3,
            counted: 5,
            oldest: Some(100)
        }
    );
    let full = store.take(&take(key, 5, 102, 1, None)).await.unwrap();
    assert_eq!(full.granted, 0);
    assert_eq!(full.counted, 5);
    // Another key is untouched.
    assert_eq!(
        store
            .take(&take(other, 5, 102, 1, None))
            .await
            .unwrap()
            .granted,
        1
    );
    // Slot 100 counts through slot 160 and leaves at 161; slot 101's three stay.
    assert_eq!(
        store
            .take(&take(key, 5, 160, 1, None))
            .await
            .unwrap()
            .granted,
        0
    );
    let slid = store.take(&take(key, 5, 161, 5, None)).await.unwrap();
    assert_eq!(
        slid,
        Taken {
            granted: 2,
            counted: 5,
            oldest: Some(101)
        }
    );
}

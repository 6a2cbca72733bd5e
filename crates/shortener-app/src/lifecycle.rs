//! Subscription use cases: read, transition (optimistically, on the version), list, and
//! write down due expiries. The rules themselves live in the `subscriptions` crate.

use std::sync::Arc;

use shortener_domain::AccountId;
use subscriptions::{Plans, State, Transition, Versioned};

use crate::{AppError, Clock, Page, PageRequest, SubscriptionStore};

/// How often an unconditional transition re-reads and retries after losing a race before
/// giving up. Losing five times in a row needs a storm of writes to one subscription.
const RACE_RETRIES: usize = 5;

/// Subscription administration and the expiry sweep.
pub struct SubscriptionService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    plans: Plans,
}

impl<S: SubscriptionStore> SubscriptionService<S> {
    /// Builds the service with the configured plans.
    pub fn new(store: S, clock: Arc<dyn Clock>, plans: Plans) -> Self {
        SubscriptionService {
            store,
            clock,
            plans,
        }
    }

    /// An account's subscription as it truly is now.
    pub async fn get(&self, account: AccountId) -> Result<Versioned, AppError> {
        let now = self.clock.now();
        let mut v = self
            .store
            .subscription(account)
            .await?
            .ok_or(AppError::NotFound)?;
        v.subscription = v.subscription.effective_at(now);
        Ok(v)
    }

    /// Applies `transition`. With `if_match`, the caller's version must be current and stay
    /// current until the write (412 otherwise). Without it, a lost race is retried on the
    /// fresh state, so every accepted call is applied and none is lost; two racing calls
    /// never both apply to the same version, because the write is conditional on it.
    pub async fn transition(
        &self,
        account: AccountId,
        transition: Transition,
        if_match: Option<i64>,
    ) -> Result<Versioned, AppError> {
        for _ in 0..RACE_RETRIES {
            let current = self
                .store
                .subscription(account)
                .await?
                .ok_or(AppError::NotFound)?;
            if let Some(expected) = if_match
                && expected != current.version
            {
                return Err(AppError::VersionMismatch {
                    expected,
                    current: current.version,
                });
            }
            let now = self.clock.now();
            let next = current.subscription.apply(&transition, now, &self.plans)?;
            if self
                .store
                .replace_subscription(account, current.version, &next, now)
                .await?
            {
                return Ok(Versioned {
                    subscription: next,
                    version: current.version + 1,
                });
            }
            if let Some(expected) = if_match {
                let current = self
                    .store
                    .subscription(account)
                    .await?
                    .map_or(expected, |v| v.version);
                return Err(AppError::VersionMismatch { expected, current });
            }
        }
        Err(AppError::Unavailable(
            "the subscription is changing too fast; retry".into(),
        ))
    }

    /// Subscriptions by effective state, in account order.
    pub async fn list(
        &self,
        state: Option<State>,
        page: PageRequest,
    ) -> Result<Page<(AccountId, Versioned)>, AppError> {
        let now = self.clock.now();
        let rows = self.store.list_subscriptions(state, now, page).await?;
        let mut page = Page::from_overfetch(rows, page.limit, |(a, _)| a.as_uuid());
        for (_, v) in &mut page.items {
            v.subscription = v.subscription.effective_at(now);
        }
        Ok(page)
    }

    /// Writes down up to `limit` expiries that are due, through the same transition code
    /// as the admin calls. Safe with many instances sweeping at once: each write is
    /// conditional on the version read, so a subscription expires exactly once.
    /// Returns how many this call expired.
    pub async fn expire_due(&self, limit: u32) -> Result<usize, AppError> {
        let now = self.clock.now();
        let mut expired = 0;
        for (account, current) in self.store.due_for_expiry(now, limit).await? {
            let Ok(next) = current
                .subscription
                .apply(&Transition::Expire, now, &self.plans)
            else {
                continue; // changed under us since the query: nothing is due any more
            };
            if self
                .store
                .replace_subscription(account, current.version, &next, now)
                .await?
            {
                tracing::info!(account = %account, version = current.version + 1, "subscription expired");
                expired += 1;
            }
        }
        Ok(expired)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use subscriptions::{Plan, PlanName, Subscription};

    use super::*;
    use crate::memory::{ManualClock, MemoryStore};
    use crate::{AccountService, LinkService, NewLink};

    fn plans() -> Plans {
        Plans::default().with(Plan {
            period: Duration::from_secs(60),
            links_per_month: 2,
            ..Plan::default_for(PlanName::Trial)
        })
    }

    struct Fixture {
        clock: Arc<ManualClock>,
        accounts: AccountService<MemoryStore>,
        subs: SubscriptionService<MemoryStore>,
        links: LinkService<MemoryStore>,
    }

    fn fixture() -> Fixture {
        let store = MemoryStore::default();
        let clock = ManualClock::new();
        let policy =
            shortener_domain::UrlPolicy::new(&url::Url::parse("https://sho.rt").unwrap(), false);
        Fixture {
            accounts: AccountService::new(store.clone(), clock.clone(), plans()),
            subs: SubscriptionService::new(store.clone(), clock.clone(), plans()),
            links: LinkService::new(store, clock.clone(), policy, plans()),
            clock,
        }
    }

    #[tokio::test]
    async fn transitions_bump_the_version_and_honour_if_match() {
        let f = fixture();
        let id = f.accounts.create("Acme").await.unwrap().account.id;
        let active = f
            .subs
            .transition(id, Transition::Activate(PlanName::Pro), Some(1))
            .await
            .unwrap();
        assert_eq!(active.version, 2);
        assert!(matches!(
            active.subscription,
            Subscription::Active {
                plan: PlanName::Pro,
                ..
            }
        ));
        assert!(matches!(
            f.subs
                .transition(id, Transition::Activate(PlanName::Pro), None)
                .await,
            Err(AppError::InvalidTransition {
                from: State::Active,
                ..
            })
        ));
        assert!(matches!(
            f.subs.transition(id, Transition::Renew, Some(1)).await,
            Err(AppError::VersionMismatch {
                expected: 1,
                current: 2
            })
        ));
        let renewed = f
            .subs
            .transition(id, Transition::Renew, Some(2))
            .await
            .unwrap();
        assert_eq!(renewed.version, 3);
        assert!(matches!(
            f.subs
                .transition(AccountId::new(), Transition::Renew, None)
                .await,
            Err(AppError::NotFound)
        ));
    }

    #[tokio::test]
    async fn due_expiries_are_written_once_and_reads_never_lag() {
        let f = fixture();
        let id = f.accounts.create("Acme").await.unwrap().account.id;
        assert_eq!(f.subs.expire_due(100).await.unwrap(), 0);
        f.clock.advance(chrono::Duration::seconds(61));
        // Read as expired before anything is written.
        let read = f.subs.get(id).await.unwrap();
        assert_eq!(read.subscription.state(), State::Expired);
        assert_eq!(read.version, 1);
        assert_eq!(f.subs.expire_due(100).await.unwrap(), 1);
        assert_eq!(f.subs.expire_due(100).await.unwrap(), 0);
        assert_eq!(f.subs.get(id).await.unwrap().version, 2);
    }

    #[tokio::test]
    async fn link_creation_is_gated_by_the_subscription() {
        let f = fixture();
        let id = f.accounts.create("Acme").await.unwrap().account.id;
        let new = |code: Option<&str>| NewLink {
            url: "https://example.com/".into(),
            code: code.map(str::to_owned),
            expires_at: None,
        };
        assert!(matches!(
            f.links.create(id, new(Some("mine"))).await,
            Err(AppError::Forbidden(_))
        ));
        f.links.create(id, new(None)).await.unwrap();
        f.links.create(id, new(None)).await.unwrap();
        assert!(matches!(
            f.links.create(id, new(None)).await,
            Err(AppError::QuotaExceeded(_))
        ));
        f.subs
            .transition(id, Transition::Cancel("done".into()), None)
            .await
            .unwrap();
        assert!(matches!(
            f.links.create(id, new(None)).await,
            Err(AppError::SubscriptionInactive(_))
        ));
    }
}

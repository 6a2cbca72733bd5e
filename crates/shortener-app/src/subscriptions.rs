//! Subscription use cases: read, transition (optimistically, on the version), list, and
//! write down due expiries. The rules themselves live in the `subscriptions` crate.

use std::sync::Arc;

use audit::{Action, Actor, Changes};
use chrono::{DateTime, Utc};
use shortener_domain::{AccountId, KeyId};
use subscriptions::{Plans, State, Subscription, Transition, Versioned};

use crate::accounts::admin_actor;
use crate::{AppError, Clock, Page, PageRequest, SubscriptionStore, Tx, UnitOfWork, audit_log};

/// Subscription administration and the expiry sweep.
pub struct SubscriptionService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    plans: Arc<Plans>,
}

impl<S: SubscriptionStore + UnitOfWork> SubscriptionService<S> {
    /// Builds the service with the configured plans.
    pub fn new(store: S, clock: Arc<dyn Clock>, plans: Plans) -> Self {
        SubscriptionService {
            store,
            clock,
            plans: Arc::new(plans),
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

    /// Applies `transition` for the operator holding `admin`. The subscription is read
    /// and locked in the transaction that writes it, so racing transitions queue and each
    /// decides on the state the previous one left: none is lost, none applies twice. With
    /// `if_match`, the version found must be the caller's (412 otherwise).
    pub async fn transition(
        &self,
        admin: KeyId,
        account: AccountId,
        transition: Transition,
        if_match: Option<i64>,
    ) -> Result<Versioned, AppError> {
        // A request no subscription could accept is invalid, whatever the state or
        // `If-Match` say (and costs no transaction).
        transition.check()?;
        let now = self.clock.now();
        let plans = self.plans.clone();
        self.store
            .run(move |tx| {
                Box::pin(async move {
                    let current = tx
                        .subscription_for_update(account)
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
                    let next = current.subscription.apply(&transition, now, &plans)?;
                    write(
                        tx,
                        account,
                        &current,
                        next,
                        &transition,
                        now,
                        admin_actor(admin),
                    )
                    .await
                })
            })
            .await
    }

    /// Subscriptions by effective state, in account order.
    pub async fn list(
        &self,
        state: Option<State>,
        page: PageRequest,
    ) -> Result<Page<(AccountId, Versioned)>, AppError> {
        let now = self.clock.now();
        let rows = self
            .store
            .list_subscriptions(state, now, page.overfetch())
            .await?;
        let mut page = Page::from_overfetch(rows, page.limit, |(a, _)| a.as_uuid());
        for (_, v) in &mut page.items {
            v.subscription = v.subscription.effective_at(now);
        }
        Ok(page)
    }

    /// Writes down up to `limit` expiries that are due, through the same transition code
    /// as the admin calls, each in its own transaction with its `subscription.expired`
    /// entry by the system. Safe with many instances sweeping at once: each re-reads the
    /// subscription under lock, so a subscription expires exactly once.
    /// Returns how many this call expired.
    pub async fn expire_due(&self, limit: u32) -> Result<usize, AppError> {
        let now = self.clock.now();
        let mut expired = 0;
        for (account, _) in self.store.due_for_expiry(now, limit).await? {
            let plans = self.plans.clone();
            let written = self
                .store
                .run(move |tx| {
                    Box::pin(async move {
                        let Some(current) = tx.subscription_for_update(account).await? else {
                            return Ok(None);
                        };
                        let Ok(next) = current.subscription.apply(&Transition::Expire, now, &plans)
                        else {
                            return Ok(None); // changed since the query: nothing is due now
                        };
                        let written = write(
                            tx,
                            account,
                            &current,
                            next,
                            &Transition::Expire,
                            now,
                            Actor::System,
                        )
                        .await?;
                        Ok(Some(written))
                    })
                })
                .await?;
            if let Some(v) = written {
                tracing::info!(account = %account, version = v.version, "subscription expired");
                expired += 1;
            }
        }
        Ok(expired)
    }
}

/// The audit action a transition records.
fn action_of(transition: &Transition) -> Action {
    match transition {
        Transition::Activate(_) => Action::SubscriptionActivated,
        Transition::Renew => Action::SubscriptionRenewed,
        Transition::Cancel(_) => Action::SubscriptionCancelled,
        Transition::Expire => Action::SubscriptionExpired,
    }
}

/// Writes `next` over the locked `current` and records the transition, field by field.
async fn write(
    tx: &mut dyn Tx,
    account: AccountId,
    current: &Versioned,
    next: Subscription,
    transition: &Transition,
    now: DateTime<Utc>,
    actor: Actor,
) -> Result<Versioned, AppError> {
    if !tx
        .replace_subscription(account, current.version, &next, now)
        .await?
    {
        // The row is locked by this transaction; a mismatch means the lock did not hold.
        return Err(AppError::internal("subscription changed under its lock"));
    }
    let next = Versioned {
        subscription: next,
        version: current.version + 1,
    };
    tx.record(audit_log::entry(
        now,
        actor,
        action_of(transition),
        account.as_uuid().to_string(),
        account,
        Changes::diff(
            &audit_log::subscription_fields(current),
            &audit_log::subscription_fields(&next),
        ),
    ))
    .await?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use subscriptions::{Plan, PlanName, Subscription};

    use super::*;
    use crate::NewLink;
    use crate::memory::Services;

    fn admin() -> KeyId {
        KeyId::from_uuid(uuid::Uuid::nil())
    }

    fn plans() -> Plans {
        Plans::default().with(Plan {
            period: Duration::from_secs(60),
            links_per_month: 2,
            ..Plan::default_for(PlanName::Trial)
        })
    }

    #[tokio::test]
    async fn transitions_bump_the_version_and_honour_if_match() {
        let f = Services::with_plans(plans());
        let id = f.accounts.create(admin(), "Acme").await.unwrap().account.id;
        let active = f
            .subs
            .transition(admin(), id, Transition::Activate(PlanName::Pro), Some(1))
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
                .transition(admin(), id, Transition::Activate(PlanName::Pro), None)
                .await,
            Err(AppError::InvalidTransition {
                from: State::Active,
                ..
            })
        ));
        assert!(matches!(
            f.subs
                .transition(admin(), id, Transition::Renew, Some(1))
                .await,
            Err(AppError::VersionMismatch {
                expected: 1,
                current: 2
            })
        ));
        let renewed = f
            .subs
            .transition(admin(), id, Transition::Renew, Some(2))
            .await
            .unwrap();
        assert_eq!(renewed.version, 3);
        assert!(matches!(
            f.subs
                .transition(admin(), AccountId::new(), Transition::Renew, None)
                .await,
            Err(AppError::NotFound)
        ));
    }

    #[tokio::test]
    async fn due_expiries_are_written_once_and_reads_never_lag() {
        let f = Services::with_plans(plans());
        let id = f.accounts.create(admin(), "Acme").await.unwrap().account.id;
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
        let f = Services::with_plans(plans());
        let id = f.accounts.create(admin(), "Acme").await.unwrap().account.id;
        let new = |code: Option<&str>| NewLink {
            url: "https://example.com/".into(),
            code: code.map(str::to_owned),
            expires_at: None,
            ..Default::default()
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
            .transition(admin(), id, Transition::Cancel("done".into()), None)
            .await
            .unwrap();
        assert!(matches!(
            f.links.create(id, new(None)).await,
            Err(AppError::SubscriptionInactive(_))
        ));
    }
}

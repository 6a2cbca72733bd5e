//! Operator use cases: accounts (each with its subscription) and their API keys.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shortener_domain::{Account, AccountId, AccountName, KeyId};
use subscriptions::{PlanName, Plans, Subscription, Versioned};

use audit::{Action, Actor, Changes, Value};

use crate::keys::{self, KeyOwner};
use crate::{AccountStore, AppError, Clock, Page, PageRequest, Revoked, UnitOfWork, audit_log};

/// An account as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountView {
    /// The account.
    pub account: Account,
    /// Its subscription as stored (see [`AccountView::effective`]).
    pub subscription: Versioned,
}

impl AccountView {
    /// The view with the subscription as it truly is at `now` (a passed trial reads as
    /// expired even before anything has written that down).
    pub fn effective(mut self, now: DateTime<Utc>) -> AccountView {
        self.subscription.subscription = self.subscription.subscription.effective_at(now);
        self
    }
}

/// A key just created for an account; `plaintext` is shown once and never again.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// The key's id.
    pub id: KeyId,
    /// The full key.
    pub plaintext: String,
    /// Its non-secret prefix.
    pub prefix: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Account and key administration.
pub struct AccountService<S> {
    store: S,
    clock: Arc<dyn Clock>,
    plans: Plans,
}

impl<S: AccountStore + UnitOfWork> AccountService<S> {
    /// Builds the service with the configured plans.
    pub fn new(store: S, clock: Arc<dyn Clock>, plans: Plans) -> Self {
        AccountService {
            store,
            clock,
            plans,
        }
    }

    /// Creates an account; it starts in a trial of the trial plan's length. `admin` is
    /// the operator's key, recorded as the actor.
    pub async fn create(&self, admin: KeyId, name: &str) -> Result<AccountView, AppError> {
        let now = self.clock.now();
        let account = Account {
            id: AccountId::new(),
            name: AccountName::parse(name)?,
            created_at: now,
        };
        let subscription = Versioned {
            subscription: Subscription::start_trial(now, self.plans.get(PlanName::Trial)),
            version: 1,
        };
        let view = AccountView {
            account,
            subscription,
        };
        self.store
            .run(move |tx| {
                Box::pin(async move {
                    tx.insert_account(&view.account, &view.subscription).await?;
                    tx.record(audit_log::account_created(
                        admin_actor(admin),
                        &view.account,
                    ))
                    .await?;
                    Ok(view)
                })
            })
            .await
    }

    /// One account.
    pub async fn get(&self, id: AccountId) -> Result<AccountView, AppError> {
        let now = self.clock.now();
        self.store
            .account(id)
            .await?
            .map(|v| v.effective(now))
            .ok_or(AppError::NotFound)
    }

    /// Accounts, oldest first.
    pub async fn list(&self, page: PageRequest) -> Result<Page<AccountView>, AppError> {
        let now = self.clock.now();
        let rows = self.store.list_accounts(page.overfetch()).await?;
        let mut page = Page::from_overfetch(rows, page.limit, |v| v.account.id.as_uuid());
        page.items = page.items.into_iter().map(|v| v.effective(now)).collect();
        Ok(page)
    }

    /// Issues a new key for an existing account.
    pub async fn create_key(&self, admin: KeyId, account: AccountId) -> Result<NewKey, AppError> {
        // Accounts are never deleted, so checking outside the transaction is exact.
        if self.store.account(account).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let issued = keys::issue(KeyOwner::Account(account), self.clock.now());
        let stored = issued.stored.clone();
        self.store
            .run(move |tx| {
                Box::pin(async move {
                    tx.insert_key(&stored).await?;
                    tx.record(audit_log::key_created(admin_actor(admin), account, &stored))
                        .await
                })
            })
            .await?;
        Ok(NewKey {
            id: issued.stored.id,
            prefix: issued.stored.prefix(),
            created_at: issued.stored.created_at,
            plaintext: issued.plaintext,
        })
    }

    /// Revokes one of an account's keys; it stops working at once. Revoking a revoked key
    /// again succeeds and changes (and records) nothing.
    pub async fn revoke_key(
        &self,
        admin: KeyId,
        account: AccountId,
        key: KeyId,
    ) -> Result<(), AppError> {
        let now = self.clock.now();
        self.store
            .run(move |tx| {
                Box::pin(async move {
                    match tx.revoke_key(account, key, now).await? {
                        Revoked::NoSuchKey => Err(AppError::NotFound),
                        Revoked::Already => Ok(()),
                        Revoked::Now => {
                            tx.record(audit_log::entry(
                                now,
                                admin_actor(admin),
                                Action::KeyRevoked,
                                key.as_uuid().to_string(),
                                account,
                                Changes::diff(
                                    &[("revoked_at", Value::Null)],
                                    &[("revoked_at", now.into())],
                                ),
                            ))
                            .await
                        }
                    }
                })
            })
            .await
    }
}

/// An operator acts through an admin key; the audit log names the key.
pub(crate) fn admin_actor(key: KeyId) -> Actor {
    Actor::Admin(key.as_uuid())
}

//! Operator use cases: accounts (each with its subscription) and their API keys.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shortener_domain::{Account, AccountId, AccountName, KeyId};
use subscriptions::{PlanName, Plans, Subscription, Versioned};

use crate::keys::{self, KeyOwner};
use crate::{AccountStore, AppError, Clock, KeyStore, Page, PageRequest};

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

impl<S: AccountStore + KeyStore> AccountService<S> {
    /// Builds the service with the configured plans.
    pub fn new(store: S, clock: Arc<dyn Clock>, plans: Plans) -> Self {
        AccountService {
            store,
            clock,
            plans,
        }
    }

    /// Creates an account; it starts in a trial of the trial plan's length.
    pub async fn create(&self, name: &str) -> Result<AccountView, AppError> {
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
        self.store.create_account(&account, &subscription).await?;
        Ok(AccountView {
            account,
            subscription,
        })
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
        let rows = self.store.list_accounts(page).await?;
        let mut page = Page::from_overfetch(rows, page.limit, |v| v.account.id.as_uuid());
        page.items = page.items.into_iter().map(|v| v.effective(now)).collect();
        Ok(page)
    }

    /// Issues a new key for an existing account.
    pub async fn create_key(&self, account: AccountId) -> Result<NewKey, AppError> {
        if self.store.account(account).await?.is_none() {
            return Err(AppError::NotFound);
        }
        let issued = keys::issue(KeyOwner::Account(account), self.clock.now());
        self.store.insert_key(&issued.stored).await?;
        Ok(NewKey {
            id: issued.stored.id,
            prefix: issued.stored.prefix(),
            created_at: issued.stored.created_at,
            plaintext: issued.plaintext,
        })
    }

    /// Revokes one of an account's keys; it stops working at once.
    pub async fn revoke_key(&self, account: AccountId, key: KeyId) -> Result<(), AppError> {
        if self
            .store
            .revoke_key(account, key, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(AppError::NotFound)
        }
    }
}

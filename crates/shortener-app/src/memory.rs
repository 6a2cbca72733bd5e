//! An in-memory implementation of the ports, for unit tests of the use cases only. Storage
//! behaviour is tested against real PostgreSQL in shortener-pg and shortener-http.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, NaiveDate, Utc};
use shortener_domain::{Account, AccountId, KeyId, Link, LinkId, ShortCode};
use subscriptions::{State as SubState, Subscription, Versioned};

use crate::{
    AccountStore, AccountView, AppError, Inserted, KeyOwner, KeyStore, LinkStore, PageRequest,
    StoredKey, SubscriptionStore,
};

#[derive(Default)]
struct State {
    links: Vec<(Link, bool)>,
    daily: HashMap<(LinkId, NaiveDate), i64>,
    accounts: Vec<AccountView>,
    keys: Vec<StoredKey>,
    usage: HashMap<(AccountId, NaiveDate), u64>,
}

#[derive(Clone, Default)]
pub struct MemoryStore(Arc<Mutex<State>>);

impl LinkStore for MemoryStore {
    async fn insert_link<G>(
        &self,
        link: &Link,
        month: NaiveDate,
        gate: G,
    ) -> Result<Inserted, AppError>
    where
        G: FnOnce(&Versioned) -> Result<u64, AppError> + Send,
    {
        // One lock for the whole check-and-insert: the same atomicity PostgreSQL gives.
        let mut s = self.0.lock().unwrap();
        let sub = s
            .accounts
            .iter()
            .find(|v| v.account.id == link.account_id)
            .map(|v| v.subscription.clone())
            .ok_or_else(|| AppError::Internal("no subscription".into()))?;
        let allowance = gate(&sub)?;
        let used = s.usage.get(&(link.account_id, month)).copied().unwrap_or(0);
        if used >= allowance {
            return Err(AppError::QuotaExceeded(format!(
                "this month's allowance of {allowance} links is used up"
            )));
        }
        if s.links.iter().any(|(l, _)| l.code == link.code) {
            return Ok(Inserted::CodeTaken);
        }
        s.usage.insert((link.account_id, month), used + 1);
        s.links.push((link.clone(), false));
        Ok(Inserted::Created)
    }

    async fn link_by_code(&self, code: &ShortCode) -> Result<Option<Link>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.links
            .iter()
            .find(|(l, deleted)| &l.code == code && !deleted)
            .map(|(l, _)| l.clone()))
    }

    async fn list_links(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> Result<Vec<Link>, AppError> {
        let s = self.0.lock().unwrap();
        let mut links: Vec<Link> = s
            .links
            .iter()
            .filter(|(l, deleted)| l.account_id == account && !deleted)
            .filter(|(l, _)| page.after.is_none_or(|a| l.id.as_uuid() < a))
            .map(|(l, _)| l.clone())
            .collect();
        links.sort_by_key(|l| std::cmp::Reverse(l.id));
        links.truncate(page.limit as usize + 1);
        Ok(links)
    }

    async fn update_link(&self, link: &Link) -> Result<bool, AppError> {
        let mut s = self.0.lock().unwrap();
        Ok(
            match s.links.iter_mut().find(|(l, d)| l.id == link.id && !d) {
                Some((l, _)) => {
                    l.target = link.target.clone();
                    l.expires_at = link.expires_at;
                    true
                }
                None => false,
            },
        )
    }

    async fn delete_link(&self, id: LinkId, _at: DateTime<Utc>) -> Result<bool, AppError> {
        let mut s = self.0.lock().unwrap();
        Ok(match s.links.iter_mut().find(|(l, d)| l.id == id && !d) {
            Some((_, d)) => {
                *d = true;
                true
            }
            None => false,
        })
    }

    async fn count_click(&self, id: LinkId, day: NaiveDate) -> Result<(), AppError> {
        let mut s = self.0.lock().unwrap();
        if let Some((l, _)) = s.links.iter_mut().find(|(l, _)| l.id == id) {
            l.clicks += 1;
        }
        *s.daily.entry((id, day)).or_default() += 1;
        Ok(())
    }

    async fn daily_clicks(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(NaiveDate, i64)>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.daily
            .iter()
            .filter(|((l, d), _)| *l == id && *d >= from && *d <= to)
            .map(|((_, d), c)| (*d, *c))
            .collect())
    }
}

impl AccountStore for MemoryStore {
    async fn create_account(
        &self,
        account: &Account,
        subscription: &subscriptions::Versioned,
    ) -> Result<(), AppError> {
        self.0.lock().unwrap().accounts.push(AccountView {
            account: account.clone(),
            subscription: subscription.clone(),
        });
        Ok(())
    }

    async fn account(&self, id: AccountId) -> Result<Option<AccountView>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts.iter().find(|v| v.account.id == id).cloned())
    }

    async fn list_accounts(&self, page: PageRequest) -> Result<Vec<AccountView>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .filter(|v| page.after.is_none_or(|a| v.account.id.as_uuid() > a))
            .take(page.limit as usize + 1)
            .cloned()
            .collect())
    }
}

impl KeyStore for MemoryStore {
    async fn insert_key(&self, key: &StoredKey) -> Result<(), AppError> {
        self.0.lock().unwrap().keys.push(key.clone());
        Ok(())
    }

    async fn key_by_lookup(&self, lookup: &str) -> Result<Option<StoredKey>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.keys.iter().find(|k| k.lookup == lookup).cloned())
    }

    async fn revoke_key(
        &self,
        account: AccountId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let mut s = self.0.lock().unwrap();
        match s
            .keys
            .iter_mut()
            .find(|k| k.id == id && k.owner == KeyOwner::Account(account))
        {
            Some(k) => {
                k.revoked_at.get_or_insert(at);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn put_bootstrap_key(&self, key: &StoredKey) -> Result<(), AppError> {
        let mut s = self.0.lock().unwrap();
        s.keys.retain(|k| k.lookup != key.lookup);
        s.keys.push(key.clone());
        Ok(())
    }
}

impl SubscriptionStore for MemoryStore {
    async fn subscription(&self, account: AccountId) -> Result<Option<Versioned>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .find(|v| v.account.id == account)
            .map(|v| v.subscription.clone()))
    }

    async fn replace_subscription(
        &self,
        account: AccountId,
        expected: i64,
        next: &Subscription,
        _at: DateTime<Utc>,
    ) -> Result<bool, AppError> {
        let mut s = self.0.lock().unwrap();
        match s
            .accounts
            .iter_mut()
            .find(|v| v.account.id == account && v.subscription.version == expected)
        {
            Some(v) => {
                v.subscription = Versioned {
                    subscription: next.clone(),
                    version: expected + 1,
                };
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn list_subscriptions(
        &self,
        state: Option<SubState>,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> Result<Vec<(AccountId, Versioned)>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .filter(|v| page.after.is_none_or(|a| v.account.id.as_uuid() > a))
            .filter(|v| {
                state.is_none_or(|st| v.subscription.subscription.effective_at(now).state() == st)
            })
            .take(page.limit as usize + 1)
            .map(|v| (v.account.id, v.subscription.clone()))
            .collect())
    }

    async fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(AccountId, Versioned)>, AppError> {
        let s = self.0.lock().unwrap();
        Ok(s.accounts
            .iter()
            .filter(|v| {
                !v.subscription.subscription.state().is_terminal()
                    && v.subscription.subscription.effective_at(now).state() == SubState::Expired
            })
            .take(limit as usize)
            .map(|v| (v.account.id, v.subscription.clone()))
            .collect())
    }
}

/// A clock the test moves by hand.
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(Utc::now())))
    }

    pub fn advance(&self, d: chrono::Duration) {
        *self.0.lock().unwrap() += d;
    }
}

impl crate::Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

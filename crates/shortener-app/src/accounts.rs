//! Operator use cases: accounts (each with its subscription) and their API keys.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use shortener_domain::{Account, AccountId, AccountName, KeyId};
use subscriptions::{PlanName, Plans, Subscription, Versioned};

use audit::{Action, Actor, Changes, Value};

use crate::keys::{self, KeyOwner};
use crate::{
    AccountStore, AppError, Clock, KeyStore, Page, PageRequest, Revoked, StoredKey, UnitOfWork,
    audit_log,
};

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

/// The longest text an account search takes, in characters (names hold up to 200).
pub const MAX_NAME_SEARCH_CHARS: usize = 100;

/// What an account's name must contain, ignoring letter case, to be listed: the operators'
/// search box. Trimmed first (names never start or end with whitespace, so the spaces
/// around a pasted name would only make it miss), then 1 to [`MAX_NAME_SEARCH_CHARS`]
/// characters: an empty search is a mistake, not "everything".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameSearch(String);

impl NameSearch {
    /// Validates a search text as given by an operator.
    pub fn parse(text: &str) -> Result<NameSearch, AppError> {
        let text = text.trim();
        if !(1..=MAX_NAME_SEARCH_CHARS).contains(&text.chars().count()) {
            return Err(AppError::Validation(format!(
                "q must be 1 to {MAX_NAME_SEARCH_CHARS} characters (after trimming)"
            )));
        }
        Ok(NameSearch(text.to_owned()))
    }

    /// The text, trimmed.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `name` contains the text, ignoring letter case: the rule, for stores that
    /// filter in memory. Every character matches only itself (no wildcards).
    pub fn keeps(&self, name: &AccountName) -> bool {
        name.as_str()
            .to_lowercase()
            .contains(&self.0.to_lowercase())
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

impl<S: AccountStore + KeyStore + UnitOfWork> AccountService<S> {
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

    /// Accounts, oldest first; with `name`, only those whose name contains it. The cursor
    /// is a position in the whole list, so the pages of one search follow each other.
    pub async fn list(
        &self,
        name: Option<&NameSearch>,
        page: PageRequest,
    ) -> Result<Page<AccountView>, AppError> {
        let now = self.clock.now();
        let rows = self.store.list_accounts(name, page.overfetch()).await?;
        let mut page = Page::from_overfetch(rows, page.limit, |v| v.account.id.as_uuid());
        page.items = page.items.into_iter().map(|v| v.effective(now)).collect();
        Ok(page)
    }

    /// An account's keys, newest first, revoked ones included (with when): what an
    /// operator needs to tell which key to revoke. Never the keys themselves, which are
    /// not stored.
    pub async fn keys(&self, account: AccountId) -> Result<Vec<StoredKey>, AppError> {
        // Accounts are never deleted, so an account without keys is told from none at all.
        if self.store.account(account).await?.is_none() {
            return Err(AppError::NotFound);
        }
        self.store.keys_of(account).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::Services;

    #[test]
    fn a_search_is_trimmed_bounded_and_ignores_letter_case() {
        let s = NameSearch::parse("  ACME ").unwrap();
        assert_eq!(s.as_str(), "ACME");
        let name = |n: &str| AccountName::parse(n).unwrap();
        assert!(s.keeps(&name("Acme Corp")));
        assert!(s.keeps(&name("the acme labs")));
        assert!(!s.keeps(&name("Acne")));
        // No wildcards: `%` and `_` are characters like any other.
        let percent = NameSearch::parse("50%").unwrap();
        assert!(percent.keeps(&name("Save 50% Ltd")));
        assert!(!percent.keeps(&name("Save 500 Ltd")));
        assert!(!NameSearch::parse("a_c").unwrap().keeps(&name("abc")));

        for bad in ["", "   ", &"a".repeat(MAX_NAME_SEARCH_CHARS + 1)] {
            assert!(
                matches!(NameSearch::parse(bad), Err(AppError::Validation(_))),
                "{bad:?}"
            );
        }
        let longest = "é".repeat(MAX_NAME_SEARCH_CHARS);
        assert!(NameSearch::parse(&format!(" {longest} ")).is_ok());
    }

    #[tokio::test]
    async fn a_search_lists_only_matching_accounts_page_after_page() {
        let Services {
            accounts, admin, ..
        } = Services::new();
        for name in ["Acme Corp", "Other", "acme labs", "Acne"] {
            accounts.create(admin, name).await.unwrap();
        }
        let search = NameSearch::parse("ACME").unwrap();
        let mut after = None;
        let mut seen = Vec::new();
        loop {
            let page = accounts
                .list(Some(&search), PageRequest { after, limit: 1 })
                .await
                .unwrap();
            seen.extend(page.items.iter().map(|v| v.account.name.to_string()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ["Acme Corp", "acme labs"]);
        let all = accounts
            .list(
                None,
                PageRequest {
                    after: None,
                    limit: 10,
                },
            )
            .await
            .unwrap();
        assert_eq!(all.items.len(), 4, "no search lists every account");
    }

    #[tokio::test]
    async fn keys_are_listed_newest_first_revoked_ones_included() {
        let Services {
            accounts,
            clock,
            admin,
            ..
        } = Services::new();
        let account = accounts.create(admin, "Acme").await.unwrap().account.id;
        let other = accounts.create(admin, "Other").await.unwrap().account.id;
        assert_eq!(accounts.keys(account).await.unwrap(), []);

        let first = accounts.create_key(admin, account).await.unwrap();
        clock.advance(chrono::Duration::seconds(1));
        let second = accounts.create_key(admin, account).await.unwrap();
        accounts.create_key(admin, other).await.unwrap();
        clock.advance(chrono::Duration::seconds(1));
        accounts.revoke_key(admin, account, first.id).await.unwrap();

        let keys = accounts.keys(account).await.unwrap();
        let ids: Vec<KeyId> = keys.iter().map(|k| k.id).collect();
        assert_eq!(
            ids,
            [second.id, first.id],
            "newest first, this account's only"
        );
        assert_eq!(keys[0].revoked_at, None);
        assert_eq!(keys[1].revoked_at, Some(clock.now()));
        assert_eq!(keys[1].prefix(), first.prefix);
    }

    #[tokio::test]
    async fn keys_of_an_unknown_account_are_not_found() {
        let Services { accounts, .. } = Services::new();
        assert!(matches!(
            accounts.keys(AccountId::new()).await,
            Err(AppError::NotFound)
        ));
    }
}

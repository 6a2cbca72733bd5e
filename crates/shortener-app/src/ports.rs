//! The ports: what the use cases need from storage. Small and focused; implemented by
//! shortener-pg (and by an in-memory double in this crate's unit tests).

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc};
use shortener_domain::{Account, AccountId, KeyId, Link, LinkId, ShortCode};
use subscriptions::{State, Subscription, Versioned};

use crate::{AccountView, AppError, PageRequest, StoredKey};

/// Whether an insert took its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The link now exists.
    Created,
    /// Another link (live or deleted) already has this code.
    CodeTaken,
}

/// Links and their click counts.
pub trait LinkStore: Send + Sync + 'static {
    /// Inserts a new link under its account's subscription, atomically: in one transaction
    /// the store reads the subscription (holding it against concurrent transitions), asks
    /// `gate` for the monthly allowance (or a refusal), takes one unit of `month`'s
    /// allowance, and inserts. Over the allowance: `QuotaExceeded`. A code collision is an
    /// outcome, not an error, and gives the unit back.
    fn insert_link<G>(
        &self,
        link: &Link,
        month: NaiveDate,
        gate: G,
    ) -> impl Future<Output = Result<Inserted, AppError>> + Send
    where
        G: FnOnce(&Versioned) -> Result<u64, AppError> + Send;
    /// The live (not deleted) link with this code.
    fn link_by_code(
        &self,
        code: &ShortCode,
    ) -> impl Future<Output = Result<Option<Link>, AppError>> + Send;
    /// An account's live links, newest first, after the page cursor; fetch `limit + 1`.
    fn list_links(
        &self,
        account: AccountId,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<Link>, AppError>> + Send;
    /// Writes a live link's target and expiry; false when it is gone.
    fn update_link(&self, link: &Link) -> impl Future<Output = Result<bool, AppError>> + Send;
    /// Marks a live link deleted; false when it was not live.
    fn delete_link(
        &self,
        id: LinkId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;
    /// Counts one click on the link's total and on `day`.
    fn count_click(
        &self,
        id: LinkId,
        day: NaiveDate,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
    /// Per-day counts in `from..=to`; days without clicks are absent.
    fn daily_clicks(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<(NaiveDate, i64)>, AppError>> + Send;
}

/// Accounts, each with its subscription.
pub trait AccountStore: Send + Sync + 'static {
    /// Creates the account and its first subscription together.
    fn create_account(
        &self,
        account: &Account,
        subscription: &subscriptions::Versioned,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
    /// One account with its subscription.
    fn account(
        &self,
        id: AccountId,
    ) -> impl Future<Output = Result<Option<AccountView>, AppError>> + Send;
    /// Accounts in creation order (oldest first), after the cursor; fetch `limit + 1`.
    fn list_accounts(
        &self,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<AccountView>, AppError>> + Send;
}

/// API keys, stored hashed.
pub trait KeyStore: Send + Sync + 'static {
    /// Stores a new key.
    fn insert_key(&self, key: &StoredKey) -> impl Future<Output = Result<(), AppError>> + Send;
    /// The key whose non-secret lookup part is `lookup`, revoked or not.
    fn key_by_lookup(
        &self,
        lookup: &str,
    ) -> impl Future<Output = Result<Option<StoredKey>, AppError>> + Send;
    /// Revokes one of an account's keys; false when the account has no such key.
    /// Revoking an already revoked key is a no-op that returns true.
    fn revoke_key(
        &self,
        account: AccountId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;
    /// Makes the configured bootstrap admin key exist (same lookup, new hash, not revoked).
    fn put_bootstrap_key(
        &self,
        key: &StoredKey,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// Subscriptions, one per account, written only conditionally on their version.
pub trait SubscriptionStore: Send + Sync + 'static {
    /// The stored subscription of an account.
    fn subscription(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Option<Versioned>, AppError>> + Send;
    /// Writes `next` as version `expected + 1`, only if the stored version is still
    /// `expected`; false when someone else wrote first (or the account does not exist).
    fn replace_subscription(
        &self,
        account: AccountId,
        expected: i64,
        next: &Subscription,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<bool, AppError>> + Send;
    /// Subscriptions in account order after the cursor, filtered by their effective state
    /// at `now` (a trial past its end is listed as expired); fetch `limit + 1`.
    fn list_subscriptions(
        &self,
        state: Option<State>,
        now: DateTime<Utc>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<(AccountId, Versioned)>, AppError>> + Send;
    /// Up to `limit` trial or active subscriptions whose period ended at or before `now`.
    fn due_for_expiry(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<(AccountId, Versioned)>, AppError>> + Send;
}

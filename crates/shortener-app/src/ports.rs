//! The ports: what the use cases need from storage. Small and focused; implemented by
//! shortener-pg (and by an in-memory double in this crate's unit tests).
//!
//! Reads go straight to a store. Every change goes through a [`UnitOfWork`]: the use case
//! hands it one piece of work, which sees a [`Tx`] (the write ports plus the audit
//! recorder) and runs inside one database transaction. So a change and its audit entry
//! commit together or not at all, and no handler can forget the entry.

use std::future::Future;
use std::net::IpAddr;

use audit::{AuditRecorder, BoxFuture};
use chrono::{DateTime, NaiveDate, Utc};
use shortener_domain::visit::Country;
use shortener_domain::{Account, AccountId, KeyId, Link, LinkId, ShortCode};
use subscriptions::{State, Subscription, Versioned};

use crate::{
    AccountClicks, AccountView, AppError, KeyOnFile, LinkFilter, NameSearch, PageRequest, Resolved,
    StoredKey, StoredSession, VisitReport,
};

/// Whether an insert took its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// The link now exists.
    Created,
    /// Another link (live or deleted) already has this code.
    CodeTaken,
}

/// What revoking a key found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoked {
    /// The key was live and is revoked now.
    Now,
    /// The key had been revoked before; nothing changed.
    Already,
    /// The account has no such key.
    NoSuchKey,
}

/// Runs one piece of work in one transaction: committed when the work returns `Ok`,
/// rolled back when it returns `Err` or fails half way.
pub trait UnitOfWork: Send + Sync + 'static {
    /// Runs `work` against a fresh transaction. The work owns what it captures (`'static`),
    /// so implementations may run it wherever their transaction lives.
    fn run<T, F>(&self, work: F) -> impl Future<Output = Result<T, AppError>> + Send
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut dyn Tx) -> BoxFuture<'t, Result<T, AppError>> + Send + 'static;
}

/// Everything a change may do inside its transaction: the write ports of each module, the
/// idempotency keys, a mark to rewind to, and the audit recorder.
pub trait Tx:
    LinkWrites
    + AccountWrites
    + KeyWrites
    + SubscriptionWrites
    + IdempotencyWrites
    + Rewind
    + AuditRecorder<Error = AppError>
{
}

impl<T> Tx for T where
    T: LinkWrites
        + AccountWrites
        + KeyWrites
        + SubscriptionWrites
        + IdempotencyWrites
        + Rewind
        + AuditRecorder<Error = AppError>
{
}

/// Undoing part of a transaction: what a piece of work wrote after the mark is dropped,
/// what came before stays. (A refused create is undone this way while the answer that
/// records the refusal still commits.)
pub trait Rewind: Send {
    /// Marks the present point; a later mark replaces it.
    fn mark(&mut self) -> BoxFuture<'_, Result<(), AppError>>;
    /// Drops every write since the mark, which stays set.
    fn rewind(&mut self) -> BoxFuture<'_, Result<(), AppError>>;
}

/// An answer recorded under an idempotency key: its status and body, as first sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The HTTP status.
    pub status: u16,
    /// The body, exactly as sent.
    pub body: String,
}

/// A recorded answer with the SHA-256 of the request it answered.
pub type Stored = ([u8; 32], Recorded);

/// Idempotency keys, inside the transaction of the create they answer.
pub trait IdempotencyWrites: Send {
    /// Takes the lock of `account`'s `key` until the transaction ends, without waiting:
    /// false when another transaction (of any instance) holds it.
    fn try_lock_key<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<bool, AppError>>;
    /// The answer recorded under `account`'s `key`, with the hash of its request.
    fn recorded_answer<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<Stored>, AppError>>;
    /// Records the answer to the request whose hash is `hash` under `account`'s `key`.
    fn record_answer<'a>(
        &'a mut self,
        account: AccountId,
        key: &'a str,
        hash: &'a [u8; 32],
        answer: &'a Recorded,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<(), AppError>>;
}

/// Link changes, inside a transaction.
pub trait LinkWrites: Send {
    /// Inserts a link; a taken code is an outcome, not an error.
    fn insert_link<'a>(&'a mut self, link: &'a Link) -> BoxFuture<'a, Result<Inserted, AppError>>;
    /// Inserts many links in one statement; answers the ids of those inserted. A link whose
    /// code is taken (by a stored link or one earlier in `links`) is skipped.
    fn insert_links<'a>(
        &'a mut self,
        links: &'a [Link],
    ) -> BoxFuture<'a, Result<Vec<LinkId>, AppError>>;
    /// The live link with this code, locked until the transaction ends.
    fn link_for_update<'a>(
        &'a mut self,
        code: &'a ShortCode,
    ) -> BoxFuture<'a, Result<Option<Link>, AppError>>;
    /// Writes a live link's target and expiry; false when it is gone.
    fn update_link<'a>(&'a mut self, link: &'a Link) -> BoxFuture<'a, Result<bool, AppError>>;
    /// Marks a live link deleted; false when it was not live.
    fn delete_link(
        &mut self,
        id: LinkId,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<bool, AppError>>;
}

/// Account changes, inside a transaction.
pub trait AccountWrites: Send {
    /// Creates the account and its first subscription.
    fn insert_account<'a>(
        &'a mut self,
        account: &'a Account,
        subscription: &'a Versioned,
    ) -> BoxFuture<'a, Result<(), AppError>>;
}

/// Key changes, inside a transaction.
pub trait KeyWrites: Send {
    /// Stores a new key.
    fn insert_key<'a>(&'a mut self, key: &'a StoredKey) -> BoxFuture<'a, Result<(), AppError>>;
    /// Revokes one of an account's keys (a second revocation keeps the first time).
    fn revoke_key(
        &mut self,
        account: AccountId,
        id: KeyId,
        at: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<Revoked, AppError>>;
}

/// Subscription changes and the allowance counter, inside a transaction.
pub trait SubscriptionWrites: Send {
    /// The account's subscription, held against transitions until the transaction ends
    /// (other creates may hold it too).
    fn subscription_for_share(
        &mut self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Option<Versioned>, AppError>>;
    /// The account's subscription, locked against every other writer until the
    /// transaction ends.
    fn subscription_for_update(
        &mut self,
        account: AccountId,
    ) -> BoxFuture<'_, Result<Option<Versioned>, AppError>>;
    /// Writes `next` as version `expected + 1`, only if the stored version is still
    /// `expected`; false otherwise.
    fn replace_subscription<'a>(
        &'a mut self,
        account: AccountId,
        expected: i64,
        next: &'a Subscription,
        at: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<bool, AppError>>;
    /// Takes `units` of `month`'s allowance if at most `allowance - units` are taken;
    /// false (and nothing taken) when they do not fit. Concurrent takers queue, so the
    /// limit holds exactly.
    fn take_allowance(
        &mut self,
        account: AccountId,
        month: NaiveDate,
        allowance: u64,
        units: u64,
    ) -> BoxFuture<'_, Result<bool, AppError>>;
}

/// Reading links and their click counts. (Clicks are written by the click counter's
/// [`crate::ClickStore`]; they are not audited: a click is not a change to the link.)
pub trait LinkStore: Send + Sync + 'static {
    /// What a redirect needs of the live links with these codes, in one query: nothing
    /// more is read. Codes without a live link are absent from the answer.
    fn resolve_codes(
        &self,
        codes: &[ShortCode],
    ) -> impl Future<Output = Result<Vec<(ShortCode, Resolved)>, AppError>> + Send;
    /// Takes visits of limited links, one statement for all of `asks` (each link once,
    /// with how many visits its requests take: 0 when they only look): of each live
    /// link with a limit, `min(asked, left)` visits are taken, atomically against every
    /// other instance, and the answer says how many it had left before. A link absent
    /// from the answer has no limit (any more).
    fn take_visits(
        &self,
        asks: &[(LinkId, u64)],
    ) -> impl Future<Output = Result<Vec<(LinkId, u64)>, AppError>> + Send;
    /// The live (not deleted) link with this code.
    fn link_by_code(
        &self,
        code: &ShortCode,
    ) -> impl Future<Output = Result<Option<Link>, AppError>> + Send;
    /// An account's live links that pass `filter` ([`LinkFilter::keeps`]), newest first,
    /// after the page cursor; at most `page.limit`.
    fn list_links(
        &self,
        account: AccountId,
        filter: &LinkFilter,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<Link>, AppError>> + Send;
    /// Per-day counts in `from..=to`; days without clicks are absent.
    fn daily_clicks(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
    ) -> impl Future<Output = Result<Vec<(NaiveDate, i64)>, AppError>> + Send;
    /// What the link's clicks in `from..=to` were recorded as (visit analytics): bots per
    /// day, and each dimension's `top` values then the rest together.
    fn link_visits(
        &self,
        id: LinkId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> impl Future<Output = Result<VisitReport, AppError>> + Send;
    /// [`Self::link_visits`] over every link of the account (deleted ones included).
    fn account_visits(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> impl Future<Output = Result<VisitReport, AppError>> + Send;
    /// The account's clicks: all ever counted, per day in `from..=to` (days without
    /// clicks absent), and its `top` live links by clicks in that period.
    fn account_clicks(
        &self,
        account: AccountId,
        from: NaiveDate,
        to: NaiveDate,
        top: usize,
    ) -> impl Future<Output = Result<AccountClicks, AppError>> + Send;
}

/// Reading accounts, each with its subscription.
pub trait AccountStore: Send + Sync + 'static {
    /// One account with its subscription.
    fn account(
        &self,
        id: AccountId,
    ) -> impl Future<Output = Result<Option<AccountView>, AppError>> + Send;
    /// Accounts in creation order (oldest first), after the cursor; at most `page.limit`.
    /// With `name`, only those whose name passes it ([`NameSearch::keeps`]).
    fn list_accounts(
        &self,
        name: Option<&NameSearch>,
        page: PageRequest,
    ) -> impl Future<Output = Result<Vec<AccountView>, AppError>> + Send;
}

/// Finding API keys, and the operator-configured bootstrap key.
pub trait KeyStore: Send + Sync + 'static {
    /// The key whose non-secret lookup part is `lookup`, revoked or not, with its
    /// owner's current plan (in the same read: every request authenticates).
    fn key_by_lookup(
        &self,
        lookup: &str,
    ) -> impl Future<Output = Result<Option<KeyOnFile>, AppError>> + Send;
    /// The account's keys, newest first (by creation, then id), revoked ones included.
    /// Not paged: an operator issues an account a handful of keys.
    fn keys_of(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Vec<StoredKey>, AppError>> + Send;
    /// Makes the configured bootstrap admin key exist (same lookup, new hash, not revoked).
    /// Configuration, not an API change, so it is not audited.
    fn put_bootstrap_key(
        &self,
        key: &StoredKey,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// Sessions of the web interface (`sessions.rs`): stored by their token's hash.
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a session just opened.
    fn insert_session(
        &self,
        session: &StoredSession,
    ) -> impl Future<Output = Result<(), AppError>> + Send;
    /// The key behind the session with this token hash, if it exists and has not expired
    /// at `now`; revoked or not (the caller decides), with its owner's current plan.
    fn session_key(
        &self,
        token_hash: &[u8; 32],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Option<KeyOnFile>, AppError>> + Send;
    /// Deletes the session, if it exists.
    fn delete_session(
        &self,
        token_hash: &[u8; 32],
    ) -> impl Future<Output = Result<(), AppError>> + Send;
    /// Deletes the sessions that expired before `now`; how many.
    fn delete_expired_sessions(
        &self,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, AppError>> + Send;
}

/// Reading subscriptions.
pub trait SubscriptionStore: Send + Sync + 'static {
    /// The stored subscription of an account.
    fn subscription(
        &self,
        account: AccountId,
    ) -> impl Future<Output = Result<Option<Versioned>, AppError>> + Send;
    /// Subscriptions in account order after the cursor, filtered by their effective state
    /// at `now` (a trial past its end is listed as expired); at most `page.limit`.
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

/// The country of a client address, for visit analytics: the GeoIP database the operator
/// configured (without one, nothing is asked and every country is unknown). Asked on the
/// redirect path, once per counted click, so an implementation answers from memory
/// without blocking.
pub trait Countries: Send + Sync + 'static {
    /// Where `address` is, as far as known.
    fn country(&self, address: IpAddr) -> Country;
}

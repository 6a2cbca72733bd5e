//! Use cases of the shortener and the ports (traits) they need from the outside world.
//!
//! This crate orchestrates the domain and the modules (`subscriptions`, `audit`): it decides
//! what happens when someone shortens, edits or deletes a link, follows one (`redirect.rs`,
//! the whole redirect path), or administers accounts, keys and subscriptions, and every
//! change it makes goes through a [`UnitOfWork`] that writes the change and its audit entry
//! in one transaction. The per-address rate limits are counted here, in memory
//! ([`AddressLimiter`]). It owns the ports; shortener-pg implements them and shortener-http
//! wires them. It must never depend on diesel, actix, a database driver, config, or the pg
//! and http crates (`cargo xtask check-boundaries` enforces this).

mod accounts;
mod audit_log;
mod clicks;
mod clock;
mod error;
mod idempotency;
mod keys;
mod links;
pub mod metrics;
mod page;
mod passwords;
mod ports;
mod rate_limit;
mod redirect;
mod sessions;
mod subscriptions;
mod throttle;
mod visits;

#[cfg(test)]
mod memory;

pub use crate::subscriptions::SubscriptionService;
pub use accounts::{AccountService, AccountView, MAX_NAME_SEARCH_CHARS, NameSearch, NewKey};
pub use audit_log::AuditService;
pub use clicks::{
    BATCH_LIMIT, Click, ClickBatch, ClickCount, ClickCounter, ClickSettings, ClickStore, Unfolded,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{AppError, Cause, Chain};
pub use idempotency::{Answer, IdempotencyKey, KEEP_KEYS};
pub use keys::{Authenticator, IssuedKey, KeyOnFile, KeyOwner, Principal, StoredKey};
pub use links::{
    AccountClicks, AccountStats, BULK_LIMIT, DailyClicks, LinkFilter, LinkPatch, LinkService,
    LinkStats, MAX_SEARCH_CHARS, NewLink,
};
pub use page::{Page, PageRequest};
pub use passwords::{ARGON2_M_COST_KIB, ARGON2_P_COST, ARGON2_T_COST, Passwords};
pub use ports::{
    AccountStore, AccountWrites, Countries, IdempotencyWrites, Inserted, KeyStore, KeyWrites,
    LinkStore, LinkWrites, Recorded, Revoked, Rewind, SessionStore, Stored, SubscriptionStore,
    SubscriptionWrites, Tx, UnitOfWork,
};
pub use rate_limit::{AddressLimiter, KeyLimiter, MAX_LEASE, RateLedger, Take, Taken};
pub use redirect::{Anonymous, Followed, Redirects, ResolveCache, Resolved, Unlocked, Visitor};
pub use sessions::{SessionToken, Sessions, SignedIn, StoredSession};
pub use throttle::Throttle;
pub use visits::{
    Breakdown, CLASSIFIED, Classifier, TOP_VALUES, VisitCount, VisitKey, VisitReport, VisitValue,
    rank,
};

//! The shortener's domain: short codes, target URLs, links and their tags, titles and
//! passwords, accounts and their ids, and the rules that make each valid; the rate limits'
//! sliding-window rule (`rate`); and what a visit is counted as (`visit`).
//!
//! Pure: no I/O, no clock, no infrastructure. It must never depend on diesel, actix,
//! tokio, config or tracing (or on any crate outside its allow-list in `Cargo.toml`);
//! `cargo xtask check-boundaries` enforces this. Every type here validates on
//! construction, so holding one is proof that it is valid.

mod account;
mod code;
mod error;
mod ids;
mod labels;
pub mod link;
mod password;
pub mod rate;
mod target;
pub mod visit;

pub use account::{Account, AccountName};
pub use code::{CodeRule, RESERVED_FOR_NEW_CODES, RESERVED_WORDS, ShortCode};
pub use error::DomainError;
pub use ids::{AccountId, KeyId, LinkId};
pub use labels::{MAX_TAG_LEN, MAX_TAGS, MAX_TITLE_CHARS, Tag, Tags, Title};
pub use link::{Link, MaxVisits, VisitLimit};
pub use password::{MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS, Password, PasswordHash};
pub use target::{TargetUrl, UrlPolicy, UrlRule};

//! The subscriptions module: an account's subscription lifecycle and the plans that decide
//! what an account may do.
//!
//! Pure: it owns its types and rules and must never depend on infrastructure (diesel,
//! actix, tokio, config, tracing) or on the app, pg or http crates. `cargo xtask
//! check-boundaries` enforces this. Its PostgreSQL schema (`subscriptions`) is written by
//! shortener-pg, but the shape of the data is decided here.
//!
//! The lifecycle is `Subscription::apply`: a pure function of the current state, a
//! [`Transition`] and the time, so it is tested exhaustively (property tests) without a
//! database. What a plan lets an account do is `Subscription::may_create`.

mod error;
mod plan;
mod subscription;

pub use error::SubscriptionError;
pub use plan::{Plan, PlanName, Plans};
pub use subscription::{MAX_REASON_CHARS, Refusal, State, Subscription, Transition, Versioned};

//! The subscriptions module: an account's subscription lifecycle and the plans that decide
//! what an account may do.
//!
//! Pure: it owns its types and rules and must never depend on infrastructure (diesel,
//! actix, tokio, config, tracing) or on the app, pg or http crates. `cargo xtask
//! check-boundaries` enforces this. Its PostgreSQL schema (`subscriptions`) is written by
//! shortener-pg, but the shape of the data is decided here.
//!
//! This is the module's first slice: the states, trial start, the effective state at a
//! time, and plan configuration. Transitions (activate, renew, cancel) come next.

mod error;
mod plan;
mod subscription;

pub use error::SubscriptionError;
pub use plan::{Plan, PlanName, Plans};
pub use subscription::{State, Subscription, Versioned};

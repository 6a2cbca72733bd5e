//! PostgreSQL for the shortener: the implementations of the app's ports (through diesel +
//! diesel-async and a deadpool pool), the embedded migrations, and provisioning of a
//! private local PostgreSQL when no database is configured.
//!
//! This is the only crate that knows SQL. Each module keeps its tables in its own
//! PostgreSQL schema (`shortener`, `subscriptions`, ...). diesel errors never leave this
//! crate: they become [`PgError`], and from there the app's `AppError`. It may depend on the
//! app and the pure crates, never on the http crate.

mod arrays;
mod audit_log;
mod clicks;
mod error;
mod idempotency;
pub mod listen;
pub mod local;
mod migrate;
mod pool;
mod rate;
mod replicas;
mod schema;
mod sessions;
mod store;
mod tx;

pub use clicks::VISIT_DAY_VALUES;
pub use error::PgError;
pub use migrate::{
    MIGRATIONS, SERVICE_ROLE, ensure_database, ensure_service_login, run_pending_migrations,
};
pub use pool::{Db, PoolSettings};
pub use replicas::{Replicas, TICK as REPLICA_TICK};
pub use store::PgStore;

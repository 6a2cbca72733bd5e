//! The HTTP edge of the shortener and the `shortener` binary's wiring.
//!
//! It owns routes, DTOs, extraction, the single mapping of errors to problem+json,
//! configuration and telemetry, and is the only crate that knows every other crate: it
//! builds the concrete adapters (shortener-pg) and hands them to the use cases
//! (shortener-app). Nothing depends on it.

mod admin;
pub mod audit_log;
mod auth;
mod bulk;
pub mod client_address;
pub mod config;
#[cfg(test)]
mod cost;
mod error;
mod export;
mod extract;
pub mod geoip;
mod idempotency;
pub mod import;
mod links;
mod markup;
pub mod metrics;
pub mod openapi;
mod ops;
mod page;
mod password_form;
pub mod problem;
mod qr;
pub mod rate_limit;
mod redirect;
pub mod request_id;
mod request_span;
mod startup;
pub mod tail;
pub mod telemetry;
mod ui;

pub use error::{Error, ProcessError};
pub use startup::{
    Background, DatabaseUrls, MetricsListener, Running, State, prune_idempotency_keys, start,
};

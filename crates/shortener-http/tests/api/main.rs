//! shortener-http's integration tests, one binary: the real app on port 0 against a
//! PostgreSQL database of its own per test, and the `shortener` binary itself. `support`
//! starts the app and makes the accounts, keys and links the tests start from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod audit;
mod browser;
mod bulk;
mod cache;
mod cli;
mod clicks;
mod export;
mod geoip;
mod idempotency;
mod inputs;
mod links;
mod metrics;
mod monitoring;
mod openapi;
mod passwords;
mod qr;
mod rate_limits;
mod replicas;
mod request_ids;
mod search;
mod subscriptions;
mod support;
mod ui;
mod visit_limits;
mod visits;
mod webdriver;

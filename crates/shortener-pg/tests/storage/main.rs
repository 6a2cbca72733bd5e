//! shortener-pg's integration tests, one binary: everything here runs against a real
//! PostgreSQL (a database of its own per test, from `shortener-testing`), and `support`
//! makes the accounts and links they start from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit_reading;
mod audit_table;
mod clicks;
mod listen;
mod migrations;
mod pool;
mod rate_ledger;
mod roles;
mod support;
mod sweep;
mod unit_of_work;
mod visit_caps;
mod visit_limits;

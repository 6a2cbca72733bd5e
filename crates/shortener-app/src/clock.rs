use std::sync::{Arc, Mutex};

use chrono::{DateTime, SubsecRound, Utc};

/// Time as the use cases see it. Injected so that expiry rules are testable without
/// sleeping.
pub trait Clock: Send + Sync + 'static {
    /// The current instant.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// Truncated to microseconds, PostgreSQL's precision, so what a create answers is
    /// exactly what a later read returns.
    fn now(&self) -> DateTime<Utc> {
        Utc::now().trunc_subsecs(6)
    }
}

/// The clock tests move by hand: it stands still until [`ManualClock::advance`] moves it.
///
/// The one test clock of the workspace, used by this crate's unit tests, the storage
/// tests and the end-to-end tests alike. It lives here, beside [`Clock`], because this
/// crate's own unit tests need it and cannot take it from a test-support crate (that
/// crate depends on this one, so it would bring a second, distinct `Clock` trait).
#[derive(Debug)]
pub struct ManualClock(Mutex<DateTime<Utc>>);

impl ManualClock {
    /// Starts at the current wall-clock time, at PostgreSQL's microsecond precision.
    pub fn new() -> Arc<ManualClock> {
        Arc::new(ManualClock(Mutex::new(SystemClock.now())))
    }

    /// Moves the clock on (or back, by a negative duration).
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

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

use chrono::{DateTime, Utc};

use crate::{Plan, PlanName};

/// An account's subscription. Each state carries only the data valid in it, so an active
/// subscription without a plan, or a trial with a renewal date, cannot be written down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscription {
    /// Free trial until `expires_at`.
    Trial {
        /// When the trial ends.
        expires_at: DateTime<Utc>,
    },
    /// Paid, renewing at `renews_at`.
    Active {
        /// The paid plan.
        plan: PlanName,
        /// End of the current period.
        renews_at: DateTime<Utc>,
    },
    /// Ran out without renewal. Terminal.
    Expired {
        /// When it ran out.
        expired_at: DateTime<Utc>,
    },
    /// Ended by an operator. Terminal.
    Cancelled {
        /// When it was cancelled.
        cancelled_at: DateTime<Utc>,
        /// The operator's reason.
        reason: String,
    },
}

/// The coarse state, for filters and storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// See [`Subscription::Trial`].
    Trial,
    /// See [`Subscription::Active`].
    Active,
    /// See [`Subscription::Expired`].
    Expired,
    /// See [`Subscription::Cancelled`].
    Cancelled,
}

impl State {
    /// The name used on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Trial => "trial",
            State::Active => "active",
            State::Expired => "expired",
            State::Cancelled => "cancelled",
        }
    }
}

impl Subscription {
    /// A new account's trial, starting now and lasting the trial plan's period.
    pub fn start_trial(now: DateTime<Utc>, trial: &Plan) -> Subscription {
        let length = chrono::Duration::from_std(trial.period).unwrap_or(chrono::Duration::MAX);
        Subscription::Trial {
            expires_at: now
                .checked_add_signed(length)
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
        }
    }

    /// The coarse state as stored.
    pub fn state(&self) -> State {
        match self {
            Subscription::Trial { .. } => State::Trial,
            Subscription::Active { .. } => State::Active,
            Subscription::Expired { .. } => State::Expired,
            Subscription::Cancelled { .. } => State::Cancelled,
        }
    }

    /// The state as it truly is at `now`: a trial or period whose end has passed reads as
    /// expired even before anything has been written, so expiry is never late.
    pub fn effective_at(&self, now: DateTime<Utc>) -> Subscription {
        match self {
            Subscription::Trial { expires_at } if now >= *expires_at => Subscription::Expired {
                expired_at: *expires_at,
            },
            Subscription::Active { renews_at, .. } if now >= *renews_at => Subscription::Expired {
                expired_at: *renews_at,
            },
            other => other.clone(),
        }
    }
}

/// A subscription with its optimistic-concurrency version, bumped on every write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    /// The subscription itself.
    pub subscription: Subscription,
    /// Starts at 1.
    pub version: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::time::Duration;

    fn t(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000 + secs, 0)
            .single()
            .unwrap_or_default()
    }

    #[test]
    fn trial_lasts_the_trial_period() {
        let plan = Plan {
            period: Duration::from_secs(60),
            ..Plan::default_for(PlanName::Trial)
        };
        assert_eq!(
            Subscription::start_trial(t(0), &plan),
            Subscription::Trial { expires_at: t(60) }
        );
    }

    #[test]
    fn effective_state_never_lags_the_clock() {
        let trial = Subscription::Trial { expires_at: t(60) };
        assert_eq!(trial.effective_at(t(59)), trial);
        assert_eq!(
            trial.effective_at(t(60)),
            Subscription::Expired { expired_at: t(60) }
        );
        let active = Subscription::Active {
            plan: PlanName::Pro,
            renews_at: t(10),
        };
        assert_eq!(active.effective_at(t(9)).state(), State::Active);
        assert_eq!(active.effective_at(t(11)).state(), State::Expired);
        let cancelled = Subscription::Cancelled {
            cancelled_at: t(0),
            reason: "r".into(),
        };
        assert_eq!(cancelled.effective_at(t(1_000)), cancelled);
    }
}

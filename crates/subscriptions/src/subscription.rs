use chrono::{DateTime, Utc};

use crate::{Plan, PlanName, Plans, SubscriptionError};

fn plus(at: DateTime<Utc>, period: std::time::Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(period)
        .ok()
        .and_then(|d| at.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

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
    /// Every state, for parsing and exhaustive tests.
    pub const ALL: [State; 4] = [
        State::Trial,
        State::Active,
        State::Expired,
        State::Cancelled,
    ];

    /// Whether the subscription has ended for good: nothing leaves these states.
    pub fn is_terminal(self) -> bool {
        matches!(self, State::Expired | State::Cancelled)
    }

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

impl std::str::FromStr for State {
    type Err = SubscriptionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| SubscriptionError::UnknownState(s.to_owned()))
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A transition an operator (or time) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// trial → active on a paid plan.
    Activate(PlanName),
    /// active → active, one period on.
    Renew,
    /// trial or active → cancelled.
    Cancel(String),
    /// trial or active whose end has passed → expired.
    Expire,
}

impl Transition {
    /// The verb, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Transition::Activate(_) => "activate",
            Transition::Renew => "renew",
            Transition::Cancel(_) => "cancel",
            Transition::Expire => "expire",
        }
    }
}

/// The longest cancellation reason we keep.
pub const MAX_REASON_CHARS: usize = 500;

impl Transition {
    /// Refuses what no subscription could accept (`trial` as a paid plan, a cancellation
    /// reason that is empty or too long), so such a request is refused as invalid whatever
    /// the subscription's state or version: input is judged before state.
    pub fn check(&self) -> Result<(), SubscriptionError> {
        match self {
            Transition::Activate(PlanName::Trial) => Err(SubscriptionError::NotPaid),
            Transition::Cancel(reason) => {
                let reason = reason.trim();
                if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
                    Err(SubscriptionError::InvalidReason)
                } else {
                    Ok(())
                }
            }
            Transition::Activate(_) | Transition::Renew | Transition::Expire => Ok(()),
        }
    }
}

impl Subscription {
    /// A new account's trial, starting now and lasting the trial plan's period.
    pub fn start_trial(now: DateTime<Utc>, trial: &Plan) -> Subscription {
        Subscription::Trial {
            expires_at: plus(now, trial.period),
        }
    }

    /// Applies `transition` at `now` to the subscription as it truly is then (so a trial
    /// whose end has passed is expired, and can no longer be activated). Pure: the caller
    /// writes the result down, conditionally on the version it read.
    pub fn apply(
        &self,
        transition: &Transition,
        now: DateTime<Utc>,
        plans: &Plans,
    ) -> Result<Subscription, SubscriptionError> {
        transition.check()?;
        let current = self.effective_at(now);
        let invalid = || SubscriptionError::InvalidTransition {
            transition: transition.name(),
            from: current.state(),
        };
        match (transition, &current) {
            (Transition::Activate(plan), Subscription::Trial { .. }) => Ok(Subscription::Active {
                plan: *plan,
                renews_at: plus(now, plans.get(*plan).period),
            }),
            (Transition::Renew, Subscription::Active { plan, renews_at }) => {
                Ok(Subscription::Active {
                    plan: *plan,
                    renews_at: plus(*renews_at, plans.get(*plan).period),
                })
            }
            (
                Transition::Cancel(reason),
                Subscription::Trial { .. } | Subscription::Active { .. },
            ) => {
                // `check` made sure it is 1 to MAX_REASON_CHARS once trimmed.
                Ok(Subscription::Cancelled {
                    cancelled_at: now,
                    reason: reason.trim().to_owned(),
                })
            }
            // Expiry is the one transition read off the stored state: the effective state
            // already says expired, and writing that down is the point.
            (Transition::Expire, Subscription::Expired { .. }) if !self.state().is_terminal() => {
                Ok(current)
            }
            _ => Err(invalid()),
        }
    }

    /// The plan whose limits apply now, or `None` when the subscription no longer allows
    /// creating anything.
    pub fn plan_at<'p>(&self, now: DateTime<Utc>, plans: &'p Plans) -> Option<&'p Plan> {
        match self.effective_at(now) {
            Subscription::Trial { .. } => Some(plans.get(PlanName::Trial)),
            Subscription::Active { plan, .. } => Some(plans.get(plan)),
            Subscription::Expired { .. } | Subscription::Cancelled { .. } => None,
        }
    }

    /// Whether the account may create one more link at `now`, having created
    /// `created_this_month` this calendar month. Returns the plan's monthly allowance, which
    /// the caller enforces atomically (see the quota counter in storage).
    pub fn may_create(
        &self,
        now: DateTime<Utc>,
        plans: &Plans,
        custom_code: bool,
    ) -> Result<u64, Refusal> {
        let plan = self
            .plan_at(now, plans)
            .ok_or(Refusal::Inactive(self.effective_at(now).state()))?;
        if custom_code && !plan.custom_codes {
            return Err(Refusal::NoCustomCodes(plan.name));
        }
        if plan.links_per_month == 0 {
            return Err(Refusal::QuotaExceeded(0));
        }
        Ok(plan.links_per_month)
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

/// Why an account may not create a link now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The subscription has ended.
    #[error("the subscription is {0}; renew or activate it to create links")]
    Inactive(State),
    /// The plan does not allow custom codes.
    #[error("the {0} plan does not allow custom codes")]
    NoCustomCodes(PlanName),
    /// This month's allowance is used up.
    #[error("this month's allowance of {0} links is used up")]
    QuotaExceeded(u64),
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

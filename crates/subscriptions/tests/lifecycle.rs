//! Property tests over random sequences of transitions and times: terminal states are never
//! left, and the effective state never lags the clock.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use subscriptions::{Plan, PlanName, Plans, State, Subscription, SubscriptionError, Transition};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

fn plans(trial: u64, pro: u64, business: u64) -> Plans {
    let with = |name, secs| Plan {
        period: Duration::from_secs(secs),
        ..Plan::default_for(name)
    };
    Plans::default()
        .with(with(PlanName::Trial, trial))
        .with(with(PlanName::Pro, pro))
        .with(with(PlanName::Business, business))
}

fn transition() -> impl Strategy<Value = Transition> {
    prop_oneof![
        prop_oneof![
            Just(PlanName::Trial),
            Just(PlanName::Pro),
            Just(PlanName::Business)
        ]
        .prop_map(Transition::Activate),
        Just(Transition::Renew),
        "[a-z ]{0,8}".prop_map(Transition::Cancel),
        Just(Transition::Expire),
    ]
}

/// The end of the current period, for states that have one.
fn end(s: &Subscription) -> Option<DateTime<Utc>> {
    match s {
        Subscription::Trial { expires_at } => Some(*expires_at),
        Subscription::Active { renews_at, .. } => Some(*renews_at),
        _ => None,
    }
}

proptest! {
    #[test]
    fn terminal_states_are_never_left_and_effective_state_never_lags(
        periods in (1u64..500, 1u64..500, 1u64..500),
        steps in proptest::collection::vec((transition(), 0i64..400), 1..40),
    ) {
        let plans = plans(periods.0, periods.1, periods.2);
        let mut now = at(0);
        let mut sub = Subscription::start_trial(now, plans.get(PlanName::Trial));
        let mut terminal: Option<Subscription> = None;
        for (tr, dt) in steps {
            now += chrono::Duration::seconds(dt);
            let effective = sub.effective_at(now);

            // Never lags: a period whose end has passed reads as expired, at that end.
            if let Some(e) = end(&sub) {
                if now >= e {
                    prop_assert_eq!(&effective, &Subscription::Expired { expired_at: e });
                } else {
                    prop_assert_eq!(&effective, &sub);
                }
            }
            // Reading the effective state again changes nothing.
            prop_assert_eq!(effective.effective_at(now), effective.clone());

            match sub.apply(&tr, now, &plans) {
                Ok(next) => {
                    // From a terminal state, only writing down an expiry that already holds
                    // succeeds, and it changes nothing about how the subscription reads.
                    if let Some(t) = &terminal {
                        prop_assert_eq!(&tr, &Transition::Expire, "left terminal {:?}", t);
                        prop_assert_eq!(&next, t);
                    }
                    prop_assert_ne!(next.state(), State::Trial, "nothing returns to trial");
                    match (&tr, &next) {
                        (Transition::Activate(p), Subscription::Active { plan, renews_at }) => {
                            prop_assert_eq!(effective.state(), State::Trial);
                            prop_assert_eq!(plan, p);
                            prop_assert!(*renews_at > now);
                        }
                        (Transition::Renew, Subscription::Active { renews_at, .. }) => {
                            prop_assert!(*renews_at > end(&effective).unwrap());
                        }
                        (Transition::Cancel(_), Subscription::Cancelled { cancelled_at, .. }) => {
                            prop_assert_eq!(*cancelled_at, now);
                        }
                        (Transition::Expire, Subscription::Expired { expired_at }) => {
                            prop_assert!(*expired_at <= now);
                            prop_assert!(!sub.state().is_terminal());
                        }
                        other => prop_assert!(false, "unexpected outcome {:?}", other),
                    }
                    sub = next;
                }
                Err(SubscriptionError::InvalidTransition { from, .. }) => {
                    prop_assert_eq!(from, effective.state());
                }
                Err(SubscriptionError::NotPaid) => {
                    prop_assert_eq!(tr, Transition::Activate(PlanName::Trial));
                }
                Err(SubscriptionError::InvalidReason) => {
                    prop_assert!(matches!(&tr, Transition::Cancel(r) if r.trim().is_empty()));
                }
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
            if sub.effective_at(now).state().is_terminal() {
                let t = sub.effective_at(now);
                if let Some(prev) = &terminal {
                    prop_assert_eq!(prev, &t, "a terminal state never changes");
                }
                terminal = Some(t);
            }
        }
    }

    #[test]
    fn once_expired_a_subscription_stays_expired_at_every_later_time(
        period in 1u64..1000, later in 0i64..5000, then in 0i64..5000,
    ) {
        let plans = plans(period, period, period);
        let sub = Subscription::start_trial(at(0), plans.get(PlanName::Trial));
        let t1 = at(later);
        let t2 = t1 + chrono::Duration::seconds(then);
        if sub.effective_at(t1).state() == State::Expired {
            prop_assert_eq!(sub.effective_at(t2), sub.effective_at(t1));
        }
    }
}

#[test]
fn entitlements_follow_the_plan() {
    let plans = Plans::default();
    let trial = Subscription::start_trial(at(0), plans.get(PlanName::Trial));
    assert_eq!(trial.may_create(at(1), &plans, false), Ok(100));
    assert_eq!(
        trial.may_create(at(1), &plans, true),
        Err(subscriptions::Refusal::NoCustomCodes(PlanName::Trial))
    );
    let pro = trial
        .apply(&Transition::Activate(PlanName::Pro), at(1), &plans)
        .unwrap();
    assert_eq!(pro.may_create(at(2), &plans, true), Ok(10_000));
    let cancelled = pro
        .apply(&Transition::Cancel("moving on".into()), at(3), &plans)
        .unwrap();
    assert_eq!(
        cancelled.may_create(at(4), &plans, false),
        Err(subscriptions::Refusal::Inactive(State::Cancelled))
    );
    // A trial past its end can no longer create, whether or not the expiry was written.
    let end = at(14 * 86_400);
    assert_eq!(
        trial.may_create(end, &plans, false),
        Err(subscriptions::Refusal::Inactive(State::Expired))
    );
    assert_eq!(
        trial.apply(&Transition::Activate(PlanName::Pro), end, &plans),
        Err(SubscriptionError::InvalidTransition {
            transition: "activate",
            from: State::Expired
        })
    );
}

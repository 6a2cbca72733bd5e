//! Property tests of [`Window`] against a naive model that keeps every admission.
//!
//! For arbitrary limits and nondecreasing slot sequences:
//! - safety: every `w + 1` consecutive slots `a ..= a + w` hold at most `q` admissions, so
//!   no real interval of `w` seconds does (a half-open interval `[t, t + w)` touches only
//!   slots `floor(t) ..= floor(t) + w`);
//! - liveness: a request whose window (`s - w ..= s`) holds fewer than `q` admissions is
//!   admitted, and one whose window holds `q` is refused: `admit` is exactly the model;
//! - the numbers: `remaining` and `reset_secs` are the model's, and a client told
//!   `retry_after_secs` (or `reset_secs` with nothing remaining) is admitted that many
//!   seconds later and refused a second earlier;
//! - memory: the ledger never holds more than `min(q, w + 1)` slots.

use std::num::NonZeroU32;

use proptest::prelude::*;

use super::{Decision, Limit, Window};

fn limit() -> impl Strategy<Value = Limit> {
    (1u32..=8, 1u32..=12).prop_map(|(q, w)| match (NonZeroU32::new(q), NonZeroU32::new(w)) {
        (Some(q), Some(w)) => Limit::new(q, w),
        _ => unreachable!("ranges start at 1"),
    })
}

/// Nondecreasing slots from an arbitrary start: mostly small steps (bursts in one slot,
/// steady streams), sometimes a jump past the window.
fn slots() -> impl Strategy<Value = Vec<u64>> {
    let step = prop_oneof![6 => 0u64..=2, 3 => 0u64..=15, 1 => 0u64..=1_000];
    (0u64..1 << 40, prop::collection::vec(step, 1..200)).prop_map(|(start, steps)| {
        steps
            .into_iter()
            .scan(start, |s, d| {
                *s += d;
                Some(*s)
            })
            .collect()
    })
}

/// The model: admissions in `s - w ..= s`.
fn in_window(admitted: &[u64], s: u64, l: Limit) -> usize {
    let first = s.saturating_sub(u64::from(l.w()));
    admitted.iter().filter(|&&e| first <= e && e <= s).count()
}

/// Seconds until the `k`-th oldest counted admission (from 0) leaves the window at `s`.
fn model_secs_until_gone(admitted: &[u64], s: u64, l: Limit, k: usize) -> u32 {
    let first = s.saturating_sub(u64::from(l.w()));
    let counted: Vec<u64> = admitted.iter().copied().filter(|&e| e >= first).collect();
    let e = counted.get(k).copied().unwrap_or(s);
    u32::try_from(e + u64::from(l.w()) + 1 - s).unwrap_or(u32::MAX)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn admit_is_the_model_and_never_exceeds_q(l in limit(), slots in slots()) {
        let q = l.q() as usize;
        let mut w = Window::new();
        let mut admitted: Vec<u64> = Vec::new();
        for &s in &slots {
            let before = in_window(&admitted, s, l);
            let peeked = w.peek(s, l);
            let d = w.admit(s, l);
            prop_assert_eq!(peeked, d, "peek and admit disagree at {}", s);
            prop_assert_eq!(w.count(s, l) as usize, in_window(&admitted, s, l) + usize::from(d.is_admitted()));
            if before < q {
                admitted.push(s);
                prop_assert_eq!(d, Decision::Admitted {
                    remaining: l.q() - before as u32 - 1,
                    reset_secs: model_secs_until_gone(&admitted, s, l, 0),
                });
            } else {
                prop_assert_eq!(d, Decision::Limited {
                    retry_after_secs: model_secs_until_gone(&admitted, s, l, before - q),
                });
            }
            prop_assert!(w.held_slots() <= q.min(l.w() as usize + 1));
            let mut shuffled: Vec<_> = w.counts().collect();
            shuffled.reverse();
            prop_assert_eq!(&Window::from_counts(shuffled), &w);
        }
        // Safety over every w + 1 consecutive slots that hold an admission.
        for &a in &admitted {
            let held = admitted.iter().filter(|&&e| a <= e && e <= a + u64::from(l.w())).count();
            prop_assert!(held <= q, "{} admissions in {} ..= {} + {}", held, a, a, l.w());
        }
    }

    #[test]
    fn waiting_as_told_is_admitted_and_not_a_second_less(l in limit(), slots in slots()) {
        let mut w = Window::new();
        for &s in &slots {
            let d = w.admit(s, l);
            let wait = match d {
                Decision::Limited { retry_after_secs } => retry_after_secs,
                Decision::Admitted { remaining: 0, reset_secs } => reset_secs,
                Decision::Admitted { .. } => continue,
            };
            prop_assert!(wait >= 1);
            prop_assert!(w.peek(s + u64::from(wait), l).is_admitted(), "{:?} at {}", d, s);
            prop_assert!(!w.peek(s + u64::from(wait) - 1, l).is_admitted(), "{:?} at {}", d, s);
        }
    }

    #[test]
    fn idle_means_it_answers_as_an_empty_window(l in limit(), slots in slots(), later in 0u64..40) {
        let mut w = Window::new();
        for &s in &slots {
            let _ = w.admit(s, l);
        }
        let at = slots.last().copied().unwrap_or(0) + later;
        if w.is_idle(at, l) {
            prop_assert_eq!(w.peek(at, l), Window::new().peek(at, l));
        } else {
            prop_assert_ne!(w.peek(at, l), Window::new().peek(at, l));
        }
    }

    #[test]
    fn slots_out_of_order_never_panic_and_stay_safe(
        l in limit(),
        slots in slots(),
        lags in prop::collection::vec(0u64..3, 200),
    ) {
        // Each request reads a clock up to 2 s behind the others; the ledger records it at
        // the newest slot, so safety holds for the slots it records.
        let q = l.q() as usize;
        let mut w = Window::new();
        let mut recorded: Vec<u64> = Vec::new();
        for (&s, &lag) in slots.iter().zip(&lags) {
            let asked = s.saturating_sub(lag);
            let newest = w.newest();
            if w.admit(asked, l).is_admitted() {
                recorded.push(newest.map_or(asked, |n| n.max(asked)));
            }
            prop_assert!(w.held_slots() <= q.min(l.w() as usize + 1));
        }
        for &a in &recorded {
            let held = recorded.iter().filter(|&&e| a <= e && e <= a + u64::from(l.w())).count();
            prop_assert!(held <= q);
        }
    }
}

//! Rate limits: the policies of the contract, their limits, and the sliding-window rule,
//! pure and with time injected as whole-second slots (`floor(unix seconds)`), so the same
//! rule serves the per-instance limiters and the ledger shared through PostgreSQL, and is
//! tested without a clock.
//!
//! The rule: at slot `s` a limit of `q` per `w` seconds counts the admissions recorded in
//! slots `s - w ..= s` (`w + 1` slots), and admits when that count is below `q`. One slot
//! more than `w` is deliberate: a real interval of `w` seconds touches up to `w + 1` slots,
//! so counting fewer would let a client fit more than `q` into `w` seconds by straddling
//! second boundaries. Every `w + 1` consecutive slots hold at most `q` admissions.

mod address;

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroU32;

pub use address::ClientAddress;

/// The contract's policies: what is counted, and by which partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Every `/api/...` request, per account key.
    Requests,
    /// Every `/admin/...` request, per admin key.
    Admin,
    /// Every 401, per client address.
    AuthFailures,
    /// Every 404 of `GET /{code}`, per client address.
    UnknownCodes,
    /// Every wrong link password, per client address and link.
    Passwords,
}

impl Policy {
    /// Every policy, in the contract's order.
    pub const ALL: [Policy; 5] = [
        Policy::Requests,
        Policy::Admin,
        Policy::AuthFailures,
        Policy::UnknownCodes,
        Policy::Passwords,
    ];

    /// The name on the wire (`RateLimit-Policy`, `violated-policies`).
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Requests => "requests",
            Policy::Admin => "admin",
            Policy::AuthFailures => "auth-failures",
            Policy::UnknownCodes => "unknown-codes",
            Policy::Passwords => "passwords",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `quota` admissions per `window_secs` seconds. Both are at least 1, so a limit always
/// admits something; a policy that is off has no `Limit` (`Option<Limit>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limit {
    /// `q`: admissions a window may hold.
    pub quota: NonZeroU32,
    /// `w`: the window's length in seconds.
    pub window_secs: NonZeroU32,
}

impl Limit {
    /// `quota` per `window_secs` seconds.
    pub const fn new(quota: NonZeroU32, window_secs: NonZeroU32) -> Limit {
        Limit { quota, window_secs }
    }

    /// `n` per 60 seconds, as configuration states limits; `0` turns the policy off
    /// (`None`).
    pub fn per_minute(n: u32) -> Option<Limit> {
        const MINUTE: NonZeroU32 = NonZeroU32::MIN.saturating_add(59);
        Some(Limit::new(NonZeroU32::new(n)?, MINUTE))
    }

    /// `q`.
    pub fn q(self) -> u32 {
        self.quota.get()
    }

    /// `w`.
    pub fn w(self) -> u32 {
        self.window_secs.get()
    }
}

/// What a request gets. The numbers feed `RateLimit: "<policy>";r=<remaining>;t=<reset>`
/// and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Decision {
    /// Let through (and counted, when it came from [`Window::admit`]).
    Admitted {
        /// Admissions the window has left after this one: `q - count`.
        remaining: u32,
        /// Seconds until the oldest admission still counted leaves the window, so that it
        /// has one more admission of room (with `remaining == 0`: exactly the
        /// `retry_after_secs` the next request would be told). At least 1, at most `w + 1`.
        reset_secs: u32,
    },
    /// Refused: the window holds `q` admissions (or more, after the quota was lowered).
    Limited {
        /// Seconds until the window has room again: a request `retry_after_secs` after
        /// this one (same slot plus `retry_after_secs`) is admitted, if nothing else was
        /// admitted meanwhile; one slot earlier would not be. At least 1.
        retry_after_secs: u32,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_admitted(self) -> bool {
        matches!(self, Decision::Admitted { .. })
    }

    /// `Retry-After` for a refused request, `None` for an admitted one.
    pub fn retry_after_secs(self) -> Option<u32> {
        match self {
            Decision::Admitted { .. } => None,
            Decision::Limited { retry_after_secs } => Some(retry_after_secs),
        }
    }
}

/// The ledger of one partition (a key, an address) under one limit: how many admissions
/// each recent slot holds, oldest first.
///
/// Bounded: only slots inside the current window are kept, and only slots with an
/// admission, so it never holds more than `min(q, w + 1)` slots. Callers pass the same
/// [`Limit`] each time; a changed limit is honoured from then on (a lowered quota simply
/// finds the window fuller).
///
/// Slots are nondecreasing in the normal case. A slot older than the newest seen (two
/// threads reading the clock a moment apart) does not panic: the request is judged and
/// recorded as if it came at the newest slot, which counts it at least as long as its own
/// slot would (a lag of a second or so in practice).
///
/// The arithmetic, with `e_1 <= e_2 <= ... <= e_c` the slots of the `c` admissions in the
/// window at slot `s`:
/// - admitted iff `c < q`; then `remaining = q - (c + 1)` and `reset_secs = e_1 + w + 1 - s`
///   (`e_1` is `s` itself when the window was empty): the slot at which `e_1` has left;
/// - refused otherwise, with `retry_after_secs = e_(c-q+1) + w + 1 - s`: from that slot on
///   at most `q - 1` of the admissions are still in the window, and at the slot before it
///   `q` still are. Since `e_i >= s - w`, both are at least 1. A client that waits that
///   many whole seconds lands in exactly that slot (its request at `s + f`, `0 <= f < 1`,
///   comes again at `s + r + f`).
///
/// Slots are unix seconds; arithmetic near `u64::MAX` saturates instead of overflowing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Window {
    /// `(slot, admissions in it)`, oldest first, slots strictly increasing, counts >= 1.
    slots: VecDeque<(u64, u32)>,
}

impl Window {
    /// An empty ledger.
    pub fn new() -> Window {
        Window::default()
    }

    /// A ledger from stored `(slot, admissions)` counts in any order (e.g. the rows of a
    /// shared ledger), so that their decision is made by the same arithmetic. Repeated
    /// slots add up; zero counts are dropped. Slots outside the window are kept until the
    /// next [`Window::admit`] drops them, and never counted.
    pub fn from_counts(counts: impl IntoIterator<Item = (u64, u32)>) -> Window {
        let mut counts: Vec<(u64, u32)> = counts.into_iter().filter(|&(_, n)| n > 0).collect();
        counts.sort_unstable_by_key(|&(s, _)| s);
        let mut slots: VecDeque<(u64, u32)> = VecDeque::with_capacity(counts.len());
        for (s, n) in counts {
            match slots.back_mut() {
                Some((last, sum)) if *last == s => *sum = sum.saturating_add(n),
                _ => slots.push_back((s, n)),
            }
        }
        Window { slots }
    }

    /// The `(slot, admissions)` counts held, oldest first: what a shared ledger stores.
    pub fn counts(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.slots.iter().copied()
    }

    /// Judges a request at `slot` and, when it is admitted, records it.
    pub fn admit(&mut self, slot: u64, limit: Limit) -> Decision {
        let now = self.effective(slot);
        let first = first_counted(now, limit);
        while self.slots.front().is_some_and(|&(s, _)| s < first) {
            self.slots.pop_front();
        }
        let decision = self.decide(now, limit);
        if decision.is_admitted() {
            match self.slots.back_mut() {
                Some((s, n)) if *s == now => *n = n.saturating_add(1),
                _ => self.slots.push_back((now, 1)),
            }
        }
        decision
    }

    /// What [`Window::admit`] would answer at `slot`, recording nothing: for refusing
    /// before doing work, or for headers on a response that is not counted.
    pub fn peek(&self, slot: u64, limit: Limit) -> Decision {
        self.decide(self.effective(slot), limit)
    }

    /// Whether nothing admitted is still counted at `slot`: the ledger answers exactly as
    /// an empty one would, so it can be forgotten.
    pub fn is_idle(&self, slot: u64, limit: Limit) -> bool {
        let first = first_counted(self.effective(slot), limit);
        self.newest().is_none_or(|newest| newest < first)
    }

    /// Admissions the window at `slot` counts (`q - remaining` before this request): lets
    /// a bounded table forget the partitions that know least first.
    pub fn count(&self, slot: u64, limit: Limit) -> u32 {
        let first = first_counted(self.effective(slot), limit);
        self.slots
            .iter()
            .filter(|&&(s, _)| s >= first)
            .fold(0u32, |sum, &(_, n)| sum.saturating_add(n))
    }

    /// The slot of the newest admission held, if any: lets a bounded table evict the
    /// partition that has been quiet longest.
    pub fn newest(&self) -> Option<u64> {
        self.slots.back().map(|&(s, _)| s)
    }

    /// Slots held (for tests of the memory bound).
    pub fn held_slots(&self) -> usize {
        self.slots.len()
    }

    /// The slot a request at `slot` is judged and recorded at: never before the newest
    /// admission held.
    fn effective(&self, slot: u64) -> u64 {
        self.newest().map_or(slot, |newest| slot.max(newest))
    }

    /// The decision at `now` (never before the newest slot held), ignoring slots that have
    /// left the window even if not yet dropped.
    fn decide(&self, now: u64, limit: Limit) -> Decision {
        let first = first_counted(now, limit);
        let counted = || self.slots.iter().filter(move |&&(s, _)| s >= first);
        let count: u64 = counted().map(|&(_, n)| u64::from(n)).sum();
        let q = u64::from(limit.q());
        let secs_until_gone = |e: u64| -> u32 {
            let gone = e.saturating_add(u64::from(limit.w())).saturating_add(1);
            u32::try_from(gone.saturating_sub(now).max(1)).unwrap_or(u32::MAX)
        };
        if count < q {
            let oldest = counted().next().map_or(now, |&(s, _)| s);
            return Decision::Admitted {
                // count + 1 <= q <= u32::MAX
                remaining: u32::try_from(q - count - 1).unwrap_or(0),
                reset_secs: secs_until_gone(oldest),
            };
        }
        // The (count - q + 1)-th oldest admission: once it has left, q - 1 remain.
        let mut skip = count - q;
        let mut pivot = now;
        for &(s, n) in counted() {
            if u64::from(n) > skip {
                pivot = s;
                break;
            }
            skip -= u64::from(n);
        }
        Decision::Limited {
            retry_after_secs: secs_until_gone(pivot),
        }
    }
}

/// The oldest slot the window at `now` counts: `now - w`.
fn first_counted(now: u64, limit: Limit) -> u64 {
    now.saturating_sub(u64::from(limit.w()))
}

#[cfg(test)]
mod proptests;

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(q: u32, w: u32) -> Limit {
        match (NonZeroU32::new(q), NonZeroU32::new(w)) {
            (Some(q), Some(w)) => Limit::new(q, w),
            _ => panic!("q and w must be positive"),
        }
    }

    fn retry(d: Decision) -> u32 {
        d.retry_after_secs()
            .unwrap_or_else(|| panic!("expected Limited, got {d:?}"))
    }

    const T: u64 = 1_700_000_000;

    #[test]
    fn policy_names_are_the_contracts() {
        let names: Vec<_> = Policy::ALL.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            names,
            [
                "requests",
                "admin",
                "auth-failures",
                "unknown-codes",
                "passwords"
            ]
        );
    }

    #[test]
    fn per_minute_is_off_at_zero() {
        assert_eq!(Limit::per_minute(0), None);
        assert_eq!(Limit::per_minute(600), Some(limit(600, 60)));
        assert_eq!(Limit::per_minute(1).map(Limit::w), Some(60));
    }

    #[test]
    fn the_qth_is_admitted_the_next_refused_until_the_retry_slot() {
        let l = limit(3, 10);
        let mut w = Window::new();
        assert_eq!(
            w.admit(T, l),
            Decision::Admitted {
                remaining: 2,
                reset_secs: 11
            }
        );
        assert_eq!(
            w.admit(T + 4, l),
            Decision::Admitted {
                remaining: 1,
                reset_secs: 7
            }
        );
        // The q-th: no room left, and the reset is when the oldest leaves.
        assert_eq!(
            w.admit(T + 5, l),
            Decision::Admitted {
                remaining: 0,
                reset_secs: 6
            }
        );
        // The (q+1)-th: refused until slot T + 11, when T has left (T+11-10 = T+1 > T).
        assert_eq!(
            w.admit(T + 5, l),
            Decision::Limited {
                retry_after_secs: 6
            }
        );
        assert_eq!(retry(w.admit(T + 10, l)), 1);
        // At the last slot that still counts T: refused; at the retry slot: admitted.
        assert_eq!(
            w.admit(T + 11, l),
            Decision::Admitted {
                remaining: 0,
                reset_secs: 4
            }
        );
        assert_eq!(retry(w.admit(T + 11, l)), 4);
        assert!(!w.admit(T + 14, l).is_admitted());
        assert!(w.admit(T + 15, l).is_admitted());
    }

    #[test]
    fn refused_requests_are_not_counted() {
        let l = limit(1, 5);
        let mut w = Window::new();
        assert!(w.admit(T, l).is_admitted());
        for s in T..T + 6 {
            assert_eq!(retry(w.admit(s, l)), u32::try_from(T + 6 - s).unwrap());
        }
        assert!(w.admit(T + 6, l).is_admitted());
    }

    #[test]
    fn one_second_windows_span_two_slots() {
        let l = limit(2, 1);
        let mut w = Window::new();
        assert!(w.admit(T, l).is_admitted());
        assert!(w.admit(T + 1, l).is_admitted());
        // T and T + 1 both count at T + 1: refused until T + 2.
        assert_eq!(retry(w.admit(T + 1, l)), 1);
        assert_eq!(
            w.admit(T + 2, l),
            Decision::Admitted {
                remaining: 0,
                reset_secs: 1
            }
        );
    }

    #[test]
    fn quota_of_one() {
        let l = limit(1, 60);
        let mut w = Window::new();
        assert_eq!(
            w.admit(T, l),
            Decision::Admitted {
                remaining: 0,
                reset_secs: 61
            }
        );
        assert_eq!(retry(w.admit(T, l)), 61);
        assert_eq!(retry(w.admit(T + 60, l)), 1);
        assert!(w.admit(T + 61, l).is_admitted());
    }

    #[test]
    fn a_big_jump_forgets_everything() {
        let l = limit(2, 60);
        let mut w = Window::new();
        assert!(w.admit(T, l).is_admitted());
        assert!(w.admit(T, l).is_admitted());
        assert!(!w.admit(T, l).is_admitted());
        assert!(w.is_idle(T + 1_000_000, l));
        assert_eq!(
            w.admit(T + 1_000_000, l),
            Decision::Admitted {
                remaining: 1,
                reset_secs: 61
            }
        );
        assert_eq!(w.held_slots(), 1);
        // From slot 0 and near the end of time: no overflow.
        let mut w = Window::new();
        assert!(w.admit(0, l).is_admitted());
        assert!(w.admit(u64::MAX, l).is_admitted());
        assert!(w.admit(u64::MAX, l).is_admitted());
        assert!(!w.admit(u64::MAX, l).is_admitted());
    }

    #[test]
    fn an_older_slot_counts_at_the_newest() {
        let l = limit(2, 10);
        let mut w = Window::new();
        assert!(w.admit(T + 10, l).is_admitted());
        // A thread that read the clock a second earlier: judged and recorded at T + 10.
        assert_eq!(
            w.admit(T + 9, l),
            Decision::Admitted {
                remaining: 0,
                reset_secs: 11
            }
        );
        assert_eq!(w.held_slots(), 1);
        assert_eq!(retry(w.admit(T, l)), 11);
        assert!(!w.is_idle(T - 100, l));
        assert!(!w.admit(T + 20, l).is_admitted());
        assert!(w.admit(T + 21, l).is_admitted());
    }

    #[test]
    fn peek_answers_as_admit_without_recording() {
        let l = limit(2, 10);
        let mut w = Window::new();
        assert_eq!(w.peek(T, l), w.clone().admit(T, l));
        assert!(w.admit(T, l).is_admitted());
        assert_eq!(w.peek(T + 1, l), w.clone().admit(T + 1, l));
        assert!(w.admit(T + 1, l).is_admitted());
        assert_eq!(
            w.peek(T + 2, l),
            Decision::Limited {
                retry_after_secs: 9
            }
        );
        assert_eq!(w.peek(T + 11, l), w.clone().admit(T + 11, l));
        assert_eq!(w.held_slots(), 2);
    }

    #[test]
    fn a_window_rebuilt_from_its_counts_decides_alike() {
        let l = limit(3, 10);
        let mut w = Window::new();
        for s in [T, T, T + 4] {
            assert!(w.admit(s, l).is_admitted());
        }
        let counts: Vec<_> = w.counts().collect();
        assert_eq!(counts, [(T, 2), (T + 4, 1)]);
        let rebuilt = Window::from_counts([(T + 4, 1), (T, 1), (T - 50, 0), (T, 1)]);
        assert_eq!(rebuilt, w);
        for s in T..T + 20 {
            assert_eq!(rebuilt.peek(s, l), w.peek(s, l));
        }
    }

    #[test]
    fn idle_once_the_newest_admission_has_left() {
        let l = limit(5, 10);
        let mut w = Window::new();
        assert!(w.is_idle(T, l));
        assert!(w.admit(T, l).is_admitted());
        assert!(!w.is_idle(T + 10, l));
        assert!(w.is_idle(T + 11, l));
        assert_eq!(w.newest(), Some(T));
    }

    #[test]
    fn a_lowered_quota_finds_the_window_fuller() {
        let mut w = Window::new();
        for s in [T, T + 1, T + 2, T + 3] {
            assert!(w.admit(s, limit(10, 10)).is_admitted());
        }
        // q = 2 with 4 counted: room again once the 3rd oldest (T + 2) has left.
        assert_eq!(retry(w.admit(T + 3, limit(2, 10))), 10);
        assert!(!w.admit(T + 12, limit(2, 10)).is_admitted());
        assert!(w.admit(T + 13, limit(2, 10)).is_admitted());
    }
}

//! Key budgets shared by every instance on the database: the `requests` policy of an
//! account key and the `admin` policy of an admin key let through `q` per window in all,
//! however many instances serve the key.
//!
//! The budget lives in a [`RateLedger`] (PostgreSQL in production, migration `000015`),
//! counted in the same whole-second slots as [`Window`]. An instance does not ask the
//! ledger for every request: it takes a lease of admissions for the current slot, spends
//! it in memory, and gives back what it did not spend when it comes for the next. The
//! lease starts at one (a quiet key costs one ledger call a request, and its headers count
//! down exactly) and doubles each time a slot uses it up, up to [`MAX_LEASE`], so a busy
//! key costs a few calls a second. A lease counts as spent until given back, so the
//! instances together never let through more than `q`.
//!
//! When the ledger cannot be reached, each instance counts the key in memory on its own
//! (fail open to per-instance limits): nothing then answers that needs the database anyway,
//! and a key is never left unlimited nor refused because the budget's store is away.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use shortener_domain::rate::{Decision, Limit, Policy, Window};
use uuid::Uuid;

use crate::{AppError, Chain};

/// Most admissions one lease takes: a busy key's last lease of a slot can leave this many
/// unspent for the other instances until it is given back (within a second).
pub const MAX_LEASE: u32 = 256;

/// Partitions kept in memory before the idle ones are first forgotten; after each sweep
/// the next comes when the table has doubled, so many active keys never make every new
/// key pay for a sweep.
const PRUNE_AT: usize = 4096;

/// What an instance asks of the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Take {
    /// The policy counted (`requests` or `admin`).
    pub policy: Policy,
    /// The key's id.
    pub partition: Uuid,
    /// The policy's limit for this key.
    pub limit: Limit,
    /// The current slot (whole seconds since the Unix epoch).
    pub slot: u64,
    /// Admissions wanted now.
    pub want: u32,
    /// Unspent admissions of an earlier lease, and its slot, to give back first.
    pub give_back: Option<(u64, u32)>,
}

/// What the ledger granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Taken {
    /// Admissions granted in the slot (0: the window is full).
    pub granted: u32,
    /// Admissions counted in the window, the grant included (every instance's leases).
    pub counted: u32,
    /// The oldest slot with an admission counted, if any.
    pub oldest: Option<u64>,
}

/// Where shared key budgets are kept.
pub trait RateLedger: Send + Sync + 'static {
    /// Gives back `take.give_back`, then grants up to `take.want` admissions in
    /// `take.slot` as far as the window has room, atomically against every other instance.
    fn take(&self, take: &Take) -> impl Future<Output = Result<Taken, AppError>> + Send;
}

/// One instance's lease on a key's budget.
#[derive(Debug)]
struct Lease {
    slot: u64,
    /// Admissions granted for `slot` and not yet spent.
    left: u32,
    /// The window's count when granted.
    counted: u32,
    oldest: Option<u64>,
    /// Admissions the next lease asks for.
    size: u32,
    /// The window was full when last asked: until this slot, refuse without asking again
    /// (a key over its limit costs the ledger one call per window edge, not one per
    /// request).
    limited_until: u64,
    /// The key counted in memory while the ledger is unreachable.
    fallback: Window,
}

impl Lease {
    fn new() -> Lease {
        Lease {
            slot: 0,
            left: 0,
            counted: 0,
            oldest: None,
            size: 1,
            limited_until: 0,
            fallback: Window::default(),
        }
    }

    /// Spends one admission of the lease, if it is for `slot` and has one left.
    fn spend(&mut self, slot: u64, limit: Limit) -> Option<Decision> {
        if self.slot != slot || self.left == 0 {
            return None;
        }
        self.left -= 1;
        let spent = self.counted.saturating_sub(self.left);
        Some(Decision::Admitted {
            remaining: limit.quota.get().saturating_sub(spent),
            reset_secs: reset(self.oldest.unwrap_or(slot), slot, limit),
        })
    }
}

/// Seconds from `slot` until admissions of `oldest` leave the window (`oldest + w + 1`).
fn reset(oldest: u64, slot: u64, limit: Limit) -> u32 {
    let leaves = oldest + u64::from(limit.window_secs.get()) + 1;
    u32::try_from(leaves.saturating_sub(slot))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// A lease, locked across its renewal (an async lock: the renewal awaits the ledger).
type Held = Arc<tokio::sync::Mutex<Lease>>;

/// The shared budgets of one instance: its leases, by policy and key.
pub struct KeyLimiter<L> {
    ledger: L,
    leases: Mutex<Leases>,
}

/// The leases, and the size at which idle ones are next swept out.
struct Leases {
    held: HashMap<(Policy, Uuid), Held>,
    sweep_at: usize,
}

impl<L: RateLedger> KeyLimiter<L> {
    /// Budgets kept in `ledger`; no lease held yet.
    pub fn new(ledger: L) -> KeyLimiter<L> {
        KeyLimiter {
            ledger,
            leases: Mutex::new(Leases {
                held: HashMap::new(),
                sweep_at: PRUNE_AT,
            }),
        }
    }

    /// Lets one request of `key` through under `policy`'s `limit`, or not, at `slot`.
    pub async fn admit(&self, policy: Policy, key: Uuid, limit: Limit, slot: u64) -> Decision {
        let lease = self.lease(policy, key, slot, limit);
        // Requests of one key on this instance wait here while one of them renews the
        // lease: one ledger call for all of them.
        let mut lease = lease.lock().await;
        if let Some(admitted) = lease.spend(slot, limit) {
            return admitted;
        }
        if slot < lease.limited_until {
            return Decision::Limited {
                retry_after_secs: u32::try_from(lease.limited_until - slot).unwrap_or(u32::MAX),
            };
        }
        // A slot that used its whole lease asks for twice as much next time; one that
        // left some asks for less.
        lease.size = if lease.slot == slot {
            (lease.size * 2).min(MAX_LEASE)
        } else if lease.left > 0 {
            (lease.size / 2).max(1)
        } else {
            lease.size
        };
        let window = u64::from(limit.window_secs.get());
        let give_back =
            (lease.left > 0 && lease.slot + window >= slot).then_some((lease.slot, lease.left));
        let take = Take {
            policy,
            partition: key,
            limit,
            slot,
            want: lease.size.min(limit.quota.get()),
            give_back,
        };
        match self.ledger.take(&take).await {
            Ok(taken) => {
                lease.slot = slot;
                lease.left = taken.granted;
                lease.counted = taken.counted;
                lease.oldest = taken.oldest;
                match lease.spend(slot, limit) {
                    Some(admitted) => admitted,
                    None => {
                        let retry = reset(taken.oldest.unwrap_or(slot), slot, limit);
                        lease.limited_until = slot + u64::from(retry);
                        Decision::Limited {
                            retry_after_secs: retry,
                        }
                    }
                }
            }
            Err(e) => {
                // What was leased is lost with the connection's answer; the ledger keeps
                // it counted until its slot leaves the window (the safe side).
                lease.left = 0;
                static REPORT: crate::Throttle = crate::Throttle::new();
                if let Some(suppressed) = REPORT.admit() {
                    tracing::warn!(error = %Chain(&e), policy = policy.as_str(), suppressed,
                        "rate-limit ledger unreachable; counting this instance's requests alone");
                }
                lease.fallback.admit(slot, limit)
            }
        }
    }

    /// The lease of `key` under `policy`, made when first asked for; idle ones are
    /// forgotten when many are held.
    fn lease(&self, policy: Policy, key: Uuid, slot: u64, limit: Limit) -> Held {
        let mut leases = self.leases.lock().unwrap_or_else(|e| e.into_inner());
        if leases.held.len() >= leases.sweep_at {
            let window = u64::from(limit.window_secs.get());
            leases.held.retain(|_, lease| {
                // Held by a request right now, or used within the window: keep.
                lease
                    .try_lock()
                    .map_or(true, |l| l.slot + window + 1 >= slot)
            });
            leases.sweep_at = (leases.held.len() * 2).max(PRUNE_AT);
        }
        leases
            .held
            .entry((policy, key))
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Lease::new())))
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;

    /// Admissions per slot.
    type Slots = Vec<(u64, u32)>;

    /// The ledger as the SQL function keeps it, in memory: slot counts per partition.
    #[derive(Clone, Default)]
    struct Ledger {
        slots: Arc<Mutex<HashMap<(Policy, Uuid), Slots>>>,
        calls: Arc<AtomicU32>,
        down: Arc<AtomicBool>,
    }

    impl RateLedger for Ledger {
        async fn take(&self, t: &Take) -> Result<Taken, AppError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if self.down.load(Ordering::SeqCst) {
                return Err(AppError::unavailable("down"));
            }
            let mut all = self.slots.lock().unwrap();
            let slots = all.entry((t.policy, t.partition)).or_default();
            if let Some((back_slot, n)) = t.give_back {
                for (s, c) in slots.iter_mut() {
                    if *s == back_slot {
                        *c = c.saturating_sub(n);
                    }
                }
            }
            let w = u64::from(t.limit.window_secs.get());
            slots.retain(|(s, _)| *s + w >= t.slot);
            let total: u32 = slots.iter().map(|(_, c)| c).sum();
            let granted = t.want.min(t.limit.quota.get().saturating_sub(total));
            if granted > 0 {
                match slots.iter_mut().find(|(s, _)| *s == t.slot) {
                    Some((_, c)) => *c += granted,
                    None => slots.push((t.slot, granted)),
                }
            }
            let oldest = slots.iter().filter(|(_, c)| *c > 0).map(|(s, _)| *s).min();
            Ok(Taken {
                granted,
                counted: total + granted,
                oldest,
            })
        }
    }

    fn limit(q: u32, w: u32) -> Limit {
        Limit {
            quota: NonZeroU32::new(q).unwrap(),
            window_secs: NonZeroU32::new(w).unwrap(),
        }
    }

    fn admitted(d: Decision) -> bool {
        matches!(d, Decision::Admitted { .. })
    }

    #[tokio::test]
    async fn a_quiet_key_counts_down_one_by_one() {
        let limiter = KeyLimiter::new(Ledger::default());
        let key = Uuid::now_v7();
        let l = limit(5, 60);
        for (i, slot) in (100..105).enumerate() {
            let d = limiter.admit(Policy::Requests, key, l, slot).await;
            assert_eq!(
                d,
                Decision::Admitted {
                    remaining: 4 - i as u32,
                    reset_secs: 61 - i as u32
                }
            );
        }
        assert_eq!(
            limiter.admit(Policy::Requests, key, l, 105).await,
            Decision::Limited {
                retry_after_secs: 56
            }
        );
        assert!(admitted(limiter.admit(Policy::Requests, key, l, 161).await));
    }

    #[tokio::test]
    async fn two_instances_share_one_budget() {
        let ledger = Ledger::default();
        let (a, b) = (
            KeyLimiter::new(ledger.clone()),
            KeyLimiter::new(ledger.clone()),
        );
        let key = Uuid::now_v7();
        let l = limit(100, 60);
        let mut through = 0;
        // Both busy in the same seconds: leases grow, and still 100 in all.
        for slot in 1000..1010 {
            for _ in 0..30 {
                through += u32::from(admitted(a.admit(Policy::Requests, key, l, slot).await));
                through += u32::from(admitted(b.admit(Policy::Requests, key, l, slot).await));
            }
        }
        assert!(through <= 100, "{through} let through");
        // Unspent leases come back: nearly the whole budget was usable.
        assert!(
            through >= 100 - 2 * MAX_LEASE.min(100) / 8,
            "{through} let through"
        );
        assert!(
            ledger.calls.load(Ordering::SeqCst) < 600 / 2,
            "leases saved ledger calls"
        );
    }

    #[tokio::test]
    async fn a_busy_key_calls_the_ledger_a_few_times_a_second() {
        let ledger = Ledger::default();
        let limiter = KeyLimiter::new(ledger.clone());
        let key = Uuid::now_v7();
        let l = limit(1_000_000, 60);
        for slot in 0..10 {
            for _ in 0..1000 {
                assert!(admitted(limiter.admit(Policy::Admin, key, l, slot).await));
            }
        }
        let calls = ledger.calls.load(Ordering::SeqCst);
        assert!(calls < 100, "{calls} ledger calls for 10 000 requests");
    }

    #[tokio::test]
    async fn without_the_ledger_each_instance_counts_alone() {
        let ledger = Ledger::default();
        ledger.down.store(true, Ordering::SeqCst);
        let limiter = KeyLimiter::new(ledger.clone());
        let key = Uuid::now_v7();
        let l = limit(3, 60);
        let through: Vec<bool> = futures_admits(&limiter, key, l, 50, 5).await;
        assert_eq!(through, [true, true, true, false, false]);
        // Back: the shared budget counts again (it saw none of the above).
        ledger.down.store(false, Ordering::SeqCst);
        assert!(admitted(limiter.admit(Policy::Requests, key, l, 51).await));
    }

    async fn futures_admits(
        limiter: &KeyLimiter<Ledger>,
        key: Uuid,
        l: Limit,
        slot: u64,
        n: usize,
    ) -> Vec<bool> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(admitted(
                limiter.admit(Policy::Requests, key, l, slot).await,
            ));
        }
        out
    }

    #[tokio::test]
    async fn idle_leases_are_forgotten_and_active_ones_kept() {
        let limiter = KeyLimiter::new(Ledger::default());
        let l = limit(10, 60);
        let active = Uuid::now_v7();
        assert!(admitted(
            limiter.admit(Policy::Requests, active, l, 100).await
        ));
        for _ in 2..PRUNE_AT {
            let _ = limiter
                .admit(Policy::Requests, Uuid::now_v7(), l, 100)
                .await;
        }
        assert!(admitted(
            limiter.admit(Policy::Requests, active, l, 150).await
        ));
        let late = Uuid::now_v7();
        assert!(admitted(
            limiter.admit(Policy::Requests, late, l, 150).await
        ));
        assert_eq!(limiter.leases.lock().unwrap().held.len(), PRUNE_AT);
        // At 162, what was last used at 100 has been idle a whole window (61 slots).
        let _ = limiter
            .admit(Policy::Requests, Uuid::now_v7(), l, 162)
            .await;
        let leases = limiter.leases.lock().unwrap();
        assert_eq!(leases.held.len(), 3, "the two used at 150 and the new one");
        assert!(leases.held.contains_key(&(Policy::Requests, active)));
        assert_eq!(leases.sweep_at, PRUNE_AT);
    }

    #[tokio::test]
    async fn keys_and_policies_have_budgets_of_their_own() {
        let limiter = KeyLimiter::new(Ledger::default());
        let (k1, k2) = (Uuid::now_v7(), Uuid::now_v7());
        let l = limit(1, 60);
        assert!(admitted(limiter.admit(Policy::Requests, k1, l, 7).await));
        assert!(!admitted(limiter.admit(Policy::Requests, k1, l, 7).await));
        assert!(admitted(limiter.admit(Policy::Requests, k2, l, 7).await));
        assert!(admitted(limiter.admit(Policy::Admin, k1, l, 7).await));
    }
}

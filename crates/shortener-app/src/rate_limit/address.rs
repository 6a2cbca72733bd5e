//! The per-address policies (`auth-failures`, `unknown-codes`, `passwords`), counted in
//! each instance's memory, as the contract allows: the sliding-window rule of
//! [`shortener_domain::rate`] over a bounded table of partitions.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, MutexGuard};

use shortener_domain::rate::{Decision, Limit, Window};

/// Most shards: enough that two workers rarely wait on each other.
const SHARDS: usize = 16;

/// One policy's limiter for the partitions of one instance: a [`Window`] per key (a
/// `ClientAddress`, or `(ClientAddress, LinkId)` for `passwords`).
///
/// Bounded: it never holds more than `capacity` keys, so a flood of distinct addresses
/// costs a fixed amount of memory. When a new key finds its shard full, an eighth of the
/// shard is forgotten: the windows with nothing left in them first, then those that know
/// least (fewest admissions still counted, then the longest quiet), so a flood of one-off
/// addresses displaces itself, not an address at its limit. Eviction can only
/// forget admissions, so under such a flood a key may get more than its quota, never less.
///
/// Sharded `std::sync::Mutex<HashMap>`: a check holds one shard's lock for a hash lookup
/// and a few slots' arithmetic (well under a microsecond); the sweep when a shard fills
/// scans that shard, once per eighth of its capacity inserted. These calls are made on
/// failures (a 401, an unknown code, a wrong password), never on the found-redirect path,
/// so a lock is simpler than anything lock-free and costs nothing measurable. Keys are
/// hashed with std's randomly keyed SipHash: they are chosen by clients.
pub struct AddressLimiter<K> {
    limit: Limit,
    shards: Box<[Mutex<Shard<K>>]>,
    /// Picks the shard; distinct from the maps' own hasher, so that the keys of one shard
    /// do not share their low hash bits inside it.
    route: RandomState,
}

struct Shard<K> {
    windows: HashMap<K, Window>,
    capacity: usize,
}

impl<K: Eq + Hash + Clone> AddressLimiter<K> {
    /// A limiter for `limit` holding at most `capacity` keys (at least 1).
    pub fn new(limit: Limit, capacity: usize) -> AddressLimiter<K> {
        let capacity = capacity.max(1);
        let n = capacity.min(SHARDS);
        // The shards' capacities add up to exactly `capacity`, each at least 1.
        let shards = (0..n)
            .map(|i| {
                let capacity = capacity / n + usize::from(i < capacity % n);
                Mutex::new(Shard {
                    windows: HashMap::new(),
                    capacity,
                })
            })
            .collect();
        AddressLimiter {
            limit,
            shards,
            route: RandomState::new(),
        }
    }

    /// The limit it enforces.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Counts one covered event of `key` at `slot` if the window has room, and says whether
    /// it had: for policies that refuse the event itself once over the limit.
    pub fn check(&self, key: K, slot: u64) -> Decision {
        let mut shard = self.shard(&key);
        if let Some(window) = shard.windows.get_mut(&key) {
            return window.admit(slot, self.limit);
        }
        shard.make_room(slot, self.limit);
        let mut window = Window::new();
        let decision = window.admit(slot, self.limit);
        shard.windows.insert(key, window);
        decision
    }

    /// Counts one covered event that has already happened (a 401 sent): as
    /// [`AddressLimiter::check`], the answer not needed. An event of a key already at its
    /// limit is not counted again; it is refused by [`AddressLimiter::over`] first anyway.
    pub fn record(&self, key: K, slot: u64) {
        let _ = self.check(key, slot);
    }

    /// `Some(retry_after_secs)` when `key` is at its limit at `slot`, recording nothing:
    /// to refuse before doing the work (or counting the failure) at all.
    pub fn over(&self, key: &K, slot: u64) -> Option<u32> {
        self.shard(key)
            .windows
            .get(key)
            .and_then(|window| window.peek(slot, self.limit).retry_after_secs())
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).windows.len()).sum()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard(&self, key: &K) -> MutexGuard<'_, Shard<K>> {
        // The hash is uniform; the remainder's bias over at most 16 shards is nil.
        let i = (self.route.hash_one(key) % self.shards.len() as u64) as usize;
        lock(&self.shards[i])
    }
}

impl<K: Eq + Hash + Clone> Shard<K> {
    /// When the shard is full, frees an eighth of it (at least one place), so that the
    /// scans this takes come once per eighth of the capacity inserted: idle windows first,
    /// then those with the fewest admissions counted, the longest quiet first.
    fn make_room(&mut self, slot: u64, limit: Limit) {
        if self.windows.len() < self.capacity {
            return;
        }
        let keep = self.capacity - (self.capacity / 8).max(1);
        self.windows.retain(|_, w| !w.is_idle(slot, limit));
        let Some(evict) = self.windows.len().checked_sub(keep).filter(|&n| n > 0) else {
            return;
        };
        let mut ranked: Vec<((u32, u64), K)> = self
            .windows
            .iter()
            .map(|(k, w)| ((w.count(slot, limit), w.newest().unwrap_or(0)), k.clone()))
            .collect();
        if evict < ranked.len() {
            ranked.select_nth_unstable_by_key(evict, |(rank, _)| *rank);
        }
        for (_, key) in ranked.into_iter().take(evict) {
            self.windows.remove(&key);
        }
    }
}

/// A shard stays usable after a panic elsewhere: its windows are only ever a little stale.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::num::NonZeroU32;
    use std::sync::Arc;

    use shortener_domain::LinkId;
    use shortener_domain::rate::ClientAddress;

    use super::*;

    const T: u64 = 1_700_000_000;

    fn limit(q: u32, w: u32) -> Limit {
        match (NonZeroU32::new(q), NonZeroU32::new(w)) {
            (Some(q), Some(w)) => Limit::new(q, w),
            _ => panic!("q and w must be positive"),
        }
    }

    fn addr(i: u32) -> ClientAddress {
        ClientAddress::new(IpAddr::V4(Ipv4Addr::from(i)))
    }

    #[test]
    fn each_address_has_its_own_window() {
        let l = AddressLimiter::new(limit(2, 60), 100);
        assert!(l.check(addr(1), T).is_admitted());
        assert!(l.check(addr(1), T).is_admitted());
        assert_eq!(l.over(&addr(1), T), Some(61));
        assert_eq!(
            l.check(addr(1), T + 1),
            Decision::Limited {
                retry_after_secs: 60
            }
        );
        assert_eq!(l.over(&addr(2), T), None);
        assert!(l.check(addr(2), T).is_admitted());
        assert_eq!(l.over(&addr(1), T + 61), None);
        assert!(l.check(addr(1), T + 61).is_admitted());
    }

    #[test]
    fn over_records_nothing_and_record_counts() {
        let l = AddressLimiter::new(limit(1, 10), 100);
        for s in T..T + 5 {
            assert_eq!(l.over(&addr(7), s), None);
        }
        assert!(l.is_empty());
        l.record(addr(7), T + 5);
        assert_eq!(l.over(&addr(7), T + 5), Some(11));
        assert_eq!(l.over(&addr(7), T + 16), None);
    }

    #[test]
    fn passwords_count_per_address_and_link() {
        let l = AddressLimiter::new(limit(1, 60), 100);
        let (a, b) = (LinkId::new(), LinkId::new());
        assert!(l.check((addr(1), a), T).is_admitted());
        assert!(!l.check((addr(1), a), T).is_admitted());
        assert!(l.check((addr(1), b), T).is_admitted());
        assert!(l.check((addr(2), a), T).is_admitted());
    }

    #[test]
    fn ten_times_capacity_distinct_keys_never_grow_it() {
        let capacity = 1_000;
        let l = AddressLimiter::new(limit(3, 60), capacity);
        for i in 0..10 * capacity as u32 {
            // All in one window: nothing is idle, so eviction has to rank.
            assert!(l.check(addr(i), T + u64::from(i % 30)).is_admitted());
            assert!(l.len() <= capacity);
        }
        assert!(l.len() > capacity / 2, "{} kept", l.len());
    }

    #[test]
    fn idle_windows_go_first_and_an_address_at_its_limit_is_kept() {
        let capacity = 64;
        let l = AddressLimiter::new(limit(5, 60), capacity);
        let abuser = addr(u32::MAX);
        for _ in 0..5 {
            assert!(l.check(abuser, T).is_admitted());
        }
        // A flood of one-off addresses, each once, in the same window.
        for i in 0..20 * capacity as u32 {
            l.record(addr(i), T + 1 + u64::from(i % 50));
            assert!(l.len() <= capacity);
        }
        assert!(l.over(&abuser, T + 50).is_some());
        // Once the flood's window has passed, its keys are idle and go before anything.
        for i in 0..capacity as u32 {
            l.record(addr(1_000_000 + i), T + 200);
        }
        assert!(l.len() <= capacity);
        assert_eq!(l.over(&abuser, T + 200), None);
    }

    #[test]
    fn capacities_below_the_shard_count_still_hold() {
        for capacity in [0, 1, 2, 15, 16, 17] {
            let l = AddressLimiter::new(limit(1, 60), capacity);
            for i in 0..100 {
                l.record(addr(i), T);
                assert!(l.len() <= capacity.max(1));
            }
            assert!(!l.is_empty());
        }
    }

    #[test]
    fn threads_together_never_exceed_the_quota() {
        let l = Arc::new(AddressLimiter::new(limit(100, 60), 10));
        let handles: Vec<_> = (0..4)
            .map(|t| {
                let l = Arc::clone(&l);
                std::thread::spawn(move || {
                    (0..500)
                        // Clocks a second apart: the older slot counts at the newer.
                        .filter(|i| l.check(addr(1), T + (t + i) % 2).is_admitted())
                        .count()
                })
            })
            .collect();
        let admitted: usize = handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| panic!("thread panicked")))
            .sum();
        assert_eq!(admitted, 100);
    }
}

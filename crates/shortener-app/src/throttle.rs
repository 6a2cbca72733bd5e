//! Logs that anyone can provoke are bounded: a flood of the same failure (a client's
//! garbage, every redirect of an outage) writes one line a second, and the next line says
//! how many were left out. Lock-free: the hot path pays two atomic operations.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// At most one line a second.
const EVERY_MS: u64 = 1_000;

/// One kind of repeated log line.
pub struct Throttle {
    /// When the last line was let through, in ms since the epoch.
    last: AtomicU64,
    /// Occurrences left out since.
    suppressed: AtomicU64,
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::new()
    }
}

impl Throttle {
    /// A throttle that lets the first occurrence through.
    pub const fn new() -> Throttle {
        Throttle {
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether this occurrence is logged now: `Some(n)` with the `n` left out since the
    /// last line, or `None` when it is only counted.
    pub fn admit(&self) -> Option<u64> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.admit_at(now)
    }

    fn admit_at(&self, now_ms: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        if now_ms.saturating_sub(last) >= EVERY_MS
            && self
                .last
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_a_second_and_the_next_counts_what_was_left_out() {
        let t = Throttle::new();
        let start = 1_000_000;
        assert_eq!(t.admit_at(start), Some(0));
        for ms in 1..300 {
            assert_eq!(t.admit_at(start + ms), None);
        }
        assert_eq!(t.admit_at(start + 999), None);
        assert_eq!(t.admit_at(start + 1_000), Some(300));
        assert_eq!(t.admit_at(start + 5_000), Some(0));
    }
}

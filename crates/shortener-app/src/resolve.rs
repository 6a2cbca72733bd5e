//! The redirect's resolve cache: code → what a redirect needs (link id, target, expiry),
//! or the fact that no live link has the code. Bounded (least recently and frequently
//! used entries go first), and kept true by invalidation: every edit or deletion of a
//! link, on any instance, makes PostgreSQL notify every instance (shortener-pg's listener
//! calls [`ResolveCache::invalidate`]); when the listener loses its connection,
//! notifications may have been missed, so it calls [`ResolveCache::clear`]. Creations are
//! not notified (that would serialise them in PostgreSQL), so an unknown code is
//! remembered for [`MISS_TTL`] only: long enough that a flood of one unknown code costs one
//! lookup a second, short enough that a link created elsewhere redirects within a second.
//!
//! A lookup that raced a write must not put the old answer back after the write's
//! invalidation: each code hashes to one of [`STRIPES`] epochs that every invalidation of
//! that code bumps, and a looked-up answer is kept only if its stripe's epoch did not move
//! while the database was asked.

use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use shortener_domain::{Link, LinkId, ShortCode, TargetUrl};
use tokio::sync::{mpsc, oneshot};

use crate::{AppError, LinkStore};

/// Epoch stripes: enough that unrelated writes rarely keep a lookup out of the cache.
const STRIPES: usize = 1024;
/// How long "no such link" is believed.
pub const MISS_TTL: Duration = Duration::from_secs(1);

/// What a redirect needs of a live link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The link being followed (for click counting).
    pub id: LinkId,
    /// Where to send the client.
    pub target: TargetUrl,
    /// When it stops redirecting.
    pub expires_at: Option<DateTime<Utc>>,
}

impl From<Link> for Resolved {
    fn from(l: Link) -> Self {
        Resolved {
            id: l.id,
            target: l.target,
            expires_at: l.expires_at,
        }
    }
}

/// A cached answer: a live link, or none until an instant (so a flood of unknown codes
/// stays here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    Link(Arc<Resolved>),
    Missing { until: Instant },
}

impl Answer {
    /// What the database said, as it will be cached.
    pub(crate) fn of(link: Option<Resolved>) -> Answer {
        match link {
            Some(l) => Answer::Link(Arc::new(l)),
            None => Answer::Missing {
                until: Instant::now() + MISS_TTL,
            },
        }
    }

    /// The link, or `None` for no live link.
    pub(crate) fn link(self) -> Option<Arc<Resolved>> {
        match self {
            Answer::Link(l) => Some(l),
            Answer::Missing { .. } => None,
        }
    }
}

/// The cache. Shared by every worker of an instance.
pub struct ResolveCache {
    entries: quick_cache::sync::Cache<String, Answer>,
    epochs: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
}

impl ResolveCache {
    /// A cache of at most `capacity` codes.
    pub fn new(capacity: usize) -> ResolveCache {
        ResolveCache {
            entries: quick_cache::sync::Cache::new(capacity.max(1)),
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    fn stripe(&self, code: &str) -> &AtomicU64 {
        &self.epochs[(self.hasher.hash_one(code) as usize) % STRIPES]
    }

    /// Forgets what is known of `code` (it was created, edited or deleted somewhere).
    pub fn invalidate(&self, code: &str) {
        self.stripe(code).fetch_add(1, Ordering::SeqCst);
        self.entries.remove(code);
    }

    /// Forgets everything (invalidations may have been missed).
    pub fn clear(&self) {
        for e in self.epochs.iter() {
            e.fetch_add(1, Ordering::SeqCst);
        }
        self.entries.clear();
    }

    /// How many codes are cached.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The cached answer, unless there is none or it is a miss that is too old to trust.
    pub(crate) fn get(&self, code: &str) -> Option<Answer> {
        match self.entries.get(code)? {
            Answer::Missing { until } if Instant::now() >= until => None,
            answer => Some(answer),
        }
    }

    /// The epoch to pass to [`ResolveCache::keep`] for an answer about to be looked up.
    pub(crate) fn epoch(&self, code: &str) -> u64 {
        self.stripe(code).load(Ordering::SeqCst)
    }

    /// Keeps a looked-up answer unless `code` was invalidated since `epoch` was read. The
    /// second check closes the gap between the first and the insert: an invalidation
    /// bumps the epoch before it removes, so either it removes what was inserted here or
    /// this sees the bump and removes it.
    pub(crate) fn keep(&self, code: &str, answer: Answer, epoch: u64) {
        let stripe = self.stripe(code);
        if stripe.load(Ordering::SeqCst) != epoch {
            return;
        }
        self.entries.insert(code.to_owned(), answer);
        if stripe.load(Ordering::SeqCst) != epoch {
            self.entries.remove(code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer() -> Answer {
        Answer::Link(Arc::new(Resolved {
            id: LinkId::new(),
            target: TargetUrl::from_storage("https://example.com/".into()),
            expires_at: None,
        }))
    }

    #[test]
    fn an_answer_looked_up_across_an_invalidation_is_not_kept() {
        let cache = ResolveCache::new(100);
        let epoch = cache.epoch("abc");
        cache.invalidate("abc"); // a write committed while we asked the database
        cache.keep("abc", answer(), epoch);
        assert!(cache.get("abc").is_none());

        let epoch = cache.epoch("abc");
        cache.keep("abc", answer(), epoch);
        assert!(cache.get("abc").is_some());
        cache.invalidate("abc");
        assert!(cache.get("abc").is_none());
    }

    #[test]
    fn unknown_codes_are_remembered_and_clear_forgets_everything() {
        let cache = ResolveCache::new(100);
        let epoch = cache.epoch("nope");
        cache.keep("nope", Answer::of(None), epoch);
        assert!(matches!(cache.get("nope"), Some(Answer::Missing { .. })));
        // An old miss is not believed any more.
        let epoch = cache.epoch("old");
        cache.keep(
            "old",
            Answer::Missing {
                until: Instant::now(),
            },
            epoch,
        );
        assert_eq!(cache.get("old"), None);
        let epoch = cache.epoch("yes");
        cache.clear();
        cache.keep("yes", answer(), epoch);
        assert!(cache.is_empty(), "a clear also stops lookups in flight");
    }

    /// Knows codes starting with `k`; remembers the size of every query.
    #[derive(Clone, Default)]
    struct Counting(Arc<std::sync::Mutex<Vec<usize>>>);

    impl LinkStore for Counting {
        async fn resolve_codes(
            &self,
            codes: &[ShortCode],
        ) -> Result<Vec<(ShortCode, Resolved)>, AppError> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(codes.len());
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok(codes
                .iter()
                .filter(|c| c.as_str().starts_with('k'))
                .map(|c| {
                    (
                        c.clone(),
                        Resolved {
                            id: LinkId::new(),
                            target: TargetUrl::from_storage(format!("https://x/{c}")),
                            expires_at: None,
                        },
                    )
                })
                .collect())
        }
        async fn link_by_code(&self, _: &ShortCode) -> Result<Option<Link>, AppError> {
            Ok(None)
        }
        async fn list_links(
            &self,
            _: shortener_domain::AccountId,
            _: crate::PageRequest,
        ) -> Result<Vec<Link>, AppError> {
            Ok(Vec::new())
        }
        async fn daily_clicks(
            &self,
            _: LinkId,
            _: chrono::NaiveDate,
            _: chrono::NaiveDate,
        ) -> Result<Vec<(chrono::NaiveDate, i64)>, AppError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_queries_and_each_gets_its_own_answer() {
        let store = Counting::default();
        let lookups = Lookups::start(store.clone(), 2);
        let asks = (0..200).map(|i| {
            let lookups = lookups.clone();
            let code = if i % 2 == 0 {
                format!("k{i:04}")
            } else {
                format!("u{i:04}")
            };
            async move {
                let answer = lookups
                    .resolve(ShortCode::parse(&code).unwrap_or_else(|_| panic!("{code}")))
                    .await;
                (code, answer)
            }
        });
        let handles: Vec<_> = asks.map(tokio::spawn).collect();
        for h in handles {
            let (code, answer) = h.await.unwrap_or_else(|e| panic!("{e}"));
            let answer = answer.unwrap_or_else(|e| panic!("{e}"));
            match answer {
                Some(r) => assert_eq!(r.target.as_str(), format!("https://x/{code}")),
                None => assert!(code.starts_with('u'), "{code} should be known"),
            }
        }
        let sizes = store.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(sizes.iter().sum::<usize>(), 200, "every code asked once");
        assert!(sizes.len() < 200, "batched: {sizes:?}");
    }

    #[test]
    fn it_stays_within_its_capacity() {
        let cache = ResolveCache::new(1000);
        for i in 0..10_000 {
            let code = format!("c{i}");
            let epoch = cache.epoch(&code);
            cache.keep(&code, Answer::of(None), epoch);
        }
        assert!(cache.len() <= 1000, "{}", cache.len());
    }
}

/// One cache miss waiting for the database.
type Lookup = (
    ShortCode,
    oneshot::Sender<Result<Option<Resolved>, AppError>>,
);

/// Most codes asked for in one query.
const LOOKUP_BATCH: usize = 256;

/// Cache misses, batched: concurrent misses go to one task, which asks the database for all
/// of them in one query (up to `in_flight` queries at once). While queries are out, misses
/// queue, so the busier the database, the larger and fewer the queries: a flood of first
/// touches costs the database far fewer round trips than requests.
#[derive(Clone)]
pub(crate) struct Lookups {
    tx: mpsc::Sender<Lookup>,
}

impl Lookups {
    /// Starts the lookup task on the current tokio runtime.
    pub(crate) fn start<S: LinkStore + Clone>(store: S, in_flight: usize) -> Lookups {
        let (tx, rx) = mpsc::channel(LOOKUP_BATCH * 16);
        tokio::spawn(run_lookups(store, rx, in_flight.max(1)));
        Lookups { tx }
    }

    /// What the database says of `code`.
    pub(crate) async fn resolve(&self, code: ShortCode) -> Result<Option<Resolved>, AppError> {
        let (answer, wait) = oneshot::channel();
        self.tx
            .send((code, answer))
            .await
            .map_err(|_| AppError::Internal("the lookup task is gone".into()))?;
        wait.await
            .map_err(|_| AppError::Internal("the lookup task dropped a request".into()))?
    }
}

async fn run_lookups<S: LinkStore + Clone>(
    store: S,
    mut rx: mpsc::Receiver<Lookup>,
    in_flight: usize,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(in_flight));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < LOOKUP_BATCH {
            match rx.try_recv() {
                Ok(lookup) => batch.push(lookup),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            let codes: Vec<ShortCode> = batch.iter().map(|(c, _)| c.clone()).collect();
            match store.resolve_codes(&codes).await {
                Ok(found) => {
                    let found: HashMap<ShortCode, Resolved> = found.into_iter().collect();
                    for (code, answer) in batch {
                        let _ = answer.send(Ok(found.get(&code).cloned()));
                    }
                }
                Err(e) => {
                    // One failure answers every request of the batch, each with its kind.
                    let unavailable = matches!(e, AppError::Unavailable(_));
                    let message = e.to_string();
                    for (_, answer) in batch {
                        let _ = answer.send(Err(if unavailable {
                            AppError::Unavailable(message.clone())
                        } else {
                            AppError::Internal(message.clone())
                        }));
                    }
                }
            }
            drop(permit);
        });
    }
}

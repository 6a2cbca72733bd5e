//! The redirect path, whole: what `GET /{code}` and `HEAD /{code}` ask ([`Redirects`]),
//! the resolve cache it answers from ([`ResolveCache`]), the batched lookups that fill the
//! cache ([`Lookups`]), the expiry check, and the hand-off of the click to the counter.
//!
//! The edge asks one resolver, and the resolver owns the cache (Shlink's `RedirectAction`
//! / `ShortUrlResolver` split). Each HTTP worker has its own [`Redirects`], built with
//! [`Redirects::start`] on the worker's runtime: its lookup task and connections live on
//! that thread, so a cache miss is answered without waking another thread (profiled:
//! cross-thread wake-ups and frees were a third of the service's CPU on cold redirects).
//! All of them share one cache and one click counter. The link use cases
//! ([`crate::LinkService`]) hold only the cache, to invalidate it after their writes.
//!
//! **The cache** maps a code to what a redirect needs (link id, target, expiry), or to the
//! fact that no live link has it. It is bounded (least recently and frequently used
//! entries go first) and kept true by invalidation: every edit or deletion of a link, on
//! any instance, makes PostgreSQL notify every instance (shortener-pg's listener calls
//! [`ResolveCache::invalidate`]); a listener that lost its connection keeps the cache
//! (nothing can change a link while the database is away) and, once back, drops exactly
//! the codes changed meanwhile. Creations are not notified
//! (that would serialise them in PostgreSQL), so an unknown code is remembered for
//! [`MISS_TTL`] only: long enough that a flood of one unknown code costs one lookup a
//! second, short enough that a link created elsewhere redirects within a second.
//!
//! A lookup that raced a write must not put the old answer back after the write's
//! invalidation: each code hashes to one of [`STRIPES`] epochs that every invalidation of
//! that code bumps, and a looked-up answer is kept only if its stripe's epoch did not move
//! while the database was asked.
//!
//! **The visitor** ([`Visitor`]) is how the redirect sees the request (client address,
//! user agent, referrer) without knowing HTTP. The edge implements it over the request
//! and reads a header only when something here asks, so it costs nothing while nothing
//! reads it. A per-visit dimension (visit analytics) is read from it in
//! [`Redirects::follow`] and carried in the [`Click`].
//!
//! **Password-protected links** resolve like any other, their hash cached beside the
//! target ([`Resolved::password`]), so a change of password (which notifies like any
//! edit) reaches the cache too. Following one answers [`Followed::Protected`] and counts
//! nothing: the visitor is asked for the password first. The password given is checked by
//! [`Redirects::unlock`], on the shared [`Passwords`] hasher (off the async workers, a
//! bounded number at once), which counts the click only when it is right. How many wrong
//! guesses an address may make is the edge's rule (the `passwords` policy), asked before
//! `unlock` so a refused guess costs no hash.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use shortener_domain::{Link, LinkId, PasswordHash, ShortCode, TargetUrl, link};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::metrics::{self, Counter, Histogram, Meter, Shard, ShardedCounter};
use crate::visits::Classifier;
use crate::{AppError, Click, ClickCounter, Clock, LinkStore, Passwords};

/// How the redirect sees the request that asked for it. Implemented by the HTTP edge over
/// the request itself, so each method reads the request only when called.
pub trait Visitor {
    /// The client's address (behind trusted proxies, the forwarded one), if known.
    fn address(&self) -> Option<IpAddr>;
    /// The `User-Agent` header's bytes, if sent. Not checked: the classifier reads a
    /// header only the first time it sees it, and a redirect pays for nothing more.
    fn user_agent(&self) -> Option<&[u8]>;
    /// The `Referer` header's bytes, if sent (unchecked, as `user_agent`).
    fn referrer(&self) -> Option<&[u8]>;
    /// Whether a code not in the cache may be looked up for this visitor: one who has
    /// asked for too many codes that do not exist (the `unknown-codes` policy) is refused
    /// before the store is asked, so enumerating codes costs the database nothing past
    /// the limit. Asked only on a cache miss.
    fn may_look_up(&self) -> Result<(), AppError> {
        Ok(())
    }
}

/// A visitor the redirect knows nothing about: callers outside HTTP, and tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Anonymous;

impl Visitor for Anonymous {
    fn address(&self) -> Option<IpAddr> {
        None
    }
    fn user_agent(&self) -> Option<&[u8]> {
        None
    }
    fn referrer(&self) -> Option<&[u8]> {
        None
    }
}

/// What a redirect needs of a live link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The link being followed (for click counting).
    pub id: LinkId,
    /// Where to send the client.
    pub target: TargetUrl,
    /// When it stops redirecting.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether it has a visit limit: then every GET takes a visit from the database
    /// before it is answered (exact across instances), and a spent link answers 410.
    pub limited: bool,
    /// The hash of the password a visitor must give first, if the link has one.
    pub password: Option<PasswordHash>,
}

impl From<Link> for Resolved {
    fn from(l: Link) -> Self {
        Resolved {
            id: l.id,
            target: l.target,
            expires_at: l.expires_at,
            limited: l.visit_limit.is_some(),
            password: l.password,
        }
    }
}

/// What a redirect found. Not an error when the code leads nowhere: that is an answer,
/// and the edge (metrics, rate limits on unknown codes) needs to tell them apart from a
/// failure to answer, which is an [`AppError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Followed {
    /// A live link: send the client to its target.
    Found(Arc<Resolved>),
    /// A live link with a password: ask the client for it ([`Redirects::unlock`] checks
    /// it). Nothing was counted.
    Protected(Arc<Resolved>),
    /// No live link has this code (never had, deleted, or not a well-formed code).
    NotFound,
    /// The link exists but its expiry has passed.
    Expired,
    /// The link exists but has answered as many GET redirects as its limit allows.
    Spent,
}

impl Followed {
    /// The outcome's stable name (`found`, `protected`, `not_found`, `expired`, `spent`),
    /// e.g. a metric label.
    pub fn outcome(&self) -> &'static str {
        match self {
            Followed::Found(_) => "found",
            Followed::Protected(_) => "protected",
            Followed::NotFound => "not_found",
            Followed::Expired => "expired",
            Followed::Spent => "spent",
        }
    }
}

/// What a password given for a protected link did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unlocked {
    /// It was right (or the link has no password): send the client on; the click is
    /// counted.
    Open,
    /// It was wrong: nothing counted (but the edge counts the guess).
    Wrong,
    /// It was right, but the link has a visit limit and no visit left.
    Spent,
}

/// Follows links: the redirect's path, cache first, then a batched lookup, then the
/// expiry check, then (for a GET) the click to the counter. One per HTTP worker, never
/// shared: its visit classifier's caches are that worker's own.
pub struct Redirects {
    cache: Arc<ResolveCache>,
    /// This worker's parts of the cache's counters.
    counts: CacheShards,
    lookups: Lookups,
    /// Visits of limited links, taken in batches.
    takes: Takes,
    clicks: ClickCounter,
    clock: Arc<dyn Clock>,
    /// Visit analytics, when on: what each counted click is recorded as.
    classifier: Option<Classifier>,
    /// Checks the passwords of protected links (shared by every worker).
    passwords: Arc<Passwords>,
}

impl Redirects {
    /// Redirects answered from `cache`, whose misses go through `store`, at most
    /// `in_flight` queries at once, from a lookup task started on the current tokio
    /// runtime (so `store` should open its connections lazily, on first use: they are then
    /// that runtime's too). Followed links are counted by `clicks`; lookups are measured
    /// on `meter`.
    pub fn start<S: LinkStore + Clone>(
        cache: Arc<ResolveCache>,
        store: S,
        in_flight: usize,
        clicks: ClickCounter,
        clock: Arc<dyn Clock>,
        meter: &Meter,
    ) -> Redirects {
        Redirects {
            counts: CacheShards {
                hits: cache.counts.hits.shard(),
                negative_hits: cache.counts.negative_hits.shard(),
                misses: cache.counts.misses.shard(),
            },
            cache,
            lookups: Lookups::start(store.clone(), in_flight, LookupMetrics::new(meter)),
            takes: Takes::start(store, in_flight),
            clicks,
            clock,
            classifier: None,
            passwords: Arc::new(Passwords::per_core()),
        }
    }

    /// These redirects checking passwords on `passwords`: the instance's one hasher, so
    /// that its bound on hashes at once holds across every worker (without it, each
    /// [`Redirects`] has a hasher of its own).
    pub fn with_passwords(self, passwords: Arc<Passwords>) -> Redirects {
        Redirects { passwords, ..self }
    }

    /// These redirects with visit analytics: each counted click also carries what
    /// `classifier` records of its visitor.
    pub fn with_visits(self, classifier: Classifier) -> Redirects {
        Redirects {
            classifier: Some(classifier),
            ..self
        }
    }

    /// Follows a link for a GET: resolves it and, when found, counts the click. Counting
    /// never waits: the click goes to the counter task, which writes clicks in batches.
    /// A protected link counts nothing here: only its [`Self::unlock`] does.
    pub async fn follow(&self, code: &str, visitor: &impl Visitor) -> Result<Followed, AppError> {
        let (followed, now) = self.resolve(code, visitor).await?;
        let followed = self.within_limit(code, followed, Ask::Take).await?;
        if let Followed::Found(link) = &followed {
            self.count(link, now, visitor);
        }
        Ok(followed)
    }

    /// Checks `guess` against the password of `link` (as [`Self::follow`] or
    /// [`Self::peek`] found it protected) off the async workers and, when it is right,
    /// counts the click exactly as a followed GET does. A link without a password opens
    /// without one.
    pub async fn unlock(
        &self,
        link: &Resolved,
        guess: String,
        visitor: &impl Visitor,
    ) -> Result<Unlocked, AppError> {
        if let Some(hash) = &link.password
            && !self.passwords.verify(guess, hash).await?
        {
            return Ok(Unlocked::Wrong);
        }
        // Only a right password takes a visit of a limited link.
        if link.limited && !self.takes.ask(link.id, Ask::Take).await? {
            return Ok(Unlocked::Spent);
        }
        self.count(link, self.clock.now(), visitor);
        Ok(Unlocked::Open)
    }

    /// Hands a followed link's click to the counter.
    fn count(&self, link: &Resolved, now: DateTime<Utc>, visitor: &impl Visitor) {
        self.clicks.count(Click {
            link: link.id,
            day: now.date_naive(),
            visit: self.classifier.as_ref().map(|c| c.visit(visitor)),
        });
    }

    /// Looks a link up for a HEAD: the same answer as [`Self::follow`], and no click (link
    /// checkers and previews are not visits).
    pub async fn peek(&self, code: &str, visitor: &impl Visitor) -> Result<Followed, AppError> {
        let (followed, _) = self.resolve(code, visitor).await?;
        self.within_limit(code, followed, Ask::Look).await
    }

    /// `followed`, unless it is a limited link without a visit left for this request
    /// (`ask`): then `Spent`. A protected link only looks (its form takes nothing; a
    /// right password does, in [`Self::unlock`]), so a spent one answers 410, not a form.
    /// Links without a limit pass untouched, with no database round trip. A link found spent is cached as spent: nothing but an edit (which
    /// invalidates the code everywhere) gives it visits back, so a flood of requests for
    /// a used one-time link costs the database nothing more.
    async fn within_limit(
        &self,
        code: &str,
        followed: Followed,
        ask: Ask,
    ) -> Result<Followed, AppError> {
        let (link, ask) = match &followed {
            Followed::Found(link) if link.limited => (link, ask),
            Followed::Protected(link) if link.limited => (link, Ask::Look),
            _ => return Ok(followed),
        };
        let epoch = self.cache.epoch(code);
        if self.takes.ask(link.id, ask).await? {
            return Ok(followed);
        }
        self.cache.keep(code, Answer::Spent, epoch);
        Ok(Followed::Spent)
    }

    /// The answer for `code` at this instant. Answered from the cache when it can;
    /// anything that is not a well-formed code cannot exist, so it is `NotFound` without a
    /// lookup (and without filling the cache). Expiry is checked here, at every request,
    /// so it needs no invalidation.
    async fn resolve(
        &self,
        code: &str,
        visitor: &impl Visitor,
    ) -> Result<(Followed, DateTime<Utc>), AppError> {
        // Only valid codes are ever cached, so a hit needs no parsing (nor its allocation).
        let counts = &self.counts;
        let answer = match self.cache.get(code) {
            Some(answer) => {
                match answer {
                    Answer::Link(_) | Answer::Spent => counts.hits.add(1),
                    Answer::Missing { .. } => counts.negative_hits.add(1),
                }
                answer
            }
            None => {
                let Ok(code) = ShortCode::parse(code) else {
                    return Ok((Followed::NotFound, self.clock.now()));
                };
                counts.misses.add(1);
                visitor.may_look_up()?;
                let epoch = self.cache.epoch(code.as_str());
                let answer = Answer::of(self.lookups.resolve(code.clone()).await?);
                self.cache.keep(code.as_str(), answer.clone(), epoch);
                answer
            }
        };
        let now = self.clock.now();
        let followed = match answer {
            Answer::Missing { .. } => Followed::NotFound,
            Answer::Spent => Followed::Spent,
            Answer::Link(l) if link::is_expired(l.expires_at, now) => Followed::Expired,
            Answer::Link(l) if l.password.is_some() => Followed::Protected(l),
            Answer::Link(l) => Followed::Found(l),
        };
        Ok((followed, now))
    }
}

// ---------------------------------------------------------------------------------------
// The cache.

/// Epoch stripes: enough that unrelated writes rarely keep a lookup out of the cache.
const STRIPES: usize = 1024;
/// How long "no such link" is believed.
pub const MISS_TTL: Duration = Duration::from_secs(1);

/// A cached answer: a live link, a limited link with no visit left, or none until an
/// instant (so a flood of unknown codes stays here).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    Link(Arc<Resolved>),
    Spent,
    Missing { until: Instant },
}

impl Answer {
    /// What the database said, as it will be cached.
    fn of(link: Option<Resolved>) -> Answer {
        match link {
            Some(l) => Answer::Link(Arc::new(l)),
            None => Answer::Missing {
                until: Instant::now() + MISS_TTL,
            },
        }
    }
}

/// The resolve cache. Shared by every worker of an instance, and by the link use cases
/// that invalidate it.
pub struct ResolveCache {
    entries: Entries,
    epochs: Box<[AtomicU64]>,
    hasher: std::collections::hash_map::RandomState,
    counts: CacheCounts,
}

type Entries = quick_cache::sync::Cache<
    String,
    Answer,
    quick_cache::UnitWeighter,
    quick_cache::DefaultHashBuilder,
    Evictions,
>;

/// What the cache counts as it answers: the counters of every redirect are sharded, one
/// shard per worker ([`CacheShards`]), so that workers do not contend for them.
struct CacheCounts {
    hits: Arc<ShardedCounter>,
    negative_hits: Arc<ShardedCounter>,
    misses: Arc<ShardedCounter>,
    invalidations: Counter,
}

/// One worker's shards of the [`CacheCounts`].
#[derive(Clone)]
struct CacheShards {
    hits: Shard,
    negative_hits: Shard,
    misses: Shard,
}

/// Counts what the cache evicts for capacity.
#[derive(Clone)]
struct Evictions(Counter);

impl quick_cache::Lifecycle<String, Answer> for Evictions {
    type RequestState = ();

    fn on_evict(&self, _: &mut (), _: String, _: Answer) {
        self.0.increment(1);
    }
}

impl ResolveCache {
    /// A cache of at most `capacity` codes, measured nowhere.
    pub fn new(capacity: usize) -> ResolveCache {
        ResolveCache::metered(capacity, &Meter::off())
    }

    /// A cache of at most `capacity` codes, measured on `meter` (put it in an `Arc` and
    /// call [`ResolveCache::observe_size`] for its size to be reported too).
    pub fn metered(capacity: usize, meter: &Meter) -> ResolveCache {
        let capacity = capacity.max(1);
        ResolveCache {
            entries: Entries::with(
                capacity,
                capacity as u64,
                quick_cache::UnitWeighter,
                quick_cache::DefaultHashBuilder::default(),
                Evictions(meter.counter(&metrics::CACHE_EVICTIONS, &[])),
            ),
            epochs: (0..STRIPES).map(|_| AtomicU64::new(0)).collect(),
            hasher: std::collections::hash_map::RandomState::new(),
            counts: CacheCounts {
                hits: meter.sharded_counter(&metrics::CACHE_HITS, &[]),
                negative_hits: meter.sharded_counter(&metrics::CACHE_NEGATIVE_HITS, &[]),
                misses: meter.sharded_counter(&metrics::CACHE_MISSES, &[]),
                invalidations: meter.counter(&metrics::CACHE_INVALIDATIONS, &[]),
            },
        }
    }

    /// Reports the cache's size at every scrape of `meter`.
    pub fn observe_size(self: &Arc<Self>, meter: &Meter) {
        let entries = meter.gauge(&metrics::CACHE_ENTRIES, &[]);
        let cache = Arc::downgrade(self);
        meter.observe(move || {
            if let Some(cache) = cache.upgrade() {
                entries.set(cache.len() as f64);
            }
        });
    }

    fn stripe(&self, code: &str) -> &AtomicU64 {
        &self.epochs[(self.hasher.hash_one(code) as usize) % STRIPES]
    }

    /// Forgets what is known of `code` (it was created, edited or deleted somewhere).
    pub fn invalidate(&self, code: &str) {
        self.counts.invalidations.increment(1);
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
    fn get(&self, code: &str) -> Option<Answer> {
        match self.entries.get(code)? {
            Answer::Missing { until } if Instant::now() >= until => None,
            answer => Some(answer),
        }
    }

    /// The epoch to pass to [`ResolveCache::keep`] for an answer about to be looked up.
    fn epoch(&self, code: &str) -> u64 {
        self.stripe(code).load(Ordering::SeqCst)
    }

    /// Keeps a looked-up answer unless `code` was invalidated since `epoch` was read. The
    /// second check closes the gap between the first and the insert: an invalidation
    /// bumps the epoch before it removes, so either it removes what was inserted here or
    /// this sees the bump and removes it.
    fn keep(&self, code: &str, answer: Answer, epoch: u64) {
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

// ---------------------------------------------------------------------------------------
// The lookups, and the visits of limited links: both batched.

/// A request waiting in a batch, and where its answer goes.
type Waiting<Q, A> = (Q, oneshot::Sender<Result<A, AppError>>);

/// Sends `request` to the batching task behind `tx` (named `task` in errors) and waits
/// for its answer.
async fn ask<Q, A>(
    tx: &mpsc::Sender<Waiting<Q, A>>,
    request: Q,
    task: &str,
) -> Result<A, AppError> {
    let (answer, wait) = oneshot::channel();
    tx.send((request, answer))
        .await
        .map_err(|_| AppError::internal(format!("the {task} task is gone")))?;
    wait.await
        .map_err(|_| AppError::internal(format!("the {task} task dropped a request")))?
}

/// The batching loop shared by lookups and takes: whatever is waiting when a query may go
/// (at most `max` requests) goes in one, up to `in_flight` queries at once (which should
/// be the size of the store's pool: more would only wait for a connection). While queries
/// are out, requests queue, so the busier the database, the larger and fewer the queries.
/// `answer` runs one batch's query and answers each of its requests.
async fn run_batches<Q, A, F, Fut>(
    mut rx: mpsc::Receiver<Waiting<Q, A>>,
    max: usize,
    in_flight: usize,
    answer: F,
) where
    F: Fn(Vec<Waiting<Q, A>>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let permits = Arc::new(Semaphore::new(in_flight.max(1)));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = rx.recv().await else { return };
        let mut batch = vec![first];
        while batch.len() < max {
            match rx.try_recv() {
                Ok(waiting) => batch.push(waiting),
                Err(_) => break,
            }
        }
        let work = answer(batch);
        tokio::spawn(async move {
            work.await;
            drop(permit);
        });
    }
}

/// Answers every request of `batch` with `error`: one failure answers the whole batch,
/// each request with the same kind and cause.
fn fail_all<Q, A>(batch: Vec<Waiting<Q, A>>, error: AppError) {
    for (_, answer) in batch {
        let _ = answer.send(Err(error.clone()));
    }
}

/// Most codes asked for in one query.
const LOOKUP_BATCH: usize = 256;

/// Cache misses, batched: concurrent misses go to one task, which asks the database for
/// all of them in one query ([`run_batches`]): a flood of first touches costs the
/// database far fewer round trips than requests.
#[derive(Clone)]
struct Lookups {
    tx: mpsc::Sender<Waiting<ShortCode, Option<Resolved>>>,
}

/// How the lookups are measured.
#[derive(Clone)]
struct LookupMetrics {
    batch: Histogram,
    duration: Histogram,
}

impl LookupMetrics {
    fn new(meter: &Meter) -> LookupMetrics {
        LookupMetrics {
            batch: meter.histogram(&metrics::LOOKUP_BATCH, &[]),
            duration: meter.histogram(&metrics::LOOKUP_DURATION, &[]),
        }
    }
}

impl Lookups {
    /// Starts the lookup task on the current tokio runtime.
    fn start<S: LinkStore + Clone>(store: S, in_flight: usize, metrics: LookupMetrics) -> Lookups {
        let (tx, rx) = mpsc::channel::<Waiting<ShortCode, Option<Resolved>>>(LOOKUP_BATCH * 16);
        tokio::spawn(run_batches(rx, LOOKUP_BATCH, in_flight, move |batch| {
            let store = store.clone();
            let metrics = metrics.clone();
            async move {
                let codes: Vec<ShortCode> = batch.iter().map(|(c, _)| c.clone()).collect();
                metrics.batch.record(codes.len() as f64);
                let started = Instant::now();
                let found = store.resolve_codes(&codes).await;
                metrics.duration.record(started.elapsed());
                match found {
                    Ok(found) => {
                        let found: HashMap<ShortCode, Resolved> = found.into_iter().collect();
                        for (code, answer) in batch {
                            let _ = answer.send(Ok(found.get(&code).cloned()));
                        }
                    }
                    Err(e) => fail_all(batch, e),
                }
            }
        }));
        Lookups { tx }
    }

    /// What the database says of `code`.
    async fn resolve(&self, code: ShortCode) -> Result<Option<Resolved>, AppError> {
        ask(&self.tx, code, "lookup").await
    }
}

/// What a request asks of a limited link: a GET takes one of its visits, a HEAD only
/// looks whether one is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    Take,
    Look,
}

/// Most requests of limited links in one query.
const TAKE_BATCH: usize = 256;

/// Visits of limited links, taken in batches like lookups: the requests waiting for one
/// link become one row update however many there are, so a burst on a one-time link
/// costs the database one statement, and PostgreSQL's row lock keeps every instance's
/// takes exact.
#[derive(Clone)]
struct Takes {
    tx: mpsc::Sender<Waiting<(LinkId, Ask), bool>>,
}

impl Takes {
    /// Starts the task on the current tokio runtime.
    fn start<S: LinkStore + Clone>(store: S, in_flight: usize) -> Takes {
        let (tx, rx) = mpsc::channel::<Waiting<(LinkId, Ask), bool>>(TAKE_BATCH * 16);
        tokio::spawn(run_batches(rx, TAKE_BATCH, in_flight, move |batch| {
            let store = store.clone();
            async move {
                // Per link, how many of the batch's requests take a visit.
                let mut asks: Vec<(LinkId, u64)> = Vec::new();
                for ((id, ask), _) in &batch {
                    let taking = u64::from(*ask == Ask::Take);
                    match asks.iter_mut().find(|(link, _)| link == id) {
                        Some((_, n)) => *n += taking,
                        None => asks.push((*id, taking)),
                    }
                }
                match store.take_visits(&asks).await {
                    Ok(left) => {
                        let mut left: HashMap<LinkId, u64> = left.into_iter().collect();
                        // Requests are granted in the order they came, while visits last.
                        for ((id, ask), answer) in batch {
                            let granted = match left.get_mut(&id) {
                                // Not limited any more (the limit was just removed).
                                None => true,
                                Some(0) => false,
                                Some(n) => {
                                    if ask == Ask::Take {
                                        *n -= 1;
                                    }
                                    true
                                }
                            };
                            let _ = answer.send(Ok(granted));
                        }
                    }
                    Err(e) => fail_all(batch, e),
                }
            }
        }));
        Takes { tx }
    }

    /// Whether a request may be answered as a redirect of `link`; when `ask` takes,
    /// a granted request has used one of its visits. Not granted means none is left.
    async fn ask(&self, link: LinkId, ask: Ask) -> Result<bool, AppError> {
        self::ask(&self.tx, (link, ask), "visit limit").await
    }
}

#[cfg(test)]
mod tests {
    use shortener_domain::AccountId;

    use super::*;
    use crate::ManualClock;
    use crate::{ClickCount, ClickSettings, ClickStore, PageRequest};

    fn answer() -> Answer {
        Answer::Link(Arc::new(Resolved {
            id: LinkId::new(),
            target: TargetUrl::from_storage("https://example.com/".into()),
            expires_at: None,
            limited: false,
            password: None,
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

    /// Knows codes starting with `k` (those ending in `x` expired long ago, those starting
    /// with `kp` protected by `.1`'s hash); remembers the size of every query.
    #[derive(Clone, Default)]
    struct Counting(Arc<std::sync::Mutex<Vec<usize>>>, Option<PasswordHash>);

    impl Counting {
        fn queries(&self) -> Vec<usize> {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

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
                    let expired = c.as_str().ends_with('x');
                    (
                        c.clone(),
                        Resolved {
                            id: LinkId::new(),
                            target: TargetUrl::from_storage(format!("https://x/{c}")),
                            expires_at: expired.then_some(DateTime::<Utc>::UNIX_EPOCH),
                            limited: false,
                            password: self.1.clone().filter(|_| c.as_str().starts_with("kp")),
                        },
                    )
                })
                .collect())
        }
        async fn take_visits(&self, _: &[(LinkId, u64)]) -> Result<Vec<(LinkId, u64)>, AppError> {
            Ok(Vec::new())
        }
        async fn link_by_code(&self, _: &ShortCode) -> Result<Option<Link>, AppError> {
            Ok(None)
        }
        async fn list_links(
            &self,
            _: AccountId,
            _: &crate::LinkFilter,
            _: PageRequest,
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
        async fn link_visits(
            &self,
            _: LinkId,
            _: chrono::NaiveDate,
            _: chrono::NaiveDate,
            _: usize,
        ) -> Result<crate::VisitReport, AppError> {
            Ok(crate::VisitReport::default())
        }
        async fn account_visits(
            &self,
            _: shortener_domain::AccountId,
            _: chrono::NaiveDate,
            _: chrono::NaiveDate,
            _: usize,
        ) -> Result<crate::VisitReport, AppError> {
            Ok(crate::VisitReport::default())
        }
        async fn account_clicks(
            &self,
            _: shortener_domain::AccountId,
            _: chrono::NaiveDate,
            _: chrono::NaiveDate,
            _: usize,
        ) -> Result<crate::AccountClicks, AppError> {
            Ok(crate::AccountClicks::default())
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_queries_and_each_gets_its_own_answer() {
        let store = Counting::default();
        let lookups = Lookups::start(store.clone(), 2, LookupMetrics::new(&Meter::off()));
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
        let sizes = store.queries();
        assert_eq!(sizes.iter().sum::<usize>(), 200, "every code asked once");
        assert!(sizes.len() < 200, "batched: {sizes:?}");
    }

    #[tokio::test]
    async fn follow_answers_each_outcome_from_the_cache_and_counts_only_found_gets() {
        let store = Counting::default();
        let cache = Arc::new(ResolveCache::new(100));
        let written = Written::default();
        let clicks = ClickCounter::start(written.clone(), ClickSettings::default()).0;
        let redirects = Redirects::start(
            cache.clone(),
            store.clone(),
            1,
            clicks.clone(),
            ManualClock::new(),
            &Meter::off(),
        );
        let found = redirects.follow("kfound", &Anonymous).await.unwrap();
        assert!(matches!(&found, Followed::Found(l) if l.target.as_str() == "https://x/kfound"));
        assert_eq!(found.outcome(), "found");
        let expired = redirects.follow("kgonex", &Anonymous).await.unwrap();
        assert_eq!((expired.outcome(), expired), ("expired", Followed::Expired));
        let missing = redirects.follow("unknown", &Anonymous).await.unwrap();
        assert_eq!(
            (missing.outcome(), missing),
            ("not_found", Followed::NotFound)
        );
        // Not a well-formed code: not found without asking the database.
        assert_eq!(
            redirects.follow("no/such code", &Anonymous).await.unwrap(),
            Followed::NotFound
        );
        assert_eq!(store.queries().len(), 3, "{:?}", store.queries());

        // Asked again, every answer comes from the cache; a HEAD answers the same.
        assert!(matches!(
            redirects.peek("kfound", &Anonymous).await.unwrap(),
            Followed::Found(_)
        ));
        assert_eq!(
            redirects.peek("kgonex", &Anonymous).await.unwrap(),
            Followed::Expired
        );
        assert_eq!(
            redirects.peek("unknown", &Anonymous).await.unwrap(),
            Followed::NotFound
        );
        assert_eq!(store.queries().len(), 3, "{:?}", store.queries());
        assert_eq!(cache.len(), 3);

        // One GET found its link: one click, for that link.
        clicks.flush().await;
        let written = written.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(written.len(), 1, "{written:?}");
        assert_eq!(written[0].clicks, 1);
    }

    #[tokio::test]
    async fn a_protected_link_counts_a_click_only_when_unlocked_with_its_password() {
        let passwords = Arc::new(Passwords::new(1));
        let hash = passwords
            .hash(shortener_domain::Password::parse("open sesame").unwrap())
            .await
            .unwrap();
        let store = Counting(Arc::default(), Some(hash));
        let written = Written::default();
        let clicks = ClickCounter::start(written.clone(), ClickSettings::default()).0;
        let redirects = Redirects::start(
            Arc::new(ResolveCache::new(100)),
            store,
            1,
            clicks.clone(),
            ManualClock::new(),
            &Meter::off(),
        )
        .with_passwords(passwords);
        let Followed::Protected(link) = redirects.follow("kpsecret", &Anonymous).await.unwrap()
        else {
            panic!("a protected link is not found open");
        };
        assert_eq!(
            redirects
                .peek("kpsecret", &Anonymous)
                .await
                .unwrap()
                .outcome(),
            "protected"
        );
        // Another link without a password is not protected by the same store.
        assert!(matches!(
            redirects.follow("kopen", &Anonymous).await.unwrap(),
            Followed::Found(_)
        ));
        for wrong in ["open sesame!", "short", ""] {
            assert_eq!(
                redirects
                    .unlock(&link, wrong.into(), &Anonymous)
                    .await
                    .unwrap(),
                Unlocked::Wrong
            );
        }
        assert_eq!(
            redirects
                .unlock(&link, "open sesame".into(), &Anonymous)
                .await
                .unwrap(),
            Unlocked::Open
        );
        clicks.flush().await;
        let written = written.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // The open link's GET and the right password's unlock: one click each.
        assert!(written.iter().all(|c| c.clicks == 1), "{written:?}");
        assert!(written.iter().any(|c| c.link == link.id), "{written:?}");
        assert_eq!(written.len(), 2, "{written:?}");
    }

    /// Keeps every count written.
    #[derive(Clone, Default)]
    struct Written(Arc<std::sync::Mutex<Vec<ClickCount>>>);

    impl ClickStore for Written {
        async fn add_clicks(&self, batch: &crate::ClickBatch) -> Result<crate::Unfolded, AppError> {
            let mut written = self.0.lock().unwrap_or_else(|e| e.into_inner());
            written.extend(batch.counts.iter().copied());
            Ok(crate::Unfolded::default())
        }
        async fn fold_clicks(&self) -> Result<u64, AppError> {
            Ok(0)
        }
    }
}

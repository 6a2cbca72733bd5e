//! Click counting off the redirect path, as message passing: a redirect hands its click to
//! one counter task over a bounded channel and returns at once; the task adds clicks up by
//! link and day and writes them in one statement at least every second (sooner under
//! volume). The task never waits on the clicks channel: it empties it every
//! [`ClickSettings::drain_every`]. A receiver that waited would have to be woken (a
//! cross-thread wake-up, a futex call) for every click; one that polls on a timer costs
//! the redirect a lock-free push and nothing else. A flush that fails keeps its counts for the next one, so an outage of the
//! database loses nothing until the (bounded) backlog is full; what is dropped is counted
//! and logged. On shutdown the task writes everything it holds before it stops.
//!
//! The store may take a write in a cheap form first (PostgreSQL journals it) and asks to
//! be told when to fold that into its lasting form: the task calls
//! [`ClickStore::fold_clicks`] soon after start ([`ClickSettings::first_fold`]), then
//! every [`ClickSettings::fold_every`], and at once when a write reports more held unfolded
//! than [`ClickSettings::fold_at`] (the store's reads cost more the more it holds, and
//! other instances' writes add to it too), always off the write path.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use shortener_domain::LinkId;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::metrics::{self, Counter, Gauge, Histogram, Meter};
use crate::visits::{VisitCount, VisitKey};
use crate::{AppError, Chain};

/// Clicks of one link on one UTC day, added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickCount {
    /// The link followed.
    pub link: LinkId,
    /// The UTC day of the clicks.
    pub day: NaiveDate,
    /// How many.
    pub clicks: u64,
}

/// Clicks written together, under an id: a batch whose write may have committed although
/// its answer was lost is retried under the same id, and the store applies each id once,
/// so a retry never counts twice. The visits of those clicks travel in the same batch, so
/// the breakdowns and the totals are written (and retried) together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClickBatch {
    /// The batch's id (UUIDv7).
    pub id: uuid::Uuid,
    /// Counts, each for a different link and day; with `visits`, at most [`BATCH_LIMIT`]
    /// entries.
    pub counts: Vec<ClickCount>,
    /// What those clicks were recorded as, one entry per link, day and distinct visit:
    /// for each link and day of `counts` whose clicks were classified, the entries add
    /// up to its clicks. Empty when visit analytics is off.
    pub visits: Vec<VisitCount>,
}

/// Most entries ((link, day) counts and visits) in one batch, so one write stays small
/// whatever the backlog (a few megabytes of parameters at most) and always goes through
/// within the statement timeout.
pub const BATCH_LIMIT: usize = 65_536;

/// What a click store holds unfolded, which its reads add to the folded days: reads cost
/// more the more there is, so the counter folds early when a write reports too much.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Unfolded {
    /// (link, day) counts held.
    pub counts: u64,
    /// Records they are held in (a read visits its share of them, each at a cost).
    pub records: u64,
}

impl Unfolded {
    /// Whether either measure is past `limit`'s.
    pub fn exceeds(&self, limit: &Unfolded) -> bool {
        self.counts > limit.counts || self.records > limit.records
    }
}

/// Where added-up clicks are written.
pub trait ClickStore: Send + Sync + 'static {
    /// Adds every count of the batch to its link's total and its day, all or nothing, and
    /// only if no batch with this id was written before. Returns what the store holds
    /// unfolded after the write, every instance's writes included.
    fn add_clicks(
        &self,
        batch: &ClickBatch,
    ) -> impl Future<Output = Result<Unfolded, AppError>> + Send;

    /// Moves what [`Self::add_clicks`] wrote into the store's lasting form, for stores
    /// that take writes in a cheaper form first; returns the (link, day) counts moved.
    /// Totals read the same before and after. Safe to call from several instances at once.
    fn fold_clicks(&self) -> impl Future<Output = Result<u64, AppError>> + Send;
}

/// How the counter batches.
#[derive(Debug, Clone, Copy)]
pub struct ClickSettings {
    /// Longest time a click waits before it is written.
    pub flush_every: Duration,
    /// Write sooner once this many clicks are waiting.
    pub flush_at: u64,
    /// Clicks in flight from redirects to the task; when full, a click is dropped (and
    /// counted) rather than making a redirect wait. Must hold `drain_every` worth of
    /// clicks at the highest rate.
    pub channel: usize,
    /// How often the task empties the clicks channel.
    pub drain_every: Duration,
    /// Most (link, day) pairs held while the database does not take them.
    pub max_pending: usize,
    /// At shutdown, how long to keep trying to write what is held.
    pub shutdown_grace: Duration,
    /// How often to ask the store to fold what was written ([`ClickStore::fold_clicks`]).
    /// Longer folds each link-day once for more clicks; the store's reads cost more the
    /// more it holds unfolded.
    pub fold_every: Duration,
    /// When to ask for the first fold after start (at most `fold_every`): soon, so that
    /// instances that never live a whole fold period still fold what others left, but not
    /// in an instance's first seconds, which a fold of a large journal would slow (the
    /// bench's cold rounds measure a fresh service for its first 12 s).
    pub first_fold: Duration,
    /// Fold at once when a write reports more than this held unfolded. The default keeps
    /// PostgreSQL's reads of a page of 100 links' clicks within about 25 ms (migration
    /// `000014` has the figures).
    pub fold_at: Unfolded,
}

impl Default for ClickSettings {
    fn default() -> Self {
        ClickSettings {
            flush_every: Duration::from_secs(1),
            flush_at: 50_000,
            channel: 65_536,
            drain_every: Duration::from_millis(10),
            max_pending: 1_000_000,
            shutdown_grace: Duration::from_secs(5),
            fold_every: Duration::from_secs(60),
            first_fold: Duration::from_secs(20),
            fold_at: Unfolded {
                counts: 6_000_000,
                records: 65_536,
            },
        }
    }
}

/// One click, as the redirect hands it to the counter: the link, the day, and what the
/// visit is recorded as (visit analytics), worked out from the [`crate::Visitor`] in
/// [`crate::Redirects::follow`] and added up by the counter next to the day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click {
    /// The link followed.
    pub link: LinkId,
    /// The UTC day of the click.
    pub day: NaiveDate,
    /// The visit, when visit analytics is on.
    pub visit: Option<VisitKey>,
}

/// What the owner asks of the task, on a channel of its own that the task does wait on.
enum Msg {
    /// Write what is held now; answer when the write is done (tests, operators).
    Flush(oneshot::Sender<()>),
    /// Write everything and stop; answer with how many clicks could not be written.
    Shutdown(oneshot::Sender<u64>),
}

/// The redirects' handle on the counter task. Cheap to clone.
#[derive(Clone)]
pub struct ClickCounter {
    /// `None` when counting is switched off.
    channels: Option<(mpsc::Sender<Click>, mpsc::Sender<Msg>)>,
    dropped: Arc<Dropped>,
}

/// Clicks lost, kept for [`ClickCounter::dropped`] and exported.
struct Dropped {
    total: AtomicU64,
    exported: Counter,
}

impl Dropped {
    fn add(&self, clicks: u64) {
        self.total.fetch_add(clicks, Ordering::Relaxed);
        self.exported.increment(clicks);
    }
}

/// What the counter task reports of itself.
struct ClickMetrics {
    queued: Counter,
    written: Counter,
    pending: Gauge,
    flush: Histogram,
    write_failures: Counter,
    journal_rows: Gauge,
    shed: Counter,
}

impl ClickMetrics {
    fn new(meter: &Meter) -> ClickMetrics {
        ClickMetrics {
            queued: meter.counter(&metrics::CLICKS_QUEUED, &[]),
            written: meter.counter(&metrics::CLICKS_WRITTEN, &[]),
            pending: meter.gauge(&metrics::CLICKS_PENDING, &[]),
            flush: meter.histogram(&metrics::CLICK_FLUSH, &[]),
            write_failures: meter.counter(&metrics::CLICK_WRITE_FAILURES, &[]),
            journal_rows: meter.gauge(&metrics::CLICK_JOURNAL_ROWS, &[]),
            shed: meter.counter(&metrics::VISITS_SHED, &[]),
        }
    }
}

impl ClickCounter {
    /// Starts the counter task on the current tokio runtime, measured nowhere.
    pub fn start<S: ClickStore>(
        store: S,
        settings: ClickSettings,
    ) -> (ClickCounter, JoinHandle<()>) {
        ClickCounter::start_metered(store, settings, &Meter::off())
    }

    /// Starts the counter task on the current tokio runtime, measured on `meter`.
    pub fn start_metered<S: ClickStore>(
        store: S,
        settings: ClickSettings,
        meter: &Meter,
    ) -> (ClickCounter, JoinHandle<()>) {
        let (clicks, clicks_rx) = mpsc::channel(settings.channel.max(1));
        let (control, control_rx) = mpsc::channel(16);
        let dropped = Arc::new(Dropped {
            total: AtomicU64::new(0),
            exported: meter.counter(&metrics::CLICKS_DROPPED, &[]),
        });
        let task = Task {
            store: Arc::new(store),
            settings,
            pending: HashMap::default(),
            held_visits: 0,
            inbox: Vec::new(),
            waiting: 0,
            queue: VecDeque::new(),
            queued_entries: 0,
            queued_clicks: 0,
            dropped: dropped.clone(),
            metrics: ClickMetrics::new(meter),
            fold_due: false,
            folding: None,
        };
        let handle = tokio::spawn(task.run(clicks_rx, control_rx));
        (
            ClickCounter {
                channels: Some((clicks, control)),
                dropped,
            },
            handle,
        )
    }

    /// A counter that counts nothing (operators who do not want clicks recorded).
    pub fn off() -> ClickCounter {
        ClickCounter {
            channels: None,
            dropped: Arc::new(Dropped {
                total: AtomicU64::new(0),
                exported: Counter::noop(),
            }),
        }
    }

    /// Counts one click. Never waits: when the task is behind by a whole channel, the
    /// click is dropped and counted in [`ClickCounter::dropped`].
    pub fn count(&self, click: Click) {
        let Some((clicks, _)) = &self.channels else {
            return;
        };
        if clicks.try_send(click).is_err() {
            self.dropped.add(1);
        }
    }

    /// Clicks dropped so far (channel full, backlog full, or lost at shutdown).
    pub fn dropped(&self) -> u64 {
        self.dropped.total.load(Ordering::Relaxed)
    }

    /// Writes what the task holds now and waits for that write (whether it succeeded).
    pub async fn flush(&self) {
        let Some((_, control)) = &self.channels else {
            return;
        };
        let (done, wait) = oneshot::channel();
        if control.send(Msg::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Writes every click counted so far and stops the task; returns how many could not be
    /// written (the database stayed away for the whole grace period).
    pub async fn shutdown(&self) -> u64 {
        let Some((_, control)) = &self.channels else {
            return 0;
        };
        let (done, wait) = oneshot::channel();
        if control.send(Msg::Shutdown(done)).await.is_err() {
            return 0;
        }
        wait.await.unwrap_or(0)
    }
}

struct Task<S> {
    store: Arc<S>,
    settings: ClickSettings,
    /// Clicks not yet in a batch, by link and day, each pair with its visits.
    pending: HashMap<(LinkId, NaiveDate), Held, foldhash::fast::RandomState>,
    /// Visits held in `pending`; each counts against `max_pending` like a pair.
    held_visits: usize,
    /// Clicks just taken from the channel (kept to reuse its allocation).
    inbox: Vec<Click>,
    /// Clicks in `pending`.
    waiting: u64,
    /// Batches cut but not yet written, oldest first; the front one is being written or
    /// is to be retried as it is (same id).
    queue: VecDeque<Arc<ClickBatch>>,
    /// (link, day) pairs and visits held in `queue`, which count against `max_pending`
    /// too.
    queued_entries: usize,
    /// Clicks held in `queue`.
    queued_clicks: u64,
    dropped: Arc<Dropped>,
    metrics: ClickMetrics,
    /// A write reported more held unfolded than [`ClickSettings::fold_at`].
    fold_due: bool,
    /// The fold running, if any: one at a time, beside the writes (it moves only what
    /// they wrote).
    folding: Option<JoinHandle<Result<u64, AppError>>>,
}

/// Batches being cut: a pair's count goes into the current batch with its visits while
/// they fit in [`BATCH_LIMIT`] entries, else into a new one. A pair with more visits than
/// a batch holds (one link asked for with ever new referrers, say) is split over
/// batches, each part's count being its visits' clicks, so every batch's visits still add
/// up to its counts and no write is ever too large to go through.
#[derive(Default)]
struct Batches {
    done: Vec<ClickBatch>,
    current: Option<ClickBatch>,
    /// Counts and visits still to come: a new batch is made with room for them (up to
    /// the limit), so its vectors are not grown (and copied) step by step.
    counts_left: usize,
    visits_left: usize,
}

impl Batches {
    /// Batches for `counts` counts and `visits` visits.
    fn for_entries(counts: usize, visits: usize) -> Batches {
        Batches {
            counts_left: counts,
            visits_left: visits,
            ..Batches::default()
        }
    }

    fn add(&mut self, count: ClickCount, mut visits: impl ExactSizeIterator<Item = VisitCount>) {
        let mut left = count.clicks;
        while visits.len() >= BATCH_LIMIT {
            let part: Vec<VisitCount> = visits.by_ref().take(BATCH_LIMIT - 1).collect();
            let clicks = part.iter().map(|v| v.clicks).sum::<u64>().min(left);
            left -= clicks;
            self.push(ClickCount { clicks, ..count }, part.into_iter());
        }
        if left > 0 || visits.len() > 0 {
            self.push(
                ClickCount {
                    clicks: left,
                    ..count
                },
                visits,
            );
        }
    }

    fn push(&mut self, count: ClickCount, visits: impl ExactSizeIterator<Item = VisitCount>) {
        let entries = 1 + visits.len();
        if let Some(batch) = self
            .current
            .take_if(|b| b.counts.len() + b.visits.len() + entries > BATCH_LIMIT)
        {
            self.done.push(batch);
        }
        let (counts_left, visits_left) = (self.counts_left, self.visits_left);
        let batch = self.current.get_or_insert_with(|| {
            let counts = counts_left.min(BATCH_LIMIT);
            ClickBatch {
                id: uuid::Uuid::now_v7(),
                counts: Vec::with_capacity(counts),
                visits: Vec::with_capacity(visits_left.min(BATCH_LIMIT - counts)),
            }
        });
        self.counts_left = self.counts_left.saturating_sub(1);
        self.visits_left = self.visits_left.saturating_sub(visits.len());
        batch.counts.push(count);
        batch.visits.extend(visits);
    }

    fn done(mut self) -> Vec<ClickBatch> {
        self.done.extend(self.current);
        self.done
    }
}

/// One (link, day) pair's clicks held by the counter, with the visits the classified
/// ones were recorded as (they add up to at most `clicks`: shed visits are missing).
/// Kept per pair, so a click costs one lookup of its pair, and a cut takes each pair's
/// visits as they are, with no regrouping.
#[derive(Debug, Default)]
struct Held {
    clicks: u64,
    visits: Visits,
}

/// Visits scanned in order before a pair's visits get a map of their own. Most pairs
/// hold one or a few (a link's clicks within one flush); a link followed from many
/// places at once holds hundreds.
const SCAN: usize = 16;

/// A pair's visits with their clicks.
#[derive(Debug)]
enum Visits {
    /// None yet, or (once past one) a few, scanned in order.
    Few(Vec<(VisitKey, u64)>),
    /// Exactly one: most pairs, when nearly every click is a visit of its own, so it is
    /// held without an allocation.
    One(VisitKey, u64),
    /// More than [`SCAN`].
    Many(HashMap<VisitKey, u64, foldhash::fast::RandomState>),
}

impl Default for Visits {
    fn default() -> Self {
        Visits::Few(Vec::new())
    }
}

impl Visits {
    /// Adds a click to `visit` if it is held; whether it was.
    fn bump(&mut self, visit: &VisitKey) -> bool {
        let n = match self {
            Visits::One(key, n) => (key == visit).then_some(n),
            Visits::Few(few) => few.iter_mut().find(|(k, _)| k == visit).map(|(_, n)| n),
            Visits::Many(many) => many.get_mut(visit),
        };
        n.map(|n| *n += 1).is_some()
    }

    /// Holds a visit not held yet, with its first click.
    fn insert(&mut self, visit: VisitKey) {
        match std::mem::take(self) {
            Visits::Few(few) if few.is_empty() => *self = Visits::One(visit, 1),
            Visits::One(key, n) => *self = Visits::Few(vec![(key, n), (visit, 1)]),
            Visits::Few(mut few) if few.len() < SCAN => {
                few.push((visit, 1));
                *self = Visits::Few(few);
            }
            Visits::Few(few) => {
                let mut many: HashMap<_, _, _> = few.into_iter().collect();
                many.insert(visit, 1);
                *self = Visits::Many(many);
            }
            Visits::Many(mut many) => {
                many.insert(visit, 1);
                *self = Visits::Many(many);
            }
        }
    }

    /// Its visits as the counts of `link` on `day`.
    fn into_counts(
        self,
        link: LinkId,
        day: NaiveDate,
    ) -> impl ExactSizeIterator<Item = VisitCount> {
        let visits = match self {
            Visits::One(key, n) => VisitsIter::One(Some((key, n))),
            Visits::Few(few) => VisitsIter::Few(few.into_iter()),
            Visits::Many(many) => VisitsIter::Many(many.into_iter()),
        };
        visits.map(move |(visit, clicks)| VisitCount {
            link,
            day,
            visit,
            clicks,
        })
    }
}

/// [`Visits`] taken apart (without boxing: a cut takes apart every pair).
enum VisitsIter {
    One(Option<(VisitKey, u64)>),
    Few(std::vec::IntoIter<(VisitKey, u64)>),
    Many(std::collections::hash_map::IntoIter<VisitKey, u64>),
}

impl Iterator for VisitsIter {
    type Item = (VisitKey, u64);

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            VisitsIter::One(one) => one.take(),
            VisitsIter::Few(few) => few.next(),
            VisitsIter::Many(many) => many.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            VisitsIter::One(one) => {
                let n = usize::from(one.is_some());
                (n, Some(n))
            }
            VisitsIter::Few(few) => few.size_hint(),
            VisitsIter::Many(many) => many.size_hint(),
        }
    }
}

impl ExactSizeIterator for VisitsIter {}

type Flight = JoinHandle<Result<Unfolded, AppError>>;

impl<S: ClickStore> Task<S> {
    /// Adds a click, or drops it (counted) when holding it would take a new entry past
    /// `max_pending`. Its visit, when it would take a new entry past half of that, is
    /// shed (counted) and the click counted without it: when PostgreSQL falls behind
    /// (visits cost it far more than clicks), the breakdowns give way before the totals.
    fn add(&mut self, Click { link, day, visit }: Click) {
        let held = self.pending.len() + self.held_visits + self.queued_entries;
        let room = |needed: usize| held + needed <= self.settings.max_pending;
        let visit_room = |needed: usize| held + needed <= self.settings.max_pending / 2;
        match self.pending.entry((link, day)) {
            // Most clicks (all, with analytics off) add to a pair already held.
            Entry::Occupied(mut pair) => {
                let pair = pair.get_mut();
                if let Some(visit) = visit
                    && !pair.visits.bump(&visit)
                {
                    if visit_room(1) {
                        pair.visits.insert(visit);
                        self.held_visits += 1;
                    } else {
                        self.metrics.shed.increment(1);
                    }
                }
                pair.clicks += 1;
            }
            Entry::Vacant(slot) => {
                let mut pair = Held {
                    clicks: 1,
                    visits: Visits::default(),
                };
                match visit {
                    Some(visit) if visit_room(2) => {
                        pair.visits.insert(visit);
                        self.held_visits += 1;
                    }
                    Some(_) if room(1) => self.metrics.shed.increment(1),
                    None if room(1) => {}
                    _ => {
                        self.dropped.add(1);
                        return;
                    }
                }
                slot.insert(pair);
            }
        }
        self.waiting += 1;
    }

    /// Moves every click waiting in the channel into `pending`. Takes them in bulk: each
    /// message taken alone would also return its channel slot alone, under the channel's
    /// lock; `recv_many` returns them all at once. It never waits here: it is only called
    /// for messages already queued, and this task is the only receiver.
    async fn drain(&mut self, clicks: &mut mpsc::Receiver<Click>) {
        let mut inbox = std::mem::take(&mut self.inbox);
        loop {
            let queued = clicks.len();
            if queued == 0 {
                break;
            }
            clicks.recv_many(&mut inbox, queued).await;
            self.metrics.queued.increment(inbox.len() as u64);
            for click in inbox.drain(..) {
                self.add(click);
            }
        }
        self.inbox = inbox;
        self.metrics.pending.set(self.held() as f64);
    }

    /// Cuts everything pending into batches at the back of the queue, each pair's visits
    /// in its pair's batch, at most [`BATCH_LIMIT`] entries (counts and visits) a batch.
    fn cut(&mut self) {
        self.waiting = 0;
        let mut batches = Batches::for_entries(self.pending.len(), self.held_visits);
        self.held_visits = 0;
        for ((link, day), held) in self.pending.drain() {
            let count = ClickCount {
                link,
                day,
                clicks: held.clicks,
            };
            batches.add(count, held.visits.into_counts(link, day));
        }
        for batch in batches.done() {
            self.queued_entries += batch.counts.len() + batch.visits.len();
            self.queued_clicks += batch.counts.iter().map(|c| c.clicks).sum::<u64>();
            self.queue.push_back(Arc::new(batch));
        }
    }

    /// Starts writing the oldest batch (cutting the pending clicks first when the queue
    /// is empty), on a task of its own, so clicks keep being taken from the channel while
    /// the database works.
    fn launch(&mut self) -> Option<Flight> {
        if self.queue.is_empty() {
            self.cut();
        }
        let batch = self.queue.front()?.clone();
        let store = self.store.clone();
        let flush = self.metrics.flush.clone();
        Some(tokio::spawn(async move {
            let started = Instant::now();
            let written = store.add_clicks(&batch).await;
            flush.record(started.elapsed());
            written
        }))
    }

    /// Takes a finished write back: a written batch leaves the queue; a failed one stays
    /// at its front, to be retried as it is. Returns whether it was written.
    fn land(
        &mut self,
        outcome: Result<Result<Unfolded, AppError>, tokio::task::JoinError>,
    ) -> bool {
        match outcome {
            Ok(Ok(unfolded)) => {
                if let Some(done) = self.queue.pop_front() {
                    let clicks: u64 = done.counts.iter().map(|c| c.clicks).sum();
                    self.queued_entries -= done.counts.len() + done.visits.len();
                    self.queued_clicks -= clicks;
                    self.metrics.written.increment(clicks);
                    self.metrics.pending.set(self.held() as f64);
                }
                self.metrics.journal_rows.set(unfolded.records as f64);
                self.fold_due |= unfolded.exceeds(&self.settings.fold_at);
                true
            }
            Ok(Err(e)) => {
                self.metrics.write_failures.increment(1);
                let clicks = self.queued_clicks();
                tracing::warn!(error = %Chain(&e), clicks, "writing clicks failed; keeping them for the next try");
                false
            }
            Err(e) => {
                self.metrics.write_failures.increment(1);
                tracing::error!(error = %Chain(&e), "the click write task failed");
                false
            }
        }
    }

    /// Writes batches one after the other until everything is written or a write fails;
    /// returns whether everything was.
    async fn write_all(&mut self, mut flight: Option<Flight>) -> bool {
        loop {
            let Some(f) = flight.take().or_else(|| self.launch()) else {
                return true;
            };
            let outcome = f.await;
            if !self.land(outcome) {
                return false;
            }
        }
    }

    /// Clicks in batches cut but not yet written.
    fn queued_clicks(&self) -> u64 {
        self.queued_clicks
    }

    /// Clicks held in the queue and in `pending`.
    fn held(&self) -> u64 {
        self.waiting + self.queued_clicks()
    }

    async fn run(mut self, mut clicks: mpsc::Receiver<Click>, mut control: mpsc::Receiver<Msg>) {
        let mut drain = tokio::time::interval(self.settings.drain_every);
        drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = tokio::time::interval(self.settings.flush_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first fold comes early: a journal left by instances that all lived less than
        // a fold period would otherwise never be folded, and its reads grow without end.
        let mut fold = tokio::time::interval_at(
            tokio::time::Instant::now() + self.settings.first_fold.min(self.settings.fold_every),
            self.settings.fold_every,
        );
        fold.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut flight: Option<Flight> = None;
        let mut reported = 0;
        loop {
            tokio::select! {
                msg = control.recv() => match msg {
                    Some(Msg::Flush(done)) => {
                        self.drain(&mut clicks).await;
                        self.cut();
                        self.write_all(flight.take()).await;
                        self.fold_if_due().await;
                        let _ = done.send(());
                    }
                    Some(Msg::Shutdown(done)) => {
                        let lost = self.finish(clicks, flight).await;
                        let _ = done.send(lost);
                        return;
                    }
                    None => {
                        self.finish(clicks, flight).await;
                        return;
                    }
                },
                outcome = async {
                    match flight.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if flight.is_some() => {
                    flight = None;
                    // Written: go on with the next batch at once; failed: wait for a tick.
                    if self.land(outcome) && !self.queue.is_empty() {
                        flight = self.launch();
                    }
                    self.fold_if_due().await;
                }
                _ = drain.tick() => {
                    self.drain(&mut clicks).await;
                    if self.waiting >= self.settings.flush_at && flight.is_none() {
                        flight = self.launch();
                    }
                }
                _ = fold.tick() => {
                    self.fold_due = true;
                    self.fold_if_due().await;
                }
                _ = tick.tick() => {
                    self.drain(&mut clicks).await;
                    if flight.is_none() {
                        flight = self.launch();
                    }
                    let dropped = self.dropped.total.load(Ordering::Relaxed);
                    if dropped > reported {
                        tracing::warn!(dropped_total = dropped, "clicks dropped: the counter could not keep up or hold them");
                        reported = dropped;
                    }
                }
            }
        }
    }

    /// Starts a fold if one is due and none is running (a due fold waits for the running
    /// one to end: it takes whatever is there when it starts).
    async fn fold_if_due(&mut self) {
        if let Some(done) = self.folding.take_if(|f| f.is_finished()) {
            report_fold(done.await);
        }
        if self.fold_due && self.folding.is_none() {
            self.fold_due = false;
            let store = self.store.clone();
            self.folding = Some(tokio::spawn(async move { store.fold_clicks().await }));
        }
    }

    /// Takes every click still in the channel and writes everything, retrying until the
    /// grace period ends; returns how many clicks are lost.
    async fn finish(
        &mut self,
        mut clicks: mpsc::Receiver<Click>,
        mut flight: Option<Flight>,
    ) -> u64 {
        clicks.close();
        self.drain(&mut clicks).await;
        self.cut();
        let deadline = tokio::time::Instant::now() + self.settings.shutdown_grace;
        loop {
            if self.write_all(flight.take()).await {
                return 0;
            }
            if tokio::time::Instant::now() >= deadline {
                let lost = self.held();
                self.dropped.add(lost);
                tracing::error!(lost, "clicks could not be written before shutdown");
                return lost;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Logs a fold that failed; it is retried at the next tick, and until then the clicks stay
/// where the writes put them (counted, only read at a higher cost).
fn report_fold(outcome: Result<Result<u64, AppError>, tokio::task::JoinError>) {
    match outcome {
        Ok(Ok(folded)) => tracing::debug!(folded, "clicks folded"),
        Ok(Err(e)) => {
            tracing::warn!(error = %Chain(&e), "folding clicks failed; retrying at the next fold")
        }
        Err(e) => tracing::error!(error = %Chain(&e), "the click fold task failed"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::AtomicBool;

    use super::*;

    /// Remembers what it was given; refuses while `down`.
    #[derive(Clone, Default)]
    struct Recorder {
        written: Arc<Mutex<HashMap<(LinkId, NaiveDate), u64>>>,
        batches: Arc<Mutex<std::collections::HashSet<uuid::Uuid>>>,
        statements: Arc<AtomicU64>,
        down: Arc<AtomicBool>,
        /// Commit, then fail as if the answer was lost on the way back.
        lose_answers: Arc<AtomicBool>,
        folds: Arc<AtomicU64>,
        /// Counts written since the last fold.
        unfolded: Arc<AtomicU64>,
        /// The most entries (counts and visits) one batch held.
        largest: Arc<AtomicU64>,
        /// Visits' clicks written, and batches whose visits of a pair did not add up to
        /// its count.
        visited: Arc<AtomicU64>,
        uneven: Arc<AtomicU64>,
    }

    impl ClickStore for Recorder {
        async fn add_clicks(&self, batch: &ClickBatch) -> Result<Unfolded, AppError> {
            if self.down.load(Ordering::SeqCst) {
                return Err(AppError::unavailable("down"));
            }
            self.statements.fetch_add(1, Ordering::SeqCst);
            // Like the PostgreSQL store: each batch id is applied once.
            if self
                .batches
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(batch.id)
            {
                let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
                for c in &batch.counts {
                    *w.entry((c.link, c.day)).or_default() += c.clicks;
                }
                let entries = (batch.counts.len() + batch.visits.len()) as u64;
                self.largest.fetch_max(entries, Ordering::SeqCst);
                let mut of_pair: HashMap<(LinkId, NaiveDate), u64> = HashMap::new();
                for v in &batch.visits {
                    *of_pair.entry((v.link, v.day)).or_default() += v.clicks;
                    self.visited.fetch_add(v.clicks, Ordering::SeqCst);
                }
                let uneven = of_pair.iter().any(|(pair, n)| {
                    batch
                        .counts
                        .iter()
                        .find(|c| (c.link, c.day) == *pair)
                        .map(|c| c.clicks)
                        != Some(*n)
                });
                if uneven {
                    self.uneven.fetch_add(1, Ordering::SeqCst);
                }
            }
            if self.lose_answers.load(Ordering::SeqCst) {
                return Err(AppError::unavailable("connection closed"));
            }
            let counts = batch.counts.len() as u64;
            Ok(Unfolded {
                counts: self.unfolded.fetch_add(counts, Ordering::SeqCst) + counts,
                records: 1,
            })
        }

        async fn fold_clicks(&self) -> Result<u64, AppError> {
            self.folds.fetch_add(1, Ordering::SeqCst);
            Ok(self.unfolded.swap(0, Ordering::SeqCst))
        }
    }

    impl Recorder {
        fn total(&self) -> u64 {
            self.written
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .sum()
        }
    }

    fn click(link: LinkId, day: NaiveDate) -> Click {
        Click {
            link,
            day,
            visit: None,
        }
    }

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or(NaiveDate::MIN)
    }

    fn slow() -> ClickSettings {
        ClickSettings {
            flush_every: Duration::from_secs(3600),
            ..ClickSettings::default()
        }
    }

    #[tokio::test]
    async fn clicks_are_added_up_by_link_and_day_and_written_in_one_statement() {
        let store = Recorder::default();
        let (counter, _) = ClickCounter::start(store.clone(), slow());
        let (a, b) = (LinkId::new(), LinkId::new());
        for _ in 0..5 {
            counter.count(click(a, day(1)));
        }
        counter.count(click(a, day(2)));
        counter.count(click(b, day(1)));
        counter.flush().await;
        let written = store
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        assert_eq!(written.len(), 3);
        assert_eq!(written[&(a, day(1))], 5);
        assert_eq!(written[&(a, day(2))], 1);
        assert_eq!(written[&(b, day(1))], 1);
        assert_eq!(store.statements.load(Ordering::SeqCst), 1);
        counter.flush().await;
        assert_eq!(
            store.statements.load(Ordering::SeqCst),
            1,
            "nothing to write"
        );
    }

    #[tokio::test]
    async fn the_timer_writes_without_being_asked() {
        let store = Recorder::default();
        let (counter, _) = ClickCounter::start(
            store.clone(),
            ClickSettings {
                flush_every: Duration::from_millis(20),
                ..ClickSettings::default()
            },
        );
        counter.count(click(LinkId::new(), day(1)));
        eventually(|| store.total() == 1, "the click was never written").await;
    }

    #[tokio::test]
    async fn the_store_is_asked_to_fold_soon_after_start_and_then_on_its_own_timer() {
        let store = Recorder::default();
        let (_counter, _) = ClickCounter::start(
            store.clone(),
            ClickSettings {
                first_fold: Duration::from_millis(100),
                ..slow()
            },
        );
        assert_eq!(
            store.folds.load(Ordering::SeqCst),
            0,
            "not in the first moments"
        );
        eventually(
            || store.folds.load(Ordering::SeqCst) == 1,
            "the store was not asked to fold soon after start",
        )
        .await;
        let (_counter, _) = ClickCounter::start(
            store.clone(),
            ClickSettings {
                first_fold: Duration::from_millis(10),
                fold_every: Duration::from_millis(30),
                ..slow()
            },
        );
        eventually(
            || store.folds.load(Ordering::SeqCst) >= 4,
            "the store was never asked to fold again",
        )
        .await;
    }

    #[tokio::test]
    async fn a_write_that_leaves_too_much_unfolded_folds_at_once() {
        let store = Recorder::default();
        let (counter, _) = ClickCounter::start(
            store.clone(),
            ClickSettings {
                first_fold: Duration::from_secs(3600),
                fold_every: Duration::from_secs(3600),
                fold_at: Unfolded {
                    counts: 3,
                    records: 100,
                },
                ..slow()
            },
        );
        let links: Vec<LinkId> = (0..4).map(|_| LinkId::new()).collect();
        for link in &links[..3] {
            counter.count(click(*link, day(1)));
        }
        counter.flush().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.folds.load(Ordering::SeqCst), 0, "3 held: not past 3");
        counter.count(click(links[3], day(1)));
        counter.flush().await;
        eventually(
            || store.folds.load(Ordering::SeqCst) == 1,
            "4 held unfolded did not start a fold",
        )
        .await;
        assert_eq!(store.unfolded.load(Ordering::SeqCst), 0);
        counter.count(click(links[0], day(2)));
        counter.flush().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(store.folds.load(Ordering::SeqCst), 1, "1 held: no fold");
    }

    /// Waits up to 2 s for `done`; panics with `failure` if it never holds.
    async fn eventually(done: impl Fn() -> bool, failure: &str) {
        for _ in 0..200 {
            if done() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{failure}");
    }

    #[tokio::test]
    async fn counts_survive_an_outage_and_are_written_when_the_store_returns() {
        let store = Recorder::default();
        store.down.store(true, Ordering::SeqCst);
        let (counter, _) = ClickCounter::start(store.clone(), slow());
        let link = LinkId::new();
        for _ in 0..10 {
            counter.count(click(link, day(1)));
        }
        counter.flush().await;
        counter.count(click(link, day(1)));
        counter.flush().await;
        assert_eq!(store.total(), 0);
        store.down.store(false, Ordering::SeqCst);
        counter.flush().await;
        assert_eq!(store.total(), 11);
        assert_eq!(counter.dropped(), 0);
    }

    #[tokio::test]
    async fn a_batch_retried_after_its_answer_was_lost_counts_once() {
        let store = Recorder::default();
        store.lose_answers.store(true, Ordering::SeqCst);
        let (counter, _) = ClickCounter::start(store.clone(), slow());
        for _ in 0..7 {
            counter.count(click(LinkId::new(), day(1)));
        }
        counter.flush().await; // committed, but we were told it failed
        assert_eq!(store.total(), 7);
        store.lose_answers.store(false, Ordering::SeqCst);
        counter.flush().await; // the same batch again
        assert_eq!(store.total(), 7, "not counted twice");
        assert_eq!(store.statements.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_large_backlog_is_written_in_bounded_batches() {
        let store = Recorder::default();
        let settings = ClickSettings {
            channel: 3 * BATCH_LIMIT,
            ..slow()
        };
        let (counter, _) = ClickCounter::start(store.clone(), settings);
        for _ in 0..(2 * BATCH_LIMIT + 5) {
            counter.count(click(LinkId::new(), day(1)));
        }
        counter.flush().await;
        assert_eq!(store.total(), (2 * BATCH_LIMIT + 5) as u64);
        assert_eq!(store.statements.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_pairs_visits_add_up_the_same_held_one_a_few_or_many() {
        let link = LinkId::new();
        let key = |i: usize| visit_from(link, i).visit.expect("a visit");
        for n in [1, 2, SCAN, SCAN + 1, 3 * SCAN] {
            let keys: Vec<VisitKey> = (0..n).map(key).collect();
            let mut visits = Visits::default();
            for _ in 0..3 {
                for k in &keys {
                    if !visits.bump(k) {
                        visits.insert(k.clone());
                    }
                }
            }
            let shape = match &visits {
                Visits::One(..) => "one",
                Visits::Few(_) => "a few",
                Visits::Many(_) => "many",
            };
            let expected = match n {
                1 => "one",
                n if n <= SCAN => "a few",
                _ => "many",
            };
            assert_eq!(shape, expected, "{n} visits");
            let counts: Vec<VisitCount> = visits.into_counts(link, day(1)).collect();
            assert_eq!(counts.len(), n);
            let seen: std::collections::HashSet<&VisitKey> =
                counts.iter().map(|c| &c.visit).collect();
            assert_eq!(seen.len(), n, "each visit once");
            assert!(
                counts
                    .iter()
                    .all(|c| c.clicks == 3 && c.link == link && c.day == day(1))
            );
        }
    }

    /// A visit of its own: `n` makes the referring host.
    fn visit_from(link: LinkId, n: usize) -> Click {
        use shortener_domain::visit::RefHost;
        let host = RefHost::parse(&format!("site{n}.example")).expect("a host");
        Click {
            link,
            day: day(1),
            visit: Some(VisitKey {
                referrer: Some(Arc::new(host)),
                ..VisitKey::default()
            }),
        }
    }

    #[tokio::test]
    async fn batches_hold_at_most_the_limit_of_counts_and_visits_and_each_adds_up() {
        let store = Recorder::default();
        let settings = ClickSettings {
            channel: 4 * BATCH_LIMIT,
            // Visits may take half: room for all of them.
            max_pending: 8 * BATCH_LIMIT,
            ..slow()
        };
        let (counter, _) = ClickCounter::start(store.clone(), settings);
        // One link asked for from more referring hosts than a batch holds, twice each...
        let busy = LinkId::new();
        for n in 0..(BATCH_LIMIT + 10) {
            counter.count(visit_from(busy, n));
            counter.count(visit_from(busy, n));
        }
        // ...and many links with a visit or two each.
        for n in 0..BATCH_LIMIT {
            let link = LinkId::new();
            counter.count(visit_from(link, n));
            if n % 2 == 0 {
                counter.count(visit_from(link, n + 1));
            }
        }
        counter.flush().await;
        let all = 2 * (BATCH_LIMIT + 10) as u64 + BATCH_LIMIT as u64 + BATCH_LIMIT as u64 / 2;
        assert_eq!(store.total(), all);
        assert_eq!(store.visited.load(Ordering::SeqCst), all);
        assert_eq!(store.uneven.load(Ordering::SeqCst), 0);
        assert!(store.largest.load(Ordering::SeqCst) <= BATCH_LIMIT as u64);
        assert_eq!(counter.dropped(), 0);
    }

    #[tokio::test]
    async fn past_half_the_backlog_visits_are_shed_and_their_clicks_still_counted() {
        let store = Recorder::default();
        store.down.store(true, Ordering::SeqCst);
        let (counter, _) = ClickCounter::start(
            store.clone(),
            ClickSettings {
                max_pending: 8,
                ..slow()
            },
        );
        let link = LinkId::new();
        // One pair and three visits of it: 4 entries, half the backlog.
        for n in 0..3 {
            counter.count(visit_from(link, n));
        }
        // A fourth visit would pass half: shed, its click counted on the held pair.
        counter.count(visit_from(link, 3));
        // A held visit still counts whole.
        counter.count(visit_from(link, 0));
        // New links: their pairs still fit (up to the whole backlog), visits shed.
        for _ in 0..4 {
            counter.count(visit_from(LinkId::new(), 9));
        }
        // The backlog is full: a click of a new link is dropped.
        counter.count(visit_from(LinkId::new(), 9));
        counter.flush().await;
        assert_eq!(counter.dropped(), 1);
        store.down.store(false, Ordering::SeqCst);
        counter.flush().await;
        assert_eq!(store.total(), 9, "every click but the dropped one");
        assert_eq!(
            store.visited.load(Ordering::SeqCst),
            4,
            "the visits recorded"
        );
    }

    #[tokio::test]
    async fn shutdown_writes_everything_and_reports_what_it_could_not() {
        let store = Recorder::default();
        let (counter, task) = ClickCounter::start(store.clone(), slow());
        for i in 0..1000 {
            counter.count(click(LinkId::new(), day(1 + i % 3)));
        }
        assert_eq!(counter.shutdown().await, 0);
        assert_eq!(store.total(), 1000);
        assert!(task.await.is_ok(), "the task stops");

        let down = Recorder::default();
        down.down.store(true, Ordering::SeqCst);
        let (counter, _) = ClickCounter::start(
            down.clone(),
            ClickSettings {
                shutdown_grace: Duration::from_millis(300),
                ..slow()
            },
        );
        counter.count(click(LinkId::new(), day(1)));
        counter.count(click(LinkId::new(), day(1)));
        assert_eq!(counter.shutdown().await, 2);
        assert_eq!(counter.dropped(), 2);
    }

    #[tokio::test]
    async fn a_full_backlog_drops_new_pairs_and_counts_them() {
        let store = Recorder::default();
        store.down.store(true, Ordering::SeqCst);
        let (counter, _) = ClickCounter::start(
            store.clone(),
            ClickSettings {
                max_pending: 2,
                ..slow()
            },
        );
        let (a, b, c) = (LinkId::new(), LinkId::new(), LinkId::new());
        counter.count(click(a, day(1)));
        counter.count(click(b, day(1)));
        counter.count(click(c, day(1))); // a third pair: no room
        counter.count(click(a, day(1))); // a held pair still counts
        counter.flush().await;
        assert_eq!(counter.dropped(), 1);
        store.down.store(false, Ordering::SeqCst);
        counter.flush().await;
        assert_eq!(store.total(), 3);
    }
}

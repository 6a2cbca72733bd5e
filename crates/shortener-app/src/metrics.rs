//! Metrics: every instrument the service exports ([`CATALOG`]: name, kind, labels and
//! meaning, the one list the README's table, the dashboard test and `/metrics` agree on),
//! and the [`Meter`] that components take their handles from.
//!
//! Components are handed a [`Meter`] when they are built and keep the handles they need
//! (a handle is an `Arc` on the registry's atomic: recording is an atomic add, never a
//! lookup by name), so the hot path pays no registry lookup and tests can give each
//! service its own registry instead of one global one. The binary builds the one
//! Prometheus registry (`shortener-http`'s `metrics.rs`) and renders it at `/metrics`.
//! [`Meter::off`] hands out handles that record nothing.
//!
//! Gauges that describe a state another component owns (cache entries, pool sizes) are
//! read when scraped: the owner registers an observer with [`Meter::observe`].
//!
//! A counter that every HTTP worker bumps on every redirect is a [`ShardedCounter`]: an
//! atomic that two cores add to at once costs each add ten times an uncontended one
//! (measured: about 290 ns for two counters on two threads, 29 ns on one), so each worker
//! adds to a [`Shard`] of its own and a scrape publishes their sum.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

pub use metrics::{Counter, Gauge, Histogram};
use metrics::{Key, KeyName, Label, Metadata, Recorder, SharedString};

/// What an instrument is, as Prometheus types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts from zero when the process does).
    Counter,
    /// A value now.
    Gauge,
    /// A distribution, with buckets (`_bucket`, `_sum`, `_count`).
    Histogram,
}

impl Kind {
    /// The Prometheus `# TYPE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One exported instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    /// The exported name.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Its label names (values are bounded sets: never a code, a path or an address).
    pub labels: &'static [&'static str],
    /// What it means, as `# HELP` says it.
    pub help: &'static str,
}

macro_rules! catalog {
    ($( $(#[$doc:meta])* $id:ident = ($name:literal, $kind:ident, [$($label:literal),*], $help:literal), )*) => {
        $( $(#[$doc])* pub const $id: Instrument = Instrument {
            name: $name,
            kind: Kind::$kind,
            labels: &[$($label),*],
            help: $help,
        }; )*
        /// Every instrument the service exports, in the README's order.
        pub const CATALOG: &[Instrument] = &[$($id,)*];
    };
}

catalog! {
    /// Set to 1; its labels say which build runs.
    BUILD_INFO = ("shortener_build_info", Gauge, ["version"],
        "Always 1; the version label says which build is running."),
    /// Every HTTP request, redirects included.
    HTTP_DURATION = ("shortener_http_request_duration_seconds", Histogram, ["route", "method", "status"],
        "Time from the request's arrival to its response, by route template (never the raw path), method and status."),
    /// `GET`/`HEAD /{code}` answers.
    REDIRECTS = ("shortener_redirects_total", Counter, ["outcome"],
        "Answers of GET, HEAD and POST /{code}: found, protected (a password form), wrong_password, not_found, expired (past its expiry or its `max_visits`), rate_limited, failed (5xx)."),
    /// Codes in the resolve cache.
    CACHE_ENTRIES = ("shortener_resolve_cache_entries", Gauge, [],
        "Codes held by the resolve cache (links and remembered unknown codes)."),
    /// Cache answers with a link.
    CACHE_HITS = ("shortener_resolve_cache_hits_total", Counter, [],
        "Redirects the resolve cache answered with a link."),
    /// Cache answers "no such code".
    CACHE_NEGATIVE_HITS = ("shortener_resolve_cache_negative_hits_total", Counter, [],
        "Redirects the resolve cache answered with a remembered unknown code (kept 1 s)."),
    /// Lookups the cache could not answer.
    CACHE_MISSES = ("shortener_resolve_cache_misses_total", Counter, [],
        "Redirects of well-formed codes the cache could not answer: each is looked up in PostgreSQL (in batches)."),
    /// Entries evicted for capacity.
    CACHE_EVICTIONS = ("shortener_resolve_cache_evictions_total", Counter, [],
        "Entries the resolve cache evicted to stay within cache.entries."),
    /// Invalidations applied.
    CACHE_INVALIDATIONS = ("shortener_resolve_cache_invalidations_total", Counter, [],
        "Codes invalidated: edits and deletes, from this instance or notified by PostgreSQL."),
    /// Whether the invalidation listener is connected.
    LISTENER_CONNECTED = ("shortener_listener_connected", Gauge, [],
        "1 while the LISTEN connection that keeps the cache true is up, 0 while it reconnects (the cache is kept, and caught up on return)."),
    /// Listener reconnections.
    LISTENER_RECONNECTS = ("shortener_listener_reconnects_total", Counter, [],
        "Times the invalidation listener lost its connection (it then reconnects every second until it is back)."),
    /// Reads that could go to a replica, by where they went.
    DB_READS = ("shortener_db_reads_total", Counter, ["to"],
        "With database.replica_urls set, reads that may go to a replica (redirect lookups, API and admin reads), by where they went: replica, or primary (no replica usable, none has replayed a change the read must see, or a code a replica did not have, confirmed on the primary). Always 0 without replicas."),
    /// Whether each replica takes reads. Exported only with replicas configured, like
    /// [`REPLICA_LAG`]: a replica's series exists once there is one.
    REPLICA_UP = ("shortener_db_replica_up", Gauge, ["replica"],
        "1 while replica N (its place in database.replica_urls, from 1) answers, is in recovery and lags no more than database.replica_max_lag; 0 while it is skipped."),
    /// How far behind the primary each replica is.
    REPLICA_LAG = ("shortener_db_replica_lag_seconds", Gauge, ["replica"],
        "How long ago the primary was where replica N has replayed to (sampled every 250 ms; while the primary is away, the replica's own estimate)."),
    /// Codes per lookup query.
    LOOKUP_BATCH = ("shortener_lookup_batch_size", Histogram, [],
        "Codes asked for in one lookup query (cache misses are batched)."),
    /// Lookup query latency.
    LOOKUP_DURATION = ("shortener_lookup_duration_seconds", Histogram, [],
        "Time of one lookup query, connection wait included."),
    /// Clicks handed to the counter.
    CLICKS_QUEUED = ("shortener_clicks_queued_total", Counter, [],
        "Clicks the counter took from redirects."),
    /// Clicks committed.
    CLICKS_WRITTEN = ("shortener_clicks_written_total", Counter, [],
        "Clicks committed to PostgreSQL."),
    /// Clicks held, not yet written.
    CLICKS_PENDING = ("shortener_clicks_pending", Gauge, [],
        "Clicks taken but not yet written (a failing database makes this grow, up to the backlog's bound)."),
    /// Clicks lost.
    CLICKS_DROPPED = ("shortener_clicks_dropped_total", Counter, [],
        "Clicks lost: the counter's channel or backlog was full, or the database stayed away through shutdown."),
    /// Visits not recorded, their clicks counted.
    VISITS_SHED = ("shortener_visits_shed_total", Counter, [],
        "Clicks counted without their visit (visit analytics) because the counter's backlog was over half full: the breakdowns then add up to less than the clicks."),
    /// One batch write.
    CLICK_FLUSH = ("shortener_click_flush_duration_seconds", Histogram, [],
        "Time of one click batch write, successful or not."),
    /// Failed batch writes.
    CLICK_WRITE_FAILURES = ("shortener_click_write_failures_total", Counter, [],
        "Click batch writes that failed (the batch is kept and retried as it is)."),
    /// Journal rows waiting for the fold.
    CLICK_JOURNAL_ROWS = ("shortener_click_journal_rows", Gauge, [],
        "Click journal rows not yet folded, as the last write saw them (folded every minute, or at once past 65 536)."),
    /// Connections open.
    POOL_SIZE = ("shortener_db_pool_size", Gauge, ["pool"],
        "Connections open, by pool: shared (API), lookup (redirect misses, one per worker, summed), clicks; with replicas, replica (API reads) and replica_lookup (redirect misses), summed over the replicas."),
    /// Connections idle.
    POOL_IDLE = ("shortener_db_pool_idle", Gauge, ["pool"],
        "Connections open and idle, by pool."),
    /// Connections allowed.
    POOL_MAX = ("shortener_db_pool_max", Gauge, ["pool"],
        "Most connections the pool may open."),
    /// Tasks waiting for a connection.
    POOL_WAITING = ("shortener_db_pool_waiting", Gauge, ["pool"],
        "Tasks waiting for a connection now."),
    /// Time to get a connection.
    POOL_WAIT = ("shortener_db_pool_wait_seconds", Histogram, ["pool"],
        "Time to get a connection from the pool (opening one included)."),
    /// Gave up waiting.
    POOL_TIMEOUTS = ("shortener_db_pool_timeouts_total", Counter, ["pool"],
        "Requests for a connection that timed out (database.pool_timeout): each is a 503 or a retried background write."),
    /// Subscriptions expired by the sweep.
    EXPIRIES = ("shortener_subscription_expiries_total", Counter, [],
        "Subscriptions the expiry sweep wrote down as expired."),
    /// Last successful sweep.
    SWEEP_LAST_SUCCESS = ("shortener_expiry_sweep_last_success_timestamp_seconds", Gauge, [],
        "Unix time of the last expiry sweep that completed (every subscriptions.expiry_sweep, 30 s by default)."),
    /// Failed sweeps.
    SWEEP_FAILURES = ("shortener_expiry_sweep_failures_total", Counter, [],
        "Expiry sweeps that failed (retried at the next tick)."),
    /// Audit entries committed.
    AUDIT_ENTRIES = ("shortener_audit_entries_total", Counter, [],
        "Audit entries committed by this instance's changes."),
    /// 429 answers.
    RATE_LIMITED = ("shortener_rate_limited_total", Counter, ["policy"],
        "Requests refused with 429, by policy: requests, admin, auth-failures, unknown-codes, passwords."),
    /// CPU time.
    PROCESS_CPU = ("process_cpu_seconds_total", Counter, [],
        "User and system CPU time of the process."),
    /// Resident memory.
    PROCESS_RSS = ("process_resident_memory_bytes", Gauge, [],
        "Resident memory of the process."),
    /// Virtual memory.
    PROCESS_VSZ = ("process_virtual_memory_bytes", Gauge, [],
        "Virtual memory of the process."),
    /// Open file descriptors.
    PROCESS_OPEN_FDS = ("process_open_fds", Gauge, [],
        "Open file descriptors (connections included)."),
    /// Descriptor limit.
    PROCESS_MAX_FDS = ("process_max_fds", Gauge, [],
        "The process's limit on open file descriptors."),
    /// Start time.
    PROCESS_START = ("process_start_time_seconds", Gauge, [],
        "Unix time the process started."),
    /// Threads.
    PROCESS_THREADS = ("process_threads", Gauge, [],
        "Threads of the process."),
}

/// Something to run before each scrape: sets gauges from the state it reads.
type Observer = Box<dyn Fn() + Send + Sync>;

/// Where components get their instruments: the service's registry, or nothing. Cheap to
/// clone.
#[derive(Clone)]
pub struct Meter {
    recorder: Option<Arc<dyn Recorder + Send + Sync>>,
    observers: Arc<Mutex<Vec<Observer>>>,
}

impl std::fmt::Debug for Meter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Meter")
            .field("on", &self.recorder.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Meter {
    fn default() -> Self {
        Meter::off()
    }
}

impl Meter {
    /// Instruments that record nothing (metrics switched off, unit tests).
    pub fn off() -> Meter {
        Meter {
            recorder: None,
            observers: Arc::default(),
        }
    }

    /// Instruments of `recorder`, which is told what each one in [`CATALOG`] means.
    pub fn new(recorder: Arc<dyn Recorder + Send + Sync>) -> Meter {
        for i in CATALOG {
            let name = KeyName::from_const_str(i.name);
            let help = SharedString::const_str(i.help);
            match i.kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, None, help),
            }
        }
        Meter {
            recorder: Some(recorder),
            observers: Arc::default(),
        }
    }

    /// Whether instruments record anything.
    pub fn is_on(&self) -> bool {
        self.recorder.is_some()
    }

    /// The counter `i` with `labels` (one value per label name of `i`, in order).
    pub fn counter(&self, i: &Instrument, labels: &[&'static str]) -> Counter {
        match &self.recorder {
            Some(r) => r.register_counter(&key(i, labels), &metadata()),
            None => Counter::noop(),
        }
    }

    /// The gauge `i` with `labels`.
    pub fn gauge(&self, i: &Instrument, labels: &[&'static str]) -> Gauge {
        match &self.recorder {
            Some(r) => r.register_gauge(&key(i, labels), &metadata()),
            None => Gauge::noop(),
        }
    }

    /// The histogram `i` with `labels`.
    pub fn histogram(&self, i: &Instrument, labels: &[&'static str]) -> Histogram {
        match &self.recorder {
            Some(r) => r.register_histogram(&key(i, labels), &metadata()),
            None => Histogram::noop(),
        }
    }

    /// The counter `i` with `labels`, added to through per-worker [`Shard`]s and
    /// published at each scrape.
    pub fn sharded_counter(&self, i: &Instrument, labels: &[&'static str]) -> Arc<ShardedCounter> {
        let sharded = Arc::new(ShardedCounter {
            counter: self.counter(i, labels),
            shards: Mutex::default(),
        });
        let published = Arc::downgrade(&sharded);
        self.observe(move || {
            if let Some(s) = published.upgrade() {
                s.publish();
            }
        });
        sharded
    }

    /// Runs `observer` before every scrape (when metrics are on).
    pub fn observe(&self, observer: impl Fn() + Send + Sync + 'static) {
        if self.is_on() {
            self.observers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(Box::new(observer));
        }
    }

    /// Runs every observer: called by the scrape, just before it renders.
    pub fn observe_now(&self) {
        for o in self
            .observers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            o();
        }
    }
}

/// A counter added to through shards, one per worker, so that no two cores add to one
/// atomic; see the module's doc.
pub struct ShardedCounter {
    counter: Counter,
    shards: Mutex<Vec<Shard>>,
}

impl ShardedCounter {
    /// A shard for one worker to add to.
    pub fn shard(&self) -> Shard {
        let shard = Shard(Arc::default());
        self.shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shard.clone());
        shard
    }

    /// Sets the counter to the sum of its shards.
    fn publish(&self) {
        let sum = self
            .shards
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|s| s.0.load(Ordering::Relaxed))
            .sum();
        self.counter.absolute(sum);
    }
}

/// One worker's part of a [`ShardedCounter`]. Cheap to clone (clones add to the same
/// part: keep them on one worker).
#[derive(Clone, Debug, Default)]
pub struct Shard(Arc<AtomicU64>);

impl Shard {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
}

fn key(i: &Instrument, values: &[&'static str]) -> Key {
    debug_assert_eq!(values.len(), i.labels.len(), "{}", i.name);
    let labels: Vec<Label> = i
        .labels
        .iter()
        .zip(values)
        .map(|(k, v)| Label::from_static_parts(k, v))
        .collect();
    Key::from_parts(i.name, labels)
}

fn metadata() -> Metadata<'static> {
    Metadata::new(module_path!(), metrics::Level::INFO, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_prometheus_names_and_counters_end_in_total() {
        for (n, i) in CATALOG.iter().enumerate() {
            assert!(
                i.name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                i.name
            );
            assert_eq!(
                i.kind == Kind::Counter,
                i.name.ends_with("_total"),
                "{}",
                i.name
            );
            assert!(!i.help.is_empty());
            assert!(
                CATALOG[n + 1..].iter().all(|j| j.name != i.name),
                "{}",
                i.name
            );
        }
    }

    #[test]
    fn a_sharded_counter_publishes_the_sum_of_its_shards() {
        let recorder = Arc::new(Recorded::default());
        let meter = Meter::new(recorder.clone());
        let sharded = meter.sharded_counter(&CACHE_HITS, &[]);
        let (a, b) = (sharded.shard(), sharded.shard());
        a.add(2);
        b.add(3);
        a.clone().add(1);
        assert_eq!(recorder.counter(), 0, "published only at a scrape");
        meter.observe_now();
        assert_eq!(recorder.counter(), 6);
        b.add(1);
        meter.observe_now();
        assert_eq!(recorder.counter(), 7);
    }

    /// Remembers the last value of the one counter it hands out.
    #[derive(Default)]
    struct Recorded(Arc<AtomicU64>);

    impl Recorded {
        fn counter(&self) -> u64 {
            self.0.load(Ordering::Relaxed)
        }
    }

    impl Recorder for Recorded {
        fn describe_counter(&self, _: KeyName, _: Option<metrics::Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<metrics::Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<metrics::Unit>, _: SharedString) {}
        fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.0.clone())
        }
        fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::noop()
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    #[test]
    fn an_off_meter_hands_out_handles_that_record_nothing() {
        let meter = Meter::off();
        meter.counter(&REDIRECTS, &["found"]).increment(1);
        meter.histogram(&POOL_WAIT, &["shared"]).record(1.0);
        meter.observe(|| panic!("never run when off"));
        meter.observe_now();
        assert!(!meter.is_on());
    }
}

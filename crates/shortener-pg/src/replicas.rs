//! Read replicas: which reads may go to a streaming replica, and which replica is fit to
//! take them, so that spreading reads never makes an answer stale.
//!
//! **Health.** One watcher task per instance ([`Replicas::watch`]) samples, every
//! [`TICK`], the primary's WAL insert position and each replica's replay position. A
//! replica's lag is how long ago the primary was at a position the replica has replayed:
//! the samples of the primary are kept for a while, and the newest one the replica has
//! passed says how far back it is. Unlike `now() - pg_last_xact_replay_timestamp()`, this
//! is zero on an idle primary and grows on a replica cut off from its primary. A replica
//! that does not answer, is not in recovery (promoted: no longer a replica), or lags past
//! `database.replica_max_lag` is skipped until a sample says otherwise. While the primary
//! does not answer, a replica judges itself (caught up with what it received, or its last
//! replayed commit recent enough), so redirects keep resolving from it.
//!
//! **Freshness.** Lag alone would still let a read see the state before a write it must
//! see. So every change that matters is marked (`Marks`, by link code, account, or
//! "anything"): this instance's own writes (the
//! link codes and accounts of their audit entries, and "anything", once the unit of work
//! commits) and every link change the listener hears of. A mark is first *pending*, and
//! the watcher's next sample of the primary, taken after it was made, gives it the
//! position that the change's commit cannot be past. A read about a marked key goes to a
//! replica only once that replica's replay has reached the mark's position; a pending
//! mark keeps it on the primary. Marks older than `replica_max_lag` (and two ticks) are
//! dropped by the watcher after it has re-checked every replica's lag: a replica still
//! used has replayed past them.
//!
//! **What stays on the primary**: every write, the unit of work's reads, authentication
//! (a revoked key stops at once), sessions, rate limits, idempotency, and everything the
//! background tasks read before they write.
//!
//! The marks sit behind a mutex: they are touched by writes, by the listener and by reads
//! that may go to a replica, never by a cached redirect.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Double};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use shortener_app::Chain;
use shortener_app::metrics::{self, Counter, Gauge, Meter};
use uuid::Uuid;

use crate::pool::Conn;
use crate::{Db, PgError, PoolSettings};

/// How often the watcher samples the primary and the replicas. A write's reads stay on
/// the primary for about a tick; a replica's trouble is noticed within one.
pub const TICK: Duration = Duration::from_millis(250);
/// Longest a sample may take before its server counts as not answering.
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(2);

/// A position in the primary's write-ahead log, as bytes from its start.
type Lsn = u64;

/// What a read is about: which changes it must see.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'a> {
    /// One link, by code: its redirect and its reads by code.
    Code(&'a str),
    /// One account's data (its links, stats, keys, subscription, audit).
    Account(Uuid),
    /// Lists across accounts: anything this instance wrote.
    Everything,
    /// Click and visit counts of one link: counted in batches, seconds late by design, so
    /// any replica in use is recent enough.
    Counts,
}

/// When a change was made, and once known, the primary's position at or past its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mark {
    at: Instant,
    lsn: Option<Lsn>,
}

impl Mark {
    fn new(at: Instant) -> Mark {
        Mark { at, lsn: None }
    }

    /// Whether a replica that has replayed up to `replay` has this change.
    fn seen(&self, replay: Lsn) -> bool {
        self.lsn.is_some_and(|l| l <= replay)
    }
}

/// The marks of changes reads must see, by what they are about (looked up by `&str`
/// without an allocation: this is asked for every code of every lookup batch). A newer
/// change replaces the older one's mark: it is the one to wait for.
#[derive(Debug, Default)]
struct Marks {
    codes: HashMap<Box<str>, Mark>,
    accounts: HashMap<Uuid, Mark>,
    any: Option<Mark>,
}

impl Marks {
    fn code(&mut self, code: &str, at: Instant) {
        self.codes.insert(code.into(), Mark::new(at));
    }

    fn account(&mut self, id: Uuid, at: Instant) {
        self.accounts.insert(id, Mark::new(at));
    }

    fn anything(&mut self, at: Instant) {
        self.any = Some(Mark::new(at));
    }

    fn all(&mut self) -> impl Iterator<Item = &mut Mark> {
        self.codes
            .values_mut()
            .chain(self.accounts.values_mut())
            .chain(self.any.as_mut())
    }

    /// Gives every pending mark made at or before `asked` the primary's position `lsn`
    /// sampled after `asked`.
    fn resolve(&mut self, asked: Instant, lsn: Lsn) {
        for m in self.all() {
            if m.lsn.is_none() && m.at <= asked {
                m.lsn = Some(lsn);
            }
        }
    }

    /// Drops the marks made before `before`.
    fn prune(&mut self, before: Instant) {
        self.codes.retain(|_, m| m.at >= before);
        self.accounts.retain(|_, m| m.at >= before);
        self.any = self.any.filter(|m| m.at >= before);
    }

    /// Whether a replica that has replayed up to `replay` has seen every change a read
    /// about `scope` must see.
    fn seen(&self, scope: Scope<'_>, replay: Lsn) -> bool {
        let mark = match scope {
            Scope::Code(code) => self.codes.get(code),
            Scope::Account(id) => self.accounts.get(&id),
            Scope::Everything => self.any.as_ref(),
            Scope::Counts => None,
        };
        mark.is_none_or(|m| m.seen(replay))
    }
}

/// How far behind the primary a replica that has replayed up to `replay` is, from the
/// primary's samples (oldest first): the time since the newest sample it has passed.
/// `None`: it has passed none of them (further behind than the samples reach).
fn lag_from(samples: &VecDeque<(Instant, Lsn)>, replay: Lsn, now: Instant) -> Option<Duration> {
    samples
        .iter()
        .rev()
        .find(|(_, lsn)| *lsn <= replay)
        .map(|(at, _)| now.saturating_duration_since(*at))
}

/// One replica as every user of the set sees it.
struct ReplicaState {
    url: String,
    /// Answering, in recovery, and within the lag allowed.
    usable: AtomicBool,
    /// Its replay position at its last sample (it only moves forward).
    replay: AtomicU64,
    up: Gauge,
    lag: Gauge,
}

/// What every holder of the set shares.
struct Shared {
    max_lag: Duration,
    replicas: Box<[ReplicaState]>,
    /// Whether the primary answered its last sample.
    primary_up: AtomicBool,
    marks: Mutex<Marks>,
    /// Round robin among the usable replicas.
    next: AtomicUsize,
    to_replica: Counter,
    to_primary: Counter,
}

impl Shared {
    fn marks(&self) -> MutexGuard<'_, Marks> {
        self.marks.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The replicas of `database.replica_urls`: their health, the marks of changes reads must
/// see, and pools of this holder's own (each HTTP worker has its own for lookups). Cheap
/// to clone.
#[derive(Clone)]
pub struct Replicas {
    shared: Arc<Shared>,
    pools: Arc<[Db]>,
}

impl Replicas {
    /// The set of `urls`, with pools named `name` built from `settings` (no connection is
    /// opened until one is needed). Every replica counts as unfit until the watcher's
    /// first sample says otherwise, so reads start on the primary.
    pub fn connect(
        urls: &[String],
        max_lag: Duration,
        settings: &PoolSettings,
        name: &'static str,
        meter: &Meter,
    ) -> Result<Replicas, PgError> {
        let replicas = urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let label: &'static str = Box::leak((i + 1).to_string().into_boxed_str());
                ReplicaState {
                    url: url.clone(),
                    usable: AtomicBool::new(false),
                    replay: AtomicU64::new(0),
                    up: meter.gauge(&metrics::REPLICA_UP, &[label]),
                    lag: meter.gauge(&metrics::REPLICA_LAG, &[label]),
                }
            })
            .collect();
        let shared = Arc::new(Shared {
            max_lag,
            replicas,
            primary_up: AtomicBool::new(true),
            marks: Mutex::new(Marks::default()),
            next: AtomicUsize::new(0),
            to_replica: meter.counter(&metrics::DB_READS, &["replica"]),
            to_primary: meter.counter(&metrics::DB_READS, &["primary"]),
        });
        Replicas::pools_for(shared, settings, name, meter)
    }

    /// The same set (health, marks) with pools of its own, named `name`.
    pub fn with_own_pools(
        &self,
        settings: &PoolSettings,
        name: &'static str,
        meter: &Meter,
    ) -> Result<Replicas, PgError> {
        Replicas::pools_for(self.shared.clone(), settings, name, meter)
    }

    fn pools_for(
        shared: Arc<Shared>,
        settings: &PoolSettings,
        name: &'static str,
        meter: &Meter,
    ) -> Result<Replicas, PgError> {
        let pools = shared
            .replicas
            .iter()
            .map(|r| Db::connect_metered(&r.url, settings, name, meter))
            .collect::<Result<Vec<Db>, PgError>>()?;
        Ok(Replicas {
            shared,
            pools: pools.into(),
        })
    }

    /// Marks the changes of a committed unit of work: its link codes and accounts, and
    /// "anything".
    pub(crate) fn written<'a>(
        &self,
        codes: impl IntoIterator<Item = &'a str>,
        accounts: impl IntoIterator<Item = Uuid>,
    ) {
        let now = Instant::now();
        let mut marks = self.shared.marks();
        marks.anything(now);
        for code in codes {
            marks.code(code, now);
        }
        for id in accounts {
            marks.account(id, now);
        }
    }

    /// Marks links changed elsewhere, as the listener hears of them.
    pub(crate) fn links_changed<'a>(&self, codes: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut marks = self.shared.marks();
        for code in codes {
            marks.code(code, now);
        }
    }

    /// `database.replica_max_lag`.
    pub(crate) fn max_lag(&self) -> Duration {
        self.shared.max_lag
    }

    /// Whether the primary answered the watcher's last sample.
    pub(crate) fn primary_up(&self) -> bool {
        AtomicBool::load(&self.shared.primary_up, Ordering::Relaxed)
    }

    /// A usable replica, in turn: `(index, replay position)`.
    fn usable(&self) -> impl Iterator<Item = (usize, Lsn)> + '_ {
        let n = self.shared.replicas.len();
        let start = self.shared.next.fetch_add(1, Ordering::Relaxed);
        (0..n).filter_map(move |k| {
            let i = (start + k) % n;
            let r = &self.shared.replicas[i];
            // Qualified: diesel's `RunQueryDsl::load` is in scope too.
            AtomicBool::load(&r.usable, Ordering::Acquire)
                .then(|| (i, AtomicU64::load(&r.replay, Ordering::Acquire)))
        })
    }

    /// A usable replica that has replayed every change `scope` must see, if any.
    fn replica_for(&self, scope: Scope<'_>) -> Option<usize> {
        let mut usable = self.usable().peekable();
        usable.peek()?;
        if matches!(scope, Scope::Counts) {
            return usable.next().map(|(i, _)| i);
        }
        let marks = self.shared.marks();
        usable
            .find(|(_, replay)| marks.seen(scope, *replay))
            .map(|(i, _)| i)
    }

    /// For a batch of codes: a usable replica, and which of the codes it has seen every
    /// change of (`true`) or not (`false`: those must be read on the primary).
    pub(crate) fn replica_for_codes<'c>(
        &self,
        codes: impl Iterator<Item = &'c str>,
    ) -> Option<(usize, Vec<bool>)> {
        let (i, replay) = self.usable().next()?;
        let marks = self.shared.marks();
        let seen = codes
            .map(|code| marks.seen(Scope::Code(code), replay))
            .collect();
        Some((i, seen))
    }

    /// A usable replica whatever it has replayed (the primary is away: this is the best
    /// answer there is).
    pub(crate) fn any_usable(&self) -> Option<usize> {
        self.usable().next().map(|(i, _)| i)
    }

    /// Whether any replica takes reads now.
    pub fn any_in_use(&self) -> bool {
        self.shared
            .replicas
            .iter()
            .any(|r| AtomicBool::load(&r.usable, Ordering::Acquire))
    }

    pub(crate) fn pool(&self, i: usize) -> &Db {
        &self.pools[i]
    }

    /// Counts `n` reads that went to a replica (`true`) or to the primary.
    pub(crate) fn count(&self, replica: bool, n: u64) {
        if replica {
            self.shared.to_replica.increment(n);
        } else {
            self.shared.to_primary.increment(n);
        }
    }

    /// Sets replica `i` aside after a read failed on it, until the next sample.
    pub(crate) fn failed(&self, i: usize, error: &PgError) {
        let r = &self.shared.replicas[i];
        if r.usable.swap(false, Ordering::AcqRel) {
            r.up.set(0.0);
            tracing::warn!(replica = i + 1, error = %Chain(error), "replica failed a read; reading from the others or the primary");
        }
    }

    /// A connection for a read about `scope`: from a replica that has seen every change
    /// the read must see, or else from `primary`. A replica whose pool cannot give a
    /// connection is set aside and the primary is asked instead.
    pub(crate) async fn conn(&self, scope: Scope<'_>, primary: &Db) -> Result<Conn, PgError> {
        if let Some(i) = self.replica_for(scope) {
            match self.pools[i].conn().await {
                Ok(conn) => {
                    self.count(true, 1);
                    return Ok(conn);
                }
                Err(e) => self.failed(i, &e),
            }
        }
        self.count(false, 1);
        primary.conn().await
    }

    /// A connection for a read that must see everything the primary had committed at
    /// `position`: a usable replica's once it says (in a statement before the read's own,
    /// so the read's snapshot is at least as recent) that it has replayed that far, or
    /// else `primary`'s.
    pub(crate) async fn conn_at(&self, position: Lsn, primary: &Db) -> Result<Conn, PgError> {
        #[derive(QueryableByName)]
        struct Reached {
            #[diesel(sql_type = Bool)]
            reached: bool,
        }
        if let Some(i) = self.any_usable() {
            let checked = async {
                let mut conn = self.pools[i].conn().await?;
                let r: Reached = diesel::sql_query(
                    "SELECT coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn) >= $1, false) \
                     AS reached",
                )
                .bind::<BigInt, _>(i64::try_from(position).unwrap_or(i64::MAX))
                .get_result(&mut conn)
                .await?;
                Ok::<_, PgError>(r.reached.then_some(conn))
            };
            match checked.await {
                Ok(Some(conn)) => {
                    self.count(true, 1);
                    return Ok(conn);
                }
                Ok(None) => {}
                Err(e) => self.failed(i, &e),
            }
        }
        self.count(false, 1);
        primary.conn().await
    }

    /// Samples the primary at `primary_url` and every replica each [`TICK`], forever:
    /// which replicas are usable, how far behind each is, and the positions of pending
    /// marks. Run once per instance.
    pub async fn watch(self, primary_url: String) {
        let shared = &self.shared;
        let mut primary: Option<AsyncPgConnection> = None;
        let mut replicas: Vec<Option<AsyncPgConnection>> =
            shared.replicas.iter().map(|_| None).collect();
        // The primary's positions over the last `keep`, oldest first.
        let keep = shared.max_lag + 4 * TICK;
        let mut samples: VecDeque<(Instant, Lsn)> = VecDeque::new();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let asked = Instant::now();
            let sampled = sample(&mut primary, &primary_url, PRIMARY_SQL).await;
            let primary_lsn = match sampled {
                Ok(p) => {
                    let lsn = p.lsn();
                    samples.push_back((asked, lsn));
                    shared.marks().resolve(asked, lsn);
                    if !shared.primary_up.swap(true, Ordering::AcqRel) {
                        tracing::info!("the primary answers again");
                    }
                    Some(lsn)
                }
                Err(e) => {
                    primary = None;
                    if shared.primary_up.swap(false, Ordering::AcqRel) {
                        tracing::warn!(error = %Chain(&e), "the primary does not answer; redirects resolve from the replicas");
                    }
                    None
                }
            };
            while samples.len() > 1 && samples.front().is_some_and(|(at, _)| asked - *at > keep) {
                samples.pop_front();
            }
            let positions = futures_util::future::join_all(
                replicas
                    .iter_mut()
                    .zip(shared.replicas.iter())
                    .map(|(conn, r)| sample(conn, &r.url, REPLICA_SQL)),
            )
            .await;
            let now = Instant::now();
            for (i, (sampled, r)) in positions
                .into_iter()
                .zip(shared.replicas.iter())
                .enumerate()
            {
                let verdict = match sampled {
                    Err(e) => Err(format!("does not answer: {}", Chain(&e))),
                    Ok(p) if !p.standby => Err("is not in recovery (promoted?)".to_owned()),
                    Ok(p) => {
                        r.replay.fetch_max(p.lsn(), Ordering::AcqRel);
                        let lag = match primary_lsn {
                            Some(_) => lag_from(&samples, p.lsn(), now).unwrap_or(keep),
                            None => p.own_lag(),
                        };
                        r.lag.set(lag.as_secs_f64());
                        if lag <= shared.max_lag {
                            Ok(())
                        } else {
                            Err(format!("lags {} ms behind the primary", lag.as_millis()))
                        }
                    }
                };
                let usable = verdict.is_ok();
                r.up.set(if usable { 1.0 } else { 0.0 });
                if r.usable.swap(usable, Ordering::AcqRel) != usable {
                    match verdict {
                        Ok(()) => tracing::info!(replica = i + 1, "replica in use"),
                        Err(why) => tracing::warn!(replica = i + 1, why, "replica skipped"),
                    }
                }
            }
            // Every replica in use has just been seen within `max_lag` of the primary, so
            // it has replayed what changed before that: those marks have done their work.
            // While the primary is away, marks are kept (nothing new can be written).
            if primary_lsn.is_some()
                && let Some(before) = now.checked_sub(shared.max_lag + 2 * TICK)
            {
                shared.marks().prune(before);
            }
        }
    }
}

/// The primary's position: where its next WAL record goes, past every commit so far.
const PRIMARY_SQL: &str = "SELECT false AS standby, \
     (pg_current_wal_insert_lsn() - '0/0'::pg_lsn)::bigint AS lsn, \
     true AS caught_up, 0::float8 AS replay_age";
/// A replica's replay position, whether it has replayed all it received, and how old its
/// last replayed commit is.
const REPLICA_SQL: &str = "SELECT pg_is_in_recovery() AS standby, \
     coalesce((pg_last_wal_replay_lsn() - '0/0'::pg_lsn)::bigint, 0) AS lsn, \
     coalesce(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), true) AS caught_up, \
     coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8, 0) \
         AS replay_age";

#[derive(QueryableByName)]
struct Position {
    #[diesel(sql_type = Bool)]
    standby: bool,
    #[diesel(sql_type = BigInt)]
    lsn: i64,
    #[diesel(sql_type = Bool)]
    caught_up: bool,
    #[diesel(sql_type = Double)]
    replay_age: f64,
}

impl Position {
    fn lsn(&self) -> Lsn {
        u64::try_from(self.lsn).unwrap_or(0)
    }

    /// The lag a replica can tell by itself: none once it has replayed all it received,
    /// else the age of its last replayed commit.
    fn own_lag(&self) -> Duration {
        if self.caught_up {
            Duration::ZERO
        } else {
            Duration::try_from_secs_f64(self.replay_age.max(0.0)).unwrap_or(Duration::MAX)
        }
    }
}

/// One sample over `conn` (connected first if need be), within [`SAMPLE_TIMEOUT`].
async fn sample(
    conn: &mut Option<AsyncPgConnection>,
    url: &str,
    sql: &'static str,
) -> Result<Position, PgError> {
    let asked = async {
        if conn.is_none() {
            *conn = Some(
                AsyncPgConnection::establish(url)
                    .await
                    .map_err(PgError::unavailable)?,
            );
        }
        let c = conn
            .as_mut()
            .ok_or_else(|| PgError::unavailable("no connection"))?;
        diesel::sql_query(sql)
            .get_result::<Position>(c)
            .await
            .map_err(PgError::from)
    };
    let out = match tokio::time::timeout(SAMPLE_TIMEOUT, asked).await {
        Ok(out) => out,
        Err(_) => Err(PgError::unavailable("timed out")),
    };
    if out.is_err() {
        *conn = None;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_holds_reads_back_until_its_position_is_known_and_replayed() {
        let t0 = Instant::now();
        let code = Scope::Code("abc");
        let mut marks = Marks::default();
        assert!(marks.seen(code, 0), "nothing changed: any replica will do");
        marks.code("abc", t0 + Duration::from_millis(10));
        assert!(
            !marks.seen(code, u64::MAX),
            "pending: only the primary knows"
        );
        // A sample asked before the change cannot speak for it.
        marks.resolve(t0, 500);
        assert!(!marks.seen(code, u64::MAX));
        marks.resolve(t0 + Duration::from_millis(20), 700);
        assert!(!marks.seen(code, 699));
        assert!(marks.seen(code, 700));
        assert!(marks.seen(Scope::Code("abd"), 0), "other codes are free");
        assert!(marks.seen(Scope::Account(Uuid::nil()), 0), "and accounts");
        assert!(
            marks.seen(Scope::Everything, 0),
            "and lists: nothing written here"
        );
        // A newer change waits again.
        marks.code("abc", t0 + Duration::from_millis(30));
        assert!(!marks.seen(code, 700));
        marks.prune(t0 + Duration::from_millis(31));
        assert!(marks.seen(code, 0), "pruned");
    }

    #[test]
    fn a_write_holds_back_its_account_and_lists_but_never_counts() {
        let t0 = Instant::now();
        let id = Uuid::from_u128(7);
        let mut marks = Marks::default();
        marks.account(id, t0);
        marks.anything(t0);
        for scope in [Scope::Account(id), Scope::Everything] {
            assert!(!marks.seen(scope, u64::MAX), "{scope:?}");
        }
        assert!(marks.seen(Scope::Counts, 0));
        assert!(marks.seen(Scope::Account(Uuid::from_u128(8)), 0));
        marks.resolve(t0, 40);
        assert!(marks.seen(Scope::Account(id), 40) && marks.seen(Scope::Everything, 40));
        marks.prune(t0 + Duration::from_millis(1));
        assert!(marks.accounts.is_empty() && marks.any.is_none());
    }

    #[test]
    fn lag_is_the_age_of_the_newest_primary_position_a_replica_has_passed() {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let samples: VecDeque<(Instant, Lsn)> =
            [(at(0), 100), (at(250), 100), (at(500), 180), (at(750), 300)].into();
        let now = at(800);
        // Caught up: the latest sample's age, however idle the primary was.
        assert_eq!(
            lag_from(&samples, 300, now),
            Some(Duration::from_millis(50))
        );
        assert_eq!(
            lag_from(&samples, 299, now),
            Some(Duration::from_millis(300))
        );
        // An idle stretch (100 twice) counts from its newest sample.
        assert_eq!(
            lag_from(&samples, 120, now),
            Some(Duration::from_millis(550))
        );
        assert_eq!(lag_from(&samples, 99, now), None, "behind every sample");
    }

    #[test]
    fn a_replica_alone_judges_itself_by_what_it_received() {
        let p = |caught_up, replay_age| Position {
            standby: true,
            lsn: 1,
            caught_up,
            replay_age,
        };
        assert_eq!(p(true, 900.0).own_lag(), Duration::ZERO);
        assert_eq!(p(false, 2.5).own_lag(), Duration::from_millis(2500));
        assert_eq!(p(false, -1.0).own_lag(), Duration::ZERO, "clock skew");
        assert_eq!(
            Position {
                lsn: -5,
                ..p(true, 0.0)
            }
            .lsn(),
            0
        );
    }
}

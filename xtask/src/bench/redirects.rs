//! The redirect half of `cargo xtask bench` (issue #5): a bare actix-web ceiling, cached
//! redirects with click counting on and off, cold-cache redirects (with their lookups on
//! the primary, and on a streaming replica: issue #20), a pgbench primary-key lookup
//! baseline, and the service's resident memory with 1 000 000 links cached. Each
//! measured run also gets the CPU time per request of the server and of PostgreSQL
//! (`cpu`, issue #12), sampled just before and after it, warm-up excluded.
//!
//! The links are written straight into `shortener.links` with SQL (one account made
//! through the admin API owns them): link `n` (1-based) has the code [`code`]`(n)` and
//! the target `https://example.com/<n>`, so wrk's Lua scripts and pgbench compute codes
//! from numbers instead of reading lists. Links `1..=CACHED` are the cached set; the
//! others are only ever asked for once per service start (the cold rounds' block, then
//! the fill of the memory run).
//!
//! The comparisons run in rounds and every ratio is taken within one round: on a shared
//! machine the same server measures ±20 % from one run to the next, more than the gaps
//! the targets are about, while runs back to back drift together. Each round, the bare
//! server and the three cached services (counting on, off, and off with every rate-limit
//! policy off; started once, all four alive) take their turns
//! in an order rotated by one each round, so that a drift does not always favour the
//! same one; then a freshly started service walks fresh codes (cold) next to a pgbench
//! lookup, which goes first every other round, and another freshly started service,
//! configured with a streaming replica of the cluster, walks fresh codes of its own, after
//! both or before both in turn (`cold_order`). Every run has its own 2 s warm-up: a
//! server has been idle while the others ran, and the counting-on service may still be
//! writing the clicks of its turn for up to a second (its flush interval) when the next
//! turn starts. Its fold of the click journal, once a minute, lands in whichever turn is
//! running then, one turn in several: one more reason for medians.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::WARM_UP;
use super::build::{Baseline, Binaries};
use super::callgrind;
use super::cli::Options;
use super::cluster::{Cluster, Replica};
use super::cpu::{Meter, PerRequest};
use super::http::Http;
use super::pgbench::{self, percentile};
use super::service::{Bare, Service};
use super::wrk;

/// Links the cached runs ask for, at random.
pub const CACHED: u64 = 100_000;
/// Links held in cache at the end of the memory run (the default
/// `redirect.cache_entries`); the database holds more when the cold rounds need them
/// ([`Plan`]).
pub const TOTAL: u64 = 1_000_000;
/// HTTP workers of both the service and the bare server.
pub const WORKERS: usize = 2;
/// Fresh codes the cold range holds per second it is walked: the cold service has done
/// 75 000 to 85 000 a second, so a walk runs out (and says so) only well past that.
const COLD_RATE: u64 = 150_000;
/// Most links the bench writes: the Lua scripts compute codes in doubles, exact up to
/// n = 3 390 000, and writing 3 000 000 takes about 50 s. Past it the cold ranges shrink.
const MAX_LINKS: u64 = 3_000_000;
/// Cold services a round starts, each walking a block of codes of its own: the
/// primary-only one and the one with its lookups on a replica (issue #20).
const COLD_RUNS: u64 = 2;
/// The database of the redirect runs.
const DB: &str = "bench_3";
/// The database of the `--baseline` service's runs.
const BASELINE_DB: &str = "bench_3_baseline";

/// The multiplier of the code scramble (Knuth's, odd, so one-to-one modulo 2^24).
const SCRAMBLE: u64 = 2_654_435_761;

/// The code of bench link `n`: `k` and six hex digits of `n * 2654435761 mod 2^24`. One
/// to one for `n < 2^24`, random-looking, 7 characters like a generated code, and a valid
/// custom code (no reserved word starts with `k`). [`code_sql`] and the Lua scripts
/// compute the same.
pub fn code(n: u64) -> String {
    format!("k{:06x}", n.wrapping_mul(SCRAMBLE) & 0xff_ffff)
}

/// [`code`] in SQL, of the bigint expression `n`.
pub(super) fn code_sql(n: &str) -> String {
    format!("'k' || lpad(to_hex(({n} * {SCRAMBLE}) & 16777215), 6, '0')")
}

fn target(n: u64) -> String {
    format!("https://example.com/{n}")
}

/// One load measurement: requests (or transactions) per second, latency percentiles,
/// and the CPU time each request cost over the measured window.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub per_second: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub cpu: PerRequest,
}

impl Load {
    /// A wrk run's figures, with the CPU time per request measured around it.
    pub(super) fn of(run: &wrk::Run, cpu: PerRequest) -> Load {
        Load {
            per_second: run.requests_per_sec,
            p50_ms: Some(run.p50_ms),
            p99_ms: Some(run.p99_ms),
            cpu,
        }
    }
}

/// Everything the redirect runs measured. The comparisons hold one [`Load`] per round,
/// in round order, so that a ratio can be taken within each round.
#[derive(Debug)]
pub struct Redirects {
    pub wrk_version: String,
    /// Links in the database, and the fresh codes of each cold round.
    pub plan: Plan,
    pub bare: Vec<Load>,
    pub cached_on: Vec<Load>,
    pub cached_off: Vec<Load>,
    /// Counting off, every rate-limit policy off (`0`): the baseline of limits on (issue
    /// #14), which `cached_off` runs with their defaults. Counting off, so that one
    /// service only writes clicks into the database, as before it was added.
    pub cached_unlimited: Vec<Load>,
    /// Counting off, metrics off (`metrics.enabled = false`): the baseline of metrics on
    /// (issue #16), which `cached_off` runs with (the default).
    pub cached_unmetered: Vec<Load>,
    /// Metrics on and off (counting off both) in short alternating pairs ([`ab_pairs`]):
    /// the issue's figure, which the rounds cannot resolve.
    pub metrics_pairs: Vec<(Load, Load)>,
    /// Counting on with visit analytics and without (the default), side by side (issue
    /// #17).
    pub analytics_pairs: Vec<(Load, Load)>,
    /// The same, with the cached links asked for by Zipf's law (visitors.lua `zipf`).
    pub zipf_pairs: Vec<(Load, Load)>,
    /// Instructions per cached redirect, counted by callgrind.
    pub instructions: Instructions,
    /// Counting on with visit analytics and the bare server, side by side (issue #17).
    pub bare_pairs: Vec<(Load, Load)>,
    pub cold: Vec<Load>,
    /// A cold run's threads ran out of fresh codes (its figure includes repeats).
    pub cold_wrapped: bool,
    /// Issue #20: the cold runs with their lookups on a streaming replica, beside `cold`.
    pub cold_replica: ReplicaRuns,
    pub lookup: Vec<Load>,
    pub lookup_failed: u64,
    /// Resident memory of the service (bytes): just started, with `CACHED` links cached,
    /// with `TOTAL` cached.
    pub rss_fresh: u64,
    pub rss_cached: u64,
    pub rss_full: u64,
    /// Clicks the counting-on cached service wrote, and the GETs it answered as far as
    /// the clients know (wrk does not count answers still in flight when it stops, at
    /// most its connections for each of the `counted_runs` wrk runs against it).
    pub clicks_counted: u64,
    pub gets_answered: u64,
    pub counted_runs: u64,
    /// First touches per second of the memory run's fill (HEAD, so no clicks; std
    /// client, `2 × clients` threads): a second look at the cold path.
    pub fill_per_second: f64,
    /// Warnings and errors the services logged, one summary line per run that had any.
    pub log_notes: Vec<String>,
    /// Clock ticks per second of the CPU times (their resolution).
    pub cpu_ticks_per_second: u64,
    /// What the metrics middleware costs one redirect, measured in process on one
    /// thread (ns: median, lowest, highest of 15 interleaved batches; issue #16).
    pub metrics_cost_ns: Option<[f64; 3]>,
    /// A whole write cycle of the clicks of one load, counting on, with visit analytics
    /// off and on ([`write_cycle`]; issue #17).
    pub written_plain: Option<Written>,
    pub written_analysed: Option<Written>,
    /// `--baseline REV`: the service now against REV's.
    pub baseline: Option<BaselineRuns>,
}

/// The service now against the `shortener` of `--baseline REV`: both cached, counting
/// on, analytics off, asked for the same links by the same visitors.lua load.
#[derive(Debug, Clone)]
pub struct BaselineRuns {
    /// The revision's full commit id, and its subject.
    pub commit: String,
    pub subject: String,
    /// Side by side ([`ab_pairs`]): (now, baseline) per run.
    pub pairs: Vec<(Load, Load)>,
    /// Instructions per cached redirect of the baseline (callgrind, as
    /// [`Instructions::analytics_off`] of the service now, its comparison).
    pub instructions: f64,
}

/// The CPU time per click of a write cycle: the service's (answering the redirects,
/// counting, writing) and PostgreSQL's (taking the writes and folding them), per GET
/// answered.
#[derive(Debug, Clone, Copy)]
pub struct Written {
    pub clicks: u64,
    pub cpu: PerRequest,
    /// The journals still held entries when the cycle was read (its figure is short).
    pub unfolded: bool,
}

/// How many links the database holds and which codes the cold rounds walk: after the
/// cached set, a block for each of a round's [`COLD_RUNS`] cold services (the
/// primary-only one, then the one with its lookups on a replica, issue #20), its
/// warm-up's codes then its run's, [`COLD_RATE`] a second each, so the database grows
/// past `TOTAL` when the walks need it (up to [`MAX_LINKS`], shared equally). Every round
/// walks the same blocks: each round's services are freshly started, so every code is a
/// first touch for them, and the rounds stay alike (when each walked a block of its own,
/// the table grew with the rounds and each round ran slower than the one before). The two
/// services of a round walk blocks of their own, so that neither finds the rows the other
/// just read in PostgreSQL's buffers. The memory run still caches exactly `TOTAL`;
/// pgbench looks up random links of the whole table, as the cold rounds meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub links: u64,
    /// Codes of each cold service's warm-up, and of its run.
    pub warm: u64,
    pub run: u64,
    pub rounds: usize,
}

impl Plan {
    pub fn new(opts: Options) -> Result<Plan> {
        let warm_secs = WARM_UP.as_secs();
        let per_run = (warm_secs.saturating_add(opts.seconds)).saturating_mul(COLD_RATE);
        let links = CACHED
            .saturating_add(per_run.saturating_mul(COLD_RUNS))
            .clamp(TOTAL, MAX_LINKS);
        let block = (links - CACHED) / COLD_RUNS;
        // Split as the seconds are; 128-bit, as --seconds may be anything.
        let warm = (u128::from(block) * u128::from(warm_secs)
            / (u128::from(warm_secs) + u128::from(opts.seconds))) as u64;
        let plan = Plan {
            links,
            warm,
            run: block - warm,
            rounds: opts.rounds,
        };
        let threads = wrk::THREADS as u64;
        if plan.warm < threads || plan.run < threads {
            bail!(
                "--seconds {}: too long a cold run for the {MAX_LINKS} links the bench can write",
                opts.seconds
            );
        }
        Ok(plan)
    }

    /// The first and last codes of the primary-only cold service's warm-up, then of its
    /// run (the same every round).
    fn cold(self) -> ((u64, u64), (u64, u64)) {
        self.cold_block(0)
    }

    /// The same for the cold service with its lookups on a replica (issue #20): the block
    /// after [`Self::cold`]'s.
    fn cold_replica(self) -> ((u64, u64), (u64, u64)) {
        self.cold_block(1)
    }

    /// Block `index` (from 0, below [`COLD_RUNS`]) of the cold codes.
    fn cold_block(self, index: u64) -> ((u64, u64), (u64, u64)) {
        let first = CACHED + 1 + index * (self.warm + self.run);
        let run = first + self.warm;
        ((first, run - 1), (run, run + self.run - 1))
    }

    /// Fresh codes per second of a cold run.
    pub fn cold_rate(self, opts: Options) -> u64 {
        self.run / opts.seconds.max(1)
    }
}

/// Which of the cached configurations ([`CACHED_SERVERS`]' indexes) takes turn
/// `turn` of round `round`: the order rotates by one each round, so that none always
/// runs first, or right after another.
pub fn cached_turn(round: usize, turn: usize) -> usize {
    (round + turn) % CACHED_SERVERS.len()
}

/// The cached servers, in the order of [`cached_turn`]'s indexes.
pub const CACHED_SERVERS: [&str; 5] = ["bare", "on", "off", "off-no-limits", "off-no-metrics"];

/// Whether the pgbench lookup runs before the cold service in round `round`.
pub fn lookup_first(round: usize) -> bool {
    round % 2 == 1
}

/// Runs every redirect measurement on `pg`; services use `opts.clients` connections.
pub fn measure(
    pg: &Cluster,
    bins: &Binaries,
    bare_exe: &Path,
    baseline: Option<&Baseline>,
    work: &Path,
    opts: Options,
    wrk_version: String,
) -> Result<Redirects> {
    let scripts = Scripts {
        random: work.join("random.lua"),
        visitors: work.join("visitors.lua"),
        walk: work.join("walk.lua"),
    };
    for (path, text) in [
        (&scripts.random, wrk::RANDOM_LUA),
        (&scripts.visitors, wrk::VISITORS_LUA),
        (&scripts.walk, wrk::WALK_LUA),
    ] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let plan = Plan::new(opts)?;

    println!(
        "==> redirects: {} links, written with SQL into a fresh database",
        plan.links
    );
    if plan.cold_rate(opts) < COLD_RATE {
        println!(
            "    note: cold runs of {} s need more fresh codes than {MAX_LINKS} links give: \
             {}/s per cold run (a faster one runs out and says so)",
            opts.seconds,
            plan.cold_rate(opts)
        );
    }
    let setup = Setup {
        pg,
        exe: &bins.service,
        work,
        url: pg.fresh_database(DB)?,
        opts,
        scripts,
        meter: Meter::new(pg.postmaster_pid()?),
        db: DB,
    };
    prepare_links(&setup, plan.links, "setup")?;
    let mut log_notes = Vec::new();

    let cached = cached_rounds(&setup, bare_exe)?;
    log_notes.extend(log_note(work, "cached-on", "cached, counting on")?);
    log_notes.extend(log_note(work, "cached-off", "cached, counting off")?);
    // The counting-on service has been stopped: it wrote every click it counted.
    let clicks_counted = pg
        .psql(DB, "SELECT coalesce(sum(clicks), 0) FROM shortener.clicks")?
        .parse()
        .context("reading the clicks counted")?;
    println!(
        "    {clicks_counted} clicks counted for {} GETs answered",
        cached.gets_answered
    );

    // Every service of the rounds has stopped: PostgreSQL now only works for the one
    // measured.
    let written_plain = write_cycle(&setup, "written-plain", &[])?;
    let with_analytics = [("SHORTENER__ANALYTICS__ENABLED", "true".to_owned())];
    let written_analysed = write_cycle(&setup, "written-analysed", &with_analytics)?;
    log_notes.extend(log_note(
        work,
        "written-plain",
        "write cycle, analytics off",
    )?);
    log_notes.extend(log_note(
        work,
        "written-analysed",
        "write cycle, analytics on",
    )?);

    // Issue #20: a streaming replica of the populated cluster for the cold rounds only
    // (provisioned here, so that no run before them streams to it), stopped and removed
    // after them (and on early returns).
    let knows_replicas = knows_replicas(&setup)?;
    let replica = provision_replica(pg, work);
    if replica.is_ok() {
        // pg_basebackup's checkpoint, and the replica's start, are not the first round's.
        let waited = setup.wait_for_idle_postgres(Duration::from_secs(120))?;
        println!("    PostgreSQL idle after {waited:.0?}");
    }
    let cold = cold_rounds(
        &setup,
        plan,
        replica.as_ref().ok(),
        knows_replicas,
        &mut log_notes,
    )?;
    let mut cold_replica = cold.replica;
    match replica {
        Ok(replica) => drop(replica),
        Err(e) => cold_replica.missing = Some(format!("{e:#}")),
    }
    let metrics_cost_ns = metrics_cost()?;

    // HEAD fills the cache exactly as GET does but counts no click, so what is measured
    // is the cache, not a backlog of clicks waiting to be written.
    println!("==> memory: a fresh service, every one of the {TOTAL} links asked for once (HEAD)");
    let (rss_fresh, rss_full, filled) = {
        let service = setup.start(true, "memory")?;
        let rss_fresh = service.rss()?;
        let filled = touch(service.addr(), "HEAD", 1, TOTAL, opts.clients * 2)?;
        std::thread::sleep(Duration::from_secs(1));
        (rss_fresh, service.rss()?, filled)
    };
    println!(
        "    {} resident ({} after start)",
        mb(rss_full),
        mb(rss_fresh)
    );
    log_notes.extend(log_note(work, "memory", "memory")?);

    // `--baseline REV`: after every run above, so that they run as without it.
    let baseline_setup = match baseline {
        Some(b) => Some(baseline_setup(&setup, b, plan)?),
        None => None,
    };
    let baseline_pairs = match &baseline_setup {
        Some(base) => {
            let pairs = baseline_pairs(&setup, base)?;
            log_notes.extend(log_note(
                work,
                "baseline-now",
                "side by side with the baseline, now",
            )?);
            log_notes.extend(log_note(
                work,
                "baseline-then",
                "side by side with the baseline, baseline",
            )?);
            Some(pairs)
        }
        None => None,
    };

    let instructions = instructions(&setup, bare_exe)?;
    let baseline = match (baseline, baseline_setup, baseline_pairs) {
        (Some(b), Some(base), Some(pairs)) => {
            println!(
                "==> instructions per cached redirect of the baseline ({}), counted by \
                 callgrind as the service's: counting on, analytics off",
                b.commit
            );
            let instructions = counted_service(&base, "counted-baseline", &[])?;
            Some(BaselineRuns {
                commit: b.commit.clone(),
                subject: b.subject.clone(),
                pairs,
                instructions,
            })
        }
        _ => None,
    };

    Ok(Redirects {
        wrk_version,
        plan,
        bare: cached.bare,
        cached_on: cached.on,
        cached_off: cached.off,
        cached_unlimited: cached.unlimited,
        cached_unmetered: cached.unmetered,
        metrics_pairs: cached.metrics_pairs,
        analytics_pairs: cached.analytics_pairs,
        zipf_pairs: cached.zipf_pairs,
        bare_pairs: cached.bare_pairs,
        instructions,
        cold: cold.cold,
        cold_wrapped: cold.wrapped,
        cold_replica,
        lookup: cold.lookup,
        lookup_failed: cold.lookup_failed,
        rss_fresh,
        rss_cached: cached.rss_cached,
        rss_full,
        clicks_counted,
        gets_answered: cached.gets_answered,
        counted_runs: cached.counted_runs,
        fill_per_second: filled.per_second(),
        log_notes,
        cpu_ticks_per_second: setup.meter.ticks_per_second(),
        metrics_cost_ns,
        written_plain: Some(written_plain),
        written_analysed: Some(written_analysed),
        baseline,
    })
}

/// The setting that gives the service its replicas (issue #20): comma-separated URLs.
const REPLICA_URLS: &str = "SHORTENER__DATABASE__REPLICA_URLS";

/// Whether the service accepts [`REPLICA_URLS`]: a service that refuses it (its
/// configuration denies unknown keys, so one from before the replicas of issue #20
/// exits at start) runs the replica turns without it. Tried with the primary's URL in
/// it; any other failure is left to the replica turns to report.
fn knows_replicas(setup: &Setup) -> Result<bool> {
    let probe = [(REPLICA_URLS, setup.url.clone())];
    match setup.start_with(true, "replica-probe", &probe) {
        Ok(service) => {
            drop(service);
            Ok(true)
        }
        Err(e) if format!("{e:#}").contains("replica_urls") => {
            println!(
                "    note: this service refuses database.replica_urls (no read replicas \
                 yet): its replica turns run without it, lookups on the primary"
            );
            Ok(false)
        }
        Err(e) => {
            println!(
                "    note: the service did not start with the primary's URL as a replica \
                 ({e:#}); trying the replica itself"
            );
            Ok(true)
        }
    }
}

/// A streaming replica of `pg` in `work/pg-replica` (beside the cluster's `work/pg`),
/// durable like it, once it has replayed everything the primary wrote; the error, said,
/// when that fails (the cold rounds then run without it, as before issue #20).
fn provision_replica<'a>(pg: &'a Cluster, work: &Path) -> Result<Replica<'a>> {
    let dir = work.join("pg-replica");
    println!(
        "==> a streaming replica of the bench PostgreSQL in {} (pg_basebackup, durable, no apply delay)",
        dir.display()
    );
    let started = Instant::now();
    let provisioned = pg.start_replica(&dir).and_then(|replica| {
        replica.wait_for_replay(Duration::from_secs(300))?;
        Ok(replica)
    });
    match &provisioned {
        Ok(replica) => println!(
            "    replica running on {} and caught up, after {:.0?}",
            replica.data_dir().display(),
            started.elapsed()
        ),
        Err(e) => println!("    warning: no replica, so no replica row: {e:#}"),
    }
    provisioned
}

/// The runs of the `--baseline` service: the same as `setup`'s but for its executable and
/// its database, a fresh one of its own, migrated by the baseline and holding the same
/// links (`plan.links`, written with the same SQL).
///
/// Its own database rather than the one the service now migrated: the baseline is any
/// revision. For 5270f9c (before the web interface) sharing would work (diesel runs only
/// the migrations it knows that are pending and ignores versions applied that it does not
/// know; the interface's migration only adds `ui_sessions`), but an older revision's
/// queries may not match a newer schema, and a revision may have migrations the current
/// schema lacks. A database each works for every revision, and keeps the baseline's
/// clicks out of the clicks the rounds check against their GETs.
fn baseline_setup<'a>(setup: &Setup<'a>, baseline: &'a Baseline, plan: Plan) -> Result<Setup<'a>> {
    println!(
        "==> baseline {}: {} links, written with SQL into a fresh database of its own ({BASELINE_DB})",
        baseline.commit, plan.links
    );
    let base = Setup {
        pg: setup.pg,
        exe: &baseline.exe,
        work: setup.work,
        url: setup.pg.fresh_database(BASELINE_DB)?,
        opts: setup.opts,
        scripts: setup.scripts.clone(),
        meter: Meter::new(setup.pg.postmaster_pid()?),
        db: BASELINE_DB,
    };
    prepare_links(&base, plan.links, "baseline-setup")?;
    Ok(base)
}

/// The service now (on `setup`) and the baseline (on `base`), both freshly started,
/// counting on, analytics off, the cached set touched once each, then side by side
/// ([`ab_pairs`]): (now, baseline) per run.
fn baseline_pairs(setup: &Setup, base: &Setup) -> Result<Vec<(Load, Load)>> {
    println!(
        "==> cached redirects against the baseline: the service now and the baseline, \
         counting on, analytics off, {CACHED} links cached each, side by side"
    );
    let clients = setup.opts.clients * 2;
    let now = setup.start(true, "baseline-now")?;
    touch(now.addr(), "GET", 1, CACHED, clients)?;
    let then = base.start(true, "baseline-then")?;
    touch(then.addr(), "GET", 1, CACHED, clients)?;
    let waited = setup.wait_for_idle_postgres(Duration::from_secs(120))?;
    println!("    PostgreSQL idle after {waited:.0?}");
    let pairs = ab_pairs(
        setup,
        ("now", now.addr(), now.pid()),
        ("baseline", then.addr(), then.pid()),
    )?;
    Ok(pairs.into_iter().map(|p| p.loads).collect())
}

/// When the click counter first folds after start, and then how often
/// (`shortener_app::ClickSettings`' defaults).
const FIRST_FOLD: Duration = Duration::from_secs(20);
const FOLD_EVERY: Duration = Duration::from_secs(60);

/// What writing the clicks of one load costs, per click, over a whole cycle: a fresh
/// service (counting on, with `more` settings) has the cached set in its cache (HEAD, so
/// no clicks) and its first fold behind it (which takes what earlier services left); then
/// wrk loads it for `--seconds` as visitors ask, and the CPU time of the service and of
/// PostgreSQL is read from the start of the load until its clicks are flushed and folded
/// (the fold after the first, [`FOLD_EVERY`] later), so PostgreSQL's share holds every
/// write and the fold, which the rounds' short runs catch one in several.
fn write_cycle(setup: &Setup, name: &str, more: &[(&str, String)]) -> Result<Written> {
    println!(
        "==> write cycle ({name}): a fresh service, {} s of visitors.lua, then until its clicks are folded",
        setup.opts.seconds
    );
    let service = setup.start_with(true, name, more)?;
    let started = Instant::now();
    touch(service.addr(), "HEAD", 1, CACHED, setup.opts.clients * 2)?;
    sleep_until(started + FIRST_FOLD + Duration::from_secs(4));
    // What earlier runs left PostgreSQL to do (folds, autovacuum) is not this cycle's.
    let waited = setup.wait_for_idle_postgres(Duration::from_secs(240))?;
    println!("    PostgreSQL idle after {waited:.0?}");
    let random_args = vec!["1".to_owned(), CACHED.to_string()];
    let before = setup.meter.read(Some(service.pid()), true)?;
    let run = wrk::run(
        &format!("http://{}", service.addr()),
        &setup.scripts.visitors,
        &random_args,
        setup.opts.seconds,
    )?;
    run.check(name)?;
    // The counter folds FIRST_FOLD after its start, then every FOLD_EVERY: wait for the
    // first fold after the load.
    let mut fold = started + FIRST_FOLD;
    while fold < Instant::now() {
        fold += FOLD_EVERY;
    }
    sleep_until(fold + Duration::from_secs(6));
    let unfolded = || -> Result<bool> {
        let held = setup.pg.psql(
            DB,
            "SELECT (SELECT count(*) FROM shortener.click_journal) \
                  + (SELECT count(*) FROM shortener.visit_journal)",
        )?;
        Ok(held.trim() != "0")
    };
    // A slow fold: give it a little longer, checking now and then.
    let mut left = unfolded()?;
    for _ in 0..10 {
        if !left {
            break;
        }
        std::thread::sleep(Duration::from_secs(3));
        left = unfolded()?;
    }
    // And for what the writes left it (autovacuum of the tables they touched).
    setup.wait_for_idle_postgres(Duration::from_secs(120))?;
    let cpu = setup.meter.since(before, run.requests)?;
    let written = Written {
        clicks: run.requests,
        cpu,
        unfolded: left,
    };
    println!(
        "    {} clicks; CPU per click (µs, {}): {}{}",
        run.requests,
        cpu.parts(),
        cpu,
        if left {
            " (journal not yet folded)"
        } else {
            ""
        }
    );
    Ok(written)
}

/// Instructions per cached redirect (visitors.lua, the uniform load), counted by callgrind
/// over the whole process: the bare server, and the service counting clicks with visit
/// analytics off and on.
#[derive(Debug, Clone, Copy, Default)]
pub struct Instructions {
    pub bare: f64,
    pub analytics_off: f64,
    pub analytics_on: f64,
}

/// Each server of [`Instructions`] under callgrind, one after the other: every cached code
/// asked for once and the load's user agents seen (a warm-up, not counted), then
/// `--seconds` of `wrk -t1 -c8` counted. The services count only after their first fold,
/// so that no fold (once a minute) falls in the count.
fn instructions(setup: &Setup, bare_exe: &Path) -> Result<Instructions> {
    callgrind::ensure_installed()?;
    println!(
        "==> instructions per cached redirect, counted by callgrind: {} s of visitors.lua \
         (wrk -t1 -c8) each, the bare server and the service counting clicks, analytics \
         off and on",
        setup.opts.seconds
    );
    let (script, out) = callgrind::wrapper(setup.work, "bare", bare_exe)?;
    let links_file = setup.work.join("links.tsv");
    let bare = Bare::start(
        &script,
        setup.work,
        &links_file,
        WORKERS,
        &format!("/{}", code(1)),
    )?;
    let requests = counted_load(setup, bare.addr(), bare.pid())?;
    drop(bare);
    let bare = per_request("bare", &out, requests)?;
    let service = |name: &str, more: &[(&str, String)]| counted_service(setup, name, more);
    let analytics_off = service("counted-off", &[])?;
    let analytics_on = service(
        "counted-on",
        &[("SHORTENER__ANALYTICS__ENABLED", "true".to_owned())],
    )?;
    Ok(Instructions {
        bare,
        analytics_off,
        analytics_on,
    })
}

/// The instructions per cached redirect of `setup`'s service, counting on, with `more`
/// settings, under callgrind: counted only after its first fold, so that no fold (once a
/// minute) falls in the count.
fn counted_service(setup: &Setup, name: &str, more: &[(&str, String)]) -> Result<f64> {
    let (script, out) = callgrind::wrapper(setup.work, name, setup.exe)?;
    let started = Instant::now();
    let service = setup.start_exe(&script, true, name, more)?;
    sleep_until(started + FIRST_FOLD + Duration::from_secs(4));
    let requests = counted_load(setup, service.addr(), service.pid())?;
    drop(service);
    per_request(name, &out, requests)
}

/// The warm-up and the counted load of [`instructions`]; the requests counted.
fn counted_load(setup: &Setup, addr: SocketAddr, pid: u32) -> Result<u64> {
    let url = format!("http://{addr}");
    let args = vec!["1".to_owned(), CACHED.to_string()];
    touch(addr, "GET", 1, CACHED, setup.opts.clients * 2)?;
    let script = &setup.scripts.visitors;
    wrk::run_with(&url, script, &args, 3, 1, 8)?.check("callgrind warm-up")?;
    callgrind::count(pid, true)?;
    let run = wrk::run_with(&url, script, &args, setup.opts.seconds, 1, 8);
    callgrind::count(pid, false)?;
    let run = run?;
    run.check("callgrind run")?;
    Ok(run.requests)
}

fn per_request(name: &str, out: &Path, requests: u64) -> Result<f64> {
    let total = callgrind::totals(out)?;
    if requests == 0 {
        bail!("{name}: no request answered under callgrind");
    }
    let per = total as f64 / requests as f64;
    println!("    {name}: {requests} requests, {per:.0} instructions each");
    Ok(per)
}

/// The first error of the client threads `handles` (a panic is one), once every one has
/// ended.
pub fn first_error(
    handles: Vec<std::thread::ScopedJoinHandle<'_, Result<()>>>,
) -> Option<anyhow::Error> {
    let errors: Vec<anyhow::Error> = handles
        .into_iter()
        .filter_map(|h| match h.join() {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some(anyhow::anyhow!("a client thread panicked")),
        })
        .collect();
    errors.into_iter().next()
}

fn sleep_until(at: Instant) {
    if let Some(wait) = at.checked_duration_since(Instant::now()) {
        std::thread::sleep(wait);
    }
}

/// What the metrics middleware costs one redirect, in process: the ignored test
/// `metrics::tests::measure_the_cost_per_request` of shortener-http, built in release,
/// times a 302 through the middleware with metrics on and off in interleaved batches on
/// one thread (wrk's figures cannot resolve a few hundred ns on this machine).
fn metrics_cost() -> Result<Option<[f64; 3]>> {
    println!("==> metrics: the middleware's cost per redirect, in process (release test build)");
    let out = std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(crate::root())
        .args([
            "test",
            "--release",
            "-q",
            "-p",
            "shortener-http",
            "--lib",
            "metrics::tests::measure_the_cost_per_request",
            "--",
            "--ignored",
            "--exact",
            "--nocapture",
        ])
        .output()
        .context("running the metrics cost measurement")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let figures = text
        .lines()
        .find_map(|l| l.strip_prefix("metrics-cost-ns: "))
        .and_then(parse_cost);
    match figures {
        Some(f) => println!(
            "    median {:.0} ns (lowest {:.0}, highest {:.0})",
            f[0], f[1], f[2]
        ),
        None => println!(
            "    no figure ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        ),
    }
    Ok(figures)
}

/// `median M min A max B` as `[M, A, B]`.
fn parse_cost(line: &str) -> Option<[f64; 3]> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["median", m, "min", a, "max", b] => {
            Some([m.parse().ok()?, a.parse().ok()?, b.parse().ok()?])
        }
        _ => None,
    }
}

/// Settings that turn every rate-limit policy off (each plan's `requests` too).
pub fn limits_off() -> Vec<(&'static str, String)> {
    [
        "SHORTENER__RATE_LIMIT__ADMIN_PER_MINUTE",
        "SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE",
        "SHORTENER__RATE_LIMIT__UNKNOWN_CODES_PER_MINUTE",
        "SHORTENER__RATE_LIMIT__PASSWORD_TRIES_PER_MINUTE",
        "SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE",
        "SHORTENER__PLANS__PRO__REQUESTS_PER_MINUTE",
        "SHORTENER__PLANS__BUSINESS__REQUESTS_PER_MINUTE",
    ]
    .into_iter()
    .map(|key| (key, "0".to_owned()))
    .collect()
}

/// The wrk scripts, written into the bench directory.
#[derive(Clone)]
struct Scripts {
    random: PathBuf,
    /// Random cached codes, as visitors with a mix of user agents and referrers ask for
    /// them: every cached load since visit analytics (issue #17).
    visitors: PathBuf,
    walk: PathBuf,
}

/// What every redirect run needs: the cluster, the service's executable, the bench
/// directory, the database of the links, the options, the wrk scripts, the CPU meter.
struct Setup<'a> {
    pg: &'a Cluster,
    exe: &'a Path,
    work: &'a Path,
    url: String,
    opts: Options,
    scripts: Scripts,
    meter: Meter,
    /// The database of `url`.
    db: &'static str,
}

impl Setup<'_> {
    /// The service for a redirect run: `WORKERS` workers, counting on or off, logging to
    /// `shortener-<name>.log`.
    fn start(&self, count_clicks: bool, name: &str) -> Result<Service> {
        self.start_with(count_clicks, name, &[])
    }

    /// [`Self::start`] with more settings.
    fn start_with(
        &self,
        count_clicks: bool,
        name: &str,
        more: &[(&str, String)],
    ) -> Result<Service> {
        self.start_exe(self.exe, count_clicks, name, more)
    }

    /// [`Self::start_with`] with `exe` for the service's executable (a wrapper of it).
    fn start_exe(
        &self,
        exe: &Path,
        count_clicks: bool,
        name: &str,
        more: &[(&str, String)],
    ) -> Result<Service> {
        let mut settings = vec![
            ("SHORTENER__SERVER__WORKERS", WORKERS.to_string()),
            (
                "SHORTENER__REDIRECT__COUNT_CLICKS",
                count_clicks.to_string(),
            ),
        ];
        settings.extend(more.iter().cloned());
        Service::start_with(
            exe,
            self.work,
            &self.url,
            self.opts.clients,
            &format!("shortener-{name}.log"),
            &settings,
        )
    }

    /// Waits (at most `limit`) until PostgreSQL has used under 2 % of a core for two
    /// seconds in a row; how long it waited.
    fn wait_for_idle_postgres(&self, limit: Duration) -> Result<Duration> {
        let started = Instant::now();
        let mut quiet = 0;
        while quiet < 2 && started.elapsed() < limit {
            let before = self.meter.read(None, true)?;
            std::thread::sleep(Duration::from_secs(1));
            // With one "request", PostgreSQL's share is its CPU µs over that second.
            let busy_us = self.meter.since(before, 1)?.pg_us.unwrap_or(0.0);
            quiet = if busy_us < 20_000.0 { quiet + 1 } else { 0 };
        }
        Ok(started.elapsed())
    }

    /// One measured wrk run (`opts.seconds`, after its warm-up ran) of `script` against
    /// the server at `addr`, and the CPU time per request of its process `pid` (and of
    /// PostgreSQL, when `postgres`) over exactly that run.
    fn measured_run(
        &self,
        addr: SocketAddr,
        pid: u32,
        postgres: bool,
        script: &Path,
        args: &[String],
    ) -> Result<(wrk::Run, PerRequest)> {
        let before = self.meter.read(Some(pid), postgres)?;
        let run = wrk::run(&format!("http://{addr}"), script, args, self.opts.seconds)?;
        let cpu = self.meter.since(before, run.requests)?;
        Ok((run, cpu))
    }
}

/// The cached comparisons, one entry per round each.
struct Cached {
    bare: Vec<Load>,
    on: Vec<Load>,
    off: Vec<Load>,
    unlimited: Vec<Load>,
    unmetered: Vec<Load>,
    metrics_pairs: Vec<(Load, Load)>,
    analytics_pairs: Vec<(Load, Load)>,
    zipf_pairs: Vec<(Load, Load)>,
    bare_pairs: Vec<(Load, Load)>,
    rss_cached: u64,
    gets_answered: u64,
    counted_runs: u64,
}

/// The bare server and the service counting clicks on and off (and off with no rate
/// limits), started once and alive side by side, each service with the cached set touched
/// once; then each round every one of them a turn of wrk on random cached codes (warm-up,
/// then the run), the order rotated by one each round. Stops all four before returning,
/// the counting-on service with SIGTERM so that it writes its clicks.
fn cached_rounds(setup: &Setup, bare_exe: &Path) -> Result<Cached> {
    let (opts, script) = (setup.opts, &setup.scripts.visitors);
    let (secs, warm) = (opts.seconds, WARM_UP.as_secs());
    let random_args = vec!["1".to_owned(), CACHED.to_string()];
    println!(
        "==> cached redirects, {} rounds: the bare actix-web server (302 from a HashMap of \
         {CACHED} links) and the service with them cached, counting clicks on and off, and \
         off with every rate limit off, {WORKERS} workers each, side by side",
        opts.rounds
    );
    let links_file = setup.work.join("links.tsv");
    write_links_file(&links_file)?;
    let probe = format!("/{}", code(1));
    let bare = Bare::start(bare_exe, setup.work, &links_file, WORKERS, &probe)?;
    let on = setup.start(true, "cached-on")?;
    let touched = touch(on.addr(), "GET", 1, CACHED, opts.clients * 2)?;
    let rss_cached = on.rss()?;
    let off = setup.start(false, "cached-off")?;
    touch(off.addr(), "GET", 1, CACHED, opts.clients * 2)?;
    let unlimited = setup.start_with(false, "cached-unlimited", &limits_off())?;
    touch(unlimited.addr(), "GET", 1, CACHED, opts.clients * 2)?;
    let metrics_off = [("SHORTENER__METRICS__ENABLED", "false".to_owned())];
    let unmetered = setup.start_with(false, "cached-unmetered", &metrics_off)?;
    touch(unmetered.addr(), "GET", 1, CACHED, opts.clients * 2)?;

    // Name, address, process, and whether PostgreSQL's CPU time is charged to it (the
    // bare server has no database).
    let servers = [
        ("bare", bare.addr(), bare.pid(), false),
        ("counting on", on.addr(), on.pid(), true),
        ("counting off", off.addr(), off.pid(), true),
        (
            "counting off, no limits",
            unlimited.addr(),
            unlimited.pid(),
            true,
        ),
        (
            "counting off, no metrics",
            unmetered.addr(),
            unmetered.pid(),
            true,
        ),
    ];
    let mut loads: [Vec<Load>; 5] = Default::default();
    let mut gets_answered = touched.requests;
    let mut counted_runs = 0;
    for round in 0..opts.rounds {
        println!(
            "    round {}/{}: wrk -t{} -c{}, random codes as visitors ask (visitors.lua), {secs} s each after a {warm} s warm-up",
            round + 1,
            opts.rounds,
            wrk::THREADS,
            wrk::CONNECTIONS
        );
        for turn in 0..servers.len() {
            let which = cached_turn(round, turn);
            let (name, addr, pid, postgres) = servers[which];
            let what = format!("{name}, round {}", round + 1);
            let warm_run = wrk::run(&format!("http://{addr}"), script, &random_args, warm)?;
            warm_run.check(&format!("{what}, warm-up"))?;
            let (run, cpu) = setup.measured_run(addr, pid, postgres, script, &random_args)?;
            run.check(&what)?;
            if addr == on.addr() {
                gets_answered += warm_run.requests + run.requests;
                counted_runs += 2;
            }
            let load = Load::of(&run, cpu);
            print_load(name, &load);
            loads[which].push(load);
        }
    }
    let metrics_pairs = ab_pairs(
        setup,
        ("metrics on", off.addr(), off.pid()),
        ("metrics off", unmetered.addr(), unmetered.pid()),
    )?;
    // Visit analytics (issue #17, off by default): counting on with analytics against
    // counting on without (the counting-on service), and against the bare server, side
    // by side. The clicks both counting services write are checked against the GETs they
    // answered.
    let with_analytics = [("SHORTENER__ANALYTICS__ENABLED", "true".to_owned())];
    let analysed = setup.start_with(true, "cached-analysed", &with_analytics)?;
    gets_answered += touch(analysed.addr(), "GET", 1, CACHED, opts.clients * 2)?.requests;
    let analytics_pairs = ab_pairs(
        setup,
        ("analytics on", analysed.addr(), analysed.pid()),
        ("analytics off", on.addr(), on.pid()),
    )?;
    // The same with links asked for as real traffic asks for them (a few hot links): the
    // counter adds a hot link's repeated visits up before they are written.
    let zipf_pairs = ab_pairs_with(
        setup,
        &zipf_args(),
        ("analytics on", analysed.addr(), analysed.pid()),
        ("analytics off", on.addr(), on.pid()),
    )?;
    let bare_pairs = ab_pairs(
        setup,
        ("analytics on", analysed.addr(), analysed.pid()),
        ("bare", bare.addr(), bare.pid()),
    )?;
    for (pairs, both_count) in [
        (&analytics_pairs, true),
        (&zipf_pairs, true),
        (&bare_pairs, false),
    ] {
        for pair in pairs {
            gets_answered += pair.requests.0 + if both_count { pair.requests.1 } else { 0 };
            counted_runs += if both_count { 4 } else { 2 };
        }
    }
    let analytics_pairs = analytics_pairs.into_iter().map(|p| p.loads).collect();
    let zipf_pairs = zipf_pairs.into_iter().map(|p| p.loads).collect();
    let bare_pairs = bare_pairs.into_iter().map(|p| p.loads).collect();
    let metrics_pairs = metrics_pairs.into_iter().map(|p| p.loads).collect();
    // SIGTERM, and the service writes every click it counted before it exits.
    drop(analysed);
    drop(on);
    drop(off);
    drop(unlimited);
    drop(unmetered);
    drop(bare);
    let [bare, on, off, unlimited, unmetered] = loads;
    Ok(Cached {
        bare,
        on,
        off,
        unlimited,
        unmetered,
        metrics_pairs,
        analytics_pairs,
        zipf_pairs,
        bare_pairs,
        rss_cached,
        gets_answered,
        counted_runs,
    })
}

/// Runs of the side-by-side comparison: 2 a round, at least 6.
fn pair_count(rounds: usize) -> usize {
    (rounds * 2).max(6)
}

/// Seconds of each side-by-side run, after a 1 s warm-up.
pub const PAIR_SECONDS: u64 = 10;

/// Two services (counting off, so PostgreSQL stays idle) loaded at the same time, each by
/// its own wrk (`-t1 -c64`), for [`PAIR_SECONDS`]: `(a, b)` per run. For a difference of a
/// few per cent, which taking turns cannot resolve on this machine (its speed drifts by
/// ±10 % within seconds: back-to-back 3 s runs of two identical setups differed by up to
/// 25 %). Side by side, both see the same machine at every instant, and the scheduler
/// shares the cores fairly between their equally many, always busy workers, so the
/// requests/s ratio is the inverse ratio of their costs per request. Which wrk starts
/// first alternates.
fn ab_pairs(
    setup: &Setup,
    a: (&str, SocketAddr, u32),
    b: (&str, SocketAddr, u32),
) -> Result<Vec<Pair>> {
    ab_pairs_with(setup, &["1".to_owned(), CACHED.to_string()], a, b)
}

/// visitors.lua's arguments for the cached set asked for by Zipf's law.
fn zipf_args() -> Vec<String> {
    vec!["1".to_owned(), CACHED.to_string(), "zipf".to_owned()]
}

/// [`ab_pairs`] with visitors.lua's `args`.
fn ab_pairs_with(
    setup: &Setup,
    random_args: &[String],
    a: (&str, SocketAddr, u32),
    b: (&str, SocketAddr, u32),
) -> Result<Vec<Pair>> {
    let script = &setup.scripts.visitors;
    let runs = pair_count(setup.opts.rounds);
    let (threads, connections) = (1, wrk::CONNECTIONS / 2);
    println!(
        "    {} / {}: {runs} runs of {PAIR_SECONDS} s with both loaded at once, each by wrk \
         -t{threads} -c{connections}, visitors.lua {}",
        a.0,
        b.0,
        random_args.join(" ")
    );
    let mut out = Vec::with_capacity(runs);
    for run in 0..runs {
        let order = if run % 2 == 0 { [a, b] } else { [b, a] };
        let load = |seconds: u64| -> Result<Vec<(&str, wrk::Run, PerRequest)>> {
            let before = [
                setup.meter.read(Some(order[0].2), false)?,
                setup.meter.read(Some(order[1].2), false)?,
            ];
            let runs = std::thread::scope(|scope| {
                let started = order.map(|(_, addr, _)| {
                    let args = random_args;
                    scope.spawn(move || {
                        wrk::run_with(
                            &format!("http://{addr}"),
                            script,
                            args,
                            seconds,
                            threads,
                            connections,
                        )
                    })
                });
                started.map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow::anyhow!("wrk panicked")))
                })
            });
            let mut out = Vec::with_capacity(2);
            for (((name, _, _), result), before) in order.iter().zip(runs).zip(before) {
                let run = result?;
                let cpu = setup.meter.since(before, run.requests)?;
                out.push((*name, run, cpu));
            }
            Ok(out)
        };
        let mut requests = (0, 0);
        let mut count = |name: &str, n: u64| {
            if name == a.0 {
                requests.0 += n;
            } else {
                requests.1 += n;
            }
        };
        for (name, warm, _) in load(1)? {
            warm.check(&format!("{name}, side by side {}, warm-up", run + 1))?;
            count(name, warm.requests);
        }
        let measured = load(PAIR_SECONDS)?;
        let mut la = None;
        let mut lb = None;
        for (name, run_, cpu) in measured {
            run_.check(&format!("{name}, side by side {}", run + 1))?;
            count(name, run_.requests);
            let load = Load::of(&run_, cpu);
            if name == a.0 {
                la = Some(load);
            } else {
                lb = Some(load);
            }
        }
        let (Some(la), Some(lb)) = (la, lb) else {
            unreachable!("both ran");
        };
        println!(
            "      run {}: {} {:.0}/s ({:.2} µs CPU a request), {} {:.0}/s ({:.2} µs), \
             ratio {:.3}",
            run + 1,
            a.0,
            la.per_second,
            la.cpu.server_us.unwrap_or(f64::NAN),
            b.0,
            lb.per_second,
            lb.cpu.server_us.unwrap_or(f64::NAN),
            la.per_second / lb.per_second
        );
        out.push(Pair {
            loads: (la, lb),
            requests,
        });
    }
    Ok(out)
}

/// One side-by-side run of [`ab_pairs`]: each side's load, and the requests each
/// answered (warm-up included).
struct Pair {
    loads: (Load, Load),
    requests: (u64, u64),
}

/// The cold comparisons, one entry per round each (the replica's, when it ran).
struct Cold {
    cold: Vec<Load>,
    wrapped: bool,
    lookup: Vec<Load>,
    lookup_failed: u64,
    replica: ReplicaRuns,
}

/// The cold services with their lookups on a replica (issue #20), one entry per round;
/// empty without a replica.
#[derive(Debug, Clone, Default)]
pub struct ReplicaRuns {
    /// Requests/s and latency; CPU per request of the service and of the primary.
    pub cold: Vec<Load>,
    /// The replica's CPU µs per request over each of those runs: the lookups, and
    /// replaying what the primary wrote (the clicks).
    pub replica_us: Vec<Option<f64>>,
    /// The replica's CPU µs per request over each primary-only cold run (replaying the
    /// primary's writes only), in the primary-only run's requests.
    pub replay_us: Vec<Option<f64>>,
    /// The reads each replica-configured service counted, warm-up included
    /// (`shortener_db_reads_total`; `None` when it exports no such counter: a service that
    /// does not route reads).
    pub routed: Vec<Option<Routed>>,
    /// A run's threads ran out of fresh codes (its figure includes repeats).
    pub wrapped: bool,
    /// Why there was no replica, when provisioning it failed.
    pub missing: Option<String>,
    /// The service refused [`REPLICA_URLS`] (one without read replicas): its replica
    /// turns ran without the setting, so with their lookups on the primary, beside a
    /// replica nobody read from.
    pub refused: bool,
}

/// `shortener_db_reads_total{to=...}` of one service: reads routed to the replica and to
/// the primary (summed over any other labels).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Routed {
    pub replica: f64,
    pub primary: f64,
}

/// One turn of a cold round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColdTurn {
    /// A fresh service, lookups on the primary (no replica configured).
    Cold,
    /// pgbench's primary-key lookup.
    Lookup,
    /// A fresh service with its lookups on the replica (issue #20).
    Replica,
}

/// The turns of cold round `round`: the primary-only cold service and pgbench's lookup as
/// before the replica row (the lookup first every other round, [`lookup_first`]); with a
/// replica, the service using it goes after both in even rounds and before both in odd
/// ones, so that it follows the primary-only service in one round and precedes it in the
/// next.
pub fn cold_order(round: usize, replica: bool) -> Vec<ColdTurn> {
    let mut turns = if lookup_first(round) {
        vec![ColdTurn::Lookup, ColdTurn::Cold]
    } else {
        vec![ColdTurn::Cold, ColdTurn::Lookup]
    };
    if replica {
        if round % 2 == 1 {
            turns.insert(0, ColdTurn::Replica);
        } else {
            turns.push(ColdTurn::Replica);
        }
    }
    turns
}

/// The replica the cold rounds use, and the meter of its postmaster.
struct ReplicaSetup<'a, 'b> {
    replica: &'a Replica<'b>,
    meter: Meter,
    /// [`REPLICA_URLS`]: the replica's URL of the links' database (nothing when the
    /// service refuses it).
    settings: Vec<(&'static str, String)>,
}

/// Each round: a freshly started service, counting on, asked for codes it has not been
/// asked for (its warm-up's, then its run's: [`Plan::cold`]), and pgbench's lookup; the
/// lookup goes first every other round. With `replica`, another freshly started service,
/// counting on, configured with it (`SHORTENER__DATABASE__REPLICA_URLS`), walks codes of
/// its own ([`Plan::cold_replica`]) the same way, measured the same way, plus the
/// replica's CPU time ([`cold_order`] says when). When the service does not know replicas
/// (`knows_replicas` false), those services run without the setting.
fn cold_rounds(
    setup: &Setup,
    plan: Plan,
    replica: Option<&Replica>,
    knows_replicas: bool,
    log_notes: &mut Vec<String>,
) -> Result<Cold> {
    let (opts, script) = (setup.opts, &setup.scripts.walk);
    let (secs, warm) = (opts.seconds, WARM_UP.as_secs());
    println!(
        "==> cold cache vs pgbench lookup, {} rounds: each a fresh service, counting on, \
         every request a code it was not asked for before ({} codes a round), {secs} s; \
         pgbench -M prepared, primary-key lookup of shortener.links by code, {} clients \
         (the service's pool size), {secs} s{}",
        opts.rounds,
        plan.warm + plan.run,
        opts.clients,
        if replica.is_some() {
            "; and a fresh service with its lookups on a streaming replica, codes of its own (#20)"
        } else {
            ""
        }
    );
    let lookup_script = lookup_script(setup.pg, setup.work, plan.links)?;
    let threads = wrk::THREADS.to_string();
    let walk_args =
        |(first, last): (u64, u64)| vec![first.to_string(), last.to_string(), threads.clone()];
    let replica = match replica {
        Some(r) => Some(ReplicaSetup {
            replica: r,
            meter: Meter::new(r.postmaster_pid()?),
            settings: if knows_replicas {
                vec![(REPLICA_URLS, r.url(setup.db))]
            } else {
                Vec::new()
            },
        }),
        None => None,
    };
    let mut cold = Cold {
        cold: Vec::new(),
        wrapped: false,
        lookup: Vec::new(),
        lookup_failed: 0,
        replica: ReplicaRuns {
            refused: !knows_replicas,
            ..ReplicaRuns::default()
        },
    };
    for round in 0..opts.rounds {
        // The two blocks of fresh codes are not equally fast (measured: the second ran
        // up to a third faster on the same service), so the primary-only and replica
        // services swap blocks every other round, and the ratio's median is over both.
        let (primary_block, replica_block) = if replica.is_some() && round % 2 == 1 {
            (plan.cold_replica(), plan.cold())
        } else {
            (plan.cold(), plan.cold_replica())
        };
        let (warm_codes, run_codes) = primary_block;
        println!(
            "    round {}/{}: cold codes {}..={} ({}..={} the warm-up's)",
            round + 1,
            opts.rounds,
            run_codes.0,
            run_codes.1,
            warm_codes.0,
            warm_codes.1
        );
        if replica.is_some() {
            let (warm_codes, run_codes) = replica_block;
            println!(
                "      with the replica: cold codes {}..={} ({}..={} the warm-up's)",
                run_codes.0, run_codes.1, warm_codes.0, warm_codes.1
            );
        }
        for turn in cold_order(round, replica.is_some()) {
            if turn == ColdTurn::Lookup {
                let (load, failed) = lookup_run(setup, &lookup_script)?;
                print_load("pgbench lookup", &load);
                cold.lookup.push(load);
                cold.lookup_failed += failed;
                continue;
            }
            let on_replica = turn == ColdTurn::Replica;
            let (name, what, codes, more): (String, String, _, &[(&str, String)]) =
                match (&replica, on_replica) {
                    (Some(r), true) => (
                        format!("cold-replica-{}", round + 1),
                        format!("cold, lookups on a replica, round {}", round + 1),
                        replica_block,
                        &r.settings,
                    ),
                    _ => (
                        format!("cold-{}", round + 1),
                        format!("cold, round {}", round + 1),
                        primary_block,
                        &[],
                    ),
                };
            if let (Some(r), true) = (&replica, on_replica) {
                // What the primary wrote since (the clicks of the run before) is on the
                // replica: a lagging replica is not what this row measures.
                r.replica.wait_for_replay(Duration::from_secs(60))?;
            }
            let (run, cpu, replica_us, routed) = {
                let service = setup.start_with(true, &name, more)?;
                let base = format!("http://{}", service.addr());
                wrk::run(&base, script, &walk_args(codes.0), warm)?
                    .check(&format!("{what}, warm-up"))?;
                let replica_before = match &replica {
                    Some(r) => Some(r.meter.read(None, true)?),
                    None => None,
                };
                let (run, cpu) = setup.measured_run(
                    service.addr(),
                    service.pid(),
                    true,
                    script,
                    &walk_args(codes.1),
                )?;
                let replica_us = match (&replica, replica_before) {
                    (Some(r), Some(before)) => r.meter.since(before, run.requests)?.pg_us,
                    _ => None,
                };
                run.check(&what)?;
                let routed = if on_replica {
                    routed_reads(service.addr())
                } else {
                    None
                };
                (run, cpu, replica_us, routed)
                // Dropped, so stopped (and its clicks written) before the next turn.
            };
            let load = Load::of(&run, cpu);
            if on_replica {
                print_load("cold, lookups on a replica", &load);
                println!(
                    "        replica CPU µs per request: {}; reads counted (shortener_db_reads_total, warm-up included): {}",
                    us(replica_us),
                    routed_text(routed)
                );
            } else {
                print_load("cold", &load);
                if replica.is_some() {
                    println!(
                        "        replica CPU µs per request (replaying the primary's writes): {}",
                        us(replica_us)
                    );
                }
            }
            if run.wrapped {
                println!(
                    "    warning: the cold run ran out of fresh codes; its figure includes repeats"
                );
            }
            if on_replica {
                cold.replica.wrapped |= run.wrapped;
                cold.replica.cold.push(load);
                cold.replica.replica_us.push(replica_us);
                cold.replica.routed.push(routed);
            } else {
                cold.wrapped |= run.wrapped;
                cold.cold.push(load);
                if replica.is_some() {
                    cold.replica.replay_us.push(replica_us);
                }
            }
            log_notes.extend(log_note(
                setup.work,
                &name,
                &if on_replica {
                    format!("cold cache, lookups on a replica, round {}", round + 1)
                } else {
                    format!("cold cache, round {}", round + 1)
                },
            )?);
        }
    }
    Ok(cold)
}

/// `12.34`, or `n/a`.
fn us(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
}

/// `1200 to the replica, 3 to the primary`, or why there is no figure.
pub fn routed_text(routed: Option<Routed>) -> String {
    routed.map_or_else(
        || "not exported (a service that does not route reads)".to_owned(),
        |r| {
            format!(
                "{:.0} to the replica, {:.0} to the primary",
                r.replica, r.primary
            )
        },
    )
}

/// The reads the service at `addr` routed so far, from its `/metrics`; `None` when it
/// does not export them (or does not answer).
fn routed_reads(addr: SocketAddr) -> Option<Routed> {
    match Http::new(addr).request("GET", "/metrics", None, None) {
        Ok((200, body)) => parse_routed(&String::from_utf8_lossy(&body)),
        _ => None,
    }
}

/// `shortener_db_reads_total{...to="replica"...} N` and `{...to="primary"...}` lines of a
/// Prometheus text exposition, summed over any other labels; `None` when there is none.
fn parse_routed(text: &str) -> Option<Routed> {
    let mut routed = Routed {
        replica: 0.0,
        primary: 0.0,
    };
    let mut seen = false;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("shortener_db_reads_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Some(value) = value
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        for label in labels.split(',').map(str::trim) {
            match label {
                r#"to="replica""# => routed.replica += value,
                r#"to="primary""# => routed.primary += value,
                _ => continue,
            }
            seen = true;
        }
    }
    seen.then_some(routed)
}

/// One line summing up the warnings and errors in the log of the service run `name`
/// (`None` when there are none): `run: 3× WARN message (last: fields); ...`.
pub(super) fn log_note(work: &Path, name: &str, run: &str) -> Result<Option<String>> {
    let path = work.join(format!("shortener-{name}.log"));
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let problems = summarize_log(&text);
    if problems.is_empty() {
        return Ok(None);
    }
    let note = format!(
        "service log, {run} ({}): {}",
        path.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        problems.join("; ")
    );
    println!("    {note}");
    Ok(Some(note))
}

/// WARN and ERROR lines of a service log grouped by level and message, in order of first
/// appearance: `N× LEVEL message (last: fields)`.
fn summarize_log(text: &str) -> Vec<String> {
    let mut groups: Vec<(String, usize, String)> = Vec::new();
    for line in text.lines().map(strip_ansi) {
        let mut words = line.split_whitespace().skip(1);
        let Some(level) = words.next().filter(|l| matches!(*l, "WARN" | "ERROR")) else {
            continue;
        };
        let _target = words.next();
        let rest: Vec<&str> = words.collect();
        let split = rest
            .iter()
            .position(|w| w.contains('='))
            .unwrap_or(rest.len());
        let message = format!("{level} {}", rest[..split].join(" "));
        let fields: String = rest[split..].join(" ").chars().take(160).collect();
        match groups.iter_mut().find(|(m, _, _)| *m == message) {
            Some(group) => {
                group.1 += 1;
                group.2 = fields;
            }
            None => groups.push((message, 1, fields)),
        }
    }
    groups
        .into_iter()
        .map(|(message, n, fields)| {
            if fields.is_empty() {
                format!("{n}× {message}")
            } else {
                format!("{n}× {message} (last: {fields})")
            }
        })
        .collect()
}

/// The text of a line without its terminal colour sequences (`ESC [ ... m`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
pub(super) fn print_load(name: &str, load: &Load) {
    let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} ms"));
    println!(
        "      {name}: {:.1} requests/s, p50 {}, p99 {}; CPU µs per request ({}): {}",
        load.per_second,
        ms(load.p50_ms),
        ms(load.p99_ms),
        load.cpu.parts(),
        load.cpu
    );
}

/// Bytes as decimal megabytes, e.g. `212.4 MB`.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
/// The schema (the service migrates it), one account, and `links` links inserted with
/// SQL, in the fresh database of `setup`; the service that migrates it logs to
/// `shortener-<name>.log`.
fn prepare_links(setup: &Setup, links: u64, name: &str) -> Result<()> {
    let started = Instant::now();
    let (pg, db) = (setup.pg, setup.db);
    let account = {
        let service = setup.start(true, name)?;
        service.create_account("bench redirects")?
    };
    if !account.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        bail!("unexpected account id {account:?}");
    }
    pg.psql(
        db,
        &format!(
            "INSERT INTO shortener.links (id, code, account_id, target, created_at) \
             SELECT gen_random_uuid(), {}, '{account}', 'https://example.com/' || n, now() \
             FROM generate_series(1::bigint, {links}) AS n",
            code_sql("n")
        ),
    )?;
    pg.psql(db, "VACUUM ANALYZE shortener.links")?;
    // The SQL, Rust (and so the Lua) codes agree, and the lookup uses the unique index.
    let probes = [1, CACHED, CACHED + 1, TOTAL, links];
    let list = probes
        .iter()
        .map(|n| format!("('{}', '{}')", code(*n), target(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let found = pg.psql(
        db,
        &format!(
            "SELECT count(*) FROM shortener.links l JOIN (VALUES {list}) AS p (code, target) \
             ON l.code = p.code AND l.target = p.target"
        ),
    )?;
    if found != probes.len().to_string() {
        bail!(
            "the links written with SQL do not have the codes the bench computes ({found} of {} found)",
            probes.len()
        );
    }
    println!("    {links} links in {:.0?}", started.elapsed());
    Ok(())
}

/// `code<TAB>target` for the cached set, for the bare server.
fn write_links_file(path: &Path) -> Result<()> {
    let mut text = String::with_capacity(40 * CACHED as usize);
    for n in 1..=CACHED {
        let _ = writeln!(text, "{}\t{}", code(n), target(n));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// pgbench's script for the lookup baseline: one `SELECT target FROM shortener.links
/// WHERE code = ...` of a random link of the whole table (`1..=links`) per transaction,
/// so that it meets the table as the cold rounds do, not a subset that stays in shared
/// buffers; checks that it uses the unique index.
fn lookup_script(pg: &Cluster, work: &Path, links: u64) -> Result<PathBuf> {
    let script = work.join("lookup.sql");
    std::fs::write(
        &script,
        format!(
            "\\set n random(1, {links})\nSELECT target FROM shortener.links WHERE code = {};\n",
            code_sql(":n::bigint")
        ),
    )
    .with_context(|| format!("writing {}", script.display()))?;
    let plan = pg.psql(
        DB,
        &format!(
            "EXPLAIN SELECT target FROM shortener.links WHERE code = {}",
            code_sql("42::bigint")
        ),
    )?;
    if !plan.contains("links_code_key") {
        bail!("the lookup does not use the unique index on code:\n{plan}");
    }
    Ok(script)
}

/// One pgbench `-M prepared` run of `script` after its warm-up, `opts.clients` clients;
/// latency percentiles from a 10% sample of the per-transaction log, and PostgreSQL's
/// CPU time per transaction (pgbench's own, the client side, is not counted). Returns
/// the load and the failed transactions.
fn lookup_run(setup: &Setup, script: &Path) -> Result<(Load, u64)> {
    let (pg, clients) = (setup.pg, setup.opts.clients);
    let prepared = ["-M", "prepared"];
    pgbench::run(pg, DB, script, clients, WARM_UP.as_secs(), &prepared)
        .context("pgbench lookup warm-up")?;
    let before = setup.meter.read(None, true)?;
    let (run, latencies) = pgbench::run_sampled(
        pg,
        DB,
        script,
        clients,
        setup.opts.seconds,
        &prepared,
        &setup.work.join("pgbench_lookup"),
    )?;
    let cpu = match run.transactions {
        Some(transactions) => setup.meter.since(before, transactions)?,
        None => PerRequest::default(),
    };
    let load = Load {
        per_second: run.tps,
        p50_ms: percentile(&latencies, 0.50).map(|us| us as f64 / 1e3),
        p99_ms: percentile(&latencies, 0.99).map(|us| us as f64 / 1e3),
        cpu,
    };
    Ok((load, run.failed))
}

// ---------------------------------------------------------------------------------------
// Touching codes once: a blocking client per thread, each on its own keep-alive connection.

pub(super) struct Touched {
    pub(super) requests: u64,
    elapsed: Duration,
}

impl Touched {
    fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Asks for each code of `first..=last` once (`method` GET or HEAD) from `threads`
/// threads (thread `t` takes every `threads`-th code from `first + t`); every answer
/// must be a 302.
pub(super) fn touch(
    addr: SocketAddr,
    method: &str,
    first: u64,
    last: u64,
    threads: usize,
) -> Result<Touched> {
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let step = threads as u64;
    let error = std::thread::scope(|s| {
        let handles: Vec<_> = (0..step)
            .map(|t| {
                let (done, failed) = (&done, &failed);
                s.spawn(move || -> Result<()> {
                    let mut http = Http::new(addr);
                    let mut n = first + t;
                    while n <= last && !failed.load(Ordering::Relaxed) {
                        let path = format!("/{}", code(n));
                        match http.request(method, &path, None, None) {
                            Ok((302, _)) => {}
                            Ok((status, body)) => {
                                failed.store(true, Ordering::Relaxed);
                                bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
                            }
                            Err(e) => {
                                failed.store(true, Ordering::Relaxed);
                                return Err(e.context(format!("{method} {path}")));
                            }
                        }
                        done.fetch_add(1, Ordering::Relaxed);
                        n += step;
                    }
                    Ok(())
                })
            })
            .collect();
        first_error(handles)
    });
    if let Some(e) = error {
        return Err(e.context(format!("asking for codes {first}..={last}")));
    }
    let touched = Touched {
        requests: done.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
    };
    println!(
        "    {method} of {} codes in {:.1?} ({:.0}/s)",
        touched.requests,
        touched.elapsed,
        touched.per_second()
    );
    Ok(touched)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shortener_domain::ShortCode;

    #[test]
    fn codes_are_distinct_valid_and_match_the_scheme() {
        assert_eq!(code(1), "k3779b1");
        let mut seen = vec![false; 1 << 24];
        for n in 1..=MAX_LINKS {
            let c = code(n);
            let v = usize::from_str_radix(&c[1..], 16).unwrap();
            assert!(!seen[v], "code {c} of {n} repeats");
            seen[v] = true;
        }
        for n in [1, 2, CACHED, CACHED + 1, TOTAL, MAX_LINKS] {
            assert!(ShortCode::parse(&code(n)).is_ok(), "{}", code(n));
            assert_eq!(code(n).len(), ShortCode::GENERATED_LEN);
        }
        assert_eq!(
            code_sql("n"),
            "'k' || lpad(to_hex((n * 2654435761) & 16777215), 6, '0')"
        );
    }

    fn opts(seconds: u64, rounds: usize) -> Options {
        Options {
            seconds,
            rounds,
            ..Options::default()
        }
    }

    #[test]
    fn cold_rounds_walk_one_block_of_codes_per_service_no_cached_run_asks_for() {
        // The defaults: 2 + 10 s at 150 000 codes a second, for each of two services,
        // need more than MAX_LINKS: the two blocks share it.
        let plan = Plan::new(opts(10, 3)).unwrap();
        assert_eq!(
            (plan.links, plan.warm, plan.run),
            (MAX_LINKS, 241_666, 1_208_334)
        );
        assert_eq!(plan.cold(), ((100_001, 341_666), (341_667, 1_550_000)));
        // The replica's service walks the block after it, to the last link.
        assert_eq!(
            plan.cold_replica(),
            ((1_550_001, 1_791_666), (1_791_667, 3_000_000))
        );
        assert_eq!(plan.cold_rate(opts(10, 3)), 120_833);
        // More rounds walk the same blocks: the database does not grow with them.
        assert_eq!(Plan::new(opts(10, 9)).unwrap().links, plan.links);
        // Short: two blocks of 2 + 3 s at the full rate.
        let plan = Plan::new(opts(3, 1)).unwrap();
        assert_eq!(
            (plan.links, plan.cold_rate(opts(3, 1))),
            (CACHED + 2 * 750_000, COLD_RATE)
        );
        assert_eq!(plan.cold_replica().1.1, plan.links);
        // Short enough: the database keeps TOTAL links.
        let plan = Plan::new(opts(1, 1)).unwrap();
        assert_eq!((plan.links, plan.cold_rate(opts(1, 1))), (TOTAL, COLD_RATE));
        // Too long: MAX_LINKS, and slower fresh codes.
        let long = opts(30, 3);
        let plan = Plan::new(long).unwrap();
        assert_eq!(plan.links, MAX_LINKS);
        assert!(plan.cold_rate(long) < COLD_RATE);
        for seconds in [1, 2, 3, 5, 10, 30, 600] {
            let plan = Plan::new(opts(seconds, 3)).unwrap();
            let ((warm_first, warm_last), (first, last)) = plan.cold();
            assert_eq!(warm_first, CACHED + 1, "{seconds} s");
            assert!(warm_last > warm_first && last > first);
            assert_eq!(first, warm_last + 1);
            // The replica's block: as long, right after, within the links written.
            let ((r_warm_first, r_warm_last), (r_first, r_last)) = plan.cold_replica();
            assert_eq!(r_warm_first, last + 1, "{seconds} s");
            assert_eq!(r_first, r_warm_last + 1);
            assert_eq!(
                (r_warm_last - r_warm_first, r_last - r_first),
                (warm_last - warm_first, last - first)
            );
            assert!(r_last <= plan.links && plan.links <= MAX_LINKS);
        }
        assert!(Plan::new(opts(100_000_000, 1)).is_err());
    }

    #[test]
    fn the_replica_service_alternates_around_the_primary_only_one() {
        use ColdTurn::{Cold, Lookup, Replica};
        // Without a replica: as before it, the lookup first every other round.
        assert_eq!(cold_order(0, false), [Cold, Lookup]);
        assert_eq!(cold_order(1, false), [Lookup, Cold]);
        assert_eq!(cold_order(0, true), [Cold, Lookup, Replica]);
        assert_eq!(cold_order(1, true), [Replica, Lookup, Cold]);
        assert_eq!(cold_order(2, true), cold_order(0, true));
        for round in 0..6 {
            let order = cold_order(round, true);
            let at = |t| order.iter().position(|o| *o == t).unwrap();
            assert_eq!(at(Lookup) < at(Cold), lookup_first(round), "round {round}");
            assert_eq!(at(Replica) < at(Cold), round % 2 == 1, "round {round}");
        }
    }

    #[test]
    fn routed_reads_are_read_from_the_metrics() {
        let text = "# HELP shortener_db_reads_total Reads routed.\n\
                    # TYPE shortener_db_reads_total counter\n\
                    shortener_db_reads_total{to=\"replica\"} 1200\n\
                    shortener_db_reads_total{kind=\"redirect\",to=\"primary\"} 3\n\
                    shortener_db_reads_total{kind=\"link\", to=\"primary\"} 2\n\
                    shortener_db_reads_total_other{to=\"replica\"} 99\n\
                    shortener_redirects_total{outcome=\"hit\"} 5\n";
        assert_eq!(
            parse_routed(text),
            Some(Routed {
                replica: 1200.0,
                primary: 5.0
            })
        );
        assert_eq!(
            parse_routed("shortener_redirects_total{outcome=\"hit\"} 5\n"),
            None
        );
        assert_eq!(parse_routed(""), None);
        assert_eq!(
            routed_text(parse_routed(text)),
            "1200 to the replica, 5 to the primary"
        );
        assert!(routed_text(None).starts_with("not exported"));
    }

    #[test]
    fn the_metrics_cost_line_is_read() {
        assert_eq!(
            parse_cost("median 198 min 22 max 422"),
            Some([198.0, 22.0, 422.0])
        );
        assert_eq!(parse_cost("median x min 1 max 2"), None);
    }

    #[test]
    fn cached_turns_rotate() {
        let order = |round| (0..5).map(|t| cached_turn(round, t)).collect::<Vec<_>>();
        assert_eq!(order(0), [0, 1, 2, 3, 4]);
        assert_eq!(order(1), [1, 2, 3, 4, 0]);
        assert_eq!(order(2), [2, 3, 4, 0, 1]);
        assert_eq!(order(5), [0, 1, 2, 3, 4]);
        assert!(!lookup_first(0) && lookup_first(1) && !lookup_first(2));
    }

    #[test]
    fn lua_scripts_use_the_same_scramble() {
        for lua in [wrk::RANDOM_LUA, wrk::WALK_LUA, wrk::VISITORS_LUA] {
            assert!(lua.contains(r#"string.format("k%06x", (n * 2654435761) % 16777216)"#));
        }
    }

    #[test]
    fn log_warnings_are_summed_up() {
        let log = "\u{1b}[2m2026-11-23T02:20:25Z\u{1b}[0m \u{1b}[33m WARN\u{1b}[0m \u{1b}[2mshortener_app::clicks\u{1b}[0m\u{1b}[2m:\u{1b}[0m writing clicks failed; keeping them \u{1b}[3merror\u{1b}[0m\u{1b}[2m=\u{1b}[0mtimeout \u{1b}[3mclicks\u{1b}[0m\u{1b}[2m=\u{1b}[0m15
2026-11-23T02:20:26Z  INFO shortener: serving addr=127.0.0.1:1
2026-11-23T02:20:35Z  WARN shortener_app::clicks: writing clicks failed; keeping them error=timeout clicks=35
2026-11-23T02:21:10Z ERROR shortener: clicks not written at shutdown lost=35
";
        assert_eq!(
            summarize_log(log),
            vec![
                "2× WARN writing clicks failed; keeping them (last: error=timeout clicks=35)",
                "1× ERROR clicks not written at shutdown (last: lost=35)",
            ]
        );
        assert!(summarize_log("2026-11-23T02:20:26Z  INFO shortener: serving\n").is_empty());
    }
}

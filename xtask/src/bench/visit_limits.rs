//! What a visit limit costs a redirect (issue #18): a GET of a link with `max_visits`
//! takes one visit from the link's row before it is answered (batched per HTTP worker),
//! while links without a limit are answered from the cache as before. One service,
//! counting clicks on (the default), every rate limit off, its cache warm, measured in
//! the same run:
//!
//! - (a) random links of [`LINKS`] without a limit: the cached path, the baseline;
//! - (b) random links of [`LINKS`] others with `max_visits` = 10^9 (no run spends them):
//!   every GET one row update, batched with the worker's other waiting takes;
//! - (c) one limited link alone ("hot"): every request takes from the same row, the worst
//!   case for its row lock.
//!
//! Each round every load takes a turn of wrk (`random.lua FIRST LAST`, after a warm-up),
//! the order rotated by one each round; CPU time per request of the service and of
//! PostgreSQL as the redirect part measures it (`cpu`), and the transactions that wrote
//! in the database per GET (transaction ids assigned over the run, read from
//! `pg_current_snapshot()`, which unlike the statistics views is current at once): for
//! the limited loads, take statements (each commits, so each waits for its WAL flush)
//! plus the click counter's writes, so its inverse is about the GETs one take answers.
//! Every answer must be a redirect.
//!
//! Then the takes are checked against the answers. wrk does not count the answers still
//! in flight when it stops (at most one a connection), and the service may have taken
//! their visits, so after the wrk runs `visits_used` may exceed the GETs wrk saw answered
//! by at most its connections a run; fewer is a visit lost, more is a visit taken twice.
//! An exact count follows: blocking clients GET each limited link once and the hot link
//! as often, each waiting for its answer, and the visits used must grow by exactly the
//! redirects they got.
//!
//! The links are written with SQL (the redirect part's codes, [`redirects::code`]):
//! unlimited `1..=LINKS`, limited `LINKS + 1..=2 × LINKS`, hot `2 × LINKS + 1`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::WARM_UP;
use super::build::Binaries;
use super::cli::Options;
use super::cluster::Cluster;
use super::cpu::Meter;
use super::http::Http;
use super::redirects::{self, Load, WORKERS, limits_off};
use super::service::Service;
use super::wrk;

/// The database of these runs.
const DB: &str = "bench_8";
/// Links without a limit, and links with one.
pub const LINKS: u64 = 10_000;
/// The limit of every limited link: the largest allowed, so no run spends one.
const MAX_VISITS: u64 = 1_000_000_000;
/// The service's log, `shortener-<LOG>.log`.
const LOG: &str = "visit-limits";

/// The three loads, in the order of [`turn`]'s indexes.
pub const LOADS: [&str; 3] = ["unlimited", "limited", "hot"];

/// Which load ([`LOADS`]' index) takes turn `turn` of round `round`: rotated by one each
/// round.
pub fn turn(round: usize, turn: usize) -> usize {
    (round + turn) % LOADS.len()
}

/// The codes (first and last bench link numbers) of load `which`.
fn range(which: usize) -> (u64, u64) {
    match which {
        0 => (1, LINKS),
        1 => (LINKS + 1, 2 * LINKS),
        _ => (hot(), hot()),
    }
}

/// The bench link number of the hot link.
fn hot() -> u64 {
    2 * LINKS + 1
}

/// Everything this part measured.
pub struct VisitLimitRuns {
    pub wrk_version: String,
    /// One load per round each, in round order.
    pub unlimited: Vec<Load>,
    pub limited: Vec<Load>,
    pub hot: Vec<Load>,
    /// Write transactions per GET of each run, by [`LOADS`]' index, in round order.
    pub writes_per_get: [Vec<f64>; 3],
    pub rounds: usize,
    /// After the wrk runs: the visits the limited links (hot included) have used, the
    /// GETs of them wrk saw answered (warm-ups included), and the wrk runs that asked.
    pub visits_used: u64,
    pub gets_answered: u64,
    pub wrk_runs: u64,
    /// The exact count: GETs answered with a redirect, and visits used meanwhile.
    pub exact_gets: u64,
    pub exact_taken: u64,
    pub exact_took: Duration,
    /// Warnings and errors the service logged, summed up.
    pub log_note: Option<String>,
    pub cpu_ticks_per_second: u64,
}

pub fn measure(
    pg: &Cluster,
    bins: &Binaries,
    work: &Path,
    opts: Options,
    wrk_version: String,
) -> Result<VisitLimitRuns> {
    println!(
        "==> visit limits: GET of {LINKS} links without a limit, {LINKS} with max_visits and \
         one limited link alone, one service, counting on"
    );
    let url = pg.fresh_database(DB)?;
    let script = work.join("random.lua");
    std::fs::write(&script, wrk::RANDOM_LUA)
        .with_context(|| format!("writing {}", script.display()))?;
    let mut settings = vec![
        ("SHORTENER__SERVER__WORKERS", WORKERS.to_string()),
        ("SHORTENER__REDIRECT__COUNT_CLICKS", "true".to_owned()),
    ];
    settings.extend(limits_off());
    let service = Service::start_with(
        &bins.service,
        work,
        &url,
        opts.clients,
        &format!("shortener-{LOG}.log"),
        &settings,
    )?;
    let with_log = |e: anyhow::Error| e.context(format!("service log:\n{}", service.log_tail()));
    fill(pg, &service)?;

    // HEAD fills the cache as GET does and takes no visit.
    redirects::touch(service.addr(), "HEAD", 1, hot(), opts.clients * 2).map_err(with_log)?;
    let used = limited_visits_used(pg)?;
    if used != 0 {
        bail!("HEAD took visits: {used} used after one HEAD of each link");
    }

    let meter = Meter::new(pg.postmaster_pid()?);
    let base = format!("http://{}", service.addr());
    let (secs, warm) = (opts.seconds, WARM_UP.as_secs());
    let mut loads: [Vec<Load>; 3] = Default::default();
    let mut writes_per_get: [Vec<f64>; 3] = Default::default();
    let (mut gets_answered, mut wrk_runs) = (0, 0);
    for round in 0..opts.rounds {
        println!(
            "    round {}/{}: wrk -t{} -c{}, random.lua, {secs} s each after a {warm} s warm-up",
            round + 1,
            opts.rounds,
            wrk::THREADS,
            wrk::CONNECTIONS
        );
        for t in 0..LOADS.len() {
            let which = turn(round, t);
            let (first, last) = range(which);
            let args = vec![first.to_string(), last.to_string()];
            let what = format!("{}, round {}", LOADS[which], round + 1);
            let warm_run = wrk::run(&base, &script, &args, warm)?;
            warm_run
                .check(&format!("{what}, warm-up"))
                .map_err(with_log)?;
            let xids = next_xid(pg)?;
            let before = meter.read(Some(service.pid()), true)?;
            let run = wrk::run(&base, &script, &args, secs)?;
            let cpu = meter.since(before, run.requests)?;
            let writes = next_xid(pg)?.saturating_sub(xids);
            run.check(&what).map_err(with_log)?;
            if which > 0 {
                gets_answered += warm_run.requests + run.requests;
                wrk_runs += 2;
            }
            let load = Load::of(&run, cpu);
            redirects::print_load(LOADS[which], &load);
            let per_get = writes as f64 / run.requests.max(1) as f64;
            println!("        {writes} write transactions, {per_get:.3} a GET");
            loads[which].push(load);
            writes_per_get[which].push(per_get);
        }
    }

    // A take whose client wrk had already left may still be committing.
    std::thread::sleep(Duration::from_secs(1));
    let visits_used = limited_visits_used(pg)?;
    println!(
        "    {visits_used} visits used for {gets_answered} GETs wrk saw answered ({wrk_runs} runs)"
    );
    if let Some(mismatch) = takes_mismatch(visits_used, gets_answered, wrk_runs) {
        bail!(
            "visit limits: {mismatch}\nservice log:\n{}",
            service.log_tail()
        );
    }

    let started = Instant::now();
    let hot_before = hot_used(pg)?;
    let gets = exact_gets(service.addr(), opts.clients * 2).map_err(with_log)?;
    let exact_took = started.elapsed();
    // Never fewer (nothing gives visits back): a drop shows as a mismatch below.
    let exact_taken = limited_visits_used(pg)?.saturating_sub(visits_used);
    let hot_taken = hot_used(pg)?.saturating_sub(hot_before);
    println!(
        "    exact: {gets} GETs answered 302 by blocking clients ({} of the hot link) in \
         {exact_took:.1?}; {exact_taken} visits used ({hot_taken} of the hot link): {}",
        gets / 2,
        if exact_taken == gets && hot_taken == gets / 2 {
            "CONSISTENT"
        } else {
            "INCONSISTENT"
        }
    );
    if exact_taken != gets || hot_taken != gets / 2 {
        bail!(
            "visit limits: {gets} redirects ({} of the hot link) used {exact_taken} visits \
             ({hot_taken} of the hot link)\nservice log:\n{}",
            gets / 2,
            service.log_tail()
        );
    }
    drop(service);
    let log_note = redirects::log_note(work, LOG, "visit limits")?;
    let [unlimited, limited, hot] = loads;
    Ok(VisitLimitRuns {
        wrk_version,
        unlimited,
        limited,
        hot,
        writes_per_get,
        rounds: opts.rounds,
        visits_used,
        gets_answered,
        wrk_runs,
        exact_gets: gets,
        exact_taken,
        exact_took,
        log_note,
        cpu_ticks_per_second: meter.ticks_per_second(),
    })
}

/// The links, written with SQL for one account made through the admin API; checks that
/// their codes are the ones the bench computes and how many are limited.
fn fill(pg: &Cluster, service: &Service) -> Result<()> {
    let started = Instant::now();
    let account = service.create_account("bench visit limits")?;
    if !account.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        bail!("unexpected account id {account:?}");
    }
    pg.psql(
        DB,
        &format!(
            "INSERT INTO shortener.links (id, code, account_id, target, created_at, max_visits) \
             SELECT gen_random_uuid(), {}, '{account}', 'https://example.com/' || n, now(), \
                    CASE WHEN n > {LINKS} THEN {MAX_VISITS} END \
             FROM generate_series(1::bigint, {}) AS n",
            redirects::code_sql("n"),
            hot()
        ),
    )?;
    pg.psql(DB, "VACUUM ANALYZE shortener.links")?;
    let probes = [(1, false), (LINKS, false), (LINKS + 1, true), (hot(), true)];
    let list = probes
        .iter()
        .map(|(n, limited)| format!("('{}', {limited})", redirects::code(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let found = pg.psql(
        DB,
        &format!(
            "SELECT count(*) FROM shortener.links l JOIN (VALUES {list}) AS p (code, limited) \
             ON l.code = p.code AND (l.max_visits IS NOT NULL) = p.limited"
        ),
    )?;
    let limited = pg.psql(
        DB,
        "SELECT count(*) FROM shortener.links WHERE max_visits IS NOT NULL",
    )?;
    if found != probes.len().to_string() || limited != (LINKS + 1).to_string() {
        bail!(
            "the links written with SQL are not the bench's: {found} of {} probes found, \
             {limited} limited",
            probes.len()
        );
    }
    println!(
        "    {} links ({} limited) in {:.1?}",
        hot(),
        LINKS + 1,
        started.elapsed()
    );
    Ok(())
}

/// Visits used by every limited link (the hot one included).
fn limited_visits_used(pg: &Cluster) -> Result<u64> {
    let out = pg.psql(
        DB,
        "SELECT coalesce(sum(visits_used), 0) FROM shortener.links WHERE max_visits IS NOT NULL",
    )?;
    out.parse()
        .with_context(|| format!("unexpected visits used {out:?}"))
}

/// The next transaction id the cluster will assign: the transactions that wrote since
/// an earlier reading are the difference (a read-only query, this one included, takes
/// none).
fn next_xid(pg: &Cluster) -> Result<u64> {
    let out = pg.psql(DB, "SELECT pg_snapshot_xmax(pg_current_snapshot())")?;
    out.parse()
        .with_context(|| format!("unexpected transaction id {out:?}"))
}

/// Visits used by the hot link.
fn hot_used(pg: &Cluster) -> Result<u64> {
    let out = pg.psql(
        DB,
        &format!(
            "SELECT visits_used FROM shortener.links WHERE code = '{}'",
            redirects::code(hot())
        ),
    )?;
    out.parse()
        .with_context(|| format!("unexpected visits used {out:?}"))
}

/// Why the visits used after the wrk runs do not match the GETs answered, if they do not:
/// each of the `runs` may have left one answer a connection unseen (its visit taken).
pub fn takes_mismatch(used: u64, answered: u64, runs: u64) -> Option<String> {
    let in_flight = runs * wrk::CONNECTIONS as u64;
    if used < answered {
        Some(format!(
            "{} visits lost: {used} used for {answered} redirects answered",
            answered - used
        ))
    } else if used > answered + in_flight {
        Some(format!(
            "{} visits taken twice or more: {used} used for {answered} redirects answered \
             (more than the {in_flight} answers wrk may not have seen)",
            used - answered
        ))
    } else {
        None
    }
}

/// From `threads` blocking clients: a GET of each limited link (thread `t` takes every
/// `threads`-th from the first + `t`), each followed by a GET of the hot link, each
/// waiting for its answer, which must be a 302. Returns the GETs answered.
fn exact_gets(addr: SocketAddr, threads: usize) -> Result<u64> {
    let done = AtomicU64::new(0);
    let (first, last) = range(1);
    let hot_path = format!("/{}", redirects::code(hot()));
    let step = threads as u64;
    let error = std::thread::scope(|s| {
        let handles: Vec<_> = (0..step)
            .map(|t| {
                let (done, hot_path) = (&done, &hot_path);
                s.spawn(move || -> Result<()> {
                    let mut http = Http::new(addr);
                    let mut n = first + t;
                    while n <= last {
                        for path in [format!("/{}", redirects::code(n)), hot_path.clone()] {
                            let (status, body) = http
                                .request("GET", &path, None, None)
                                .with_context(|| format!("GET {path}"))?;
                            if status != 302 {
                                bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
                            }
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        n += step;
                    }
                    Ok(())
                })
            })
            .collect();
        redirects::first_error(handles)
    });
    if let Some(e) = error {
        return Err(e.context("the exact count of visits"));
    }
    Ok(done.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turns_rotate_and_ranges_do_not_overlap() {
        let order = |round| (0..3).map(|t| turn(round, t)).collect::<Vec<_>>();
        assert_eq!(order(0), [0, 1, 2]);
        assert_eq!(order(1), [1, 2, 0]);
        assert_eq!(order(2), [2, 0, 1]);
        assert_eq!(order(3), [0, 1, 2]);
        assert_eq!(range(0), (1, LINKS));
        assert_eq!(range(1), (LINKS + 1, 2 * LINKS));
        assert_eq!(range(2), (2 * LINKS + 1, 2 * LINKS + 1));
    }

    #[test]
    fn takes_are_checked_against_answers() {
        assert_eq!(takes_mismatch(1000, 1000, 2), None);
        // Up to one unseen answer a connection a run.
        assert_eq!(takes_mismatch(1256, 1000, 2), None);
        assert!(
            takes_mismatch(1257, 1000, 2)
                .unwrap()
                .starts_with("257 visits taken twice")
        );
        assert!(
            takes_mismatch(999, 1000, 2)
                .unwrap()
                .starts_with("1 visits lost")
        );
    }
}

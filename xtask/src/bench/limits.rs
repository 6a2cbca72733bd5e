//! What rate limiting costs and saves (issue #14), each against the same service with
//! every policy off, measured in the same run:
//!
//! - an API read, `GET /api/v1/links/{code}` with one account key, limits on (the key's
//!   `requests` budget counted through the shared ledger; the plan's rate set far above
//!   what the machine can do, so every request is counted and none refused) and off, in
//!   rounds with the order alternating;
//! - a flood of well-formed codes that do not exist, from one address: the transactions
//!   PostgreSQL ran meanwhile (`pg_stat_database.xact_commit + xact_rollback`), limits on
//!   (the default `unknown-codes` of 120 a minute) and off, with the answers by status.
//!
//! (Cached redirects with limits on and off run with the other cached redirects, in
//! `redirects`.) PostgreSQL publishes a backend's statistics within about 10 s of its last
//! transaction, so each flood's count is read after 11 s of quiet, before and after.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::WARM_UP;
use super::build::Binaries;
use super::cli::Options;
use super::cluster::Cluster;
use super::redirects::{WORKERS, limits_off};
use super::service::Service;
use super::wrk;

/// The database of these runs.
const DB: &str = "bench_5";
/// Quiet before a statistics snapshot: PostgreSQL 15 flushes a backend's counters at most
/// every 10 s while it is busy, and when it has been idle that long.
const STATS_SETTLE: Duration = Duration::from_secs(11);

/// One wrk run of the API read.
#[derive(Debug, Clone, Copy)]
pub struct Read {
    pub per_second: f64,
    pub p99_ms: f64,
}

/// A flood of unknown codes from one address.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flood {
    pub requests: u64,
    pub not_found: u64,
    pub limited: u64,
    /// Transactions PostgreSQL committed or rolled back in the database meanwhile (the
    /// service's background work included: listener heartbeats, sweeps).
    pub transactions: u64,
}

/// Everything this module measured.
pub struct LimitRuns {
    /// API reads, one per round each.
    pub reads_on: Vec<Read>,
    pub reads_off: Vec<Read>,
    pub flood_on: Flood,
    pub flood_off: Flood,
}

pub fn measure(pg: &Cluster, bins: &Binaries, work: &Path, opts: Options) -> Result<LimitRuns> {
    println!("==> rate limits: the API read and an unknown-code flood, limits on and off");
    let url = pg.fresh_database(DB)?;
    let scripts = (work.join("api_get.lua"), work.join("unknown.lua"));
    std::fs::write(&scripts.0, wrk::API_GET_LUA)
        .with_context(|| format!("writing {}", scripts.0.display()))?;
    std::fs::write(&scripts.1, wrk::UNKNOWN_LUA)
        .with_context(|| format!("writing {}", scripts.1.display()))?;
    let start = |name: &str, settings: Vec<(&str, String)>| {
        let mut all = vec![
            ("SHORTENER__SERVER__WORKERS", WORKERS.to_string()),
            ("SHORTENER__REDIRECT__COUNT_CLICKS", "false".to_owned()),
        ];
        all.extend(settings);
        Service::start_with(
            &bins.service,
            work,
            &url,
            opts.clients,
            &format!("shortener-{name}.log"),
            &all,
        )
    };
    // Counted, never refused: the business plan's rate far above the machine's.
    let on = start(
        "limits-on",
        vec![(
            "SHORTENER__PLANS__BUSINESS__REQUESTS_PER_MINUTE",
            "1000000000".to_owned(),
        )],
    )?;
    let off = start("limits-off", limits_off())?;
    // Each start installs its own bootstrap key and retires the one before: the admin
    // calls go to the last one started. The account, key and link are the database's.
    let key = off.account_key(0)?;
    let code = off.create_link(&key, "https://example.com/read")?;
    let args = vec![format!("/api/v1/links/{code}"), key];

    let (mut reads_on, mut reads_off) = (Vec::new(), Vec::new());
    for round in 0..opts.rounds {
        println!(
            "    round {}/{}: GET /api/v1/links/{{code}}, {} s each after a {} s warm-up",
            round + 1,
            opts.rounds,
            opts.seconds,
            WARM_UP.as_secs()
        );
        let order = if round % 2 == 0 {
            [(&on, true), (&off, false)]
        } else {
            [(&off, false), (&on, true)]
        };
        for (service, limited) in order {
            let target = format!("http://{}", service.addr());
            wrk::run(&target, &scripts.0, &args, WARM_UP.as_secs())?.check("API read, warm-up")?;
            let run = wrk::run(&target, &scripts.0, &args, opts.seconds)?;
            run.check("API read")?;
            let read = Read {
                per_second: run.requests_per_sec,
                p99_ms: run.p99_ms,
            };
            println!(
                "      limits {}: {:.0}/s, p99 {:.2} ms",
                if limited { "on" } else { "off" },
                read.per_second,
                read.p99_ms
            );
            if limited {
                reads_on.push(read);
            } else {
                reads_off.push(read);
            }
        }
    }

    let flood_on = flood(pg, &on, &scripts.1, opts, "on")?;
    let flood_off = flood(pg, &off, &scripts.1, opts, "off")?;
    Ok(LimitRuns {
        reads_on,
        reads_off,
        flood_on,
        flood_off,
    })
}

/// `opts.seconds` of unknown codes from this machine against `service`, and the
/// transactions the database ran meanwhile.
fn flood(
    pg: &Cluster,
    service: &Service,
    script: &Path,
    opts: Options,
    which: &str,
) -> Result<Flood> {
    println!(
        "    unknown codes from one address, limits {which}: {} s, after {} s of quiet",
        opts.seconds,
        STATS_SETTLE.as_secs()
    );
    std::thread::sleep(STATS_SETTLE);
    let before = transactions(pg)?;
    let run = wrk::run(
        &format!("http://{}", service.addr()),
        script,
        &[],
        opts.seconds,
    )?;
    std::thread::sleep(STATS_SETTLE);
    let after = transactions(pg)?;
    let count = |label: &str| -> Result<u64> {
        run.output
            .lines()
            .find_map(|l| l.strip_prefix(&format!("status {label}: ")))
            .and_then(|n| n.trim().parse().ok())
            .with_context(|| format!("no `status {label}` in wrk's output:\n{}", run.output))
    };
    let found = Flood {
        requests: run.requests,
        not_found: count("404")?,
        limited: count("429")?,
        transactions: after.saturating_sub(before),
    };
    if count("3xx")? + count("other")? > 0 {
        bail!(
            "the flood got answers other than 404 and 429:\n{}",
            run.output
        );
    }
    println!(
        "      {} requests: {} × 404, {} × 429; {} database transactions",
        found.requests, found.not_found, found.limited, found.transactions
    );
    Ok(found)
}

/// Transactions of the bench database so far, as PostgreSQL's statistics have them.
fn transactions(pg: &Cluster) -> Result<u64> {
    let out = pg.psql(
        DB,
        &format!("SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = '{DB}'"),
    )?;
    out.parse()
        .with_context(|| format!("unexpected transaction count {out:?}"))
}

//! `cargo xtask bench`: what the service does per second, and what each request costs in
//! CPU, next to what the same machine does without it, measured in one run (issues #5
//! and #12).
//!
//! One run, as [`main`] reads: build `shortener` and the bare server
//! (`xtask/bare-redirect`) in release mode; start a private, durable PostgreSQL under
//! `<target>/bench/pg` (the service's own provisioning, `shortener_pg::local`, so the
//! server is configured exactly like the one `shortener serve` provisions: fsync on);
//! then, each on a fresh database of it:
//!
//! - link creation (`creates`): pgbench's single-INSERT baseline, and `POST
//!   /api/v1/links` and `POST /api/v1/links/bulk` from N keep-alive clients, with the
//!   CPU time per link created of the service and of PostgreSQL (`cpu`);
//! - redirects (`redirects`): a bare actix-web server answering 302 from a map, cached
//!   redirects with click counting on and off, cold-cache redirects (their lookups on
//!   the primary, and on a streaming replica of it: issue #20), pgbench's
//!   primary-key lookup, and the service's resident memory with 1 000 000 links cached,
//!   with wrk (`wrk`, installed from Debian when missing) as the HTTP load generator.
//!   The comparisons run as `--rounds` interleaved rounds, and each ratio is taken within
//!   a round: on a shared machine one run against the next moves by ±20 %. Each measured
//!   run also yields the CPU time per request of the server and of PostgreSQL (`cpu`):
//!   with wrk on the same cores, requests/s saturate on the load generator and hide
//!   what the server itself costs.
//!
//! - click reads (`reads`): a page of 100 links read over the click journal, empty and
//!   at the sizes the click counter folds at;
//! - rate limits (`limits`): an API read with limits on and off, and what a flood of
//!   unknown codes costs PostgreSQL with them on and off;
//! - stats (`stats`): a link's stats over a year of visits from 100 000 referring hosts,
//!   before its days are capped and after;
//! - search (`search`): an account's list filtered by `q` and `tag` over 1 000 000 links,
//!   next to the unfiltered list;
//! - visit limits (`visit-limits`): GETs of links with `max_visits` (each takes a visit
//!   from the link's row), of one such link alone, and of links without a limit (cached),
//!   in rounds on one service, and the visits used checked against the GETs answered.
//!
//! With `--baseline REV`, the `shortener` of revision REV is built too (`build`) and
//! measured with the redirects against the service now: side by side, and under callgrind.
//!
//! Then print the table, with the ratios and the targets (`report`), write it to
//! `bench/results.md` (a full run only), stop the services and (if this run started it)
//! PostgreSQL.
//!
//! Everything runs on the one machine, clients included, so the figures are only
//! comparable with each other, which is the point of measuring the baselines in the same
//! run.
//!
//! The modules, one job each: `cli` (options, `--help`), `build` (the release build),
//! `cluster` (the private PostgreSQL and its tools), `pgbench`, `process` (child
//! servers: start, wait, stop), `http` (a small HTTP/1.1 client), `service` (the service
//! and the bare server, the admin API), `creates`, `redirects`, `reads`, `limits`, `stats`, `search`, `visit_limits`, `wrk`, `cpu` (`/proc`
//! sampling) and `report`.

mod build;
mod callgrind;
mod cli;
mod cluster;
mod cpu;
mod creates;
pub mod http;
mod limits;
mod pgbench;
pub mod process;
mod reads;
mod redirects;
mod report;
mod search;
mod service;
mod stats;
mod visit_limits;
mod wrk;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use build::{Baseline, Binaries};
use cli::{Only, Options};
use cluster::Cluster;
use report::Report;

/// Before every measured run: servers and PostgreSQL settle, and the previous turn's
/// leftovers (clicks still being written) finish outside the measurement.
const WARM_UP: Duration = Duration::from_secs(2);

/// Runs `cargo xtask bench <args>`.
pub fn main(args: &[String]) -> Result<()> {
    let Some(opts) = cli::parse(args)? else {
        println!("{}", cli::USAGE);
        return Ok(());
    };
    let started = Instant::now();
    // What is measured: the tree as it is now, before results.md changes.
    let about = report::About::gather(args);
    let wrk = if opts.only.redirects() || opts.only.limits() || opts.only.visit_limits() {
        Some(wrk::ensure_installed()?)
    } else {
        None
    };
    let bins = build::build(opts.only.redirects())?;
    let work = bins.target_dir()?.join("bench");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let baseline = match opts.baseline {
        Some(rev) => Some(build::baseline(rev, bins.target_dir()?)?),
        None => None,
    };

    println!("==> PostgreSQL under {}", work.join("pg").display());
    let mut pg = Cluster::start(&work.join("pg"))?;
    let result = measure(&pg, &bins, baseline.as_ref(), &work, opts, wrk);
    let stopped = pg.stop();
    let report = result?;
    stopped?;

    print!("{}", report.render_text(&about, opts));
    if opts.only == Only::All {
        let path = crate::root().join("bench").join("results.md");
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, report.render_markdown(&about, opts))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    } else {
        println!("bench/results.md left alone (a partial run: --only)");
    }
    println!("bench: done in {:.0?}", started.elapsed());
    Ok(())
}

/// Both halves (or the one `--only` asks for) on the running cluster.
fn measure(
    pg: &Cluster,
    bins: &Binaries,
    baseline: Option<&Baseline>,
    work: &Path,
    opts: Options,
    wrk: Option<String>,
) -> Result<Report> {
    let server = pg.describe()?;
    let creation = if opts.only.creates() {
        Some(creates::measure(pg, &bins.service, work, opts)?)
    } else {
        None
    };
    let redirects = match (&bins.bare, &wrk) {
        (Some(bare), Some(wrk)) if opts.only.redirects() => Some(redirects::measure(
            pg,
            bins,
            bare,
            baseline,
            work,
            opts,
            wrk.clone(),
        )?),
        _ => None,
    };
    let reads = if opts.only.reads() {
        Some(reads::measure(pg, bins, work)?)
    } else {
        None
    };
    let limits = if opts.only.limits() {
        Some(limits::measure(pg, bins, work, opts)?)
    } else {
        None
    };
    let stats = if opts.only.stats() {
        Some(stats::measure(pg, bins, work)?)
    } else {
        None
    };
    let search = if opts.only.search() {
        Some(search::measure(pg, bins, work)?)
    } else {
        None
    };
    let visit_limits = match wrk {
        Some(wrk) if opts.only.visit_limits() => {
            Some(visit_limits::measure(pg, bins, work, opts, wrk)?)
        }
        _ => None,
    };
    Ok(Report {
        server,
        creation,
        redirects,
        reads,
        limits,
        stats,
        search,
        visit_limits,
    })
}

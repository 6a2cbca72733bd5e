//! The bench's report: the same tables printed as aligned text and written as Markdown
//! to `bench/results.md`, with when, where and what was measured: requests/s, latency
//! and CPU time per request, medians and ranges over the rounds, ratios against targets.

use std::fmt::Write as _;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use super::WARM_UP;
use super::cli::Options;
use super::cluster::Server;
use super::creates::{self, Creation};
use super::limits::{LimitRuns, Read};
use super::reads::ClickReads;
use super::redirects::{self, Load, mb};
use super::search::SearchReads;
use super::stats::StatsReads;
use super::visit_limits::{self, VisitLimitRuns};
use super::wrk;

/// What one run measured.
pub struct Report {
    pub server: Server,
    pub creation: Option<Creation>,
    pub redirects: Option<redirects::Redirects>,
    pub reads: Option<ClickReads>,
    pub limits: Option<LimitRuns>,
    pub stats: Option<StatsReads>,
    pub search: Option<SearchReads>,
    pub visit_limits: Option<VisitLimitRuns>,
}

/// When, on what and from which tree the bench ran.
pub struct About {
    /// `YYYY-MM-DD HH:MM UTC`.
    date: String,
    machine: String,
    commit: String,
    command: String,
}

impl About {
    /// Reads the clock, `/proc` and git; anything unreadable is said to be unknown.
    pub fn gather(args: &[String]) -> About {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut command = "cargo xtask bench".to_owned();
        for arg in args {
            command.push(' ');
            command.push_str(arg);
        }
        About {
            date: utc(secs),
            machine: machine(),
            commit: commit(),
            command,
        }
    }
}

/// `YYYY-MM-DD HH:MM UTC` of a Unix time (proleptic Gregorian, days from civil).
fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let minutes = (secs % 86_400) / 60;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        minutes / 60,
        minutes % 60
    )
}

/// `2 cores (Intel(R) Xeon(R) ...), 23.5 GiB RAM, Linux 6.1.0`.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count()
        .max(std::thread::available_parallelism().map_or(0, usize::from));
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map_or_else(
            || "CPU model unknown".to_owned(),
            |(_, m)| m.trim().to_owned(),
        );
    let ram = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .map_or_else(
            || "RAM unknown".to_owned(),
            |kib| format!("{:.1} GiB RAM", kib / 1024.0 / 1024.0),
        );
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or_else(|_| "unknown".to_owned(), |k| k.trim().to_owned());
    format!("{cores} cores ({model}), {ram}, Linux {kernel}")
}

/// `abc1234`, plus ` + uncommitted changes` when the tree differs from it (other than
/// in `bench/results.md`, which every run rewrites).
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(crate::root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown (not a git checkout?)".to_owned();
    };
    let dirty = git(&["status", "--porcelain"]).is_some_and(|s| {
        s.lines()
            .any(|l| !l.trim_end().ends_with("bench/results.md") && !l.trim().is_empty())
    });
    format!(
        "{}{}",
        head.trim(),
        if dirty { " + uncommitted changes" } else { "" }
    )
}

/// Rows of cells; the first column is text, the others figures.
struct Table {
    head: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(head: &[&str]) -> Table {
        Table {
            head: head.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn text(&self) -> String {
        let columns = self.head.len();
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                std::iter::once(&self.head)
                    .chain(&self.rows)
                    .filter_map(|r| r.get(c))
                    .map(|s| s.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut s = String::new();
        for row in std::iter::once(&self.head).chain(&self.rows) {
            let mut line = String::new();
            for (c, width) in widths.iter().enumerate() {
                let cell = row.get(c).map_or("", String::as_str);
                if c == 0 {
                    let _ = write!(line, "{cell:<width$}");
                } else {
                    let _ = write!(line, "  {cell:>width$}");
                }
            }
            let _ = writeln!(s, "{}", line.trim_end());
        }
        s
    }

    fn markdown(&self) -> String {
        let mut s = String::new();
        let line = |cells: &[String]| format!("| {} |", cells.join(" | "));
        let _ = writeln!(s, "{}", line(&self.head));
        let rule: Vec<String> = (0..self.head.len())
            .map(|c| if c == 0 { "---" } else { "---:" }.to_owned())
            .collect();
        let _ = writeln!(s, "{}", line(&rule));
        for row in &self.rows {
            let _ = writeln!(s, "{}", line(row));
        }
        s
    }
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} ms"))
}

fn per_second(v: f64) -> String {
    format!("{v:.0}")
}

fn two(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// The median of a set of figures (of the middle two when their number is even), and
/// the lowest and the highest.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    /// `None` when there is no figure.
    fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut v: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        v.sort_by(f64::total_cmp);
        let (&min, &max) = (v.first()?, v.last()?);
        let mid = v.len() / 2;
        let median = if v.len().is_multiple_of(2) {
            (v[mid - 1] + v[mid]) / 2.0
        } else {
            v[mid]
        };
        Some(Spread { median, min, max })
    }

    /// `lowest–highest` of `shown` figures.
    fn range(self, shown: impl Fn(f64) -> String) -> String {
        format!("{}–{}", shown(self.min), shown(self.max))
    }
}

/// One figure of a configuration over the rounds.
fn over_rounds(loads: &[Load], figure: impl Fn(&Load) -> Option<f64>) -> Option<Spread> {
    Spread::of(loads.iter().filter_map(figure))
}

/// `a / b` of one figure within each round (the runs of the same index), over the
/// rounds: both sides of each ratio saw the same state of the machine.
fn paired(a: &[Load], b: &[Load], figure: impl Fn(&Load) -> Option<f64>) -> Option<Spread> {
    Spread::of(
        a.iter()
            .zip(b)
            .filter_map(|(a, b)| ratio(figure(a)?, figure(b)?)),
    )
}

fn rps(l: &Load) -> Option<f64> {
    Some(l.per_second)
}

fn p99(l: &Load) -> Option<f64> {
    l.p99_ms
}

fn cpu_server(l: &Load) -> Option<f64> {
    l.cpu.server_us
}

fn cpu_pg(l: &Load) -> Option<f64> {
    l.cpu.pg_us
}

/// CPU time per request of everything measured: server plus PostgreSQL.
fn cpu_total(l: &Load) -> Option<f64> {
    l.cpu.total_us()
}

/// `value` against a target: at least (`at_least`) or at most `target`.
fn verdict(value: Option<f64>, target: f64, at_least: bool) -> &'static str {
    match value {
        Some(v) if (at_least && v >= target) || (!at_least && v <= target) => "PASS",
        Some(_) => "MISS",
        None => "n/a",
    }
}

/// Whether the clicks written match the GETs answered. wrk does not count the answers
/// still in flight when it stops (at most its connections, for each of its `runs`), so a
/// few more clicks than answers seen is right; fewer, or many more, is not.
fn clicks_verdict(counted: u64, answered: u64, runs: u64) -> String {
    let in_flight = runs * wrk::CONNECTIONS as u64;
    if counted < answered {
        format!("MISMATCH, {} clicks lost", thousands(answered - counted))
    } else if counted > answered + in_flight {
        format!(
            "MISMATCH, {} clicks counted twice or more (more than the {in_flight} answers \
             wrk may not have seen)",
            thousands(counted - answered)
        )
    } else {
        "consistent".to_owned()
    }
}

/// Resident memory target of issue #5 for 1 000 000 cached links.
const RSS_TARGET: u64 = 400_000_000;
/// The redirect target of issue #12: the CPU time per cached redirect (counting on) of
/// the service and PostgreSQL together, against the bare server's.
const CPU_TARGET: f64 = 1.10;
/// Single creates a second, 16 clients on one account (issue #15).
const SINGLE_CREATES_TARGET: f64 = 2_500.0;
/// Issue #15: links a second through the bulk create, at least.
const BULK_LINKS_TARGET: f64 = 10_000.0;
/// Issue #15: the bulk create's links a second against the single create's, at least.
const BULK_RATIO_TARGET: f64 = 8.0;

impl Report {
    /// How the run was set up; `local` adds what only matters on this machine (paths).
    fn settings(&self, opts: Options, local: bool) -> Vec<String> {
        let mut lines = vec![format!(
            "PostgreSQL {} (fsync={}, synchronous_commit={}){}{}",
            self.server.version,
            self.server.fsync,
            self.server.synchronous_commit,
            if self.server.reused {
                ", already running"
            } else {
                ""
            },
            if local {
                format!(", data in {}", self.server.data_dir.display())
            } else {
                String::new()
            }
        )];
        if let Some(r) = &self.redirects {
            lines.push(format!(
                "redirects: {}, `wrk -t{} -c{} --latency`; the service and the bare server on {} \
                 HTTP workers each; the service's pool {} connections",
                r.wrk_version,
                wrk::THREADS,
                wrk::CONNECTIONS,
                redirects::WORKERS,
                opts.clients
            ));
            lines.push(format!(
                "redirects in {} rounds: each round the bare server and the three cached \
                 services (counting on, off, and off with every rate limit off; started once, \
                 running side by side) take a turn each, in an order rotated \
                 every round; then a freshly started cold service and the pgbench lookup, the \
                 lookup first every other round{}. Figures: medians over the rounds; ratios: \
                 medians of the ratios within each round; ranges: lowest round to highest",
                r.plan.rounds,
                if r.cold_replica.cold.is_empty() {
                    ""
                } else {
                    "; and a freshly started cold service configured with a streaming replica \
                     of the cluster (SHORTENER__DATABASE__REPLICA_URLS; #20), after those two \
                     in odd rounds (1, 3, ...) and before them in even ones; the replica, \
                     provisioned after the cached rounds and write cycles, streams from the \
                     primary during every cold round (the primary-only service's too)"
                }
            ));
            lines.push(format!(
                "{} links in the database: each cold round's fresh service walks the same {} codes{}; pgbench \
                 looks up random links of all {}",
                thousands(r.plan.links),
                thousands(r.plan.warm + r.plan.run),
                if r.cold_replica.cold.is_empty() {
                    String::new()
                } else {
                    format!(
                        ", the one with the replica {} codes of its own",
                        thousands(r.plan.warm + r.plan.run)
                    )
                },
                thousands(r.plan.links)
            ));
            lines.push(format!(
                "CPU time per request: utime + stime from /proc (clock ticks of 1/{} s), read \
                 just before and after each measured run (not its warm-up), over the requests \
                 wrk completed (pgbench: transactions); server: the bare server's or the \
                 service's process, all threads; PostgreSQL: the postmaster, its children and \
                 its exited children (cutime + cstime); the replica's, the same of its own \
                 postmaster; wrk and pgbench's client side are not counted",
                r.cpu_ticks_per_second
            ));
        }
        if let Some(v) = &self.visit_limits {
            lines.push(format!(
                "visit limits: {}, `wrk -t{} -c{} --latency`, random.lua; one service, {} HTTP \
                 workers, pool {} connections, counting clicks on, every rate limit off; {} \
                 rounds, the three loads taking turns in an order rotated every round; CPU per \
                 request as for the redirects (clock ticks of 1/{} s)",
                v.wrk_version,
                wrk::THREADS,
                wrk::CONNECTIONS,
                redirects::WORKERS,
                opts.clients,
                v.rounds,
                v.cpu_ticks_per_second
            ));
        }
        if let Some(c) = &self.creation {
            lines.push(format!(
                "creation: {} clients, {} account(s); CPU time per link created: utime + \
                 stime from /proc (clock ticks of 1/{} s), read just before and after the \
                 measured window of the service's creates (not its warm-up), over the links \
                 created in it (bulk: links, not requests); service: its process, all \
                 threads; PostgreSQL: the postmaster, its children and its exited children \
                 (cutime + cstime); the bench's HTTP clients are not counted",
                opts.clients, opts.accounts, c.cpu_ticks_per_second
            ));
        }
        lines.push(format!(
            "{} s per measurement after a {} s warm-up; clients, servers and PostgreSQL share \
             the machine's cores",
            opts.seconds,
            WARM_UP.as_secs()
        ));
        lines
    }

    /// (title, table) in the order they are shown, and notes to add below them.
    fn tables(&self, opts: Options) -> (Vec<(&'static str, Table)>, Vec<String>) {
        let mut tables = Vec::new();
        let mut notes = Vec::new();
        let clients = opts.clients;

        if let Some(r) = &self.redirects {
            let mut t = Table::new(&["measurement", "requests/s", "range", "p50", "p99"]);
            let mut load = |name: String, l: &[Load]| {
                let median =
                    |figure: fn(&Load) -> Option<f64>| over_rounds(l, figure).map(|s| s.median);
                t.row(vec![
                    name,
                    median(rps).map_or_else(|| "n/a".to_owned(), per_second),
                    over_rounds(l, rps).map_or_else(String::new, |s| s.range(per_second)),
                    ms(median(|l| l.p50_ms)),
                    ms(median(p99)),
                ]);
            };
            load(
                format!(
                    "bare actix-web: 302 from a HashMap ({} links, random codes)",
                    thousands(redirects::CACHED)
                ),
                &r.bare,
            );
            load(
                format!(
                    "service: cached, counting on ({} links, random codes)",
                    thousands(redirects::CACHED)
                ),
                &r.cached_on,
            );
            load("service: cached, counting off".to_owned(), &r.cached_off);
            load(
                "service: cached, counting off, every rate limit off".to_owned(),
                &r.cached_unlimited,
            );
            load(
                "service: cached, counting off, metrics off".to_owned(),
                &r.cached_unmetered,
            );
            load(
                format!(
                    "service: cold cache, first touch of each code{}",
                    if r.cold_wrapped {
                        " (RAN OUT: includes repeats)"
                    } else {
                        ""
                    }
                ),
                &r.cold,
            );
            let rr = &r.cold_replica;
            if !rr.cold.is_empty() {
                load(
                    format!(
                        "service: cold cache, lookups on a replica (#20){}{}",
                        if rr.refused { REFUSED } else { "" },
                        if rr.wrapped {
                            " (RAN OUT: includes repeats)"
                        } else {
                            ""
                        }
                    ),
                    &rr.cold,
                );
            }
            load(
                format!(
                    "pgbench -M prepared: lookup by code (unique index), {clients} clients = pool size"
                ),
                &r.lookup,
            );
            tables.push(("Redirects", t));
            if let Some(b) = &r.baseline {
                tables.push((
                    "Redirects against the baseline (--baseline): cached, counting on, analytics off, side by side",
                    baseline_table(b),
                ));
            }
            tables.push(("Redirects, CPU time per request (µs)", cpu_table(r)));
            if !r.cold_replica.cold.is_empty() {
                tables.push((
                    "Cold redirects with lookups on a replica (#20): CPU µs per request, medians over the rounds (range)",
                    replica_table(r),
                ));
            }
            tables.push(("Redirect rounds, requests/s", rounds_table(r)));
            tables.push((
                "Redirect rounds, CPU µs per request (server + PostgreSQL = total)",
                rounds_cpu_table(r),
            ));
            notes.push(format!(
                "clicks: the counting-on cached service wrote {} clicks for {} GETs its \
                 clients saw answered ({} runs of wrk): {}",
                r.clicks_counted,
                r.gets_answered,
                r.counted_runs,
                clicks_verdict(r.clicks_counted, r.gets_answered, r.counted_runs)
            ));
            notes.push(format!(
                "cold path, second look: the memory run asked for {} codes not cached yet with \
                 HEAD (no clicks) at {:.0}/s ({} blocking keep-alive clients)",
                thousands(redirects::TOTAL),
                r.fill_per_second,
                clients * 2
            ));
            if let Some(b) = &r.baseline {
                notes.push(baseline_note(b, r.instructions.analytics_off));
            }
            notes.extend(replica_notes(&r.cold_replica));
            notes.extend(r.log_notes.iter().cloned());
            if r.lookup_failed > 0 {
                notes.push(format!(
                    "errors: {} failed pgbench lookup transaction(s)",
                    r.lookup_failed
                ));
            }
        }

        if let Some(c) = &self.creation {
            let mut t = Table::new(&["measurement", "per second"]);
            t.row(vec![
                format!("pgbench: one INSERT per transaction, {clients} clients (tps)"),
                format!("{:.1}", c.baseline.tps),
            ]);
            t.row(vec![
                format!(
                    "service: POST /api/v1/links, {clients} clients, {} account(s), 201s",
                    opts.accounts
                ),
                format!("{:.1}", c.creates.per_second),
            ]);
            t.row(vec![
                format!(
                    "service: POST /api/v1/links/bulk, {} links a request, {clients} clients, \
                     links created",
                    creates::BULK_SIZE
                ),
                format!("{:.1}", c.bulk.per_second),
            ]);
            t.row(vec![
                "WAL flushes per pgbench INSERT".to_owned(),
                two(c.baseline.flushes),
            ]);
            t.row(vec![
                "WAL flushes per link created (with its audit entry)".to_owned(),
                two(c.creates.flushes),
            ]);
            t.row(vec![
                "WAL flushes per link created in bulk".to_owned(),
                two(c.bulk.flushes),
            ]);
            t.row(vec![
                "audit entries per link created".to_owned(),
                two(c.creates.audit_per_link),
            ]);
            t.row(vec![
                "audit entries per link created in bulk".to_owned(),
                two(c.bulk.audit_per_link),
            ]);
            // Issue #20's capacity plan: what a created link costs each side.
            for (kind, cpu) in [("single", c.creates.cpu), ("bulk", c.bulk.cpu)] {
                t.row(vec![
                    format!("service CPU per link created, {kind} (µs)"),
                    two(cpu.server_us),
                ]);
                t.row(vec![
                    format!("PostgreSQL CPU per link created, {kind} (µs)"),
                    two(cpu.pg_us),
                ]);
            }
            tables.push(("Link creation", t));
            if c.baseline.failed > 0 || c.creates.errors > 0 || c.bulk.errors > 0 {
                notes.push(format!(
                    "errors: {} failed pgbench transaction(s), {} failed create(s), {} failed \
                     bulk create(s)",
                    c.baseline.failed, c.creates.errors, c.bulk.errors
                ));
            }
        }

        if let Some(r) = &self.redirects {
            let mut t = Table::new(&["service resident memory (VmRSS)", "size"]);
            t.row(vec!["just started".to_owned(), mb(r.rss_fresh)]);
            t.row(vec![
                format!("{} links cached", thousands(redirects::CACHED)),
                mb(r.rss_cached),
            ]);
            t.row(vec![
                format!("{} links cached", thousands(redirects::TOTAL)),
                mb(r.rss_full),
            ]);
            tables.push(("Memory", t));
        }

        let mut t = Table::new(&["ratio", "value", "range", "target", ""]);
        if let Some(r) = &self.redirects {
            // `target`: the bound, and whether it is a floor (else a ceiling).
            let mut check = |name: &str, value: Option<Spread>, target: Option<(f64, bool)>| {
                let median = value.map(|s| s.median);
                t.row(vec![
                    name.to_owned(),
                    two(median),
                    value.map_or_else(String::new, |s| s.range(|v| format!("{v:.2}"))),
                    target.map_or_else(
                        || "none set".to_owned(),
                        |(target, at_least)| {
                            format!("{} {target:.2}", if at_least { ">=" } else { "<=" })
                        },
                    ),
                    target.map_or_else(String::new, |(target, at_least)| {
                        verdict(median, target, at_least).to_owned()
                    }),
                ]);
            };
            check(
                "cached redirects (counting on): service + PostgreSQL / bare, CPU per request",
                paired(&r.cached_on, &r.bare, cpu_total),
                Some((CPU_TARGET, false)),
            );
            check(
                "cached redirects (counting off): service + PostgreSQL / bare, CPU per request",
                paired(&r.cached_off, &r.bare, cpu_total),
                None,
            );
            check(
                "cached redirects (counting on) / bare, requests/s",
                paired(&r.cached_on, &r.bare, rps),
                Some((0.90, true)),
            );
            check(
                "cached redirects (counting on) / bare, p99",
                paired(&r.cached_on, &r.bare, p99),
                Some((1.50, false)),
            );
            check(
                "cached redirects, counting on / off, requests/s",
                paired(&r.cached_on, &r.cached_off, rps),
                Some((0.97, true)),
            );
            check(
                "cached redirects (counting off), rate limits on / off, requests/s (#14)",
                paired(&r.cached_off, &r.cached_unlimited, rps),
                Some((0.97, true)),
            );
            check(
                "cached redirects (counting off), metrics on / off, requests/s, in the rounds (#16)",
                paired(&r.cached_off, &r.cached_unmetered, rps),
                None,
            );
            check(
                &format!(
                    "cached redirects (counting off), metrics on / off, requests/s, side by side, {} runs of {} s (#16)",
                    r.metrics_pairs.len(),
                    redirects::PAIR_SECONDS
                ),
                Spread::of(
                    r.metrics_pairs
                        .iter()
                        .filter_map(|(on, off)| ratio(rps(on)?, rps(off)?)),
                ),
                Some((0.97, true)),
            );
            let side_by_side = |pairs: &[(Load, Load)]| {
                Spread::of(pairs.iter().filter_map(|(a, b)| ratio(rps(a)?, rps(b)?)))
            };
            check(
                &format!(
                    "cached redirects (counting on), analytics on / off, requests/s, side by side, {} runs of {} s (#17)",
                    r.analytics_pairs.len(),
                    redirects::PAIR_SECONDS
                ),
                side_by_side(&r.analytics_pairs),
                Some((0.97, true)),
            );
            check(
                &format!(
                    "the same, links asked for by Zipf's law (top 1 % of links: 62 % of requests), side by side, {} runs of {} s (#17)",
                    r.zipf_pairs.len(),
                    redirects::PAIR_SECONDS
                ),
                side_by_side(&r.zipf_pairs),
                Some((0.97, true)),
            );
            check(
                &format!(
                    "cached redirects (counting on, analytics on) / bare, requests/s, side by side, {} runs of {} s (#17)",
                    r.bare_pairs.len(),
                    redirects::PAIR_SECONDS
                ),
                side_by_side(&r.bare_pairs),
                Some((0.95, true)),
            );
            check(
                "cold redirects / pgbench lookup, per second",
                paired(&r.cold, &r.lookup, rps),
                Some((0.70, true)),
            );
            let rr = &r.cold_replica;
            if !rr.cold.is_empty() {
                check(
                    "cold redirects, lookups on a replica / primary only, requests/s (#20)",
                    paired(&rr.cold, &r.cold, rps),
                    None,
                );
                check(
                    "cold redirects, lookups on a replica / primary only, service CPU per request (#20)",
                    paired(&rr.cold, &r.cold, cpu_server),
                    None,
                );
                let (cost, rounds) = lag_check_cost(&rr.cold, &r.cold);
                t.row(vec![
                    "the lag check per miss (with routing): service CPU, replica - primary only, \
                     difference of medians (µs) (#20)"
                        .to_owned(),
                    cost.map_or_else(|| "n/a".to_owned(), |c| format!("{c:.2}")),
                    rounds.map_or_else(String::new, |s| {
                        format!("rounds {}", s.range(|v| format!("{v:.2}")))
                    }),
                    "none set".to_owned(),
                    String::new(),
                ]);
            }
            // What metrics cost one cached redirect, in the service's CPU time: the
            // difference within each pair (nanoseconds).
            let extra = Spread::of(
                r.metrics_pairs
                    .iter()
                    .filter_map(|(on, off)| Some((cpu_server(on)? - cpu_server(off)?) * 1000.0)),
            );
            t.row(vec![
                "metrics' CPU per cached redirect, on - off, service, side by side (ns) (#16)"
                    .to_owned(),
                extra.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.median)),
                extra.map_or_else(String::new, |s| s.range(|v| format!("{v:.0}"))),
                "none set".to_owned(),
                String::new(),
            ]);
            // What analytics costs one cached redirect, in the service's CPU time.
            let extra = Spread::of(
                r.analytics_pairs
                    .iter()
                    .filter_map(|(on, off)| Some((cpu_server(on)? - cpu_server(off)?) * 1000.0)),
            );
            t.row(vec![
                "analytics' CPU per cached redirect, on - off, service, side by side (ns) (#17)"
                    .to_owned(),
                extra.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.median)),
                extra.map_or_else(String::new, |s| s.range(|v| format!("{v:.0}"))),
                "none set".to_owned(),
                String::new(),
            ]);
            let extra = Spread::of(
                r.zipf_pairs
                    .iter()
                    .filter_map(|(on, off)| Some((cpu_server(on)? - cpu_server(off)?) * 1000.0)),
            );
            t.row(vec![
                "the same, links asked for by Zipf's law (ns) (#17)".to_owned(),
                extra.map_or_else(|| "n/a".to_owned(), |s| format!("{:.0}", s.median)),
                extra.map_or_else(String::new, |s| s.range(|v| format!("{v:.0}"))),
                "none set".to_owned(),
                String::new(),
            ]);
            // Instructions per cached redirect, counted by callgrind: unlike the rows
            // above, they do not move with the machine.
            let i = r.instructions;
            t.row(vec![
                "instructions per cached redirect (callgrind): bare / counting on, analytics off / on"
                    .to_owned(),
                format!(
                    "{:.0} / {:.0} / {:.0}",
                    i.bare, i.analytics_off, i.analytics_on
                ),
                String::new(),
                "none set".to_owned(),
                String::new(),
            ]);
            for (what, a, b) in [
                ("analytics on / off", i.analytics_on, i.analytics_off),
                ("analytics on / bare", i.analytics_on, i.bare),
                ("counting on, analytics off / bare", i.analytics_off, i.bare),
            ] {
                t.row(vec![
                    format!("instructions per cached redirect, {what} (#17)"),
                    ratio(a, b).map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}")),
                    String::new(),
                    "none set".to_owned(),
                    String::new(),
                ]);
            }
            if let Some(b) = &r.baseline {
                let (rps_ratio, _, instructions_ratio) = baseline_ratios(b, i.analytics_off);
                let short = &b.commit[..b.commit.len().min(7)];
                let runs = format!(
                    "side by side, {} runs of {} s",
                    b.pairs.len(),
                    redirects::PAIR_SECONDS
                );
                t.row(vec![
                    format!("cached redirects (counting on, analytics off), now / baseline {short}, requests/s, {runs}"),
                    two(rps_ratio.map(|s| s.median)),
                    rps_ratio.map_or_else(String::new, |s| s.range(|v| format!("{v:.2}"))),
                    format!(">= {BASELINE_RPS:.2} (--baseline)"),
                    verdict(rps_ratio.map(|s| s.median), BASELINE_RPS, true).to_owned(),
                ]);
                let cpu = Spread::of(
                    b.pairs
                        .iter()
                        .filter_map(|(now, then)| ratio(cpu_server(now)?, cpu_server(then)?)),
                );
                t.row(vec![
                    format!("the same, now / baseline {short}, service CPU µs per request, {runs}"),
                    two(cpu.map(|s| s.median)),
                    cpu.map_or_else(String::new, |s| s.range(|v| format!("{v:.2}"))),
                    "none set".to_owned(),
                    String::new(),
                ]);
                t.row(vec![
                    format!("instructions per cached redirect (callgrind), counting on, analytics off: now / baseline {short}"),
                    format!("{:.0} / {:.0}", i.analytics_off, b.instructions),
                    String::new(),
                    "none set".to_owned(),
                    String::new(),
                ]);
                t.row(vec![
                    format!("instructions per cached redirect, now / baseline {short}"),
                    instructions_ratio.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}")),
                    String::new(),
                    format!("<= {BASELINE_INSTRUCTIONS:.2} (--baseline)"),
                    verdict(instructions_ratio, BASELINE_INSTRUCTIONS, false).to_owned(),
                ]);
            }
            // What writing a click costs, over a whole write cycle (flushes and fold).
            for (what, w) in [
                ("analytics off", r.written_plain),
                ("analytics on", r.written_analysed),
            ] {
                let Some(w) = w else { continue };
                t.row(vec![
                    format!(
                        "write cycle, counting on, {what}: CPU per click, service + PostgreSQL (µs) (#17)"
                    ),
                    w.cpu.to_string(),
                    format!(
                        "{} clicks{}",
                        thousands(w.clicks),
                        if w.unfolded { ", not all folded" } else { "" }
                    ),
                    "none set".to_owned(),
                    String::new(),
                ]);
            }
            if let (Some(on), Some(off)) = (r.written_analysed, r.written_plain) {
                t.row(vec![
                    "write cycle: PostgreSQL CPU per click, analytics on / off (#17)".to_owned(),
                    two(on
                        .cpu
                        .pg_us
                        .zip(off.cpu.pg_us)
                        .and_then(|(a, b)| ratio(a, b))),
                    String::new(),
                    "none set".to_owned(),
                    String::new(),
                ]);
            }
            let cost = r.metrics_cost_ns;
            t.row(vec![
                "metrics middleware per redirect, in process, one thread (ns) (#16)".to_owned(),
                cost.map_or_else(|| "n/a".to_owned(), |c| format!("{:.0}", c[0])),
                cost.map_or_else(String::new, |c| format!("{:.0}–{:.0}", c[1], c[2])),
                "none set".to_owned(),
                String::new(),
            ]);
            t.row(vec![
                format!(
                    "resident memory, {} links cached",
                    thousands(redirects::TOTAL)
                ),
                mb(r.rss_full),
                String::new(),
                format!("< {}", mb(RSS_TARGET)),
                if r.rss_full < RSS_TARGET {
                    "PASS"
                } else {
                    "MISS"
                }
                .to_owned(),
            ]);
        }
        if let Some(c) = &self.creation {
            t.row(vec![
                "creates / INSERT baseline, per second".to_owned(),
                two(ratio(c.creates.per_second, c.baseline.tps)),
                String::new(),
                "none set".to_owned(),
                String::new(),
            ]);
            t.row(vec![
                format!(
                    "single creates, {} clients, {} account(s), per second (#15)",
                    opts.clients, opts.accounts
                ),
                format!("{:.0}", c.creates.per_second),
                String::new(),
                format!(">= {SINGLE_CREATES_TARGET:.0} (16 clients, one account)"),
                if opts.clients == 16 && opts.accounts == 1 {
                    verdict(Some(c.creates.per_second), SINGLE_CREATES_TARGET, true)
                } else {
                    "n/a"
                }
                .to_owned(),
            ]);
            t.row(vec![
                "bulk creates, links per second (#15)".to_owned(),
                format!("{:.0}", c.bulk.per_second),
                String::new(),
                format!(">= {BULK_LINKS_TARGET:.0}"),
                verdict(Some(c.bulk.per_second), BULK_LINKS_TARGET, true).to_owned(),
            ]);
            let bulk_ratio = ratio(c.bulk.per_second, c.creates.per_second);
            t.row(vec![
                "bulk / single creates, links per second (#15)".to_owned(),
                two(bulk_ratio),
                String::new(),
                format!(">= {BULK_RATIO_TARGET:.2}"),
                verdict(bulk_ratio, BULK_RATIO_TARGET, true).to_owned(),
            ]);
        }
        // Empty in a partial run of a part without these ratios.
        if !t.rows.is_empty() {
            tables.push(("Ratios (targets of issues #5, #12 and #15)", t));
        }
        if let Some(l) = &self.limits {
            tables.push(("Rate limits: on against off (issue #14)", limits_table(l)));
        }
        if let Some(r) = &self.reads {
            tables.push((
                "Click reads: GET /api/v1/links?limit=100 over the click journal (issue #13)",
                reads_table(r),
            ));
            let e = &r.export;
            let mut t = Table::new(&["measurement", "value"]);
            t.row(vec!["rows".to_owned(), thousands(e.rows)]);
            t.row(vec!["body".to_owned(), mb(e.bytes)]);
            t.row(vec![
                "time".to_owned(),
                format!("{:.2} s", e.took.as_secs_f64()),
            ]);
            t.row(vec![
                "service peak RSS before / after".to_owned(),
                format!("{} / {}", mb(e.peak_before), mb(e.peak_after)),
            ]);
            tables.push((
                "Export: GET /api/v1/links/export of 100 000 links, streamed (issue #15)",
                t,
            ));
        }
        if let Some(st) = &self.stats {
            tables.push((
                "Stats: GET /api/v1/links/{code}/stats, a year of visits, 100 000 referrers (issue #17)",
                stats_table(st),
            ));
        }
        if let Some(se) = &self.search {
            tables.push((
                "Search: GET /api/v1/links?q=&tag=, an account of 1 000 000 links, first page (issue #18)",
                search_table(se),
            ));
        }
        if let Some(v) = &self.visit_limits {
            tables.push((
                "Visit limits: GET of links with and without max_visits, one service, counting on (issue #18)",
                visit_limits_table(v),
            ));
            tables.push((
                "Visit limits, ratios within each round (no target set)",
                visit_limits_ratios(v),
            ));
            tables.push((
                "Visit limit rounds, requests/s (CPU µs per request, service + PostgreSQL)",
                visit_limits_rounds(v),
            ));
            notes.push(format!(
                "visit limits: after the wrk runs the limited links had used {} visits for {} \
                 GETs wrk saw answered ({} runs, warm-ups included; up to {} more answers in \
                 flight when wrk stopped): {}",
                thousands(v.visits_used),
                thousands(v.gets_answered),
                v.wrk_runs,
                thousands(v.wrk_runs * wrk::CONNECTIONS as u64),
                visit_limits::takes_mismatch(v.visits_used, v.gets_answered, v.wrk_runs)
                    .unwrap_or_else(|| "consistent".to_owned())
            ));
            notes.push(format!(
                "visit limits, exact count: {} GETs answered 302 by {} blocking clients (each \
                 limited link once, the hot link as often) in {:.1} s; {} visits used \
                 meanwhile: {}",
                thousands(v.exact_gets),
                opts.clients * 2,
                v.exact_took.as_secs_f64(),
                thousands(v.exact_taken),
                if v.exact_gets == v.exact_taken {
                    "CONSISTENT"
                } else {
                    "INCONSISTENT"
                }
            ));
            notes.extend(v.log_note.iter().cloned());
        }
        (tables, notes)
    }

    /// The report as printed at the end of a run.
    pub fn render_text(&self, about: &About, opts: Options) -> String {
        let mut s = String::new();
        let _ = writeln!(s);
        let _ = writeln!(s, "{} on {}", about.date, about.machine);
        let _ = writeln!(s, "commit {}: {}", about.commit, about.command);
        for line in self.settings(opts, true) {
            let _ = writeln!(s, "{line}");
        }
        let (tables, notes) = self.tables(opts);
        for (title, table) in tables {
            let _ = writeln!(s);
            let _ = writeln!(s, "{title}");
            s.push_str(&table.text());
        }
        let _ = writeln!(s);
        for note in notes {
            let _ = writeln!(s, "{note}");
        }
        let _ = writeln!(s);
        s
    }

    /// The report as `bench/results.md`.
    pub fn render_markdown(&self, about: &About, opts: Options) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# Benchmark results\n");
        let _ = writeln!(
            s,
            "Written by `cargo xtask bench` (see `xtask/src/bench.rs`); every full run \
             overwrites this file. All figures come from one run on one machine, load \
             generators included, so they compare with each other, not with other machines.\n"
        );
        let _ = writeln!(s, "- date: {}", about.date);
        let _ = writeln!(s, "- machine: {}", about.machine);
        let _ = writeln!(s, "- commit: {}", about.commit);
        let _ = writeln!(s, "- command: `{}`", about.command);
        for line in self.settings(opts, false) {
            let _ = writeln!(s, "- {line}");
        }
        let (tables, notes) = self.tables(opts);
        for (title, table) in tables {
            let _ = writeln!(s, "\n## {title}\n");
            s.push_str(&table.markdown());
        }
        if !notes.is_empty() {
            let _ = writeln!(s);
            for note in notes {
                let _ = writeln!(s, "- {note}");
            }
        }
        s
    }
}

/// `--baseline`'s thresholds for "no change" on the redirect path (the option's own, not
/// a target of an issue): now / baseline requests/s side by side at least, and
/// instructions per cached redirect now / baseline at most.
const BASELINE_RPS: f64 = 0.97;
const BASELINE_INSTRUCTIONS: f64 = 1.03;

/// Now / baseline within each side-by-side run: requests/s and the service's CPU µs per
/// request; and the instructions per redirect of the service now (`now_instructions`)
/// over the baseline's.
fn baseline_ratios(
    b: &redirects::BaselineRuns,
    now_instructions: f64,
) -> (Option<Spread>, Option<Spread>, Option<f64>) {
    let within = |figure: fn(&Load) -> Option<f64>| {
        Spread::of(
            b.pairs
                .iter()
                .filter_map(|(now, then)| ratio(figure(now)?, figure(then)?)),
        )
    };
    (
        within(rps),
        within(cpu_server),
        ratio(now_instructions, b.instructions),
    )
}

/// The service now and the baseline side by side: medians over the runs, and ranges.
fn baseline_table(b: &redirects::BaselineRuns) -> Table {
    let mut t = Table::new(&[
        "measurement",
        "requests/s",
        "range",
        "CPU µs per request (service)",
        "range",
        "p99",
    ]);
    let short = &b.commit[..b.commit.len().min(7)];
    let now: Vec<Load> = b.pairs.iter().map(|p| p.0).collect();
    let then: Vec<Load> = b.pairs.iter().map(|p| p.1).collect();
    for (name, loads) in [
        ("service now".to_owned(), now),
        (format!("baseline {short}"), then),
    ] {
        let rps_ = over_rounds(&loads, rps);
        let cpu = over_rounds(&loads, cpu_server);
        t.row(vec![
            name,
            rps_.map_or_else(|| "n/a".to_owned(), |s| per_second(s.median)),
            rps_.map_or_else(String::new, |s| s.range(per_second)),
            two(cpu.map(|s| s.median)),
            cpu.map_or_else(String::new, |s| s.range(|v| format!("{v:.2}"))),
            ms(over_rounds(&loads, p99).map(|s| s.median)),
        ]);
    }
    t
}

/// One line: the baseline, and whether the redirect path is unchanged by `--baseline`'s
/// thresholds.
fn baseline_note(b: &redirects::BaselineRuns, now_instructions: f64) -> String {
    let (rps_ratio, cpu_ratio, instructions_ratio) = baseline_ratios(b, now_instructions);
    let rps_median = rps_ratio.map(|s| s.median);
    let rps_verdict = verdict(rps_median, BASELINE_RPS, true);
    let instructions_verdict = verdict(instructions_ratio, BASELINE_INSTRUCTIONS, false);
    let overall = match (rps_verdict, instructions_verdict) {
        ("PASS", "PASS") => "PASS",
        ("n/a", _) | (_, "n/a") => "n/a",
        _ => "MISS",
    };
    format!(
        "baseline {} ({}): {overall}: now / baseline requests/s {} (>= {BASELINE_RPS:.2}: \
         {rps_verdict}), instructions per cached redirect {} (<= {BASELINE_INSTRUCTIONS:.2}: \
         {instructions_verdict}), service CPU µs per request {} (no threshold); these \
         thresholds are --baseline's own (\"no change\" to the redirect path), not an issue's \
         target",
        b.commit,
        b.subject,
        two(rps_median),
        instructions_ratio.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.3}")),
        two(cpu_ratio.map(|s| s.median)),
    )
}

/// The API read with limits on and off (medians over the rounds, the ratio's median of
/// the rounds' ratios, and the target), then the two floods.
fn limits_table(l: &LimitRuns) -> Table {
    let mut t = Table::new(&[
        "measurement",
        "limits on",
        "limits off",
        "on / off",
        "target",
        "",
    ]);
    let median = |v: Vec<f64>| -> Option<f64> {
        let mut v = v;
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let rates = |reads: &[Read]| median(reads.iter().map(|r| r.per_second).collect());
    let p99s = |reads: &[Read]| median(reads.iter().map(|r| r.p99_ms).collect());
    let ratios = median(
        l.reads_on
            .iter()
            .zip(&l.reads_off)
            .filter_map(|(on, off)| ratio(on.per_second, off.per_second))
            .collect(),
    );
    t.row(vec![
        "GET /api/v1/links/{code}, one key, requests/s".to_owned(),
        rates(&l.reads_on).map_or_else(|| "n/a".to_owned(), per_second),
        rates(&l.reads_off).map_or_else(|| "n/a".to_owned(), per_second),
        two(ratios),
        ">= 0.85".to_owned(),
        match ratios {
            Some(r) if r >= 0.85 => "PASS",
            Some(_) => "MISS",
            None => "n/a",
        }
        .to_owned(),
    ]);
    t.row(vec![
        "GET /api/v1/links/{code}, p99".to_owned(),
        ms(p99s(&l.reads_on)),
        ms(p99s(&l.reads_off)),
        String::new(),
        String::new(),
        String::new(),
    ]);
    let flood = |name: &str, figure: fn(&super::limits::Flood) -> u64| {
        vec![
            format!("unknown-code flood from one address: {name}"),
            thousands(figure(&l.flood_on)),
            thousands(figure(&l.flood_off)),
            String::new(),
            String::new(),
            String::new(),
        ]
    };
    t.row(flood("requests answered", |f| f.requests));
    t.row(flood("404 not-found", |f| f.not_found));
    t.row(flood("429 rate-limited", |f| f.limited));
    let mut queries = flood("database transactions", |f| f.transactions);
    queries[4] = "on: about the limit".to_owned();
    t.row(queries);
    t
}

/// Page read latency for each journal shape, against the empty journal, and the target:
/// under 50 ms at every size the counter lets the journal reach.
fn reads_table(r: &ClickReads) -> Table {
    let mut t = Table::new(&[
        "journal",
        "rows",
        "entries",
        "p50",
        "p90",
        "p50 / empty",
        "target p90",
        "",
    ]);
    let base = r.shapes.first().map(|s| s.p50.as_secs_f64());
    for s in &r.shapes {
        let p90 = s.p90.as_secs_f64() * 1e3;
        let (target, verdict) = if s.target {
            ("< 50 ms", if p90 < 50.0 { "PASS" } else { "MISS" })
        } else {
            ("none (a fold is running)", "")
        };
        t.row(vec![
            s.name.to_owned(),
            thousands(s.rows),
            thousands(s.entries),
            ms(Some(s.p50.as_secs_f64() * 1e3)),
            ms(Some(p90)),
            two(base.and_then(|b| ratio(s.p50.as_secs_f64(), b))),
            target.to_owned(),
            verdict.to_owned(),
        ]);
    }
    t
}

/// Stats latency of the year before and after capping, and the target: under 50 ms for
/// the capped year.
fn stats_table(st: &StatsReads) -> Table {
    let mut t = Table::new(&["read", "median", "max", "target max", ""]);
    for r in &st.reads {
        let max = r.max.as_secs_f64() * 1e3;
        let (target, verdict) = if r.target {
            ("< 50 ms", if max < 50.0 { "PASS" } else { "MISS" })
        } else {
            ("", "")
        };
        t.row(vec![
            r.name.clone(),
            ms(Some(r.p50.as_secs_f64() * 1e3)),
            ms(Some(max)),
            target.to_owned(),
            verdict.to_owned(),
        ]);
    }
    t.row(vec![
        format!(
            "visit rows: not capped / capped ({} distinct referrers)",
            thousands(st.referrers)
        ),
        thousands(st.rows_before),
        thousands(st.rows_after),
        String::new(),
        String::new(),
    ]);
    t.row(vec![
        "time to write the year / to cap it".to_owned(),
        format!("{:.1} s", st.fill.as_secs_f64()),
        format!("{:.1} s", st.cap.as_secs_f64()),
        String::new(),
        String::new(),
    ]);
    t
}

/// Search latency against the plain list of the same account, and the target: a p99
/// under 50 ms for each search but the worst case.
fn search_table(se: &SearchReads) -> Table {
    let mut t = Table::new(&["read", "query", "found", "median", "p99", "target p99", ""]);
    for r in &se.reads {
        let p99 = r.p99.as_secs_f64() * 1e3;
        let (target, verdict) = if r.target {
            ("< 50 ms", if p99 < 50.0 { "PASS" } else { "MISS" })
        } else {
            ("", "")
        };
        t.row(vec![
            r.name.clone(),
            if r.query.is_empty() {
                "-".to_owned()
            } else {
                r.query.clone()
            },
            r.found.to_string(),
            ms(Some(r.p50.as_secs_f64() * 1e3)),
            ms(Some(p99)),
            target.to_owned(),
            verdict.to_owned(),
        ]);
    }
    t.row(vec![
        format!("time to write the {} links", thousands(se.links)),
        String::new(),
        String::new(),
        format!("{:.1} s", se.fill.as_secs_f64()),
        String::new(),
        String::new(),
        String::new(),
    ]);
    t
}

/// The three loads of the visit-limit part: medians over the rounds (requests/s with
/// its range, p99, CPU per request and its parts).
fn visit_limits_table(v: &VisitLimitRuns) -> Table {
    let mut t = Table::new(&[
        "GET of",
        "requests/s",
        "range",
        "p99",
        "CPU µs: service",
        "PostgreSQL",
        "total",
        "range",
        "write xacts / GET",
    ]);
    let links = thousands(visit_limits::LINKS);
    for (which, (name, loads)) in [
        (
            format!("(a) {links} links without a limit (cached), random"),
            &v.unlimited,
        ),
        (
            format!("(b) {links} links with max_visits, random (a take each)"),
            &v.limited,
        ),
        (
            "(c) one link with max_visits alone (hot: one row)".to_owned(),
            &v.hot,
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let median =
            |figure: fn(&Load) -> Option<f64>| over_rounds(loads, figure).map(|s| s.median);
        t.row(vec![
            name,
            median(rps).map_or_else(|| "n/a".to_owned(), per_second),
            over_rounds(loads, rps).map_or_else(String::new, |s| s.range(per_second)),
            ms(median(p99)),
            two(median(cpu_server)),
            two(median(cpu_pg)),
            two(median(cpu_total)),
            over_rounds(loads, cpu_total)
                .map_or_else(String::new, |s| s.range(|v| format!("{v:.2}"))),
            Spread::of(v.writes_per_get[which].iter().copied())
                .map_or_else(|| "n/a".to_owned(), |s| format!("{:.3}", s.median)),
        ]);
    }
    t
}

/// Limited and hot against unlimited, within each round: median and range.
fn visit_limits_ratios(v: &VisitLimitRuns) -> Table {
    let mut t = Table::new(&["ratio", "value", "range"]);
    type Figure = fn(&Load) -> Option<f64>;
    let figures: [(&str, Figure); 3] = [
        ("requests/s", rps),
        ("p99", p99),
        ("CPU per request, service + PostgreSQL", cpu_total),
    ];
    for (what, loads) in [("limited", &v.limited), ("hot", &v.hot)] {
        for (figure, f) in figures {
            let r = paired(loads, &v.unlimited, f);
            t.row(vec![
                format!("{what} / unlimited, {figure}"),
                two(r.map(|s| s.median)),
                r.map_or_else(String::new, |s| s.range(|v| format!("{v:.2}"))),
            ]);
        }
    }
    t
}

/// Each round of the visit-limit part, in the order its loads ran.
fn visit_limits_rounds(v: &VisitLimitRuns) -> Table {
    let mut t = Table::new(&[
        "round",
        "unlimited",
        "limited",
        "hot",
        "limited/unlimited",
        "hot/unlimited",
    ]);
    for round in 0..v.rounds {
        let order: Vec<&str> = (0..visit_limits::LOADS.len())
            .map(|turn| visit_limits::LOADS[visit_limits::turn(round, turn)])
            .collect();
        let at = |loads: &[Load]| loads.get(round).copied();
        let cell = |l: Option<Load>| {
            l.map_or_else(
                || "n/a".to_owned(),
                |l| format!("{} ({})", per_second(l.per_second), two(l.cpu.total_us())),
            )
        };
        let within = |a: &[Load]| {
            two(at(a)
                .zip(at(&v.unlimited))
                .and_then(|(a, b)| ratio(a.per_second, b.per_second)))
        };
        t.row(vec![
            format!("{} ({})", round + 1, order.join(", ")),
            cell(at(&v.unlimited)),
            cell(at(&v.limited)),
            cell(at(&v.hot)),
            within(&v.limited),
            within(&v.hot),
        ]);
    }
    t
}

/// Each round's figures, in the order they ran, with its ratios: how far a median is
/// from what a single round would have said.
fn rounds_table(r: &redirects::Redirects) -> Table {
    let mut t = Table::new(&[
        "round",
        "bare",
        "on",
        "off",
        "on/bare",
        "p99 on/bare",
        "on/off",
        "off, no limits",
        "limits on/off",
        "off, no metrics",
        "metrics on/off",
        "cold",
        "lookup",
        "cold/lookup",
        "replica",
        "replica/cold",
    ]);
    let with_replica = !r.cold_replica.cold.is_empty();
    for round in 0..r.plan.rounds {
        let at = |loads: &[Load]| loads.get(round).copied();
        let rate =
            |l: Option<Load>| l.map_or_else(|| "n/a".to_owned(), |l| per_second(l.per_second));
        let within = |a: &[Load], b: &[Load], figure: fn(&Load) -> Option<f64>| {
            two(at(a)
                .zip(at(b))
                .and_then(|(a, b)| ratio(figure(&a)?, figure(&b)?)))
        };
        t.row(vec![
            round_label(round, with_replica),
            rate(at(&r.bare)),
            rate(at(&r.cached_on)),
            rate(at(&r.cached_off)),
            within(&r.cached_on, &r.bare, rps),
            within(&r.cached_on, &r.bare, p99),
            within(&r.cached_on, &r.cached_off, rps),
            rate(at(&r.cached_unlimited)),
            within(&r.cached_off, &r.cached_unlimited, rps),
            rate(at(&r.cached_unmetered)),
            within(&r.cached_off, &r.cached_unmetered, rps),
            rate(at(&r.cold)),
            rate(at(&r.lookup)),
            within(&r.cold, &r.lookup, rps),
            rate(at(&r.cold_replica.cold)),
            within(&r.cold_replica.cold, &r.cold, rps),
        ]);
    }
    t
}

/// `2 (on, off, bare; lookup, cold)`: round `round` (from 0) and the order it ran in;
/// with `replica` (#20), its cold service among the cold turns (`replica, lookup, cold`).
fn round_label(round: usize, replica: bool) -> String {
    let order: Vec<&str> = (0..redirects::CACHED_SERVERS.len())
        .map(|turn| redirects::CACHED_SERVERS[redirects::cached_turn(round, turn)])
        .collect();
    let cold_order: Vec<&str> = redirects::cold_order(round, replica)
        .into_iter()
        .map(|turn| match turn {
            redirects::ColdTurn::Cold => "cold",
            redirects::ColdTurn::Lookup => "lookup",
            redirects::ColdTurn::Replica => "replica",
        })
        .collect();
    format!(
        "{} ({}; {})",
        round + 1,
        order.join(", "),
        cold_order.join(", ")
    )
}

/// The cold rounds with and without the replica (#20): each one's requests/s and the CPU
/// µs per request of the service, the primary and the replica (medians over the rounds,
/// with their ranges).
fn replica_table(r: &redirects::Redirects) -> Table {
    let rr = &r.cold_replica;
    let mut t = Table::new(&[
        "measurement",
        "requests/s",
        "service",
        "primary",
        "replica",
        "total",
    ]);
    let cell = |s: Option<Spread>, shown: fn(f64) -> String| {
        s.map_or_else(
            || "n/a".to_owned(),
            |s| format!("{} ({})", shown(s.median), s.range(shown)),
        )
    };
    let two_f = |v: f64| format!("{v:.2}");
    let row = |loads: &[Load], replica_us: &[Option<f64>]| {
        let totals = loads
            .iter()
            .zip(replica_us)
            .filter_map(|(l, r)| Some(l.cpu.total_us()? + (*r)?));
        vec![
            cell(over_rounds(loads, rps), per_second),
            cell(over_rounds(loads, cpu_server), two_f),
            cell(over_rounds(loads, cpu_pg), two_f),
            cell(Spread::of(replica_us.iter().flatten().copied()), two_f),
            cell(Spread::of(totals), two_f),
        ]
    };
    let mut primary = vec!["cold cache, lookups on the primary (the replica replaying)".to_owned()];
    primary.extend(row(&r.cold, &rr.replay_us));
    t.row(primary);
    let mut replica = vec![format!(
        "cold cache, lookups on a replica{}",
        if rr.refused { REFUSED } else { "" }
    )];
    replica.extend(row(&rr.cold, &rr.replica_us));
    t.row(replica);
    t
}

/// The replica row's label when the service refused the replica setting.
const REFUSED: &str = " (SERVICE WITHOUT REPLICAS: lookups on the primary)";

/// The service's CPU per miss that looking up on the replica adds (the lag check, with
/// the routing): the median of the replica runs' service CPU per request less the
/// primary-only runs' (every request of a cold run is a miss), and the same difference
/// within each round, over the rounds.
fn lag_check_cost(replica: &[Load], primary: &[Load]) -> (Option<f64>, Option<Spread>) {
    let median = |loads: &[Load]| over_rounds(loads, cpu_server).map(|s| s.median);
    let cost = median(replica).zip(median(primary)).map(|(r, p)| r - p);
    let rounds = Spread::of(
        replica
            .iter()
            .zip(primary)
            .filter_map(|(r, p)| Some(cpu_server(r)? - cpu_server(p)?)),
    );
    (cost, rounds)
}

/// What the replica row needs said (#20): what the lag-check figure includes, the reads
/// the replica-configured services routed, and a replica that could not be provisioned.
fn replica_notes(rr: &redirects::ReplicaRuns) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(e) = &rr.missing {
        notes.push(format!(
            "replica (#20): none could be provisioned, so no replica row: {e}"
        ));
        return notes;
    }
    if rr.cold.is_empty() {
        return notes;
    }
    if rr.refused {
        notes.push(
            "replica (#20): THIS SERVICE REFUSES database.replica_urls (it has no read \
             replicas yet), so its replica turns ran without the setting: the replica row \
             is a second primary-only cold service beside a streaming replica nobody read \
             from, and its ratios and difference to the cold row are the noise of this \
             comparison, not the cost of a replica"
                .to_owned(),
        );
    }
    notes.push(
        "replica (#20): \"the lag check per miss\" is the difference of the medians of the \
         service's CPU per request, cold with its lookups on the replica less cold on the \
         primary only; every request of a cold run is a miss. It holds the lag check (the \
         code's last known change against the replica's replay position), choosing the \
         replica's pool and whatever else the service does per miss when a replica is \
         configured; a code the replica lacks would also be confirmed on the primary, but \
         every code walked is on it"
            .to_owned(),
    );
    let routed: Vec<String> = rr
        .routed
        .iter()
        .enumerate()
        .map(|(round, r)| format!("round {}: {}", round + 1, redirects::routed_text(*r)))
        .collect();
    let warning = if rr.routed.iter().all(Option::is_none) {
        ". NO ROUTED READS EXPORTED: the replica row measured a service that ignores the \
         replica (routing not built in?)"
    } else if rr.routed.iter().flatten().all(|r| r.replica <= 0.0) {
        ". NO READ WENT TO THE REPLICA: the replica row measured lookups on the primary"
    } else {
        ""
    };
    notes.push(format!(
        "replica (#20): reads counted by the replica-configured services \
         (shortener_db_reads_total, warm-ups included): {}{warning}",
        routed.join("; "),
    ));
    notes
}

/// CPU time per request of each configuration, its parts over the rounds: median, then
/// the range.
fn cpu_table(r: &redirects::Redirects) -> Table {
    let mut t = Table::new(&[
        "measurement",
        "server",
        "range",
        "PostgreSQL",
        "range",
        "server + PostgreSQL",
        "range",
    ]);
    let mut row = |name: &str, loads: &[Load]| {
        let mut cells = vec![name.to_owned()];
        for figure in [cpu_server, cpu_pg, cpu_total] {
            match over_rounds(loads, figure) {
                Some(s) => {
                    cells.extend([format!("{:.2}", s.median), s.range(|v| format!("{v:.2}"))])
                }
                None => cells.extend(["-".to_owned(), String::new()]),
            }
        }
        t.row(cells);
    };
    row("bare actix-web (no database)", &r.bare);
    row("service: cached, counting on", &r.cached_on);
    row("service: cached, counting off", &r.cached_off);
    row(
        "service: cached, counting off, every rate limit off",
        &r.cached_unlimited,
    );
    row(
        "service: cached, counting off, metrics off",
        &r.cached_unmetered,
    );
    row("service: cold cache, first touch of each code", &r.cold);
    if !r.cold_replica.cold.is_empty() {
        row(
            "service: cold cache, lookups on a replica (PostgreSQL: the primary's; the replica's apart) (#20)",
            &r.cold_replica.cold,
        );
    }
    row(
        "pgbench lookup, per transaction (PostgreSQL only: pgbench is the client)",
        &r.lookup,
    );
    t
}

/// Each round's CPU time per request (`server + PostgreSQL = total`, µs), with the
/// ratios of the totals to the bare server's within the round.
fn rounds_cpu_table(r: &redirects::Redirects) -> Table {
    let mut t = Table::new(&[
        "round", "bare", "on", "off", "on/bare", "off/bare", "cold", "lookup", "replica",
    ]);
    let with_replica = !r.cold_replica.cold.is_empty();
    for round in 0..r.plan.rounds {
        let at = |loads: &[Load]| loads.get(round).copied();
        let cpu = |l: Option<Load>| l.map_or_else(|| "n/a".to_owned(), |l| l.cpu.to_string());
        let to_bare = |a: &[Load]| {
            two(at(a)
                .zip(at(&r.bare))
                .and_then(|(a, b)| ratio(cpu_total(&a)?, cpu_total(&b)?)))
        };
        t.row(vec![
            round_label(round, with_replica),
            cpu(at(&r.bare)),
            cpu(at(&r.cached_on)),
            cpu(at(&r.cached_off)),
            to_bare(&r.cached_on),
            to_bare(&r.cached_off),
            cpu(at(&r.cold)),
            cpu(at(&r.lookup)),
            cpu(at(&r.cold_replica.cold)),
        ]);
    }
    t
}

/// `1000000` as `1 000 000`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut s = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            s.push(' ');
        }
        s.push(c);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cpu::PerRequest;

    #[test]
    fn dates_in_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59 UTC");
    }

    #[test]
    fn tables_as_text_and_markdown() {
        let mut t = Table::new(&["measurement", "per second"]);
        t.row(vec!["a".to_owned(), "12".to_owned()]);
        t.row(vec!["longer name".to_owned(), "3".to_owned()]);
        assert_eq!(
            t.text(),
            "measurement  per second\na                    12\nlonger name           3\n"
        );
        assert_eq!(
            t.markdown(),
            "| measurement | per second |\n| --- | ---: |\n| a | 12 |\n| longer name | 3 |\n"
        );
    }

    #[test]
    fn verdicts_and_numbers() {
        assert_eq!(verdict(Some(0.95), 0.90, true), "PASS");
        assert_eq!(verdict(Some(0.85), 0.90, true), "MISS");
        assert_eq!(verdict(Some(1.2), 1.5, false), "PASS");
        assert_eq!(verdict(Some(1.6), 1.5, false), "MISS");
        assert_eq!(verdict(None, 1.5, false), "n/a");
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(thousands(1_000_000), "1 000 000");
        assert_eq!(thousands(100_000), "100 000");
        assert_eq!(thousands(999), "999");
        assert_eq!(clicks_verdict(1000, 1000, 2), "consistent");
        assert_eq!(clicks_verdict(1200, 1000, 2), "consistent");
        assert!(clicks_verdict(1300, 1000, 2).starts_with("MISMATCH, 300 clicks counted twice"));
        assert_eq!(clicks_verdict(1300, 1000, 6), "consistent");
        assert!(clicks_verdict(999, 1000, 2).starts_with("MISMATCH, 1 clicks lost"));
        assert!(clicks_verdict(2000, 1000, 2).starts_with("MISMATCH, 1 000 clicks counted twice"));
    }

    fn load(per_second: f64, p99_ms: f64) -> Load {
        Load {
            per_second,
            p50_ms: Some(1.0),
            p99_ms: Some(p99_ms),
            cpu: PerRequest::default(),
        }
    }

    fn cpu(server_us: Option<f64>, pg_us: Option<f64>) -> Load {
        Load {
            cpu: PerRequest { server_us, pg_us },
            ..load(100.0, 1.0)
        }
    }

    #[test]
    fn baseline_ratios_are_taken_within_each_run_against_the_options_thresholds() {
        let run = |per_second: f64, server_us: f64| Load {
            per_second,
            ..cpu(Some(server_us), None)
        };
        let mut b = redirects::BaselineRuns {
            commit: "5270f9cf666585898c6c3577821c11231b116499".to_owned(),
            subject: "before".to_owned(),
            // The second run is slow for both: its ratio is still 1.
            pairs: vec![
                (run(100.0, 8.0), run(100.0, 8.0)),
                (run(50.0, 16.0), run(50.0, 16.0)),
                (run(96.0, 8.4), run(100.0, 8.0)),
            ],
            instructions: 10_000.0,
        };
        let (rps_, cpu_, instructions) = baseline_ratios(&b, 10_200.0);
        let rps_ = rps_.unwrap();
        assert_eq!((rps_.median, rps_.min, rps_.max), (1.0, 0.96, 1.0));
        assert!((cpu_.unwrap().max - 1.05).abs() < 1e-9);
        assert_eq!(instructions, Some(1.02));
        let note = baseline_note(&b, 10_200.0);
        assert!(
            note.starts_with("baseline 5270f9cf666585898c6c3577821c11231b116499 (before): PASS"),
            "{note}"
        );
        assert!(note.contains("requests/s 1.00 (>= 0.97: PASS)"), "{note}");
        assert!(note.contains("redirect 1.020 (<= 1.03: PASS)"), "{note}");
        // More instructions than the threshold allows.
        assert!(baseline_note(&b, 10_400.0).contains(": MISS: "));
        // Slower in most runs.
        b.pairs = vec![(run(90.0, 8.0), run(100.0, 8.0)); 3];
        assert!(baseline_note(&b, 10_000.0).contains("(>= 0.97: MISS)"));
        let table = baseline_table(&b).text();
        assert!(table.contains("service now") && table.contains("baseline 5270f9c "));
    }

    #[test]
    fn medians_ranges_and_paired_ratios() {
        let s = |v: &[f64]| Spread::of(v.iter().copied());
        assert_eq!(s(&[]), None);
        assert_eq!(
            s(&[3.0, 1.0, 2.0]),
            Some(Spread {
                median: 2.0,
                min: 1.0,
                max: 3.0
            })
        );
        assert_eq!(s(&[4.0, 1.0, 2.0, 10.0]).map(|s| s.median), Some(3.0));
        assert_eq!(
            s(&[5.0]).map(|s| s.range(|v| format!("{v:.0}"))).as_deref(),
            Some("5–5")
        );

        // Round 2 is slow for both sides: the paired ratio does not see it.
        let bare = [load(100.0, 2.0), load(60.0, 4.0), load(110.0, 2.0)];
        let on = [load(90.0, 3.0), load(54.0, 6.0), load(99.0, 2.0)];
        let r = paired(&on, &bare, rps).unwrap();
        assert!((r.median - 0.9).abs() < 1e-9 && (r.min - 0.9).abs() < 1e-9);
        assert!((r.max - 0.9).abs() < 1e-9);
        let r = paired(&on, &bare, p99).unwrap();
        assert_eq!((r.median, r.min, r.max), (1.5, 1.0, 1.5));
        assert_eq!(over_rounds(&bare, rps).map(|s| s.median), Some(100.0));
        // Ratios of rounds that ran on one side only are left out.
        assert_eq!(paired(&on[..1], &bare, rps).map(|s| s.max), Some(0.9));
        assert_eq!(paired(&[], &bare, rps), None);
    }

    #[test]
    fn visit_limit_tables_pair_each_round_with_its_unlimited_run() {
        let with_cpu = |per_second: f64, total: f64| Load {
            cpu: PerRequest {
                server_us: Some(total / 2.0),
                pg_us: Some(total / 2.0),
            },
            ..load(per_second, 10.0)
        };
        let v = VisitLimitRuns {
            wrk_version: "wrk 4.1.0".to_owned(),
            unlimited: vec![with_cpu(40_000.0, 14.0), with_cpu(20_000.0, 16.0)],
            limited: vec![with_cpu(10_000.0, 84.0), with_cpu(6_000.0, 80.0)],
            hot: vec![with_cpu(12_000.0, 70.0)],
            writes_per_get: [vec![0.0, 0.0], vec![0.05, 0.04], vec![0.05]],
            rounds: 2,
            visits_used: 0,
            gets_answered: 0,
            wrk_runs: 0,
            exact_gets: 0,
            exact_taken: 0,
            exact_took: std::time::Duration::ZERO,
            log_note: None,
            cpu_ticks_per_second: 100,
        };
        let table = visit_limits_table(&v).text();
        assert!(table.contains("requests/s"), "{table}");
        let limited = table.lines().find(|l| l.starts_with("(b)")).unwrap();
        // Medians of two rounds: 8 000/s, 82 µs; write transactions 0.045 a GET.
        assert!(
            limited.contains("8000") && limited.contains("6000–10000"),
            "{limited}"
        );
        assert!(
            limited.contains("82.00") && limited.contains("0.045"),
            "{limited}"
        );
        let ratios = visit_limits_ratios(&v).text();
        // Within each round: 0.25 and 0.30; hot ran in round 1 only.
        let line = |start: &str| ratios.lines().find(|l| l.starts_with(start)).unwrap();
        assert!(line("limited / unlimited, requests/s").contains("0.28  0.25–0.30"));
        assert!(line("hot / unlimited, requests/s").contains("0.30  0.30–0.30"));
        let rounds = visit_limits_rounds(&v).text();
        assert!(rounds.contains("1 (unlimited, limited, hot)"), "{rounds}");
        assert!(rounds.contains("2 (limited, hot, unlimited)"), "{rounds}");
        assert!(rounds.lines().nth(2).unwrap().contains("n/a"), "{rounds}");
    }

    #[test]
    fn link_creation_reports_cpu_per_link_of_the_service_and_postgres() {
        let creates = |per_second: f64, server_us: f64, pg_us: Option<f64>| creates::Creates {
            per_second,
            errors: 0,
            flushes: Some(0.12),
            audit_per_link: Some(1.0),
            cpu: PerRequest {
                server_us: Some(server_us),
                pg_us,
            },
        };
        let report = Report {
            server: Server {
                version: "15".to_owned(),
                fsync: "on".to_owned(),
                synchronous_commit: "on".to_owned(),
                data_dir: "pg".into(),
                reused: false,
            },
            creation: Some(Creation {
                baseline: creates::Baseline {
                    tps: 12_000.0,
                    failed: 0,
                    flushes: Some(0.16),
                },
                creates: creates(1_500.0, 210.456, Some(95.0)),
                bulk: creates(24_000.0, 31.5, None),
                cpu_ticks_per_second: 100,
            }),
            redirects: None,
            reads: None,
            limits: None,
            stats: None,
            search: None,
            visit_limits: None,
        };
        let about = About {
            date: utc(0),
            machine: "test".to_owned(),
            commit: "abc1234".to_owned(),
            command: "cargo xtask bench --only creates".to_owned(),
        };
        let opts = Options::default();
        let text = report.render_text(&about, opts);
        let row = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .unwrap_or_else(|| panic!("no {name:?} in {text}"))
                .split_whitespace()
                .last()
                .unwrap()
                .to_owned()
        };
        assert_eq!(row("service CPU per link created, single (µs)"), "210.46");
        assert_eq!(row("PostgreSQL CPU per link created, single (µs)"), "95.00");
        assert_eq!(row("service CPU per link created, bulk (µs)"), "31.50");
        assert_eq!(row("PostgreSQL CPU per link created, bulk (µs)"), "n/a");
        // The rows before them keep their place and meaning.
        assert_eq!(row("audit entries per link created in bulk"), "1.00");
        assert_eq!(row("WAL flushes per pgbench INSERT"), "0.16");
        assert!(text.contains("clock ticks of 1/100 s"), "{text}");
        let markdown = report.render_markdown(&about, opts);
        assert!(
            markdown.contains("| service CPU per link created, bulk (µs) | 31.50 |"),
            "{markdown}"
        );
    }

    #[test]
    fn the_replica_row_is_paired_with_the_primary_only_cold_runs() {
        let run = |per_second: f64, server_us: f64, pg_us: f64| Load {
            per_second,
            ..cpu(Some(server_us), Some(pg_us))
        };
        let cold = [
            run(80_000.0, 12.0, 7.0),
            run(60_000.0, 14.0, 8.0),
            run(70_000.0, 13.0, 7.5),
        ];
        let replica = [
            run(76_000.0, 12.5, 1.0),
            run(60_000.0, 14.6, 1.2),
            run(63_000.0, 13.4, 1.1),
        ];
        // The difference of the medians (13.4 - 13.0), and within each round.
        let (cost, rounds) = lag_check_cost(&replica, &cold);
        assert!((cost.unwrap() - 0.4).abs() < 1e-9);
        let rounds = rounds.unwrap();
        assert!((rounds.min - 0.4).abs() < 1e-9 && (rounds.max - 0.6).abs() < 1e-9);
        let r = paired(&replica, &cold, rps).unwrap();
        assert!((r.median - 0.95).abs() < 1e-9 && (r.min - 0.9).abs() < 1e-9);
        assert_eq!(lag_check_cost(&[], &cold), (None, None));
        assert_eq!(
            round_label(0, true),
            "1 (bare, on, off, off-no-limits, off-no-metrics; cold, lookup, replica)"
        );
        assert_eq!(
            round_label(1, true),
            "2 (on, off, off-no-limits, off-no-metrics, bare; replica, lookup, cold)"
        );
        assert_eq!(
            round_label(1, false),
            "2 (on, off, off-no-limits, off-no-metrics, bare; lookup, cold)"
        );
        let mut runs = redirects::ReplicaRuns {
            cold: replica.to_vec(),
            routed: vec![None, None, None],
            ..Default::default()
        };
        let notes = replica_notes(&runs).join("\n");
        assert!(notes.contains("NO ROUTED READS EXPORTED"), "{notes}");
        runs.routed[0] = Some(redirects::Routed {
            replica: 0.0,
            primary: 1000.0,
        });
        let notes = replica_notes(&runs).join("\n");
        assert!(notes.contains("NO READ WENT TO THE REPLICA"), "{notes}");
        runs.routed[1] = Some(redirects::Routed {
            replica: 900.0,
            primary: 0.0,
        });
        let notes = replica_notes(&runs).join("\n");
        assert!(
            !notes.contains("NO READ") && !notes.contains("NO ROUTED"),
            "{notes}"
        );
        assert!(notes.contains("round 2: 900 to the replica, 0 to the primary"));
        runs.refused = true;
        assert!(replica_notes(&runs)[0].contains("REFUSES database.replica_urls"));
        runs.missing = Some("pg_basebackup failed".to_owned());
        assert!(replica_notes(&runs)[0].contains("none could be provisioned"));
        assert!(replica_notes(&redirects::ReplicaRuns::default()).is_empty());
    }

    #[test]
    fn cpu_per_request_is_service_plus_postgres_over_bare() {
        let bare = [cpu(Some(7.5), None), cpu(Some(8.0), None)];
        let on = [cpu(Some(8.5), Some(0.15)), cpu(Some(8.0), Some(0.8))];
        let r = paired(&on, &bare, cpu_total).unwrap();
        assert!((r.min - 1.1).abs() < 1e-9 && (r.max - 8.65 / 7.5).abs() < 1e-9);
        assert_eq!(over_rounds(&on, cpu_pg).map(|s| s.max), Some(0.8));
        assert_eq!(over_rounds(&bare, cpu_pg), None);
        // A run without a CPU figure drops out of the ratios instead of counting as 0.
        let unmeasured = [cpu(None, None), cpu(Some(8.0), None)];
        assert_eq!(
            paired(&on, &unmeasured, cpu_total).map(|s| s.min),
            Some(1.1)
        );
        assert_eq!(verdict(Some(1.1), CPU_TARGET, false), "PASS");
        assert_eq!(verdict(Some(1.16), CPU_TARGET, false), "MISS");
    }
}

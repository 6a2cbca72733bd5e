//! The link-creation half of the bench: pgbench's single-row INSERT (the baseline), then
//! `POST /api/v1/links` against the release service from N keep-alive clients (one
//! thread each, the bench's own HTTP client), then `POST /api/v1/links/bulk` with
//! [`BULK_SIZE`] links a request from N clients (issue #15), each on a fresh database;
//! with the WAL flushes each write cost (`pg_stat_wal`), the audit entries per link, and
//! the CPU time per link created of the service and of PostgreSQL (`cpu`, read from
//! `/proc` just before and after the measured window, for issue #20's capacity plan).

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::WARM_UP;
use super::cli::Options;
use super::cluster::Cluster;
use super::cpu::{Meter, PerRequest};
use super::http::Http;
use super::pgbench;
use super::service::Service;

/// Non-201 answers after which the measurement stops early.
const ABORT_AFTER_ERRORS: u64 = 100;

/// Links per bulk request: the most one may ask for.
pub const BULK_SIZE: usize = 1000;

/// The link-creation half: the single-INSERT baseline, the service's creates one by one
/// and in bulk.
pub struct Creation {
    pub baseline: Baseline,
    pub creates: Creates,
    /// `per_second` counts links, not requests, and so does `cpu`.
    pub bulk: Creates,
    /// Clock ticks per second of the CPU times (their resolution).
    pub cpu_ticks_per_second: u64,
}

/// How the clients create.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `POST /api/v1/links`, one link a request (201).
    Single,
    /// `POST /api/v1/links/bulk`, [`BULK_SIZE`] links a request (200).
    Bulk,
}

/// pgbench's INSERTs.
#[derive(Debug)]
pub struct Baseline {
    pub tps: f64,
    pub failed: u64,
    /// WAL flushes per committed INSERT during the measured run.
    pub flushes: Option<f64>,
}

/// The service's creates.
#[derive(Debug)]
pub struct Creates {
    pub per_second: f64,
    pub errors: u64,
    /// WAL flushes per link created during the measured window.
    pub flushes: Option<f64>,
    /// Audit entries written per link created in the window (1 when every create is
    /// audited).
    pub audit_per_link: Option<f64>,
    /// CPU time per link created in the measured window (not per request: a bulk
    /// request's is shared by its links), µs: the service's process (`server_us`) and
    /// PostgreSQL's (`pg_us`: the postmaster, its children and its exited children).
    pub cpu: PerRequest,
}

/// Measures both, `opts.clients` clients each.
pub fn measure(pg: &Cluster, exe: &Path, work: &Path, opts: Options) -> Result<Creation> {
    println!(
        "==> baseline: pgbench, one INSERT per transaction, {} clients, {} s",
        opts.clients, opts.seconds
    );
    let baseline = baseline(pg, work, opts)?;
    println!("    {:.1} tps", baseline.tps);
    let meter = Meter::new(pg.postmaster_pid()?);

    println!(
        "==> service: POST /api/v1/links, {} clients, {} account(s), {} s",
        opts.clients, opts.accounts, opts.seconds
    );
    let creates = service_load(pg, &meter, exe, work, opts, "bench_2", Kind::Single)?;
    println!(
        "    {:.1} creates/s; CPU per link created (µs, {}): {}",
        creates.per_second,
        creates.cpu.parts(),
        creates.cpu
    );

    println!(
        "==> service: POST /api/v1/links/bulk, {BULK_SIZE} links a request, {} clients, {} \
         account(s), {} s",
        opts.clients, opts.accounts, opts.seconds
    );
    let bulk = service_load(pg, &meter, exe, work, opts, "bench_3", Kind::Bulk)?;
    println!(
        "    {:.1} links/s; CPU per link created (µs, {}): {}",
        bulk.per_second,
        bulk.cpu.parts(),
        bulk.cpu
    );
    Ok(Creation {
        baseline,
        creates,
        bulk,
        cpu_ticks_per_second: meter.ticks_per_second(),
    })
}

/// The service on a fresh database `db`, loaded by `opts.clients` clients creating as
/// `kind` says; `meter` reads the CPU time of the service and of PostgreSQL.
fn service_load(
    pg: &Cluster,
    meter: &Meter,
    exe: &Path,
    work: &Path,
    opts: Options,
    db: &str,
    kind: Kind,
) -> Result<Creates> {
    let url = pg.fresh_database(db)?;
    // The business plan's rate (6 000 a minute) would refuse most of the load: counted,
    // as in production, but never reached.
    let service = Service::start_with(
        exe,
        work,
        &url,
        opts.clients,
        if kind == Kind::Bulk {
            "shortener-bulk.log"
        } else {
            "shortener.log"
        },
        &[(
            "SHORTENER__PLANS__BUSINESS__REQUESTS_PER_MINUTE",
            "1000000000".to_owned(),
        )],
    )?;
    load(service, meter, opts, kind, || {
        Sample::take(pg, db, "shortener.links", true)
    })
}

/// pgbench, one single-row INSERT per transaction, on a fresh database.
fn baseline(pg: &Cluster, work: &Path, opts: Options) -> Result<Baseline> {
    let db = "bench_1";
    pg.fresh_database(db)?;
    pg.psql(
        db,
        "CREATE TABLE bench_insert (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), v text NOT NULL)",
    )?;
    let script = work.join("insert.sql");
    std::fs::write(&script, "INSERT INTO bench_insert (v) VALUES ('x');\n")
        .with_context(|| format!("writing {}", script.display()))?;
    pgbench::run(pg, db, &script, opts.clients, WARM_UP.as_secs(), &[])
        .context("pgbench warm-up")?;
    let before = Sample::take(pg, db, "bench_insert", false)?;
    let run = pgbench::run(pg, db, &script, opts.clients, opts.seconds, &[])?;
    Ok(Baseline {
        tps: run.tps,
        failed: run.failed,
        flushes: Sample::take(pg, db, "bench_insert", false)?.flushes_since(before),
    })
}

/// Cluster-wide WAL flushes and row counts at one instant, to tell how many trips to
/// disk each committed write cost (group commit can make it less than one).
#[derive(Debug, Clone, Copy, Default)]
struct Sample {
    wal_syncs: u64,
    rows: u64,
    audit: u64,
}

impl Sample {
    /// `pg_stat_wal.wal_sync` (PostgreSQL 14+) and the rows of `table` (and of the audit
    /// log, when `audit`) in `db`.
    fn take(pg: &Cluster, db: &str, table: &str, audit: bool) -> Result<Sample> {
        let audit_sql = if audit {
            "(SELECT count(*) FROM audit.entries)"
        } else {
            "0"
        };
        let out = pg.psql(
            db,
            &format!(
                "SELECT (SELECT wal_sync FROM pg_stat_wal) || ' ' || \
                 (SELECT count(*) FROM {table}) || ' ' || {audit_sql}"
            ),
        )?;
        parse_sample(&out).with_context(|| format!("unexpected sample {out:?}"))
    }

    /// Flushes per row written since `before`.
    fn flushes_since(self, before: Sample) -> Option<f64> {
        let rows = self.rows.checked_sub(before.rows).filter(|r| *r > 0)?;
        Some(self.wal_syncs.saturating_sub(before.wal_syncs) as f64 / rows as f64)
    }
}

/// `wal_syncs rows audit`.
fn parse_sample(out: &str) -> Option<Sample> {
    let mut n = out.split(' ').map(str::parse::<u64>);
    match (n.next(), n.next(), n.next()) {
        (Some(Ok(wal_syncs)), Some(Ok(rows)), Some(Ok(audit))) => Some(Sample {
            wal_syncs,
            rows,
            audit,
        }),
        _ => None,
    }
}

/// What the clients saw, added up across their threads.
#[derive(Default)]
struct Stats {
    created: AtomicU64,
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
    abort: AtomicBool,
}

impl Stats {
    fn error(&self, what: String) {
        let errors = self.errors.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(what);
        }
        if errors >= ABORT_AFTER_ERRORS {
            self.abort.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `opts.clients` clients against `service` (over `opts.accounts` accounts, round
/// robin) for the warm-up and the measurement; `sample` is read when the measured window
/// opens and closes, and so is `meter` (the service's process and PostgreSQL), just
/// before `sample`: the CPU window is the one the links are counted in, and takes in the
/// opening sample's query (a few ms of PostgreSQL's CPU against seconds). Stops the
/// service before returning.
fn load(
    service: Service,
    meter: &Meter,
    opts: Options,
    kind: Kind,
    sample: impl Fn() -> Result<Sample>,
) -> Result<Creates> {
    let keys = (0..opts.accounts)
        .map(|n| service.account_key(n))
        .collect::<Result<Vec<_>>>()?;
    let stats = Stats::default();
    let warm_until = Instant::now() + WARM_UP;
    let end = warm_until + Duration::from_secs(opts.seconds);
    let addr = service.addr();
    let pid = service.pid();
    let window = std::thread::scope(|s| {
        for thread in 0..opts.clients {
            let (stats, key) = (&stats, keys[thread % keys.len()].as_str());
            s.spawn(move || client(kind, thread, addr, key, warm_until, end, stats));
        }
        let sleep_until =
            |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
        sleep_until(warm_until);
        let cpu_before = meter.read(Some(pid), true);
        let first = sample();
        sleep_until(end);
        // Read before the clients' last answers come in: those are not counted.
        let cpu_after = meter.read(Some(pid), true);
        Ok::<_, anyhow::Error>((first?, sample()?, cpu_before?, cpu_after?))
    })?;
    let created = stats.created.load(Ordering::Relaxed);
    let errors = stats.errors.load(Ordering::Relaxed);
    let first = stats
        .first_error
        .lock()
        .ok()
        .and_then(|e| e.clone())
        .unwrap_or_default();
    if stats.abort.load(Ordering::Relaxed) || errors * 100 > created {
        bail!(
            "{errors} request(s) failed ({created} links were created); the first: {first}\n{}",
            service.log_tail()
        );
    }
    if errors > 0 {
        println!("    warning: {errors} request(s) failed; the first: {first}");
    }
    let per_second = created as f64 / opts.seconds as f64;
    let (before, after, cpu_before, cpu_after) = window;
    Ok(Creates {
        per_second,
        errors,
        flushes: after.flushes_since(before),
        audit_per_link: {
            let links = after.rows.saturating_sub(before.rows);
            (links > 0).then(|| after.audit.saturating_sub(before.audit) as f64 / links as f64)
        },
        // Per link the clients counted in the window, as `per_second`: for bulk, links,
        // not requests.
        cpu: meter.between(cpu_before, cpu_after, created),
    })
}

/// One client: create links back to back on its own keep-alive connection until `end`;
/// count the links of the answers that complete between `warm_until` and `end`.
fn client(
    kind: Kind,
    thread: usize,
    addr: std::net::SocketAddr,
    key: &str,
    warm_until: Instant,
    end: Instant,
    stats: &Stats,
) {
    let mut http = Http::new(addr);
    let mut created = 0u64;
    for n in 0u64.. {
        if Instant::now() >= end || stats.abort.load(Ordering::Relaxed) {
            break;
        }
        let (path, body, ok) = match kind {
            Kind::Single => (
                "/api/v1/links",
                format!(r#"{{"url":"https://example.com/{thread}/{n}"}}"#),
                201,
            ),
            Kind::Bulk => ("/api/v1/links/bulk", bulk_body(thread, n), 200),
        };
        let answer = http.request("POST", path, Some(key), Some(&body));
        let done = Instant::now();
        match answer {
            Ok((status, body)) if status == ok => {
                let links = match kind {
                    Kind::Single => 1,
                    Kind::Bulk => bulk_created(&body),
                };
                if links < BULK_SIZE as u64 && kind == Kind::Bulk {
                    stats.error(format!(
                        "a bulk create made {links} of {BULK_SIZE} links: {}",
                        String::from_utf8_lossy(&body)
                            .chars()
                            .take(300)
                            .collect::<String>()
                    ));
                }
                if done >= warm_until && done <= end {
                    created += links;
                }
            }
            Ok((status, body)) => stats.error(format!(
                "{status} {}",
                String::from_utf8_lossy(&body)
                    .chars()
                    .take(300)
                    .collect::<String>()
            )),
            Err(e) => stats.error(format!("{e:#}")),
        }
    }
    stats.created.fetch_add(created, Ordering::Relaxed);
}

/// A bulk create body: [`BULK_SIZE`] links, each to its own URL.
fn bulk_body(thread: usize, n: u64) -> String {
    let mut body = String::with_capacity(BULK_SIZE * 48 + 16);
    body.push_str(r#"{"links":["#);
    for i in 0..BULK_SIZE {
        if i > 0 {
            body.push(',');
        }
        let _ = write!(body, r#"{{"url":"https://example.com/{thread}/{n}/{i}"}}"#);
    }
    body.push_str("]}");
    body
}

/// The links a bulk answer reports created: its items that are not problems.
fn bulk_created(answer: &[u8]) -> u64 {
    let problems = answer
        .windows(br#""problem":"#.len())
        .filter(|w| *w == br#""problem":"#)
        .count();
    BULK_SIZE.saturating_sub(problems) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_flushes_per_row_written() {
        let before = parse_sample("100 10 3").unwrap();
        let after = parse_sample("150 60 53").unwrap();
        assert_eq!((after.rows, after.audit), (60, 53));
        assert_eq!(after.flushes_since(before), Some(1.0));
        assert_eq!(before.flushes_since(before), None, "no row written");
        assert!(parse_sample(" 10 3").is_none());
        assert!(parse_sample("1 2").is_none());
    }

    #[test]
    fn a_bulk_body_holds_its_links_and_an_answer_counts_them() {
        let body = bulk_body(3, 7);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["links"].as_array().unwrap().len(), BULK_SIZE);
        assert_eq!(v["links"][999]["url"], "https://example.com/3/7/999");
        assert_eq!(bulk_created(br#"{"items":[{"index":0,"link":{}}]}"#), 1000);
        assert_eq!(
            bulk_created(br#"{"items":[{"index":0,"problem":{}},{"index":1,"problem":{}}]}"#),
            998
        );
    }

    #[test]
    fn the_run_stops_after_too_many_errors() {
        let stats = Stats::default();
        for n in 0..ABORT_AFTER_ERRORS {
            assert!(!stats.abort.load(Ordering::Relaxed));
            stats.error(format!("error {n}"));
        }
        assert!(stats.abort.load(Ordering::Relaxed));
        assert_eq!(
            stats.first_error.lock().unwrap().as_deref(),
            Some("error 0")
        );
    }
}

//! The redirect half of `cargo xtask bench` (issue #5): a bare actix-web ceiling, cached
//! redirects with click counting on and off, cold-cache redirects, a pgbench primary-key
//! lookup baseline, and the service's resident memory with 1 000 000 links cached.
//!
//! The links are written straight into `shortener.links` with SQL (one account made
//! through the admin API owns them): link `n` (1-based) has the code [`code`]`(n)` and
//! the target `https://example.com/<n>`, so wrk's Lua scripts and pgbench compute codes
//! from numbers instead of reading lists. Links `1..=CACHED` are the cached set; the
//! others are only ever asked for once per service start (the cold run, then the fill of
//! the memory run).

use std::fmt::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::wrk;
use super::{Binaries, Cluster, Http, Options, Service, WARM_UP, stop_child};

/// Links the cached runs ask for, at random.
pub const CACHED: u64 = 100_000;
/// Links in the database, all held in cache at the end of the memory run (the default
/// `redirect.cache_entries`).
pub const TOTAL: u64 = 1_000_000;
/// HTTP workers of both the service and the bare server.
pub const WORKERS: usize = 2;
/// The first code of the cold run proper; `CACHED + 1 .. COLD_FIRST` is its warm-up's.
const COLD_FIRST: u64 = 250_001;
/// The database of the redirect runs.
const DB: &str = "bench_3";

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
fn code_sql(n: &str) -> String {
    format!("'k' || lpad(to_hex(({n} * {SCRAMBLE}) & 16777215), 6, '0')")
}

fn target(n: u64) -> String {
    format!("https://example.com/{n}")
}

/// One load measurement: requests (or transactions) per second and latency percentiles.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub per_second: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

impl From<&wrk::Run> for Load {
    fn from(run: &wrk::Run) -> Load {
        Load {
            per_second: run.requests_per_sec,
            p50_ms: Some(run.p50_ms),
            p99_ms: Some(run.p99_ms),
        }
    }
}

/// Everything the redirect runs measured.
#[derive(Debug)]
pub struct Redirects {
    pub wrk_version: String,
    pub bare: Load,
    pub cached_on: Load,
    pub cached_off: Load,
    pub cold: Load,
    /// The cold run's threads ran out of fresh codes (its figure includes repeats).
    pub cold_wrapped: bool,
    pub lookup: Load,
    pub lookup_failed: u64,
    /// Resident memory of the service (bytes): just started, with `CACHED` links cached,
    /// with `TOTAL` cached.
    pub rss_fresh: u64,
    pub rss_cached: u64,
    pub rss_full: u64,
    /// Clicks the counting-on cached service wrote, and the GETs it answered as far as
    /// the clients know (wrk does not count answers still in flight when it stops).
    pub clicks_counted: u64,
    pub gets_answered: u64,
    /// First touches per second of the memory run's fill (HEAD, so no clicks; std
    /// client, `2 × clients` threads): a second look at the cold path.
    pub fill_per_second: f64,
    /// Warnings and errors the services logged, one summary line per run that had any.
    pub log_notes: Vec<String>,
}

/// Runs every redirect measurement on `pg`; services use `opts.clients` connections.
pub fn measure(
    pg: &Cluster,
    bins: &Binaries,
    bare_exe: &Path,
    work: &Path,
    opts: Options,
    wrk_version: String,
) -> Result<Redirects> {
    let exe = bins.service.as_path();
    let random = work.join("random.lua");
    let walk = work.join("walk.lua");
    for (path, text) in [(&random, wrk::RANDOM_LUA), (&walk, wrk::WALK_LUA)] {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let secs = opts.seconds;
    let warm = WARM_UP.as_secs();
    let random_args = vec!["1".to_owned(), CACHED.to_string()];

    println!("==> redirects: {TOTAL} links, written with SQL into a fresh database");
    let url = prepare_links(pg, exe, work, opts)?;

    println!(
        "==> baseline: pgbench -M prepared, primary-key lookup of shortener.links by code, \
         {} clients (the service's pool size), {secs} s",
        opts.clients
    );
    let (lookup, lookup_failed) = lookup_baseline(pg, work, opts)?;
    println!("    {:.1} tps", lookup.per_second);

    println!(
        "==> bare actix-web 302 from a HashMap of {CACHED} links, {WORKERS} workers: \
         wrk -t{} -c{}, random codes, {secs} s",
        wrk::THREADS,
        wrk::CONNECTIONS
    );
    let links_file = work.join("links.tsv");
    write_links_file(&links_file)?;
    let bare = {
        let server = Bare::start(bare_exe, work, &links_file)?;
        let url = format!("http://{}", server.addr);
        wrk::run(&url, &random, &random_args, warm)?.check("bare warm-up")?;
        let run = wrk::run(&url, &random, &random_args, secs)?;
        run.check("bare")?;
        Load::from(&run)
    };
    print_load(&bare);

    let mut log_notes = Vec::new();
    let mut gets_answered = 0;
    println!(
        "==> service, cached, counting on: {CACHED} links touched once, then random codes, {secs} s"
    );
    let (cached_on, rss_cached) = {
        let service = start(exe, work, &url, opts, true, "cached-on")?;
        let touched = touch(service.addr, "GET", 1, CACHED, opts.clients * 2)?;
        let rss_cached = rss(&service.child)?;
        let base = format!("http://{}", service.addr);
        let warm_run = wrk::run(&base, &random, &random_args, warm)?;
        warm_run.check("cached (counting on) warm-up")?;
        let run = wrk::run(&base, &random, &random_args, secs)?;
        run.check("cached (counting on)")?;
        gets_answered += touched.requests + warm_run.requests + run.requests;
        (Load::from(&run), rss_cached)
        // Dropped: SIGTERM, and the service writes every click it counted.
    };
    print_load(&cached_on);
    log_notes.extend(log_note(work, "cached-on", "cached, counting on")?);
    let clicks_counted = pg
        .psql(
            DB,
            "SELECT coalesce(sum(clicks), 0) FROM shortener.link_daily_clicks",
        )?
        .parse()
        .context("reading the clicks counted")?;
    println!("    {clicks_counted} clicks counted for {gets_answered} GETs answered");

    println!("==> service, cached, counting off: the same, {secs} s");
    let cached_off = {
        let service = start(exe, work, &url, opts, false, "cached-off")?;
        touch(service.addr, "GET", 1, CACHED, opts.clients * 2)?;
        let base = format!("http://{}", service.addr);
        wrk::run(&base, &random, &random_args, warm)?.check("cached (counting off) warm-up")?;
        let run = wrk::run(&base, &random, &random_args, secs)?;
        run.check("cached (counting off)")?;
        Load::from(&run)
    };
    print_load(&cached_off);
    log_notes.extend(log_note(work, "cached-off", "cached, counting off")?);

    println!(
        "==> service, cold cache, counting on: a fresh start, every request a code not asked \
         for before, {secs} s"
    );
    let cold_run = {
        let service = start(exe, work, &url, opts, true, "cold")?;
        let base = format!("http://{}", service.addr);
        let threads = wrk::THREADS.to_string();
        let warm_args = vec![
            (CACHED + 1).to_string(),
            (COLD_FIRST - 1).to_string(),
            threads.clone(),
        ];
        wrk::run(&base, &walk, &warm_args, warm)?.check("cold warm-up")?;
        let cold_args = vec![COLD_FIRST.to_string(), TOTAL.to_string(), threads];
        let run = wrk::run(&base, &walk, &cold_args, secs)?;
        run.check("cold")?;
        run
    };
    let cold = Load::from(&cold_run);
    print_load(&cold);
    if cold_run.wrapped {
        println!("    warning: the cold run ran out of fresh codes; its figure includes repeats");
    }
    log_notes.extend(log_note(work, "cold", "cold cache")?);

    // HEAD fills the cache exactly as GET does but counts no click, so what is measured
    // is the cache, not a backlog of clicks waiting to be written.
    println!("==> memory: a fresh service, every one of the {TOTAL} links asked for once (HEAD)");
    let (rss_fresh, rss_full, filled) = {
        let service = start(exe, work, &url, opts, true, "memory")?;
        let rss_fresh = rss(&service.child)?;
        let filled = touch(service.addr, "HEAD", 1, TOTAL, opts.clients * 2)?;
        std::thread::sleep(Duration::from_secs(1));
        (rss_fresh, rss(&service.child)?, filled)
    };
    println!(
        "    {} resident ({} after start)",
        mb(rss_full),
        mb(rss_fresh)
    );
    log_notes.extend(log_note(work, "memory", "memory")?);

    Ok(Redirects {
        wrk_version,
        bare,
        cached_on,
        cached_off,
        cold,
        cold_wrapped: cold_run.wrapped,
        lookup,
        lookup_failed,
        rss_fresh,
        rss_cached,
        rss_full,
        clicks_counted,
        gets_answered,
        fill_per_second: filled.per_second(),
        log_notes,
    })
}

/// One line summing up the warnings and errors in the log of the service run `name`
/// (`None` when there are none): `run: 3× WARN message (last: fields); ...`.
fn log_note(work: &Path, name: &str, run: &str) -> Result<Option<String>> {
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

fn print_load(load: &Load) {
    let ms = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2} ms"));
    println!(
        "    {:.1} requests/s, p50 {}, p99 {}",
        load.per_second,
        ms(load.p50_ms),
        ms(load.p99_ms)
    );
}

/// Bytes as decimal megabytes, e.g. `212.4 MB`.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The service for a redirect run: `WORKERS` workers, counting on or off.
fn start(
    exe: &Path,
    work: &Path,
    url: &str,
    opts: Options,
    count_clicks: bool,
    name: &str,
) -> Result<Service> {
    Service::start_with(
        exe,
        work,
        url,
        opts.clients,
        &format!("shortener-{name}.log"),
        &[
            ("SHORTENER__SERVER__WORKERS", WORKERS.to_string()),
            (
                "SHORTENER__REDIRECT__COUNT_CLICKS",
                count_clicks.to_string(),
            ),
        ],
    )
}

/// A fresh database with the schema (the service migrates it), one account, and `TOTAL`
/// links inserted with SQL; returns its URL.
fn prepare_links(pg: &Cluster, exe: &Path, work: &Path, opts: Options) -> Result<String> {
    let started = Instant::now();
    let url = pg.fresh_database(DB)?;
    let account = {
        let service = start(exe, work, &url, opts, true, "setup")?;
        service.create_account("bench redirects")?
    };
    if !account.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        bail!("unexpected account id {account:?}");
    }
    pg.psql(
        DB,
        &format!(
            "INSERT INTO shortener.links (id, code, account_id, target, created_at) \
             SELECT gen_random_uuid(), {}, '{account}', 'https://example.com/' || n, now() \
             FROM generate_series(1::bigint, {TOTAL}) AS n",
            code_sql("n")
        ),
    )?;
    pg.psql(DB, "VACUUM ANALYZE shortener.links")?;
    // The SQL, Rust (and so the Lua) codes agree, and the lookup uses the unique index.
    let probes = [1, CACHED, COLD_FIRST, TOTAL];
    let list = probes
        .iter()
        .map(|n| format!("('{}', '{}')", code(*n), target(*n)))
        .collect::<Vec<_>>()
        .join(", ");
    let found = pg.psql(
        DB,
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
    println!("    {TOTAL} links in {:.0?}", started.elapsed());
    Ok(url)
}

/// `code<TAB>target` for the cached set, for the bare server.
fn write_links_file(path: &Path) -> Result<()> {
    let mut text = String::with_capacity(40 * CACHED as usize);
    for n in 1..=CACHED {
        let _ = writeln!(text, "{}\t{}", code(n), target(n));
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// pgbench `-M prepared`: one `SELECT target FROM shortener.links WHERE code = ...` of a
/// random bench link per transaction, `opts.clients` clients; latency percentiles from a
/// 10% sample of the per-transaction log. Returns the load and the failed transactions.
fn lookup_baseline(pg: &Cluster, work: &Path, opts: Options) -> Result<(Load, u64)> {
    let script = work.join("lookup.sql");
    std::fs::write(
        &script,
        format!(
            "\\set n random(1, {TOTAL})\nSELECT target FROM shortener.links WHERE code = {};\n",
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
    let prepared = ["-M", "prepared"];
    super::pgbench(pg, DB, &script, opts.clients, WARM_UP.as_secs(), &prepared)
        .context("pgbench lookup warm-up")?;
    let prefix = "pgbench_lookup";
    remove_logs(work, prefix)?;
    // pgbench writes `<prefix>.<pid>[.<thread>]`, relative to its working directory.
    let log_prefix = work.join(prefix);
    let log_prefix = log_prefix
        .to_str()
        .context("the bench directory is not UTF-8")?;
    let mut args = prepared.to_vec();
    args.extend(["-l", "--sampling-rate", "0.1", "--log-prefix", log_prefix]);
    let run = super::pgbench(pg, DB, &script, opts.clients, opts.seconds, &args)?;
    let mut latencies = read_logs(work, prefix)?;
    latencies.sort_unstable();
    let load = Load {
        per_second: run.tps,
        p50_ms: percentile(&latencies, 0.50).map(|us| us as f64 / 1e3),
        p99_ms: percentile(&latencies, 0.99).map(|us| us as f64 / 1e3),
    };
    Ok((load, run.failed))
}

fn logs(work: &Path, prefix: &str) -> Result<Vec<std::path::PathBuf>> {
    let dot = format!("{prefix}.");
    Ok(std::fs::read_dir(work)
        .with_context(|| format!("listing {}", work.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&dot))
        })
        .collect())
}

fn remove_logs(work: &Path, prefix: &str) -> Result<()> {
    for path in logs(work, prefix)? {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Transaction latencies (µs, the third field of each line) of pgbench's logs.
fn read_logs(work: &Path, prefix: &str) -> Result<Vec<u64>> {
    let mut latencies = Vec::new();
    for path in logs(work, prefix)? {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split(' ').nth(2)?.parse::<u64>().ok()),
        );
    }
    Ok(latencies)
}

/// The `q` quantile of sorted values (nearest rank).
fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// Resident memory of a child process (`VmRSS`), in bytes.
fn rss(child: &Child) -> Result<u64> {
    let path = format!("/proc/{}/status", child.id());
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_rss(&status).with_context(|| format!("no VmRSS in {path}"))
}

fn parse_rss(status: &str) -> Option<u64> {
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

// ---------------------------------------------------------------------------------------
// Touching codes once: a blocking client per thread, each on its own keep-alive connection.

struct Touched {
    requests: u64,
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
fn touch(addr: SocketAddr, method: &str, first: u64, last: u64, threads: usize) -> Result<Touched> {
    let started = Instant::now();
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let step = threads as u64;
    let errors = std::thread::scope(|s| {
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
        handles
            .into_iter()
            .filter_map(|h| match h.join() {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e),
                Err(_) => Some(anyhow::anyhow!("a client thread panicked")),
            })
            .collect::<Vec<_>>()
    });
    if let Some(e) = errors.into_iter().next() {
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

// ---------------------------------------------------------------------------------------
// The bare server

/// `bare-redirect` as a child process; stopped when dropped.
struct Bare {
    child: Child,
    addr: SocketAddr,
}

impl Bare {
    fn start(exe: &Path, work: &Path, links: &Path) -> Result<Bare> {
        let addr = {
            let probe = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            probe.local_addr().context("finding a free port")?
        };
        let log = work.join("bare-redirect.log");
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(exe)
            .arg(addr.to_string())
            .arg(links)
            .arg(WORKERS.to_string())
            .stdin(Stdio::null())
            .stdout(
                log_file
                    .try_clone()
                    .context("opening the bare server's log")?,
            )
            .stderr(log_file)
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut bare = Bare { child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        let probe = format!("/{}", code(1));
        loop {
            if let Some(status) = bare.child.try_wait().context("checking the bare server")? {
                bail!(
                    "the bare server exited at start ({status}): {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            match Http::new(addr).request("GET", &probe, None, None) {
                Ok((302, _)) => return Ok(bare),
                Ok((status, _)) => bail!("the bare server answered {status} for GET {probe}"),
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => {
                    bare.stop();
                    return Err(e.context("the bare server did not answer within 30 s"));
                }
            }
        }
    }

    fn stop(&mut self) {
        stop_child(&mut self.child);
    }
}

impl Drop for Bare {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shortener_domain::ShortCode;

    #[test]
    fn codes_are_distinct_valid_and_match_the_scheme() {
        assert_eq!(code(1), "k3779b1");
        let mut seen = vec![false; 1 << 24];
        for n in 1..=TOTAL {
            let c = code(n);
            let v = usize::from_str_radix(&c[1..], 16).unwrap();
            assert!(!seen[v], "code {c} of {n} repeats");
            seen[v] = true;
        }
        for n in [1, 2, CACHED, COLD_FIRST, TOTAL] {
            assert!(ShortCode::parse(&code(n)).is_ok(), "{}", code(n));
            assert_eq!(code(n).len(), ShortCode::GENERATED_LEN);
        }
        assert_eq!(
            code_sql("n"),
            "'k' || lpad(to_hex((n * 2654435761) & 16777215), 6, '0')"
        );
    }

    #[test]
    fn lua_scripts_use_the_same_scramble() {
        for lua in [wrk::RANDOM_LUA, wrk::WALK_LUA] {
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

    #[test]
    fn percentiles_and_rss() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
        let status = "Name:\tshortener\nVmPeak:\t  900 kB\nVmRSS:\t   20480 kB\n";
        assert_eq!(parse_rss(status), Some(20480 * 1024));
        assert_eq!(parse_rss("Name:\tx\n"), None);
    }
}

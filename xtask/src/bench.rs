//! `cargo xtask bench`: what the service does per second, next to what the same machine
//! does without it, measured in one run (issue #5).
//!
//! One run: build `shortener` and the bare server (`xtask/bare-redirect`) in release mode;
//! start a private, durable PostgreSQL under `<target>/bench/pg` (the service's own
//! provisioning, `shortener_pg::local`, so the server is configured exactly like the one
//! `shortener serve` provisions: fsync on); then, each on a fresh database of it:
//!
//! - link creation: pgbench's single-INSERT baseline, and `POST /api/v1/links` from N
//!   keep-alive clients (this file);
//! - redirects (`redirects`): a bare actix-web server answering 302 from a map, cached
//!   redirects with click counting on and off, cold-cache redirects, pgbench's
//!   primary-key lookup, and the service's resident memory with 1 000 000 links cached,
//!   with wrk (`wrk`, installed from Debian when missing) as the HTTP load generator.
//!   The comparisons run as `--rounds` interleaved rounds, and each ratio is taken within
//!   a round: on a shared machine one run against the next moves by ±20 %.
//!
//! Then print the table, with the ratios and the issue's targets (`report`), write it to
//! `bench/results.md` (a full run only), stop the services and (if this run started it)
//! PostgreSQL.
//!
//! Everything runs on the one machine, clients included, so the figures are only
//! comparable with each other, which is the point of measuring the baselines in the same run.

mod redirects;
mod report;
mod wrk;

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use shortener_pg::local::LocalPostgres;

/// What `--help` prints for this command.
pub const USAGE: &str =
    "usage: cargo xtask bench [--seconds N] [--rounds N] [--clients N] [--accounts N]
                         [--only WHAT]

Builds `shortener` and a bare actix-web redirect server (release), provisions a durable
PostgreSQL under target/bench/pg, installs wrk (apt-get) if it is missing, and measures,
on fresh databases of that one server:
  - link creation: pgbench, one single-row INSERT per transaction (the baseline), N
    clients; POST /api/v1/links against the release service, N keep-alive clients;
  - redirects, wrk -t2 -c128, 2 HTTP workers: the bare server (302 from a HashMap of
    100 000 links); the service with those links cached, click counting on, and off;
    the service with a cold cache (first touch of each code); pgbench -M prepared, a
    primary-key lookup of shortener.links by code, N clients (the service's pool size).
    In rounds: the three cached servers run side by side and take turns (bare, on, off,
    the order rotated each round); each round also runs a freshly started cold service
    and the pgbench lookup;
  - the service's resident memory holding 1 000 000 links in its cache.
Prints the figures (medians over the rounds), their ratios (medians of the ratios within
each round, with their range) and the targets of issue #5, and (full runs only) writes
them to bench/results.md.

options:
  --seconds N   length of each measurement, after a 2 s warm-up (default 10)
  --rounds N    rounds of the redirect comparisons (default 3); link creation runs
                once. Each cold round walks the same fresh codes, so longer --seconds
                write more links, up to 3 000 000
  --clients N   concurrent clients, pgbench connections and service pool size (default 16)
  --accounts N  spread the creating clients over N accounts, round robin (default 1:
                every create then queues on that account's monthly counter row)
  --only WHAT   `creates` or `redirects`: measure only that half (bench/results.md is
                then left alone)";

const WARM_UP: Duration = Duration::from_secs(2);
/// Non-201 answers after which the measurement stops early.
const ABORT_AFTER_ERRORS: u64 = 100;

/// Which half of the bench to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    All,
    Creates,
    Redirects,
}

impl Only {
    fn creates(self) -> bool {
        self != Only::Redirects
    }

    fn redirects(self) -> bool {
        self != Only::Creates
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Options {
    seconds: u64,
    /// Rounds of the redirect comparisons.
    rounds: usize,
    clients: usize,
    accounts: usize,
    only: Only,
}

fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut opts = Options {
        seconds: 10,
        rounds: 3,
        clients: 16,
        accounts: 1,
        only: Only::All,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_owned())),
            None => (arg.as_str(), None),
        };
        if matches!(flag, "-h" | "--help") {
            return Ok(None);
        }
        if !matches!(
            flag,
            "--seconds" | "--rounds" | "--clients" | "--accounts" | "--only"
        ) {
            bail!("unknown argument {arg:?}\n\n{USAGE}");
        }
        let value = match inline {
            Some(v) => v,
            None => it
                .next()
                .cloned()
                .with_context(|| format!("{flag} needs a value"))?,
        };
        if flag == "--only" {
            opts.only = match value.as_str() {
                "creates" => Only::Creates,
                "redirects" => Only::Redirects,
                _ => bail!("--only: {value:?} is not `creates` or `redirects`"),
            };
            continue;
        }
        let n: u64 = value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{flag}: {value:?} is not a positive whole number"))?;
        let size = || usize::try_from(n).with_context(|| format!("{flag}: too large"));
        match flag {
            "--seconds" => opts.seconds = n,
            "--rounds" => opts.rounds = size()?,
            "--clients" => opts.clients = size()?,
            _ => opts.accounts = size()?,
        }
    }
    if opts.only.redirects() {
        // Now rather than after the build.
        redirects::Plan::new(opts)?;
    }
    Ok(Some(opts))
}

/// Runs `cargo xtask bench <args>`.
pub fn main(args: &[String]) -> Result<()> {
    let Some(opts) = parse(args)? else {
        println!("{USAGE}");
        return Ok(());
    };
    let started = Instant::now();
    // What is measured: the tree as it is now, before results.md changes.
    let about = report::About::gather(args);
    let wrk = if opts.only.redirects() {
        Some(wrk::ensure_installed()?)
    } else {
        None
    };
    let bins = build(opts.only.redirects())?;
    // <target>/release/shortener -> <target>: honours CARGO_TARGET_DIR and build.target-dir.
    let target = bins
        .service
        .parent()
        .and_then(Path::parent)
        .context("the built binary has no target directory above it")?;
    let work = target.join("bench");
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;

    println!("==> PostgreSQL under {}", work.join("pg").display());
    let mut pg = Cluster::start(&work.join("pg"))?;
    let result = measure(&pg, &bins, &work, opts, wrk);
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

fn measure(
    pg: &Cluster,
    bins: &Binaries,
    work: &Path,
    opts: Options,
    wrk: Option<String>,
) -> Result<Report> {
    let server = Server {
        version: pg.psql("postgres", "SHOW server_version")?,
        fsync: pg.psql("postgres", "SHOW fsync")?,
        synchronous_commit: pg.psql("postgres", "SHOW synchronous_commit")?,
        data_dir: pg.local.data_dir().to_path_buf(),
        reused: !pg.local.started_here(),
    };
    if server.reused {
        // Not ours to stop (LocalPostgres stops only what it started): say how.
        println!(
            "    note: a PostgreSQL was already running there (left by an interrupted run?): \
             using it, and leaving it running; to stop it:\n          {}",
            pg.stop_command()
        );
    }
    println!(
        "    PostgreSQL {} (fsync={}, synchronous_commit={})",
        server.version, server.fsync, server.synchronous_commit
    );

    let creation = if opts.only.creates() {
        Some(measure_creation(pg, &bins.service, work, opts)?)
    } else {
        None
    };
    let redirects = match (&bins.bare, wrk) {
        (Some(bare), Some(wrk)) if opts.only.redirects() => {
            Some(redirects::measure(pg, bins, bare, work, opts, wrk)?)
        }
        _ => None,
    };
    Ok(Report {
        server,
        creation,
        redirects,
    })
}

fn measure_creation(pg: &Cluster, exe: &Path, work: &Path, opts: Options) -> Result<Creation> {
    println!(
        "==> baseline: pgbench, one INSERT per transaction, {} clients, {} s",
        opts.clients, opts.seconds
    );
    let baseline = baseline(pg, work, opts)?;
    println!("    {:.1} tps", baseline.tps);

    println!(
        "==> service: POST /api/v1/links, {} clients, {} account(s), {} s",
        opts.clients, opts.accounts, opts.seconds
    );
    let url = pg.fresh_database("bench_2")?;
    let sample = || Sample::take(pg, "bench_2", "shortener.links", true);
    let creates = Service::start(exe, work, &url, opts.clients)?.bench(opts, &sample)?;
    println!("    {:.1} creates/s", creates.per_second);
    Ok(Creation { baseline, creates })
}

// ---------------------------------------------------------------------------------------
// Build

/// The executables the bench runs.
struct Binaries {
    service: PathBuf,
    /// `bare-redirect`, when the redirects are measured.
    bare: Option<PathBuf>,
}

/// `cargo build --release --bin shortener [--bin bare-redirect]`; returns the executables
/// cargo reports.
fn build(bare: bool) -> Result<Binaries> {
    let started = Instant::now();
    let mut bins = vec!["--bin", "shortener"];
    if bare {
        bins.extend(["--bin", "bare-redirect"]);
    }
    println!("==> cargo build --release {}", bins.join(" "));
    let out = crate::cargo()
        .args(["build", "--release"])
        .args(&bins)
        .arg("--message-format=json-render-diagnostics")
        .stderr(Stdio::inherit())
        .output()
        .context("starting cargo build")?;
    println!("<== cargo build: {:.0?}", started.elapsed());
    if !out.status.success() {
        bail!(
            "cargo build --release {} failed ({})",
            bins.join(" "),
            out.status
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let executable = |name: &str| {
        stdout
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
            .find_map(|m| m["executable"].as_str().map(PathBuf::from))
            .with_context(|| format!("cargo build reported no `{name}` executable"))
    };
    Ok(Binaries {
        service: executable("shortener")?,
        bare: if bare {
            Some(executable("bare-redirect")?)
        } else {
            None
        },
    })
}

// ---------------------------------------------------------------------------------------
// PostgreSQL

/// The bench's private cluster, and where its client tools are.
struct Cluster {
    local: LocalPostgres,
    bin_dir: Option<PathBuf>,
    socket_dir: String,
    stopped: bool,
}

/// Also on early returns and panics: PostgreSQL runs detached and would outlive us.
impl Drop for Cluster {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("xtask: {e:#}");
        }
    }
}

impl Cluster {
    fn start(dir: &Path) -> Result<Cluster> {
        let local = LocalPostgres::start(dir)?;
        let url = local.url("postgres");
        let socket_dir = url
            .split_once("host=")
            .map(|(_, rest)| rest.split('&').next().unwrap_or(rest).to_owned())
            .with_context(|| format!("no host= in the local PostgreSQL URL {url}"))?;
        let bin_dir = server_bin_dir(local.data_dir());
        Ok(Cluster {
            local,
            bin_dir,
            socket_dir,
            stopped: false,
        })
    }

    /// Stops the server if this run started it (see [`LocalPostgres::stop`]).
    fn stop(&mut self) -> Result<()> {
        if std::mem::replace(&mut self.stopped, true) || !self.local.started_here() {
            return Ok(());
        }
        println!("==> stopping PostgreSQL");
        self.local.stop().context("stopping the bench PostgreSQL")
    }

    /// The shell command that stops the server by hand. As root, the cluster runs as
    /// `postgres` (see `shortener_pg::local`), and `pg_ctl` refuses root.
    fn stop_command(&self) -> String {
        let pg_ctl = self
            .bin_dir
            .as_ref()
            .map_or_else(|| PathBuf::from("pg_ctl"), |d| d.join("pg_ctl"));
        let as_root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        format!(
            "{}{} stop -D {} -m fast",
            if as_root {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl.display(),
            self.local.data_dir().display()
        )
    }

    /// A client tool from the running server's own installation, so that `pgbench` and
    /// `psql` match the server (Debian's `/usr/bin/pgbench` is a wrapper that may pick
    /// another version); `PATH` when that cannot be found.
    fn tool(&self, name: &str) -> Command {
        let program = self
            .bin_dir
            .as_ref()
            .map(|d| d.join(name))
            .filter(|p| p.is_file())
            .unwrap_or_else(|| PathBuf::from(name));
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PG") {
                cmd.env_remove(key);
            }
        }
        cmd.env("LC_ALL", "C");
        cmd
    }

    /// Runs one SQL statement on `db`; returns its unaligned output, trimmed.
    fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let out = self
            .tool("psql")
            .args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.local.url(db))
            .args(["-c", sql])
            .output()
            .context("running psql (it ships with the PostgreSQL server binaries)")?;
        if !out.status.success() {
            bail!(
                "psql {sql:?} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Drops and creates `name`, so every measurement starts from an empty database;
    /// returns its URL.
    fn fresh_database(&self, name: &str) -> Result<String> {
        let force = self
            .psql("postgres", "SHOW server_version_num")?
            .parse::<u32>()
            .is_ok_and(|v| v >= 130_000);
        let drop = if force {
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")
        } else {
            format!("DROP DATABASE IF EXISTS \"{name}\"")
        };
        self.psql("postgres", &drop)?;
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.local.url(name))
    }
}

/// The bin directory of the server running on `data_dir` (from `postmaster.pid` and
/// `/proc/<pid>/exe`), or of its major version under the search root.
fn server_bin_dir(data_dir: &Path) -> Option<PathBuf> {
    let running = std::fs::read_to_string(data_dir.join("postmaster.pid"))
        .ok()
        .and_then(|s| s.lines().next()?.trim().parse::<u32>().ok())
        .and_then(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
        .and_then(|exe| exe.parent().map(Path::to_path_buf));
    running.or_else(|| {
        let version = std::fs::read_to_string(data_dir.join("PG_VERSION")).ok()?;
        let root = std::env::var(shortener_pg::local::SEARCH_ROOT_VAR)
            .ok()
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| "/usr/lib/postgresql".to_owned());
        let bin = Path::new(&root).join(version.trim()).join("bin");
        bin.is_dir().then_some(bin)
    })
}

#[derive(Debug)]
struct Baseline {
    tps: f64,
    failed: u64,
    /// WAL flushes per committed INSERT during the measured run.
    flushes: Option<f64>,
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
        let mut n = out.split(' ').map(str::parse::<u64>);
        match (n.next(), n.next(), n.next()) {
            (Some(Ok(wal_syncs)), Some(Ok(rows)), Some(Ok(audit))) => Ok(Sample {
                wal_syncs,
                rows,
                audit,
            }),
            _ => bail!("unexpected sample {out:?}"),
        }
    }

    /// Flushes per row written since `before`.
    fn flushes_since(self, before: Sample) -> Option<f64> {
        let rows = self.rows.checked_sub(before.rows).filter(|r| *r > 0)?;
        Some(self.wal_syncs.saturating_sub(before.wal_syncs) as f64 / rows as f64)
    }
}

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
    pgbench(pg, db, &script, opts.clients, WARM_UP.as_secs(), &[]).context("pgbench warm-up")?;
    let before = Sample::take(pg, db, "bench_insert", false)?;
    let mut run = pgbench(pg, db, &script, opts.clients, opts.seconds, &[])?;
    run.flushes = Sample::take(pg, db, "bench_insert", false)?.flushes_since(before);
    Ok(run)
}

/// pgbench with `script` for `secs` seconds, `clients` connections over at most 2 threads,
/// and `extra` options (`-M prepared`, logging, ...).
fn pgbench(
    pg: &Cluster,
    db: &str,
    script: &Path,
    clients: usize,
    secs: u64,
    extra: &[&str],
) -> Result<Baseline> {
    let out = pg
        .tool("pgbench")
        .args(["-n", "-c", &clients.to_string()])
        .args(extra)
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &secs.to_string(), "-f"])
        .arg(script)
        .args(["-h", &pg.socket_dir, "-U", "postgres", db])
        .output()
        .context("running pgbench (it ships with the PostgreSQL server binaries)")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "pgbench failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_pgbench(&stdout)
        .with_context(|| format!("no `tps = ... (without initial connection time)` in:\n{stdout}"))
}

/// The throughput line of pgbench 14+ (`without initial connection time`), or of older
/// versions (`excluding connections establishing`), and the failed transactions (15+).
fn parse_pgbench(out: &str) -> Option<Baseline> {
    let tps = out
        .lines()
        .filter(|l| {
            l.contains("without initial connection time")
                || l.contains("excluding connections establishing")
        })
        .find_map(|l| {
            l.trim()
                .strip_prefix("tps = ")?
                .split(' ')
                .next()?
                .parse()
                .ok()
        })?;
    let failed = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("number of failed transactions: "))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or(0);
    Some(Baseline {
        tps,
        failed,
        flushes: None,
    })
}

// ---------------------------------------------------------------------------------------
// The service

/// The release service as a child process; killed when dropped, errors included.
struct Service {
    child: Child,
    addr: SocketAddr,
    admin_key: String,
    log: PathBuf,
}

impl Service {
    fn start(exe: &Path, work: &Path, database_url: &str, pool: usize) -> Result<Service> {
        Service::start_with(exe, work, database_url, pool, "shortener.log", &[])
    }

    /// Starts the service with `pool` connections, logging to `work/<log_name>` at the
    /// default level (`info`, as operators run it), with `settings` (`SHORTENER__...`
    /// variables) on top of the bench's own.
    fn start_with(
        exe: &Path,
        work: &Path,
        database_url: &str,
        pool: usize,
        log_name: &str,
        settings: &[(&str, String)],
    ) -> Result<Service> {
        let addr = {
            let probe = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
            probe.local_addr().context("finding a free port")?
        };
        let admin_key = random_key()?;
        let log = work.join(log_name);
        let log_file =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let mut cmd = Command::new(exe);
        cmd.arg("serve")
            // Not the workspace: a developer's ./shortener.toml must not change the bench.
            .current_dir(work)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().context("opening the service log")?)
            .stderr(log_file);
        for (key, _) in std::env::vars_os() {
            let key_str = key.to_string_lossy();
            if key_str.starts_with("SHORTENER_")
                || key_str == "DATABASE_URL"
                || key_str == "RUST_LOG"
            {
                cmd.env_remove(&key);
            }
        }
        cmd.env("SHORTENER__DATABASE__URL", database_url)
            .env("SHORTENER__SERVER__LISTEN", addr.to_string())
            .env("SHORTENER__ADMIN__BOOTSTRAP_KEY", &admin_key)
            .env("SHORTENER__DATABASE__POOL_SIZE", pool.to_string());
        for (key, value) in settings {
            cmd.env(key, value);
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", exe.display()))?;
        let mut service = Service {
            child,
            addr,
            admin_key,
            log,
        };
        service.wait_ready()?;
        Ok(service)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n");
        format!("service log ({}):\n{tail}", self.log.display())
    }

    fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().context("checking the service")? {
                bail!(
                    "the service exited at start ({status})\n{}",
                    self.log_tail()
                );
            }
            if let Ok((200, _)) = Http::new(self.addr).request("GET", "/readyz", None, None) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "the service did not answer 200 on /readyz within 60 s\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// One admin call: the JSON answer when the status is `expected`.
    fn admin(&self, path: &str, body: &str, expected: u16) -> Result<serde_json::Value> {
        let (status, answer) = Http::new(self.addr)
            .request("POST", path, Some(&self.admin_key), Some(body))
            .with_context(|| format!("POST {path}"))?;
        if status != expected {
            bail!(
                "POST {path}: {status} (expected {expected}): {}",
                String::from_utf8_lossy(&answer)
            );
        }
        serde_json::from_slice(&answer).with_context(|| format!("POST {path}: reading the JSON"))
    }

    /// A new account (in its trial); returns its id.
    fn create_account(&self, name: &str) -> Result<String> {
        let body = serde_json::json!({ "name": name }).to_string();
        let account = self.admin("/admin/v1/accounts", &body, 201)?;
        account["id"]
            .as_str()
            .map(str::to_owned)
            .context("the new account has no id")
    }

    /// An account on the business plan (the trial allows 100 links a month) and its key.
    fn account_key(&self, n: usize) -> Result<String> {
        let id = self.create_account(&format!("bench {n}"))?;
        self.admin(
            &format!("/admin/v1/accounts/{id}/subscription/activate"),
            r#"{"plan":"business"}"#,
            200,
        )?;
        let key = self.admin(&format!("/admin/v1/accounts/{id}/keys"), "", 201)?;
        key["key"]
            .as_str()
            .map(str::to_owned)
            .context("the new key answer has no key")
    }

    /// Runs the clients; `sample` is read when the measured window opens and closes.
    fn bench(self, opts: Options, sample: &(dyn Fn() -> Result<Sample> + Sync)) -> Result<Creates> {
        let keys = (0..opts.accounts)
            .map(|n| self.account_key(n))
            .collect::<Result<Vec<_>>>()?;
        let stats = Stats::default();
        let warm_until = Instant::now() + WARM_UP;
        let end = warm_until + Duration::from_secs(opts.seconds);
        let window = std::thread::scope(|s| {
            for thread in 0..opts.clients {
                let (stats, key, addr) = (&stats, keys[thread % keys.len()].as_str(), self.addr);
                s.spawn(move || client(thread, addr, key, warm_until, end, stats));
            }
            let sleep_until =
                |t: Instant| std::thread::sleep(t.saturating_duration_since(Instant::now()));
            sleep_until(warm_until);
            let first = sample();
            sleep_until(end);
            Ok::<_, anyhow::Error>((first?, sample()?))
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
                "{errors} request(s) did not answer 201 ({created} did); the first: {first}\n{}",
                self.log_tail()
            );
        }
        if errors > 0 {
            println!("    warning: {errors} request(s) did not answer 201; the first: {first}");
        }
        let per_second = created as f64 / opts.seconds as f64;
        let (before, after) = window;
        Ok(Creates {
            per_second,
            errors,
            flushes: after.flushes_since(before),
            audit_per_link: {
                let links = after.rows.saturating_sub(before.rows);
                (links > 0).then(|| after.audit.saturating_sub(before.audit) as f64 / links as f64)
            },
        })
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// Stops a child server: SIGTERM first (the service drains, writes its clicks and exits);
/// SIGKILL if it is still there 15 s later.
fn stop_child(child: &mut Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let termed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if termed {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// An admin key of 64 hex characters from the kernel's CSPRNG.
fn random_key() -> Result<String> {
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    }))
}

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

/// One client: create links back to back on its own keep-alive connection until `end`;
/// count the 201s that complete between `warm_until` and `end`.
fn client(
    thread: usize,
    addr: SocketAddr,
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
        let body = format!(r#"{{"url":"https://example.com/{thread}/{n}"}}"#);
        let answer = http.request("POST", "/api/v1/links", Some(key), Some(&body));
        let done = Instant::now();
        match answer {
            Ok((201, _)) => {
                if done >= warm_until && done <= end {
                    created += 1;
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

// ---------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client: one keep-alive connection, Content-Length bodies.

struct Http {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        Http { addr, conn: None }
    }

    /// Sends one request; returns the status and the body. Any failure drops the
    /// connection, and the next request opens a new one.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>)> {
        let result = self.exchange(method, path, bearer, body);
        if !matches!(result, Ok((_, _, true))) {
            self.conn = None;
        }
        result.map(|(status, body, _)| (status, body))
    }

    /// The status, the body, and whether the connection may be reused.
    fn exchange(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        body: Option<&str>,
    ) -> Result<(u16, Vec<u8>, bool)> {
        if self.conn.is_none() {
            let stream = TcpStream::connect(self.addr)
                .with_context(|| format!("connecting to {}", self.addr))?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(Duration::from_secs(30)))?;
            self.conn = Some(BufReader::new(stream));
        }
        let conn = self.conn.as_mut().context("no connection")?;
        let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(key) = bearer {
            let _ = write!(request, "Authorization: Bearer {key}\r\n");
        }
        if let Some(body) = body {
            let _ = write!(
                request,
                "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        } else {
            request.push_str("\r\n");
        }
        conn.get_mut().write_all(request.as_bytes())?;

        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            bail!("the server closed the connection");
        }
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = None;
        let mut keep_alive = line.starts_with("HTTP/1.1");
        loop {
            line.clear();
            if conn.read_line(&mut line)? == 0 {
                bail!("the server closed the connection in the headers");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let Some((name, value)) = header.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = Some(value.parse::<usize>().context("bad Content-Length")?);
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                bail!("chunked answers are not supported by this client");
            }
        }
        let mut answer = Vec::new();
        match length {
            Some(n) => {
                answer.resize(n, 0);
                conn.read_exact(&mut answer)?;
            }
            None if status == 204 || status == 304 || (100..200).contains(&status) => {}
            None => {
                conn.read_to_end(&mut answer)?;
                keep_alive = false;
            }
        }
        Ok((status, answer, keep_alive))
    }
}

// ---------------------------------------------------------------------------------------
// What was measured (rendered by `report`)

struct Server {
    version: String,
    fsync: String,
    synchronous_commit: String,
    data_dir: PathBuf,
    reused: bool,
}

#[derive(Debug)]
struct Creates {
    per_second: f64,
    errors: u64,
    /// WAL flushes per link created during the measured window.
    flushes: Option<f64>,
    /// Audit entries written per link created in the window (1 when every create is
    /// audited).
    audit_per_link: Option<f64>,
}

/// The link-creation half: the single-INSERT baseline and the service's creates.
struct Creation {
    baseline: Baseline,
    creates: Creates,
}

struct Report {
    server: Server,
    creation: Option<Creation>,
    redirects: Option<redirects::Redirects>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The options of `cargo xtask bench` without arguments.
    pub(super) fn defaults() -> Options {
        parse(&[]).unwrap().unwrap()
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn options_default_and_override() {
        assert_eq!(
            parse(&args(&[])).unwrap(),
            Some(Options {
                seconds: 10,
                rounds: 3,
                clients: 16,
                accounts: 1,
                only: Only::All,
            })
        );
        assert_eq!(
            parse(&args(&[
                "--seconds",
                "3",
                "--clients=4",
                "--accounts",
                "2",
                "--rounds",
                "5"
            ]))
            .unwrap(),
            Some(Options {
                seconds: 3,
                rounds: 5,
                clients: 4,
                accounts: 2,
                only: Only::All,
            })
        );
        let only = |a: &[&str]| parse(&args(a)).unwrap().map(|o| o.only);
        assert_eq!(only(&["--only", "creates"]), Some(Only::Creates));
        assert_eq!(only(&["--only=redirects"]), Some(Only::Redirects));
        let rounds = |a: &[&str]| parse(&args(a)).unwrap().map(|o| o.rounds);
        assert_eq!(rounds(&["--rounds=1"]), Some(1));
        assert_eq!(rounds(&["--only", "redirects", "--rounds", "7"]), Some(7));
        assert!(parse(&args(&["--rounds", "0"])).is_err());
        assert!(parse(&args(&["--rounds", "-2"])).is_err());
        assert!(parse(&args(&["--rounds", "two"])).is_err());
        assert!(parse(&args(&["--rounds"])).is_err());
        assert_eq!(rounds(&["--rounds", "2000000"]), Some(2_000_000));
        assert!(parse(&args(&["--seconds", "100000000"])).is_err());
        assert!(parse(&args(&["--seconds", "100000000", "--only", "creates"])).is_ok());
        assert!(parse(&args(&["--only", "memory"])).is_err());
        assert!(parse(&args(&["--only"])).is_err());
        assert_eq!(parse(&args(&["--help"])).unwrap(), None);
        assert!(parse(&args(&["--seconds", "0"])).is_err());
        assert!(parse(&args(&["--seconds"])).is_err());
        assert!(parse(&args(&["--clients", "x"])).is_err());
        assert!(parse(&args(&["--fast"])).is_err());
    }

    #[test]
    fn pgbench_throughput_is_read_from_either_format() {
        let v15 = "transaction type: insert.sql\nnumber of failed transactions: 2 (0.010%)\n\
                   latency average = 1.2 ms\ninitial connection time = 9.1 ms\n\
                   tps = 1234.567890 (without initial connection time)\n";
        let b = parse_pgbench(v15).unwrap();
        assert!((b.tps - 1234.56789).abs() < 1e-6);
        assert_eq!(b.failed, 2);
        let v13 = "tps = 99.5 (including connections establishing)\n\
                   tps = 100.25 (excluding connections establishing)\n";
        let b = parse_pgbench(v13).unwrap();
        assert!((b.tps - 100.25).abs() < 1e-9);
        assert_eq!(b.failed, 0);
        assert!(parse_pgbench("pgbench: error: connection refused").is_none());
    }
}

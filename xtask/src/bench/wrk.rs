//! The HTTP load generator of the redirect measurements: wrk (Debian package `wrk`),
//! installed with apt-get when it is missing, driven by the two Lua scripts beside this
//! file, and read back from its `--latency` report.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// wrk threads; the reference figures are `wrk -t2 -c128`.
pub const THREADS: usize = 2;
/// Keep-alive connections, over all threads.
pub const CONNECTIONS: usize = 128;

/// GETs a random code of a range: `random.lua FIRST LAST`.
pub const RANDOM_LUA: &str = include_str!("random.lua");
/// GETs each code of a range once, each thread its own slice: `walk.lua FIRST LAST THREADS`.
pub const WALK_LUA: &str = include_str!("walk.lua");
/// The script of the cached loads: [`RANDOM_LUA`]'s codes, with visitors' headers.
pub const VISITORS_LUA: &str = include_str!("visitors.lua");
/// GETs one API path with an account key: `api_get.lua PATH KEY`.
pub const API_GET_LUA: &str = include_str!("api_get.lua");
/// GETs random well-formed codes that no link has, and prints the answers by status.
pub const UNKNOWN_LUA: &str = include_str!("unknown.lua");

/// What `wrk` on `PATH` is, installing it first when it is missing.
pub fn ensure_installed() -> Result<String> {
    if crate::find_on_path("wrk").is_none() {
        install()?;
    }
    let path = crate::find_on_path("wrk")
        .context("wrk was installed but is not on PATH; put its directory on PATH and run again")?;
    // `wrk -v` prints `wrk 4.1.0 [epoll] Copyright ...` then its usage, and exits 1.
    let out = Command::new(&path)
        .arg("-v")
        .output()
        .with_context(|| format!("running {} -v", path.display()))?;
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let version = text
        .lines()
        .find(|l| l.starts_with("wrk "))
        .map(|l| l.split(" Copyright").next().unwrap_or(l).trim().to_owned())
        .unwrap_or_else(|| "wrk (version unknown)".to_owned());
    Ok(version)
}

const HOW_TO_INSTALL: &str = "install wrk and run again: `sudo apt-get install wrk` on Debian \
     or Ubuntu, or build it from its source (github.com/wg/wrk) and put it on PATH";

/// `apt-get install -y wrk`, as root; anything else gets the command to run.
fn install() -> Result<()> {
    crate::apt_install(&["wrk"], "wrk (the HTTP load generator)", HOW_TO_INSTALL)
}

/// One wrk run, as its report tells it.
#[derive(Debug, Clone, Default)]
pub struct Run {
    pub requests_per_sec: f64,
    /// Latency percentiles, in milliseconds.
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Answers completed over the run.
    pub requests: u64,
    /// Answers that were neither 2xx nor 3xx.
    pub bad_status: u64,
    /// `Socket errors: connect 0, read 0, write 0, timeout 0`, when wrk printed it.
    pub socket_errors: Option<String>,
    /// Whether a walking thread ran out of fresh codes (`walk.lua`).
    pub wrapped: bool,
    /// The whole report, for error messages.
    pub output: String,
}

impl Run {
    /// Fails when any answer was not a redirect or a socket failed: the bench is broken
    /// (wrong codes, a dead server), not slow.
    pub fn check(&self, what: &str) -> Result<()> {
        if self.bad_status > 0 || self.socket_errors.is_some() {
            bail!(
                "{what}: {} answer(s) were not 2xx/3xx{}; wrk said:\n{}",
                self.bad_status,
                self.socket_errors
                    .as_ref()
                    .map(|s| format!(", {s}"))
                    .unwrap_or_default(),
                self.output
            );
        }
        Ok(())
    }
}

/// `wrk -t2 -c128 -d<seconds>s --latency -s <script> <url> -- <args>`.
pub fn run(url: &str, script: &Path, args: &[String], seconds: u64) -> Result<Run> {
    run_with(url, script, args, seconds, THREADS, CONNECTIONS)
}

/// [`run`] with `threads` threads and `connections` connections.
pub fn run_with(
    url: &str,
    script: &Path,
    args: &[String],
    seconds: u64,
    threads: usize,
    connections: usize,
) -> Result<Run> {
    let out = Command::new("wrk")
        .arg(format!("-t{threads}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .args(["--latency", "--timeout", "10s", "-s"])
        .arg(script)
        .arg(url)
        .arg("--")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running wrk")?;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        bail!(
            "wrk failed ({}):\n{stdout}{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse(&stdout).with_context(|| format!("could not read wrk's report:\n{stdout}"))
}

/// Reads `Requests/sec`, the 50% and 99% lines of `Latency Distribution`, the request
/// count, `Non-2xx or 3xx responses` and `Socket errors` from wrk's report.
pub fn parse(out: &str) -> Option<Run> {
    let mut run = Run {
        output: out.to_owned(),
        ..Run::default()
    };
    let (mut rps, mut p50, mut p99) = (None, None, None);
    for line in out.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        } else if let Some(v) = line.strip_prefix("50%") {
            p50 = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("99%") {
            p99 = duration_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Non-2xx or 3xx responses:") {
            run.bad_status = v.trim().parse().ok()?;
        } else if line.starts_with("Socket errors:") {
            run.socket_errors = Some(line.to_owned());
        } else if line.starts_with("walk: ") && !line.ends_with("wrapped 0") {
            run.wrapped = true;
        } else if let Some((n, _)) = line.split_once(" requests in ") {
            run.requests = n.trim().parse().ok()?;
        }
    }
    run.requests_per_sec = rps?;
    run.p50_ms = p50?;
    run.p99_ms = p99?;
    Some(run)
}

/// `812.00us`, `1.93ms`, `1.02s`, `1.50m` as milliseconds.
fn duration_ms(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (value, unit) = s.split_at(split);
    let value: f64 = value.parse().ok()?;
    let scale = match unit {
        "us" => 1e-3,
        "ms" => 1.0,
        "s" => 1e3,
        "m" => 60e3,
        "h" => 3600e3,
        _ => return None,
    };
    Some(value * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8080
  2 threads and 128 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.10ms    1.20ms  30.00ms   80.00%
    Req/Sec    30.00k     2.00k   35.00k    70.00%
  Latency Distribution
     50%  812.00us
     75%    2.50ms
     90%    3.20ms
     99%    1.02s
  600123 requests in 10.00s, 50.00MB read
  Non-2xx or 3xx responses: 5
Requests/sec:  60012.30
Transfer/sec:      5.00MB
walk: thread 1 asked 300000 from 250001, wrapped 0
walk: thread 2 asked 300123 from 625001, wrapped 0
";

    #[test]
    fn reads_the_latency_report() {
        let run = parse(REPORT).unwrap();
        assert!((run.requests_per_sec - 60012.3).abs() < 1e-9);
        assert!((run.p50_ms - 0.812).abs() < 1e-9);
        assert!((run.p99_ms - 1020.0).abs() < 1e-9);
        assert_eq!(run.requests, 600_123);
        assert_eq!(run.bad_status, 5);
        assert!(run.socket_errors.is_none());
        assert!(!run.wrapped);
        assert!(run.check("x").is_err());

        let wrapped = REPORT
            .replace("  Non-2xx or 3xx responses: 5\n", "")
            .replace("625001, wrapped 0", "625001, wrapped 1");
        let run = parse(&wrapped).unwrap();
        assert!(run.wrapped);
        assert!(run.check("x").is_ok());

        let errors = REPORT.replace(
            "  Non-2xx or 3xx responses: 5\n",
            "  Socket errors: connect 0, read 3, write 0, timeout 0\n",
        );
        let run = parse(&errors).unwrap();
        assert!(run.socket_errors.is_some());
        assert!(run.check("x").is_err());

        assert!(parse("unable to connect to 127.0.0.1:1 Connection refused").is_none());
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(duration_ms("500.00us"), Some(0.5));
        assert_eq!(duration_ms("7.25ms"), Some(7.25));
        assert_eq!(duration_ms("2.00s"), Some(2000.0));
        assert_eq!(duration_ms("1.00m"), Some(60000.0));
        assert_eq!(duration_ms("3.0x"), None);
        assert_eq!(duration_ms("ms"), None);
    }
}

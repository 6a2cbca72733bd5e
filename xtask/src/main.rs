//! Project automation, run as `cargo xtask <command>`.
//!
//! - `check-boundaries`: fails when a crate reaches past its layer (see `boundaries`).
//! - `check-monitoring`: the alert rules and the Grafana dashboard in `docs/monitoring`
//!   load: `promtool check rules` and `promtool test rules`, the dashboard's queries
//!   checked as PromQL (promtool from Debian's package when missing; see `monitoring`).
//! - `ci`: everything CI runs, in order, on a fresh machine: format, lints, boundaries,
//!   bans, licences and sources (`cargo deny`, installed when missing), advisories
//!   (`cargo deny`, offline, against the RustSec snapshot in `../shared/advisory-db`; see
//!   `advisories`), `check-monitoring`, then the whole test suite. Without the snapshot it says so first, loudly,
//!   and checks everything else. Last, Schemathesis fuzzes the running service against
//!   its own OpenAPI document (see `fuzz`).
//! - `fuzz`: only that last step.
//! - `bench [--seconds N] [--rounds N] [--clients N] [--accounts N]
//!   [--only creates|redirects]`: the release service's link creations and redirects per
//!   second next to baselines measured in the same run (pgbench INSERT and primary-key
//!   lookup on the same private, durable PostgreSQL; a bare actix-web redirect server,
//!   `xtask/bare-redirect`; the redirect comparisons in interleaved rounds), the CPU time
//!   per redirect of each server and of PostgreSQL (from `/proc`, over each measured
//!   run), and its memory with 1 000 000 links cached; prints the table and writes it to
//!   `bench/results.md` (see `bench`, whose modules split the work by job). Not part of
//!   `ci`.
//!
//! Tooling only: nothing here is linked into the service.

mod advisories;
mod bench;
mod boundaries;
mod fuzz;
mod monitoring;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use anyhow::{Context, Result, bail};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  check-boundaries   fail when a crate depends past its layer (prints the whole path)
  check-monitoring   promtool check/test rules on docs/monitoring/alerts*.yml, and the
                     dashboard's queries as PromQL (promtool: on PATH, else Debian's
                     package unpacked into target/tools/prometheus)
  ci                 fmt, clippy, boundaries, cargo deny (advisories offline, against
                     ../shared/advisory-db), check-monitoring, then every test, then `fuzz`
                     (what .ci/run runs)
  fuzz               Schemathesis (from PyPI, into target/schemathesis) against the
                     running service and its /api/openapi.json, every operation
  bench              link creations and redirects/s of the release service vs baselines
                     measured in the same run (pgbench INSERT and lookup, a bare actix-web
                     redirect server), CPU time per redirect of the servers and PostgreSQL,
                     memory with 1 000 000 links cached; writes
                     bench/results.md (`cargo xtask bench --help` for more)
                     [--seconds N (10)] [--rounds N (3)] [--clients N (16)]
                     [--accounts N (1)] [--only creates|redirects]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("check-boundaries") => check_boundaries(),
        Some("check-monitoring") => monitoring::check(&root(), &target_dir()),
        Some("ci") => ci(),
        Some("bench") => bench::main(&args[1..]),
        Some("fuzz") => fuzz::run(&target_dir()),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn check_boundaries() -> Result<()> {
    let violations = boundaries::check(&root().join("Cargo.toml"))?;
    if violations.is_empty() {
        println!("boundaries: ok");
        return Ok(());
    }
    for v in &violations {
        eprintln!("boundary violation in {v}");
    }
    bail!(
        "{} boundary violation(s); see docs/architecture.md for the layers",
        violations.len()
    )
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn run(step: &str, mut cmd: Command) -> Result<()> {
    let started = Instant::now();
    println!("==> {step}");
    let status = cmd.status().with_context(|| format!("starting {step}"))?;
    println!("<== {step}: {:.0?}", started.elapsed());
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn has_cargo_deny() -> bool {
    cargo()
        .args(["deny", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `name` in a directory of `PATH`.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Installs Debian `packages` with `apt-get install -y` (after `apt-get update` when the
/// package lists do not know them yet), as root; `what` names what is missing, `how` says
/// how to install it by hand when this cannot.
fn apt_install(packages: &[&str], what: &str, how: &str) -> Result<()> {
    let root = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false);
    if !root || find_on_path("apt-get").is_none() {
        bail!("{what} is not on PATH; {how}");
    }
    let apt = |args: &[&str]| {
        println!("==> apt-get {} ({what} is not on PATH)", args.join(" "));
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let install: Vec<&str> = ["install", "-y"]
        .into_iter()
        .chain(packages.iter().copied())
        .collect();
    if apt(&install) || (apt(&["update"]) && apt(&install)) {
        return Ok(());
    }
    bail!(
        "`apt-get install -y {}` failed (see above); {how}",
        packages.join(" ")
    )
}

/// `<target>`: `CARGO_TARGET_DIR` (relative to the root) or `target` under the root.
fn target_dir() -> PathBuf {
    let root = root();
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

fn ci() -> Result<()> {
    let started = Instant::now();
    // Looked for first, so its absence is the first thing said. Without it the advisories
    // cannot be checked offline; that is said loudly, but the rest of CI still runs: a
    // machine without the snapshot must not block every change (CI has it).
    let snapshot = match advisories::locate(&advisories::snapshot_dir(&root())) {
        Ok(snapshot) => Some(snapshot),
        Err(e) => {
            println!("!!! advisories NOT checked: {e:#}");
            None
        }
    };

    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    run("cargo fmt --check", fmt)?;

    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--locked",
        "--",
        "-D",
        "warnings",
    ]);
    run("cargo clippy", clippy)?;

    println!("==> check-boundaries");
    check_boundaries()?;

    if !has_cargo_deny() {
        let mut install = cargo();
        install.args(["install", "cargo-deny", "--locked", "--version", "0.20.2"]);
        run(
            "cargo install cargo-deny (not found on this machine)",
            install,
        )?;
    }
    let mut deny = cargo();
    deny.args(["deny", "--locked", "check", "bans", "licenses", "sources"]);
    run("cargo deny check bans licenses sources", deny)?;
    // Offline, cargo-deny's `cargo metadata` reads only the local registry cache, which the
    // steps above have filled for deny.toml's [graph] target (where the network allows).
    if let Some(snapshot) = &snapshot {
        advisories::check(&root(), snapshot, &target_dir().join("xtask-advisories"))?;
    }

    println!("==> check-monitoring");
    monitoring::check(&root(), &target_dir())?;

    // The browser tests drive Debian's Chromium through its WebDriver.
    if find_on_path("chromium").is_none() || find_on_path("chromedriver").is_none() {
        apt_install(
            &["chromium", "chromium-driver"],
            "chromium or chromedriver",
            "install them (Debian: `apt-get install chromium chromium-driver`) and run again",
        )?;
    }

    let mut test = cargo();
    test.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
    run("cargo test", test)?;

    let fuzz = Instant::now();
    println!("==> schemathesis (fuzzing the API against its OpenAPI document)");
    fuzz::run(&target_dir())?;
    println!("<== schemathesis: {:.0?}", fuzz.elapsed());

    println!("ci: all green in {:.0?}", started.elapsed());
    Ok(())
}

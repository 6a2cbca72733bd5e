//! `ci`'s last step: Schemathesis fuzzes the running service against its own OpenAPI
//! document (`GET /api/openapi.json`), so the document and the service cannot disagree:
//! every operation, in one run (examples, coverage, fuzzing and stateful phases), with
//! [`CHECKS`]: never a 5xx, only documented statuses, content types, headers and bodies,
//! invalid input refused, 405 with `Allow`, no operation answering without its key.
//!
//! Schemathesis comes from PyPI into a venv under `<target>/schemathesis` (kept there, so
//! installed once per machine). The service is the debug `shortener serve`, provisioning
//! its own PostgreSQL exactly as `serve` does with no `database.url` (in
//! `<target>/schemathesis/run/pg`, fresh each run), on a free port, with a fresh
//! bootstrap admin key and every rate limit off (429s would hide every other answer; they
//! are documented all the same). The generated `schemathesis.toml` gives each operation
//! the key its security scheme names: `/api/...` an account key (an account on the
//! business plan, made through the admin API), `/admin/...` the admin key, the rest none.

use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};

use crate::bench::http::Http;
use crate::bench::process::{Server, free_addr};

/// The Schemathesis release CI runs: pinned, so a new release cannot change CI's verdict.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Generated cases per operation and phase: the whole step stays within minutes.
const MAX_EXAMPLES: u32 = 100;
/// The checks every answer must pass: every check Schemathesis has but
/// `positive_data_acceptance`, which expects every schema-valid request to succeed, and the
/// service has rules no schema states (a target may not be a private address or the
/// service itself, an expiry must lie in the future, quotas, subscription states, a
/// cursor must be one the service issued).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance,negative_data_rejection,\
missing_required_header,unsupported_method,allow_header_conformance,ignored_auth,\
use_after_free,ensure_resource_availability";
/// Fixed, so a failure CI shows can be run again exactly (`--seed`).
const SEED: u64 = 20261129;

/// `<target>/schemathesis/bin/schemathesis`, installed when missing.
fn schemathesis(venv: &Path) -> Result<PathBuf> {
    let exe = venv.join("bin/schemathesis");
    if exe.exists() {
        return Ok(exe);
    }
    crate::run("python3 -m venv (for schemathesis)", {
        let mut c = Command::new("python3");
        c.args(["-m", "venv"]).arg(venv);
        c
    })?;
    crate::run(&format!("pip install {SCHEMATHESIS}"), {
        let mut c = Command::new(venv.join("bin/pip"));
        c.args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            SCHEMATHESIS,
        ]);
        c
    })?;
    Ok(exe)
}

/// 64 hex characters from the kernel's CSPRNG.
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

fn admin_call(
    http: &mut Http,
    key: &str,
    path: &str,
    body: &str,
    expected: u16,
) -> Result<serde_json::Value> {
    let (status, answer) = http
        .request("POST", path, Some(key), Some(body))
        .with_context(|| format!("POST {path}"))?;
    if status != expected {
        bail!(
            "POST {path}: {status} (expected {expected}): {}",
            String::from_utf8_lossy(&answer)
        );
    }
    serde_json::from_slice(&answer).with_context(|| format!("POST {path}: reading the JSON"))
}

/// Builds and starts the service, makes an account key and what the run starts from, and
/// runs Schemathesis once over every operation.
pub fn run(target: &Path) -> Result<()> {
    let venv = target.join("schemathesis");
    let exe = schemathesis(&venv)?;
    let mut build = crate::cargo();
    build.args([
        "build",
        "--locked",
        "-p",
        "shortener-http",
        "--bin",
        "shortener",
    ]);
    crate::run("cargo build --bin shortener (for schemathesis)", build)?;
    let service = target.join("debug/shortener");

    let work = venv.join("run");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).with_context(|| format!("creating {}", work.display()))?;
    let addr = free_addr()?;
    let admin_key = random_key()?;
    let mut cmd = Command::new(&service);
    // Not the workspace: a developer's ./shortener.toml must not change the run.
    cmd.arg("serve").current_dir(&work);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("SHORTENER_") || name == "DATABASE_URL" || name == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
    cmd.env("SHORTENER__SERVER__LISTEN", addr.to_string())
        .env("SHORTENER__DATABASE__DATA_DIR", work.join("pg"))
        .env("SHORTENER__ADMIN__BOOTSTRAP_KEY", &admin_key)
        .env("SHORTENER__LOG__FILTER", "warn")
        .env("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "0")
        .env("SHORTENER__PLANS__PRO__REQUESTS_PER_MINUTE", "0")
        .env("SHORTENER__PLANS__BUSINESS__REQUESTS_PER_MINUTE", "0")
        .env("SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE", "0")
        .env("SHORTENER__RATE_LIMIT__UNKNOWN_CODES_PER_MINUTE", "0")
        .env("SHORTENER__RATE_LIMIT__ADMIN_PER_MINUTE", "0")
        .env("SHORTENER__RATE_LIMIT__PASSWORD_TRIES_PER_MINUTE", "0");
    let mut server = Server::spawn(cmd, addr, work.join("service.log"), "the service")?;
    server.wait_ready(Duration::from_secs(120), "200 on /readyz", |addr| {
        Ok(matches!(
            Http::new(addr).request("GET", "/readyz", None, None),
            Ok((200, _))
        ))
    })?;

    let mut http = Http::new(addr);
    let mut admin = |path: &str, body: &str, expected: u16| {
        admin_call(&mut http, &admin_key, path, body, expected)
    };
    // The account whose key fuzzes /api, on the business plan (the trial's 100 links a
    // month would soon answer every create with 403).
    let account = admin("/admin/v1/accounts", r#"{"name":"schemathesis"}"#, 201)?;
    let id = account["id"]
        .as_str()
        .context("the new account has no id")?
        .to_owned();
    admin(
        &format!("/admin/v1/accounts/{id}/subscription/activate"),
        r#"{"plan":"business"}"#,
        200,
    )?;
    let key = admin(&format!("/admin/v1/accounts/{id}/keys"), "", 201)?;
    let account_key = key["key"]
        .as_str()
        .context("the new key answer has no key")?
        .to_owned();
    // Another account for the admin operations to change (cancel, revoke) at will.
    let other = admin(
        "/admin/v1/accounts",
        r#"{"name":"schemathesis admin"}"#,
        201,
    )?;
    let other_id = other["id"]
        .as_str()
        .context("the new account has no id")?
        .to_owned();
    let link_with = |body: serde_json::Value| -> Result<String> {
        let body = body.to_string();
        let (status, answer) = Http::new(addr)
            .request("POST", "/api/v1/links", Some(&account_key), Some(&body))
            .context("POST /api/v1/links")?;
        if status != 201 {
            bail!(
                "POST /api/v1/links: {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        let link: serde_json::Value = serde_json::from_slice(&answer)?;
        link["code"]
            .as_str()
            .map(str::to_owned)
            .context("the new link has no code")
    };
    let link = |url: &str| link_with(serde_json::json!({ "url": url }));
    let redirect_code = link("https://example.com/redirected")?;
    // `POST /{code}` is the form of a password-protected link: fuzzed against one, so its
    // bodies reach the password check rather than a link without a password's 405.
    let protected_code = link_with(serde_json::json!({
        "url": "https://example.com/protected",
        "password": "fuzzing passphrase",
    }))?;
    let api_code = link("https://example.com/edited")?;
    // The one DELETE deletes: were it `api_code`, every later read or edit of that code
    // (the stateful phase's included) would meet a 404 for a link it was told exists.
    let delete_code = link("https://example.com/deleted")?;

    // Each operation gets the key its security scheme names; some path parameters name
    // things that exist, so the fuzzing reaches past 404. No redirect is ever followed:
    // nothing leaves this machine.
    // A deeper or different run by hand: `FUZZ_MAX_EXAMPLES=1000 FUZZ_SEED=7 cargo xtask fuzz`.
    let max_examples = std::env::var("FUZZ_MAX_EXAMPLES")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(MAX_EXAMPLES);
    let seed = std::env::var("FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(SEED);
    let config = format!(
        r#"max-redirects = 0
request-timeout = 10
seed = {seed}

[generation]
max-examples = {max_examples}


[checks]
enabled = false
{checks}

[auth.openapi.accountKey]
bearer = "{account_key}"

[auth.openapi.adminKey]
bearer = "{admin_key}"

[[operations]]
include-path = "/{{code}}"
exclude-method = "POST"
parameters = {{ code = "{redirect_code}" }}

[[operations]]
include-path = "/{{code}}"
include-method = "POST"
parameters = {{ code = "{protected_code}" }}

[[operations]]
include-path-regex = "^/api/v1/links/[{{]code[}}]"
exclude-method = "DELETE"
parameters = {{ code = "{api_code}" }}

[[operations]]
include-path-regex = "^/api/v1/links/[{{]code[}}]$"
include-method = "DELETE"
parameters = {{ code = "{delete_code}" }}

[[operations]]
include-path-regex = "^/admin/v1/accounts/[{{]id[}}]"
parameters = {{ id = "{other_id}" }}
"#,
        checks = CHECKS
            .split(',')
            .map(str::trim)
            .map(|c| format!("{c}.enabled = true"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let config_file = work.join("schemathesis.toml");
    std::fs::write(&config_file, config)
        .with_context(|| format!("writing {}", config_file.display()))?;
    let mut st = Command::new(&exe);
    st.current_dir(&work)
        .arg("--config-file")
        .arg(&config_file)
        .arg("run")
        .arg(format!("http://{addr}/api/openapi.json"))
        // One worker: CPython 3.11 (Debian 12's) is not thread-safe building ASTs
        // ("AST constructor recursion depth mismatch"), which Schemathesis does per worker.
        .args(["--workers", "1"])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        // Every request and answer, for reading a failure after the run.
        .args(["--report", "vcr"])
        .args(["--report-dir"])
        .arg(work.join("reports"))
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_TELEMETRY", "false");
    let outcome = crate::run("schemathesis run (every operation)", st);
    drop(server);
    outcome.with_context(|| {
        format!(
            "schemathesis found failures (above); the service's log is {}",
            work.join("service.log").display()
        )
    })
}

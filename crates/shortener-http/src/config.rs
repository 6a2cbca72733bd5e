//! Configuration: built-in defaults, then `shortener.toml` (or `--config FILE`), then
//! `SHORTENER__...` environment variables (and plain `DATABASE_URL`). Loaded once in the
//! binary into typed, validated values; a bad value stops the start with one line naming
//! the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use actix_web::http::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use shortener_domain::rate::Limit;
use shortener_pg::PoolSettings;
use subscriptions::{Plan, PlanName, Plans};
use url::Url;

use crate::ProcessError;
use crate::client_address::Cidr;

/// Shortest accepted bootstrap admin key: it is a credential, so it must carry entropy.
pub const MIN_BOOTSTRAP_KEY_LEN: usize = 32;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    server: RawServer,
    database: RawDatabase,
    /// Has no defaults: absent unless the operator sets it.
    #[serde(default)]
    admin: RawAdmin,
    redirect: RawRedirect,
    plans: RawPlans,
    links: RawLinks,
    subscriptions: RawSubscriptions,
    rate_limit: RawRateLimit,
    log: RawLog,
    metrics: RawMetrics,
    analytics: RawAnalytics,
    ui: RawUi,
    /// Has no defaults: absent unless the operator sets it.
    #[serde(default)]
    geoip: RawGeoip,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnalytics {
    enabled: bool,
    retention: String,
}

/// Visit analytics: whether clicks are classified, and how long their day rows are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Analytics {
    /// Classify each counted click (referrer host, country, browser, OS, device).
    pub enabled: bool,
    /// Visit day rows older than this are deleted by the sweep (whole days).
    pub retention: Duration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUi {
    session_ttl: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeoip {
    /// A path; absent or empty: none.
    database: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    enabled: bool,
    #[serde(default)]
    listen: Option<String>,
}

/// Where `/metrics` is served, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricsEndpoint {
    /// Metrics off: nothing is measured and `/metrics` is 404.
    Off,
    /// On `server.listen`, beside the API.
    Main,
    /// On a listener of its own (`metrics.listen`), e.g. reachable only from the
    /// monitoring network; the main listener answers 404 there.
    Own(SocketAddr),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriptions {
    expiry_sweep: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServer {
    listen: String,
    public_url: Option<String>,
    workers: Option<usize>,
    /// Comma-separated CIDRs; absent or empty: none.
    trusted_proxies: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDatabase {
    url: Option<SecretString>,
    owner_url: Option<SecretString>,
    data_dir: PathBuf,
    pool_size: usize,
    lookup_connections: usize,
    pool_timeout: String,
    statement_timeout: String,
    migrate_on_start: bool,
    /// Comma-separated; absent or empty: none.
    replica_urls: Option<SecretString>,
    replica_max_lag: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmin {
    bootstrap_key: Option<SecretString>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedirect {
    status: u16,
    cache_entries: usize,
    count_clicks: bool,
    click_backlog: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlans {
    trial: RawPlan,
    pro: RawPlan,
    business: RawPlan,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlan {
    period: String,
    links_per_month: u64,
    custom_codes: bool,
    requests_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    admin_per_minute: u32,
    auth_failures_per_minute: u32,
    unknown_codes_per_minute: u32,
    password_tries_per_minute: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLinks {
    allow_private_targets: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLog {
    format: String,
    filter: String,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where the database is.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    /// An operator-provided server.
    Url {
        /// What the service (`serve`, `audit tail`) connects with: a role that may do what
        /// the service needs and no more.
        url: SecretString,
        /// What migrations connect with (the owner of the schema); `None`: `url`.
        owner_url: Option<SecretString>,
    },
    /// Provision a private PostgreSQL in this directory.
    Local(PathBuf),
}

/// The rate limits that are not a plan's (`requests` is: `Plan::requests_per_minute`).
/// `None`: the policy is off (configured `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// `admin`: requests of one admin key.
    pub admin: Option<Limit>,
    /// `auth-failures`: 401s of one client address.
    pub auth_failures: Option<Limit>,
    /// `unknown-codes`: 404s of `GET /{code}` of one client address.
    pub unknown_codes: Option<Limit>,
    /// `passwords`: wrong passwords of one client address for one link.
    pub password_tries: Option<Limit>,
}

impl Default for RateLimits {
    /// The contract's defaults.
    fn default() -> Self {
        RateLimits {
            admin: Limit::per_minute(6_000),
            auth_failures: Limit::per_minute(20),
            unknown_codes: Limit::per_minute(120),
            password_tries: Limit::per_minute(10),
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Public base URL; `None` means `http://<bound address>`.
    pub public_url: Option<Url>,
    /// Worker threads (default: one per core).
    pub workers: Option<usize>,
    /// Peers whose `X-Forwarded-For` is believed (see `client_address`).
    pub trusted_proxies: Vec<Cidr>,
    /// The database to use.
    pub database: DatabaseTarget,
    /// Pool behaviour.
    pub pool: PoolSettings,
    /// Connections of each HTTP worker's own pool for redirect lookups.
    pub lookup_connections: usize,
    /// Apply pending migrations at `serve` start.
    pub migrate_on_start: bool,
    /// `database.replica_urls`: streaming replicas that take reads off the primary.
    pub replicas: Vec<SecretString>,
    /// `database.replica_max_lag`: a replica further behind than this is skipped.
    pub replica_max_lag: Duration,
    /// Admin key to make exist at start.
    pub bootstrap_key: Option<SecretString>,
    /// 301, 302, 307 or 308.
    pub redirect_status: StatusCode,
    /// Most codes the resolve cache holds.
    pub cache_entries: usize,
    /// Count clicks at all.
    pub count_clicks: bool,
    /// Most counts held while the database does not take them (one per link and day, one
    /// per distinct visit of a link and day); past it, a click that needs a new one is
    /// dropped (and counted).
    pub click_backlog: usize,
    /// The plans.
    pub plans: Plans,
    /// Allow targets on IP literals that are not globally reachable (private, loopback and
    /// the other special-purpose ranges).
    pub allow_private_targets: bool,
    /// How often due expiries are written down.
    pub expiry_sweep: Duration,
    /// The rate limits besides the plans' `requests`.
    pub rate_limits: RateLimits,
    /// Log format.
    pub log_format: LogFormat,
    /// `tracing` filter directives (overridden by `RUST_LOG`).
    pub log_filter: String,
    /// Where `/metrics` is served.
    pub metrics: MetricsEndpoint,
    /// Visit analytics.
    pub analytics: Analytics,
    /// `geoip.database`: the MaxMind-format country database visits' countries come
    /// from; `None`: every country is unknown. Opened at start (`crate::geoip`).
    pub geoip: Option<PathBuf>,
    /// How long a web-interface session lasts from sign-in (`ui.session_ttl`).
    pub session_ttl: Duration,
}

fn defaults() -> Result<config::ConfigBuilder<config::builder::DefaultState>, config::ConfigError> {
    let mut b = config::Config::builder()
        .set_default("server.listen", "127.0.0.1:8080")?
        .set_default("database.data_dir", ".shortener/pg")?
        .set_default("database.pool_size", 16)?
        .set_default("database.lookup_connections", 2)?
        .set_default("database.pool_timeout", "5s")?
        .set_default("database.statement_timeout", "10s")?
        .set_default("database.migrate_on_start", true)?
        .set_default("database.replica_max_lag", "5s")?
        .set_default("redirect.status", 302)?
        .set_default("redirect.cache_entries", 1_000_000)?
        .set_default("redirect.count_clicks", true)?
        .set_default("redirect.click_backlog", 1_000_000)?
        .set_default("links.allow_private_targets", false)?
        .set_default("subscriptions.expiry_sweep", "30s")?
        .set_default("rate_limit.admin_per_minute", 6_000)?
        .set_default("rate_limit.auth_failures_per_minute", 20)?
        .set_default("rate_limit.unknown_codes_per_minute", 120)?
        .set_default("rate_limit.password_tries_per_minute", 10)?
        .set_default("log.format", "text")?
        .set_default("log.filter", "info")?
        .set_default("metrics.enabled", true)?
        .set_default("analytics.enabled", false)?
        .set_default("analytics.retention", "400d")?
        .set_default("ui.session_ttl", "12h")?;
    for name in [PlanName::Trial, PlanName::Pro, PlanName::Business] {
        let plan = Plan::default_for(name);
        let days = plan.period.as_secs() / 86_400;
        b = b
            .set_default(format!("plans.{name}.period"), format!("{days}d"))?
            .set_default(
                format!("plans.{name}.links_per_month"),
                plan.links_per_month,
            )?
            .set_default(format!("plans.{name}.custom_codes"), plan.custom_codes)?
            .set_default(
                format!("plans.{name}.requests_per_minute"),
                plan.requests_per_minute,
            )?;
    }
    Ok(b)
}

/// Loads the layered configuration. `file`: the `--config` argument; without it an
/// optional `shortener.toml` in the working directory is read.
pub fn load(file: Option<&Path>) -> Result<Settings, ProcessError> {
    load_from(file, |k| std::env::var(k).ok(), std::env::vars().collect())
}

/// [`load`] with the environment passed in, for tests.
pub fn load_from(
    file: Option<&Path>,
    var: impl Fn(&str) -> Option<String>,
    env: Vec<(String, String)>,
) -> Result<Settings, ProcessError> {
    let cfg = |e: config::ConfigError| ProcessError::Config(e.to_string());
    let mut b = defaults().map_err(cfg)?;
    b = match file {
        Some(path) => b.add_source(config::File::from(path).required(true)),
        None => b.add_source(config::File::with_name("shortener.toml").required(false)),
    };
    let env_map = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("SHORTENER__"))
        .collect::<std::collections::HashMap<_, _>>();
    b = b.add_source(
        config::Environment::with_prefix("SHORTENER")
            .prefix_separator("__")
            .separator("__")
            .source(Some(env_map.clone())),
    );
    if !env_map.contains_key("SHORTENER__DATABASE__URL")
        && let Some(url) = var("DATABASE_URL").filter(|u| !u.is_empty())
    {
        b = b.set_override("database.url", url).map_err(cfg)?;
    }
    let raw: Raw = b.build().map_err(cfg)?.try_deserialize().map_err(cfg)?;
    validate(raw)
}

fn bad(key: &str, what: impl std::fmt::Display) -> ProcessError {
    ProcessError::Config(format!("{key}: {what}"))
}

fn duration(key: &str, s: &str) -> Result<Duration, ProcessError> {
    humantime::parse_duration(s.trim())
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            bad(
                key,
                format!("`{s}` is not a positive duration (e.g. 5s, 12h, 30d)"),
            )
        })
}

/// `server.trusted_proxies`: comma-separated CIDRs, empty items ignored.
fn trusted_proxies(list: Option<&str>) -> Result<Vec<Cidr>, ProcessError> {
    list.unwrap_or_default()
        .split(',')
        .filter(|item| !item.trim().is_empty())
        .map(|item| item.parse().map_err(|e| bad("server.trusted_proxies", e)))
        .collect()
}

fn validate(raw: Raw) -> Result<Settings, ProcessError> {
    let listen: SocketAddr = raw.server.listen.parse().map_err(|_| {
        bad(
            "server.listen",
            format!(
                "`{}` is not host:port (e.g. 127.0.0.1:8080)",
                raw.server.listen
            ),
        )
    })?;
    let public_url = match raw.server.public_url.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => {
            let url = Url::parse(s).map_err(|e| bad("server.public_url", format!("`{s}`: {e}")))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(bad(
                    "server.public_url",
                    format!("`{s}` must be an absolute http(s) URL"),
                ));
            }
            Some(url)
        }
    };
    if raw.server.workers == Some(0) {
        return Err(bad("server.workers", "must be at least 1"));
    }
    let set = |u: Option<SecretString>| u.filter(|u| !u.expose_secret().is_empty());
    let database = match (set(raw.database.url), set(raw.database.owner_url)) {
        (Some(url), owner_url) => DatabaseTarget::Url { url, owner_url },
        (None, None) => DatabaseTarget::Local(raw.database.data_dir),
        (None, Some(_)) => {
            return Err(bad(
                "database.owner_url",
                "needs database.url too (without both, a PostgreSQL is provisioned with its own roles)",
            ));
        }
    };
    if raw.database.pool_size == 0 {
        return Err(bad("database.pool_size", "must be at least 1"));
    }
    if raw.database.lookup_connections == 0 {
        return Err(bad("database.lookup_connections", "must be at least 1"));
    }
    let replicas: Vec<SecretString> = raw
        .database
        .replica_urls
        .as_ref()
        .map(|list| {
            list.expose_secret()
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .map(SecretString::from)
                .collect()
        })
        .unwrap_or_default();
    if !replicas.is_empty() && matches!(database, DatabaseTarget::Local(_)) {
        return Err(bad(
            "database.replica_urls",
            "needs database.url too (replicas stream from a primary the operator runs)",
        ));
    }
    let replica_max_lag = match duration("database.replica_max_lag", &raw.database.replica_max_lag)?
    {
        d if d < Duration::from_millis(100) => {
            return Err(bad("database.replica_max_lag", "must be at least 100ms"));
        }
        d if d > Duration::from_secs(3_600) => {
            return Err(bad("database.replica_max_lag", "must be at most 1h"));
        }
        d => d,
    };
    let pool = PoolSettings {
        max_size: raw.database.pool_size,
        wait_timeout: duration("database.pool_timeout", &raw.database.pool_timeout)?,
        statement_timeout: duration(
            "database.statement_timeout",
            &raw.database.statement_timeout,
        )?,
    };
    let bootstrap_key = match raw.admin.bootstrap_key {
        Some(k) if k.expose_secret().chars().count() < MIN_BOOTSTRAP_KEY_LEN => {
            return Err(bad(
                "admin.bootstrap_key",
                format!("must be at least {MIN_BOOTSTRAP_KEY_LEN} characters"),
            ));
        }
        Some(k)
            if k.expose_secret()
                .chars()
                .any(|c| c.is_whitespace() || c.is_control()) =>
        {
            return Err(bad("admin.bootstrap_key", "must not contain whitespace"));
        }
        other => other,
    };
    let redirect_status = match raw.redirect.status {
        301 | 302 | 307 | 308 => {
            StatusCode::from_u16(raw.redirect.status).map_err(|e| bad("redirect.status", e))?
        }
        other => {
            return Err(bad(
                "redirect.status",
                format!("{other} is not one of 301, 302, 307, 308"),
            ));
        }
    };
    let mut plans = Plans::default();
    for (name, p) in [
        (PlanName::Trial, raw.plans.trial),
        (PlanName::Pro, raw.plans.pro),
        (PlanName::Business, raw.plans.business),
    ] {
        let period =
            Plan::parse_period(&p.period).map_err(|e| bad(&format!("plans.{name}.period"), e))?;
        plans = plans.with(Plan {
            name,
            period,
            links_per_month: p.links_per_month,
            custom_codes: p.custom_codes,
            requests_per_minute: p.requests_per_minute,
        });
    }
    let log_format = match raw.log.format.as_str() {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => return Err(bad("log.format", format!("`{other}` is not text or json"))),
    };
    let metrics = match (raw.metrics.enabled, raw.metrics.listen.as_deref()) {
        (false, _) => MetricsEndpoint::Off,
        (true, None | Some("")) => MetricsEndpoint::Main,
        (true, Some(addr)) => MetricsEndpoint::Own(addr.trim().parse().map_err(|_| {
            bad(
                "metrics.listen",
                format!("`{addr}` is not host:port (e.g. 127.0.0.1:9090)"),
            )
        })?),
    };
    let rate = raw.rate_limit;
    let rate_limits = RateLimits {
        admin: Limit::per_minute(rate.admin_per_minute),
        auth_failures: Limit::per_minute(rate.auth_failures_per_minute),
        unknown_codes: Limit::per_minute(rate.unknown_codes_per_minute),
        password_tries: Limit::per_minute(rate.password_tries_per_minute),
    };
    Ok(Settings {
        listen,
        public_url,
        workers: raw.server.workers,
        trusted_proxies: trusted_proxies(raw.server.trusted_proxies.as_deref())?,
        database,
        pool,
        lookup_connections: raw.database.lookup_connections,
        migrate_on_start: raw.database.migrate_on_start,
        replicas,
        replica_max_lag,
        bootstrap_key,
        redirect_status,
        cache_entries: match raw.redirect.cache_entries {
            0 => return Err(bad("redirect.cache_entries", "must be at least 1")),
            n => n,
        },
        count_clicks: raw.redirect.count_clicks,
        click_backlog: match raw.redirect.click_backlog {
            0 => return Err(bad("redirect.click_backlog", "must be at least 1")),
            n => n,
        },
        plans,
        allow_private_targets: raw.links.allow_private_targets,
        expiry_sweep: duration(
            "subscriptions.expiry_sweep",
            &raw.subscriptions.expiry_sweep,
        )?,
        rate_limits,
        log_format,
        log_filter: raw.log.filter,
        metrics,
        analytics: Analytics {
            enabled: raw.analytics.enabled,
            retention: match duration("analytics.retention", &raw.analytics.retention)? {
                d if d < Duration::from_secs(86_400) => {
                    return Err(bad("analytics.retention", "must be at least 1d"));
                }
                d => d,
            },
        },
        geoip: raw
            .geoip
            .database
            .filter(|path| !path.trim().is_empty())
            .map(PathBuf::from),
        session_ttl: match duration("ui.session_ttl", &raw.ui.session_ttl)? {
            d if d < Duration::from_secs(60) => {
                return Err(bad("ui.session_ttl", "must be at least 1m"));
            }
            d if d > Duration::from_secs(30 * 86_400) => {
                return Err(bad("ui.session_ttl", "must be at most 30d"));
            }
            d => d,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn load_env(pairs: &[(&str, &str)]) -> Result<Settings, ProcessError> {
        let env: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = env.clone();
        load_from(
            Some(Path::new("/dev/null/none")).filter(|_| false),
            move |k| lookup.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()),
            env,
        )
    }

    fn err(pairs: &[(&str, &str)]) -> String {
        load_env(pairs)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn defaults_are_the_contracts() {
        let s = load_env(&[]).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert!(s.public_url.is_none());
        assert!(matches!(s.database, DatabaseTarget::Local(_)));
        assert_eq!(s.redirect_status, StatusCode::FOUND);
        assert_eq!((s.pool.max_size, s.lookup_connections), (16, 2));
        assert_eq!(s.plans, Plans::default());
        assert!(s.bootstrap_key.is_none());
        assert!(s.trusted_proxies.is_empty());
        assert_eq!(s.rate_limits, RateLimits::default());
        let per_minute = |l: Option<Limit>| l.map(|l| (l.q(), l.w()));
        assert_eq!(per_minute(s.rate_limits.admin), Some((6_000, 60)));
        assert_eq!(per_minute(s.rate_limits.auth_failures), Some((20, 60)));
        assert_eq!(per_minute(s.rate_limits.unknown_codes), Some((120, 60)));
        assert_eq!(per_minute(s.rate_limits.password_tries), Some((10, 60)));
        let requests = |name| s.plans.get(name).requests_per_minute;
        assert_eq!(
            [PlanName::Trial, PlanName::Pro, PlanName::Business].map(requests),
            [60, 600, 6_000]
        );
    }

    #[test]
    fn rate_limits_and_trusted_proxies_are_configurable_and_zero_is_off() {
        let s = load_env(&[
            ("SHORTENER__RATE_LIMIT__ADMIN_PER_MINUTE", "7"),
            ("SHORTENER__RATE_LIMIT__AUTH_FAILURES_PER_MINUTE", "0"),
            ("SHORTENER__RATE_LIMIT__UNKNOWN_CODES_PER_MINUTE", "1"),
            ("SHORTENER__RATE_LIMIT__PASSWORD_TRIES_PER_MINUTE", "0"),
            ("SHORTENER__PLANS__PRO__REQUESTS_PER_MINUTE", "0"),
            ("SHORTENER__PLANS__TRIAL__REQUESTS_PER_MINUTE", "5"),
            (
                "SHORTENER__SERVER__TRUSTED_PROXIES",
                " 10.0.0.0/8, ::1/128,192.0.2.1 ,",
            ),
        ])
        .unwrap();
        assert_eq!(
            s.rate_limits,
            RateLimits {
                admin: Limit::per_minute(7),
                auth_failures: None,
                unknown_codes: Limit::per_minute(1),
                password_tries: None,
            }
        );
        assert_eq!(s.plans.get(PlanName::Pro).requests_per_minute, 0);
        assert_eq!(s.plans.get(PlanName::Trial).requests_per_minute, 5);
        assert_eq!(s.plans.get(PlanName::Business).requests_per_minute, 6_000);
        let proxies: Vec<String> = s.trusted_proxies.iter().map(Cidr::to_string).collect();
        assert_eq!(proxies, ["10.0.0.0/8", "::1/128", "192.0.2.1/32"]);
        // Empty is none.
        let s = load_env(&[("SHORTENER__SERVER__TRUSTED_PROXIES", "")]).unwrap();
        assert!(s.trusted_proxies.is_empty());
    }

    #[test]
    fn analytics_is_off_and_keeps_400_days_unless_told_otherwise() {
        let default = load_env(&[]).unwrap().analytics;
        assert!(!default.enabled);
        assert_eq!(default.retention, Duration::from_secs(400 * 86_400));
        let set = load_env(&[
            ("SHORTENER__ANALYTICS__ENABLED", "true"),
            ("SHORTENER__ANALYTICS__RETENTION", "90d"),
        ])
        .unwrap()
        .analytics;
        assert!(set.enabled);
        assert_eq!(set.retention, Duration::from_secs(90 * 86_400));
        let e = load_env(&[("SHORTENER__ANALYTICS__RETENTION", "2h")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("analytics.retention: must be at least 1d"),
            "{e}"
        );
    }

    #[test]
    fn metrics_are_on_the_main_listener_unless_moved_or_switched_off() {
        assert_eq!(load_env(&[]).unwrap().metrics, MetricsEndpoint::Main);
        let own = load_env(&[("SHORTENER__METRICS__LISTEN", "127.0.0.1:9090")]).unwrap();
        assert_eq!(
            own.metrics,
            MetricsEndpoint::Own("127.0.0.1:9090".parse().unwrap())
        );
        let off = load_env(&[("SHORTENER__METRICS__ENABLED", "false")]).unwrap();
        assert_eq!(off.metrics, MetricsEndpoint::Off);
        let e = err(&[("SHORTENER__METRICS__LISTEN", "nine")]);
        assert!(e.contains("metrics.listen: `nine` is not host:port"), "{e}");
    }

    #[test]
    fn the_geoip_database_is_none_unless_set_from_the_environment_or_the_file() {
        assert_eq!(load_env(&[]).unwrap().geoip, None);
        let s = load_env(&[("SHORTENER__GEOIP__DATABASE", "/var/lib/geoip/country.mmdb")]).unwrap();
        assert_eq!(
            s.geoip.as_deref(),
            Some(Path::new("/var/lib/geoip/country.mmdb"))
        );
        // Empty is unset.
        assert_eq!(
            load_env(&[("SHORTENER__GEOIP__DATABASE", "")])
                .unwrap()
                .geoip,
            None
        );
        // A typo is not silently ignored.
        assert!(err(&[("SHORTENER__GEOIP__DATABSE", "/x.mmdb")]).contains("databse"));

        let file = std::env::temp_dir().join(format!(
            "shortener-config-{}.toml",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&file, "[geoip]\ndatabase = \"dbip-country-lite.mmdb\"\n").unwrap();
        let from_file = load_from(Some(&file), |_| None, Vec::new());
        let _ = std::fs::remove_file(&file);
        assert_eq!(
            from_file.unwrap().geoip.as_deref(),
            Some(Path::new("dbip-country-lite.mmdb"))
        );
    }

    #[test]
    fn environment_overrides_with_double_underscores() {
        let s = load_env(&[
            ("SHORTENER__SERVER__LISTEN", "0.0.0.0:9000"),
            ("SHORTENER__REDIRECT__STATUS", "308"),
            ("SHORTENER__PLANS__PRO__LINKS_PER_MONTH", "42"),
            ("SHORTENER__PLANS__TRIAL__PERIOD", "5s"),
            ("SHORTENER__DATABASE__LOOKUP_CONNECTIONS", "1"),
            (
                "SHORTENER__ADMIN__BOOTSTRAP_KEY",
                "0123456789abcdef0123456789abcdef",
            ),
        ])
        .unwrap();
        assert_eq!(s.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.redirect_status, StatusCode::PERMANENT_REDIRECT);
        assert_eq!(s.plans.get(PlanName::Pro).links_per_month, 42);
        assert_eq!(s.lookup_connections, 1);
        assert_eq!(s.plans.get(PlanName::Trial).period, Duration::from_secs(5));
        assert!(s.bootstrap_key.is_some());
    }

    #[test]
    fn database_url_comes_from_either_variable_the_specific_one_winning() {
        let s = load_env(&[("DATABASE_URL", "postgres://a/b")]).unwrap();
        assert!(
            matches!(&s.database, DatabaseTarget::Url { url, owner_url: None } if url.expose_secret() == "postgres://a/b")
        );
        let s = load_env(&[
            ("DATABASE_URL", "postgres://a/b"),
            ("SHORTENER__DATABASE__URL", "postgres://c/d"),
        ])
        .unwrap();
        assert!(
            matches!(&s.database, DatabaseTarget::Url { url, owner_url: None } if url.expose_secret() == "postgres://c/d")
        );
    }

    #[test]
    fn replicas_are_a_comma_separated_list_of_secrets_with_a_bounded_lag() {
        let s = load_env(&[("DATABASE_URL", "postgres://a/b")]).unwrap();
        assert!(s.replicas.is_empty());
        assert_eq!(s.replica_max_lag, Duration::from_secs(5));
        let s = load_env(&[
            ("DATABASE_URL", "postgres://a/b"),
            (
                "SHORTENER__DATABASE__REPLICA_URLS",
                " postgres://u:pw1@r1/b , ,postgres://u:pw2@r2/b",
            ),
            ("SHORTENER__DATABASE__REPLICA_MAX_LAG", "750ms"),
        ])
        .unwrap();
        let urls: Vec<&str> = s.replicas.iter().map(ExposeSecret::expose_secret).collect();
        assert_eq!(urls, ["postgres://u:pw1@r1/b", "postgres://u:pw2@r2/b"]);
        assert_eq!(s.replica_max_lag, Duration::from_millis(750));
        assert!(
            !format!("{s:?}").contains("pw1"),
            "replica URLs are secrets"
        );
        for lag in ["50ms", "2h", "soon", "0s"] {
            assert!(
                err(&[
                    ("DATABASE_URL", "postgres://a/b"),
                    ("SHORTENER__DATABASE__REPLICA_MAX_LAG", lag),
                ])
                .contains("database.replica_max_lag"),
                "{lag}"
            );
        }
        // Replicas of a PostgreSQL the service provisions itself cannot exist.
        assert!(
            err(&[("SHORTENER__DATABASE__REPLICA_URLS", "postgres://r1/b")])
                .contains("database.replica_urls")
        );
    }

    #[test]
    fn migrations_connect_with_the_owner_url_when_set() {
        let s = load_env(&[
            ("DATABASE_URL", "postgres://service@a/b"),
            ("SHORTENER__DATABASE__OWNER_URL", "postgres://owner@a/b"),
        ])
        .unwrap();
        let DatabaseTarget::Url { url, owner_url } = &s.database else {
            panic!("{:?}", s.database);
        };
        assert_eq!(url.expose_secret(), "postgres://service@a/b");
        assert_eq!(
            owner_url.as_ref().map(ExposeSecret::expose_secret),
            Some("postgres://owner@a/b")
        );
        // A secret: never printed.
        assert!(!format!("{s:?}").contains("owner@"));
        // Without database.url there is nothing for the service to connect to.
        assert!(
            err(&[("SHORTENER__DATABASE__OWNER_URL", "postgres://owner@a/b")])
                .contains("database.owner_url")
        );
        // Empty is unset, as for database.url.
        let s = load_env(&[
            ("SHORTENER__DATABASE__URL", "postgres://a/b"),
            ("SHORTENER__DATABASE__OWNER_URL", ""),
        ])
        .unwrap();
        assert!(matches!(
            &s.database,
            DatabaseTarget::Url {
                owner_url: None,
                ..
            }
        ));
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(err(&[("SHORTENER__SERVER__LISTEN", "nope")]).contains("server.listen"));
        assert!(err(&[("SHORTENER__REDIRECT__STATUS", "303")]).contains("redirect.status"));
        assert!(
            err(&[("SHORTENER__ADMIN__BOOTSTRAP_KEY", "short")]).contains("admin.bootstrap_key")
        );
        assert!(err(&[("SHORTENER__PLANS__PRO__PERIOD", "soon")]).contains("plans.pro.period"));
        assert!(err(&[("SHORTENER__SERVER__PUBLIC_URL", "ftp://x")]).contains("server.public_url"));
        assert!(err(&[("SHORTENER__LOG__FORMAT", "xml")]).contains("log.format"));
        assert!(
            err(&[("SHORTENER__DATABASE__LOOKUP_CONNECTIONS", "0")])
                .contains("database.lookup_connections")
        );
        // A wrong type from the environment names the key too.
        assert!(err(&[("SHORTENER__REDIRECT__STATUS", "abc")]).contains("redirect.status"));
        // Typos are not silently ignored.
        assert!(err(&[("SHORTENER__SERVER__LISTN", "0.0.0.0:1")]).contains("listn"));
        assert!(
            err(&[("SHORTENER__RATE_LIMIT__ADMIN_PER_MINUT", "1")]).contains("admin_per_minut")
        );
        for (var, key) in [
            (
                "SHORTENER__RATE_LIMIT__ADMIN_PER_MINUTE",
                "rate_limit.admin_per_minute",
            ),
            (
                "SHORTENER__RATE_LIMIT__PASSWORD_TRIES_PER_MINUTE",
                "rate_limit.password_tries_per_minute",
            ),
            (
                "SHORTENER__PLANS__PRO__REQUESTS_PER_MINUTE",
                "plans.pro.requests_per_minute",
            ),
        ] {
            for value in ["-1", "many", "4294967296"] {
                let e = err(&[(var, value)]);
                assert!(e.contains(key), "{var}={value}: {e}");
            }
        }
    }

    #[test]
    fn a_bad_trusted_proxy_is_one_line_naming_the_key_and_the_value() {
        for value in [
            "10.0.0.0/33",
            "10.0.0.0/8, proxy.internal",
            "10.1.2.3/8",
            "::1/",
        ] {
            let e = err(&[("SHORTENER__SERVER__TRUSTED_PROXIES", value)]);
            assert!(
                e.starts_with("configuration: server.trusted_proxies: `"),
                "{e}"
            );
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(
            err(&[(
                "SHORTENER__SERVER__TRUSTED_PROXIES",
                "10.0.0.0/8, proxy.internal"
            )])
            .contains("`proxy.internal`")
        );
    }
}

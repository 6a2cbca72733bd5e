//! The options of `cargo xtask bench`, and its `--help`.

use anyhow::{Context, Result, bail};

use super::redirects;

/// What `--help` prints for this command.
pub const USAGE: &str =
    "usage: cargo xtask bench [--seconds N] [--rounds N] [--clients N] [--accounts N]
                         [--only WHAT] [--baseline REV]

Builds `shortener` and a bare actix-web redirect server (release), provisions a durable
PostgreSQL under target/bench/pg, installs wrk (apt-get) if it is missing, and measures,
on fresh databases of that one server:
  - link creation: pgbench, one single-row INSERT per transaction (the baseline), N
    clients; POST /api/v1/links against the release service, N keep-alive clients;
    POST /api/v1/links/bulk, 1000 links a request, N keep-alive clients (links/s);
    with the CPU time per link created of the service and of PostgreSQL, read from
    /proc over each measured window;
  - redirects, wrk -t2 -c128, 2 HTTP workers: the bare server (302 from a HashMap of
    100 000 links); the service with those links cached, click counting on, and off;
    the service with a cold cache (first touch of each code); pgbench -M prepared, a
    primary-key lookup of shortener.links by code, N clients (the service's pool size).
    In rounds: the cached servers run side by side and take turns (bare, on, off, off
    with every rate limit off, off with metrics off;
    the order rotated each round), then side by side (both loaded at the same time,
    each by its own wrk -t1 -c64, 2 runs of 10 s a round, at least 6, for differences
    taking turns cannot resolve): metrics on and off (counting off), visit analytics on
    and off (counting on), and analytics on against the bare server; each round also
    runs a freshly started cold service and the pgbench lookup, and (issue #20) another
    fresh cold service configured with a streaming replica of the bench PostgreSQL
    (SHORTENER__DATABASE__REPLICA_URLS; the replica is provisioned with pg_basebackup in
    target/bench/pg-replica for the cold rounds and removed after them), walking fresh
    codes of its own, the replica's CPU time apart (a service that refuses the setting,
    one without replicas, runs those turns without it: an A/A). Every cached load asks
    as visitors do: a mix of user agents and referrers (visitors.lua). Then, under
    valgrind's callgrind (installed with apt-get when missing), the instructions per
    cached redirect of the bare server and of the service with analytics off and on:
    a count that does not move with the machine. Beside requests/s, the CPU time per request of the server
    and of PostgreSQL (postmaster and children), read from /proc over each measured run;
  - the service's resident memory holding 1 000 000 links in its cache;
  - click reads: GET /api/v1/links?limit=100 with the click journal empty (the
    baseline) and at the sizes the click counter folds at;
  - rate limits: GET /api/v1/links/{code} with limits on and off, in rounds, and a
    flood of unknown codes from one address with the database transactions it caused,
    limits on and off (cached redirects with limits off run with the redirects);
  - stats: GET /api/v1/links/{code}/stats?days=366 and ?days=30 of a link with a year
    of visits from 100 000 referring hosts, before its days are capped (the baseline)
    and after;
  - search: GET /api/v1/links?q=&tag= of an account of 1 000 000 links (selective,
    unselective and 2-character q, common and rare tags), next to the plain list of
    the same account (the baseline);
  - visit limits: GET of 10 000 links without a limit (cached), of 10 000 links with
    max_visits (each GET takes a visit from the link's row) and of one limited link
    alone (every GET on the same row), one service counting clicks, wrk -t2 -c128, 2
    HTTP workers, in rounds (the order rotated each round); then the visits used are
    checked against the GETs answered, and counted exactly with blocking clients.
Prints the figures (medians over the rounds), their ratios (medians of the ratios within
each round, with their range) and the targets of issues #5, #12, #15, #17 and #18, and (full runs only)
writes them to bench/results.md.

options:
  --seconds N   length of each measurement, after a 2 s warm-up (default 10)
  --rounds N    rounds of the redirect and visit-limit comparisons (default 3); link
                creation runs once. Each round's two cold services (lookups on the
                primary, and on the replica) walk the same fresh codes every round, a
                block each, so longer --seconds write more links, up to 3 000 000
  --clients N   concurrent clients, pgbench connections and service pool size (default 16)
  --accounts N  spread the creating clients over N accounts, round robin (default 1:
                every create then queues on that account's monthly counter row)
  --only WHAT   `creates`, `redirects`, `reads`, `limits`, `stats`, `search` or
                `visit-limits`: measure only that part
                (bench/results.md is then left alone)
  --baseline REV
                also build the `shortener` of git revision REV (release, in a worktree
                under target/bench/baseline-src, with its own target/bench/baseline-target)
                and measure it against the service now, with the redirects: side by side
                (both cached, counting on, analytics off, the same links in a database
                each, visitors.lua), and its instructions per cached redirect under
                callgrind; prints now / baseline against this option's thresholds (no
                change: requests/s >= 0.97, instructions <= 1.03). Needs the redirects (a
                full run or `--only redirects`)";

/// Which half of the bench to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    All,
    Creates,
    Redirects,
    Reads,
    Limits,
    Stats,
    Search,
    VisitLimits,
}

impl Only {
    pub fn creates(self) -> bool {
        matches!(self, Only::All | Only::Creates)
    }

    pub fn redirects(self) -> bool {
        matches!(self, Only::All | Only::Redirects)
    }

    pub fn reads(self) -> bool {
        matches!(self, Only::All | Only::Reads)
    }

    pub fn limits(self) -> bool {
        matches!(self, Only::All | Only::Limits)
    }

    pub fn stats(self) -> bool {
        matches!(self, Only::All | Only::Stats)
    }

    pub fn search(self) -> bool {
        matches!(self, Only::All | Only::Search)
    }

    pub fn visit_limits(self) -> bool {
        matches!(self, Only::All | Only::VisitLimits)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `--baseline REV`: the git revision to measure the redirects against. Leaked once
    /// per run (`&'static`), so that the options stay `Copy`.
    pub baseline: Option<&'static str>,
    pub seconds: u64,
    /// Rounds of the redirect and visit-limit comparisons.
    pub rounds: usize,
    pub clients: usize,
    pub accounts: usize,
    pub only: Only,
}

/// `cargo xtask bench` without arguments.
impl Default for Options {
    fn default() -> Options {
        Options {
            seconds: 10,
            rounds: 3,
            clients: 16,
            accounts: 1,
            only: Only::All,
            baseline: None,
        }
    }
}

/// The options of `args`; `None` for `--help`.
pub fn parse(args: &[String]) -> Result<Option<Options>> {
    let mut opts = Options::default();
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
            "--seconds" | "--rounds" | "--clients" | "--accounts" | "--only" | "--baseline"
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
        if flag == "--baseline" {
            if value.is_empty() || value.starts_with('-') {
                bail!("--baseline: {value:?} is not a git revision");
            }
            opts.baseline = Some(Box::leak(value.into_boxed_str()));
            continue;
        }
        if flag == "--only" {
            opts.only = match value.as_str() {
                "creates" => Only::Creates,
                "redirects" => Only::Redirects,
                "reads" => Only::Reads,
                "limits" => Only::Limits,
                "stats" => Only::Stats,
                "search" => Only::Search,
                "visit-limits" => Only::VisitLimits,
                _ => bail!(
                    "--only: {value:?} is not `creates`, `redirects`, `reads`, `limits`, \
                     `stats`, `search` or `visit-limits`"
                ),
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
    if opts.baseline.is_some() && !opts.only.redirects() {
        bail!("--baseline is measured with the redirects: a full run or `--only redirects`");
    }
    if opts.only.redirects() {
        // Now rather than after the build.
        redirects::Plan::new(opts)?;
    }
    Ok(Some(opts))
}

#[cfg(test)]
mod tests {
    use super::*;

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
                baseline: None,
            })
        );
        assert_eq!(parse(&args(&[])).unwrap(), Some(Options::default()));
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
                baseline: None,
            })
        );
        let only = |a: &[&str]| parse(&args(a)).unwrap().map(|o| o.only);
        assert_eq!(only(&["--only", "creates"]), Some(Only::Creates));
        assert_eq!(only(&["--only=redirects"]), Some(Only::Redirects));
        assert_eq!(only(&["--only", "stats"]), Some(Only::Stats));
        assert_eq!(only(&["--only", "search"]), Some(Only::Search));
        assert_eq!(only(&["--only", "visit-limits"]), Some(Only::VisitLimits));
        assert_eq!(only(&["--only=visit-limits"]), Some(Only::VisitLimits));
        assert!(parse(&args(&["--only", "visit_limits"])).is_err());
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
    fn baseline_is_a_revision_measured_with_the_redirects() {
        let baseline = |a: &[&str]| parse(&args(a)).unwrap().and_then(|o| o.baseline);
        assert_eq!(baseline(&[]), None);
        assert_eq!(
            baseline(&["--only", "redirects", "--baseline", "5270f9c"]),
            Some("5270f9c")
        );
        assert_eq!(baseline(&["--baseline=main~3"]), Some("main~3"));
        let opts = parse(&args(&["--baseline", "v1", "--rounds", "2"]))
            .unwrap()
            .unwrap();
        assert_eq!(
            (opts.baseline, opts.rounds, opts.only),
            (Some("v1"), 2, Only::All)
        );
        assert!(parse(&args(&["--baseline"])).is_err());
        assert!(parse(&args(&["--baseline="])).is_err());
        assert!(parse(&args(&["--baseline", "--rounds", "2"])).is_err());
        assert!(parse(&args(&["--only", "creates", "--baseline", "HEAD~1"])).is_err());
    }
}

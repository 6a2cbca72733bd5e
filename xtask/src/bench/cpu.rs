//! CPU time per request, read from `/proc` just before and just after each measured run
//! (issue #12). With the load generator on the same cores, a ratio of requests/s
//! saturates on the load generator and hides what the server itself costs; the CPU time
//! each request took does not.
//!
//! A server's CPU time is `utime + stime` of `/proc/<pid>/stat` (fields 14 and 15, in
//! clock ticks), which already sums all its threads, live or gone. PostgreSQL's is that
//! of the postmaster and of every process whose parent it is (backends, walwriter,
//! checkpointer, ...: field 4, the parent's pid), plus the postmaster's `cutime +
//! cstime` (fields 16 and 17), the time of its children that have exited: a backend that
//! ends within the window moves from the one sum to the other and is still counted.
//! The load generators (wrk, pgbench's client side) are not counted.

use std::process::Command;

use anyhow::{Context, Result};

/// Clock ticks per second when `getconf CLK_TCK` cannot tell (the usual value).
const DEFAULT_TICKS_PER_SECOND: u64 = 100;

/// CPU time per request of one measured run, in µs: the server process's (none for
/// pgbench) and PostgreSQL's (none for the bare server, which has no database).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PerRequest {
    pub server_us: Option<f64>,
    pub pg_us: Option<f64>,
}

impl PerRequest {
    /// Everything measured: server plus PostgreSQL, or whichever of them was measured.
    pub fn total_us(self) -> Option<f64> {
        match (self.server_us, self.pg_us) {
            (Some(s), Some(p)) => Some(s + p),
            (s, p) => s.or(p),
        }
    }

    /// What [`PerRequest`]'s `Display` shows: `server + PostgreSQL`, `server`, ...
    pub fn parts(self) -> &'static str {
        match (self.server_us, self.pg_us) {
            (Some(_), Some(_)) => "server + PostgreSQL",
            (Some(_), None) => "server",
            (None, Some(_)) => "PostgreSQL",
            (None, None) => "not measured",
        }
    }
}

/// `8.50 + 0.15 = 8.65` (server + PostgreSQL = total, µs), or the one part measured.
impl std::fmt::Display for PerRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.server_us, self.pg_us, self.total_us()) {
            (Some(s), Some(p), Some(t)) => write!(f, "{s:.2} + {p:.2} = {t:.2}"),
            (_, _, Some(t)) => write!(f, "{t:.2}"),
            _ => f.write_str("n/a"),
        }
    }
}

/// Reads the CPU time of the processes a run is charged with.
pub struct Meter {
    postmaster: u32,
    ticks_per_second: u64,
}

/// CPU ticks at one instant: of the server (with its pid), and of PostgreSQL.
#[derive(Debug, Clone, Copy)]
pub struct Reading {
    server: Option<(u32, u64)>,
    postgres: Option<u64>,
}

impl Meter {
    /// A meter for the PostgreSQL whose postmaster is `postmaster`; asks `getconf` for
    /// the clock ticks per second once.
    pub fn new(postmaster: u32) -> Meter {
        Meter {
            postmaster,
            ticks_per_second: ticks_per_second(),
        }
    }

    /// The resolution of the CPU times: clock ticks per second.
    pub fn ticks_per_second(&self) -> u64 {
        self.ticks_per_second
    }

    /// The CPU ticks so far of the process `server` (if any), and of PostgreSQL when
    /// `postgres`.
    pub fn read(&self, server: Option<u32>, postgres: bool) -> Result<Reading> {
        Ok(Reading {
            server: match server {
                Some(pid) => Some((pid, read_stat(pid)?.own)),
                None => None,
            },
            postgres: if postgres {
                Some(postgres_ticks(self.postmaster)?)
            } else {
                None
            },
        })
    }

    /// CPU time per request of the same processes since `before`, `requests` requests
    /// having completed in between.
    pub fn since(&self, before: Reading, requests: u64) -> Result<PerRequest> {
        let after = self.read(before.server.map(|(pid, _)| pid), before.postgres.is_some())?;
        Ok(self.between(before, after, requests))
    }

    /// CPU time per request between two readings, `requests` requests (or links, or
    /// whatever unit the caller counts) having completed in between: for a caller that
    /// knows its count only after the second reading. The server's part needs both
    /// readings of the same process; PostgreSQL's, both readings of it.
    pub fn between(&self, before: Reading, after: Reading, requests: u64) -> PerRequest {
        let per_request = |before: Option<u64>, after: Option<u64>| {
            per_request_us(
                after?.saturating_sub(before?),
                self.ticks_per_second,
                requests,
            )
        };
        let server = match (before.server, after.server) {
            (Some((a, before)), Some((b, after))) if a == b => {
                per_request(Some(before), Some(after))
            }
            _ => None,
        };
        PerRequest {
            server_us: server,
            pg_us: per_request(before.postgres, after.postgres),
        }
    }
}

/// `ticks` of CPU time over `requests`, in µs each; `None` without requests.
fn per_request_us(ticks: u64, ticks_per_second: u64, requests: u64) -> Option<f64> {
    (requests > 0 && ticks_per_second > 0)
        .then(|| ticks as f64 * 1e6 / ticks_per_second as f64 / requests as f64)
}

/// `getconf CLK_TCK`, or [`DEFAULT_TICKS_PER_SECOND`] (said once) when that fails.
fn ticks_per_second() -> u64 {
    let asked = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .filter(|t| *t > 0);
    asked.unwrap_or_else(|| {
        println!(
            "    note: `getconf CLK_TCK` did not answer; assuming {DEFAULT_TICKS_PER_SECOND} \
             clock ticks a second for the CPU times"
        );
        DEFAULT_TICKS_PER_SECOND
    })
}

/// The fields of one `/proc/<pid>/stat` line the meter uses; times in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub ppid: u32,
    /// `utime + stime`: the process's own, all its threads.
    pub own: u64,
    /// `cutime + cstime`: its children's that have exited and been waited for.
    pub children: u64,
}

/// Reads a `/proc/<pid>/stat` line. Field 2, the command, is in parentheses and may hold
/// spaces and `)`: the fields after it are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (head, tail) = line.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    // After the command: field 3 (the state) first.
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        pid,
        ppid: u32::try_from(field(4)?).ok()?,
        own: field(14)?.checked_add(field(15)?)?,
        children: field(16)?.checked_add(field(17)?)?,
    })
}

fn read_stat(pid: u32) -> Result<Stat> {
    let path = format!("/proc/{pid}/stat");
    let line = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&line).with_context(|| format!("unexpected {path}: {line:?}"))
}

/// PostgreSQL's CPU ticks: see the module docs. The children are read first: one that
/// exits before the postmaster is read is then counted twice (rather than not at all),
/// an error of one process's time.
fn postgres_ticks(postmaster: u32) -> Result<u64> {
    let children: Vec<Stat> = std::fs::read_dir("/proc")
        .context("listing /proc")?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != postmaster)
        // Gone since the listing, or not a process we may read: not PostgreSQL's.
        .filter_map(|pid| read_stat(pid).ok())
        .filter(|s| s.ppid == postmaster)
        .collect();
    let postmaster = read_stat(postmaster).context("reading the postmaster's CPU time")?;
    Ok(tree_ticks(&postmaster, &children))
}

/// The postmaster's own and exited children's ticks, and its live children's own.
fn tree_ticks(postmaster: &Stat, processes: &[Stat]) -> u64 {
    let children: u64 = processes
        .iter()
        .filter(|s| s.ppid == postmaster.pid && s.pid != postmaster.pid)
        .map(|s| s.own)
        .sum();
    postmaster.own + postmaster.children + children
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/<pid>/stat` line of a PostgreSQL backend, its times set.
    fn line(pid: u32, comm: &str, ppid: u32, times: [u64; 4]) -> String {
        let [utime, stime, cutime, cstime] = times;
        format!(
            "{pid} ({comm}) S {ppid} {ppid} {ppid} 0 -1 4194560 2188 0 0 0 {utime} {stime} \
             {cutime} {cstime} 20 0 1 0 2390 229818368 3317 18446744073709551615 1 1 0 0 0 0 \
             0 16781312 19075 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
        )
    }

    #[test]
    fn stat_lines_are_read_from_the_last_parenthesis() {
        let stat = parse_stat(&line(4242, "postgres", 4200, [150, 30, 7, 3])).unwrap();
        assert_eq!(
            stat,
            Stat {
                pid: 4242,
                ppid: 4200,
                own: 180,
                children: 10
            }
        );
        // A command may hold spaces, parentheses and `) ` itself.
        let tricky = parse_stat(&line(7, "a) b (c) 1 2 3", 1, [5, 6, 0, 0])).unwrap();
        assert_eq!((tricky.pid, tricky.ppid, tricky.own), (7, 1, 11));
        assert_eq!(parse_stat(&line(8, "", 1, [1, 1, 0, 0])).unwrap().own, 2);
        assert_eq!(parse_stat("42 (short) S 1 1 1"), None);
        assert_eq!(parse_stat("not a stat line"), None);
        assert_eq!(parse_stat(""), None);
    }

    #[test]
    fn this_process_can_be_read() {
        let me = read_stat(std::process::id()).unwrap();
        assert_eq!(me.pid, std::process::id());
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
    }

    #[test]
    fn postgres_is_the_postmaster_its_children_and_its_exited_children() {
        let stat = |l: String| parse_stat(&l).unwrap();
        let postmaster = stat(line(100, "postgres", 1, [10, 5, 40, 2]));
        let processes = [
            stat(line(101, "postgres: checkpointer ", 100, [3, 1, 0, 0])),
            stat(line(
                102,
                "postgres: postgres bench_3 [local] idle",
                100,
                [500, 70, 0, 0],
            )),
            stat(line(103, "wrk", 99, [900, 900, 0, 0])),
            stat(line(104, "postgres: parallel worker", 102, [8, 8, 0, 0])),
        ];
        assert_eq!(tree_ticks(&postmaster, &processes), 15 + 42 + 4 + 570);
        // The same processes listed with the postmaster itself among them.
        let mut with_itself = processes.to_vec();
        with_itself.push(postmaster);
        assert_eq!(tree_ticks(&postmaster, &with_itself), 15 + 42 + 4 + 570);
    }

    #[test]
    fn per_request_in_microseconds() {
        // 850 ticks of 10 ms over 1 000 000 requests: 8.5 µs each.
        assert_eq!(per_request_us(850, 100, 1_000_000), Some(8.5));
        assert_eq!(per_request_us(850, 100, 0), None);
        assert_eq!(per_request_us(0, 100, 10), Some(0.0));
        let cpu = PerRequest {
            server_us: Some(8.5),
            pg_us: Some(0.25),
        };
        assert_eq!(cpu.total_us(), Some(8.75));
        let bare = PerRequest {
            server_us: Some(7.5),
            pg_us: None,
        };
        assert_eq!(bare.total_us(), Some(7.5));
        assert_eq!(PerRequest::default().total_us(), None);
        assert_eq!(
            (cpu.to_string(), cpu.parts()),
            ("8.50 + 0.25 = 8.75".to_owned(), "server + PostgreSQL")
        );
        assert_eq!(
            (bare.to_string(), bare.parts()),
            ("7.50".to_owned(), "server")
        );
        let lookup = PerRequest {
            server_us: None,
            pg_us: Some(23.04),
        };
        assert_eq!(
            (lookup.to_string(), lookup.parts()),
            ("23.04".to_owned(), "PostgreSQL")
        );
        assert_eq!(PerRequest::default().to_string(), "n/a");
    }

    #[test]
    fn between_two_readings_per_unit_counted() {
        let meter = Meter {
            postmaster: 1,
            ticks_per_second: 100,
        };
        let at = |server: Option<(u32, u64)>, postgres: Option<u64>| Reading { server, postgres };
        // 250 ticks of the service and 180 of PostgreSQL over 50 bulk requests of 1 000
        // links: per link, not per request.
        let bulk = meter.between(
            at(Some((42, 100)), Some(20)),
            at(Some((42, 350)), Some(200)),
            50 * 1000,
        );
        assert_eq!(bulk.server_us, Some(50.0));
        assert_eq!(bulk.pg_us, Some(36.0));
        // Nothing counted: no figure rather than an infinite one.
        let none = meter.between(at(Some((42, 1)), Some(1)), at(Some((42, 2)), Some(2)), 0);
        assert_eq!(none, PerRequest::default());
        // Another process than the one read first has no server figure.
        let other = meter.between(at(Some((42, 1)), Some(1)), at(Some((43, 9)), Some(3)), 2);
        assert_eq!((other.server_us, other.pg_us), (None, Some(10_000.0)));
        // PostgreSQL read on one side only: no PostgreSQL figure.
        let half = meter.between(at(Some((42, 1)), None), at(Some((42, 3)), Some(3)), 2);
        assert_eq!((half.server_us, half.pg_us), (Some(10_000.0), None));
    }

    #[test]
    fn a_meter_reads_this_process() {
        let meter = Meter {
            postmaster: std::process::id(),
            ticks_per_second: ticks_per_second(),
        };
        let me = std::process::id();
        let before = meter.read(Some(me), true).unwrap();
        let cpu = meter.since(before, 1000).unwrap();
        assert!(cpu.server_us.is_some_and(|us| us >= 0.0));
        assert!(cpu.pg_us.is_some_and(|us| us >= 0.0));
        let none = meter.read(None, false).unwrap();
        assert_eq!(meter.since(none, 1000).unwrap(), PerRequest::default());
    }
}

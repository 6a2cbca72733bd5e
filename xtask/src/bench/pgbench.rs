//! pgbench, the bench's PostgreSQL-only baselines: run on the bench cluster with the
//! server's own pgbench, its report read back (throughput, transactions, failures), and
//! its per-transaction logs read for latency percentiles.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::cluster::Cluster;

/// One pgbench run, as its report tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Run {
    /// Transactions per second, without the initial connection time.
    pub tps: f64,
    /// Failed transactions (pgbench 15+; 0 before).
    pub failed: u64,
    /// `number of transactions actually processed`.
    pub transactions: Option<u64>,
}

/// pgbench with `script` on `db` for `secs` seconds, `clients` connections over at most 2
/// threads, and `extra` options (`-M prepared`, logging, ...).
pub fn run(
    pg: &Cluster,
    db: &str,
    script: &Path,
    clients: usize,
    secs: u64,
    extra: &[&str],
) -> Result<Run> {
    let out = pg
        .tool("pgbench")
        .args(["-n", "-c", &clients.to_string()])
        .args(extra)
        .args(["-j", &clients.min(2).to_string()])
        .args(["-T", &secs.to_string(), "-f"])
        .arg(script)
        .args(["-h", pg.socket_dir(), "-U", "postgres", db])
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
    parse(&stdout)
        .with_context(|| format!("no `tps = ... (without initial connection time)` in:\n{stdout}"))
}

/// [`run`], logging a 10 % sample of its transactions to `<log_prefix>.<pid>[.<thread>]`
/// (earlier logs of that prefix removed first); returns the run and the sampled
/// transactions' latencies in µs, sorted.
pub fn run_sampled(
    pg: &Cluster,
    db: &str,
    script: &Path,
    clients: usize,
    secs: u64,
    extra: &[&str],
    log_prefix: &Path,
) -> Result<(Run, Vec<u64>)> {
    remove_logs(log_prefix)?;
    let prefix = log_prefix
        .to_str()
        .context("the pgbench log directory is not UTF-8")?;
    let mut args = extra.to_vec();
    args.extend(["-l", "--sampling-rate", "0.1", "--log-prefix", prefix]);
    let run = run(pg, db, script, clients, secs, &args)?;
    let mut latencies = read_logs(log_prefix)?;
    latencies.sort_unstable();
    Ok((run, latencies))
}

/// The throughput line of pgbench 14+ (`without initial connection time`), or of older
/// versions (`excluding connections establishing`), the transactions processed, and the
/// failed transactions (15+).
fn parse(out: &str) -> Option<Run> {
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
    let count = |prefix: &str| {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(prefix))
            .and_then(|rest| rest.split([' ', '/']).next()?.parse().ok())
    };
    Some(Run {
        tps,
        failed: count("number of failed transactions: ").unwrap_or(0),
        transactions: count("number of transactions actually processed: "),
    })
}

/// The log files of `log_prefix` (pgbench writes `<prefix>.<pid>[.<thread>]`).
fn logs(log_prefix: &Path) -> Result<Vec<PathBuf>> {
    let dir = log_prefix.parent().unwrap_or(Path::new("."));
    let dot = format!(
        "{}.",
        log_prefix
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    );
    Ok(std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&dot))
        })
        .collect())
}

fn remove_logs(log_prefix: &Path) -> Result<()> {
    for path in logs(log_prefix)? {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(())
}

/// Transaction latencies (µs, the third field of each line) of pgbench's logs.
fn read_logs(log_prefix: &Path) -> Result<Vec<u64>> {
    let mut latencies = Vec::new();
    for path in logs(log_prefix)? {
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
pub fn percentile(sorted: &[u64], q: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throughput_and_counts_are_read_from_either_format() {
        let v15 = "transaction type: insert.sql\nduration: 10 s\n\
                   number of transactions actually processed: 12345\n\
                   number of failed transactions: 2 (0.010%)\n\
                   latency average = 1.2 ms\ninitial connection time = 9.1 ms\n\
                   tps = 1234.567890 (without initial connection time)\n";
        let r = parse(v15).unwrap();
        assert!((r.tps - 1234.56789).abs() < 1e-6);
        assert_eq!(r.failed, 2);
        assert_eq!(r.transactions, Some(12345));
        let v13 = "number of transactions actually processed: 1000/1000\n\
                   tps = 99.5 (including connections establishing)\n\
                   tps = 100.25 (excluding connections establishing)\n";
        let r = parse(v13).unwrap();
        assert!((r.tps - 100.25).abs() < 1e-9);
        assert_eq!((r.failed, r.transactions), (0, Some(1000)));
        assert!(parse("pgbench: error: connection refused").is_none());
    }

    #[test]
    fn percentiles() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), Some(50));
        assert_eq!(percentile(&v, 0.99), Some(99));
        assert_eq!(percentile(&[7], 0.99), Some(7));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn logs_of_a_prefix_are_read_and_removed() {
        let dir = std::env::temp_dir().join(format!("xtask-pgbench-logs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let prefix = dir.join("lookup");
        std::fs::write(dir.join("lookup.77"), "0 1 250 0 1 2\n1 1 120 0 1 3\n").unwrap();
        std::fs::write(dir.join("lookup.77.1"), "0 2 90 0 1 4\n").unwrap();
        std::fs::write(dir.join("lookups.txt"), "0 2 999 0 1 4\n").unwrap();
        let mut latencies = read_logs(&prefix).unwrap();
        latencies.sort_unstable();
        assert_eq!(latencies, [90, 120, 250]);
        remove_logs(&prefix).unwrap();
        assert!(logs(&prefix).unwrap().is_empty());
        assert!(dir.join("lookups.txt").is_file());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Stats over a year of visits (issue #17): how long `GET /api/v1/links/{code}/stats`
//! takes for a link with a year of history and 100 000 distinct referring hosts, before
//! its days are capped (the baseline) and after (migration 000019: a day two days old
//! keeps each dimension's 100 values with most clicks, the rest as `(other)`).
//!
//! The year is written with SQL straight into `link_daily_visits`, 366 days ending today
//! (UTC): 1 000 referring hosts a day out of 100 000 (host `(d * 1 000 + i) mod 100 000`
//! on day `d`, so the hosts repeat every 100 days), clicks falling off as 1 000 / rank,
//! and a handful of values in the other dimensions. Capping runs as the sweep runs it,
//! `shortener.compact_visit_days`, 50 (link, day) pairs a statement; the service's own
//! sweep is held off (`subscriptions.expiry_sweep` of a day) so that the baseline is read
//! uncapped.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::build::Binaries;
use super::cluster::Cluster;
use super::http::Http;
use super::service::Service;

/// The database of the stats runs.
const DB: &str = "bench_6";
/// Calls timed per measurement, after [`WARM_UP`] untimed ones.
const CALLS: usize = 20;
const WARM_UP: usize = 2;

/// One read: a period, before or after capping.
pub struct Read {
    pub name: String,
    pub p50: Duration,
    pub max: Duration,
    /// Whether the 50 ms target applies (the capped year).
    pub target: bool,
}

pub struct StatsReads {
    /// Visit rows of the link before and after capping, and its distinct referrers.
    pub rows_before: u64,
    pub rows_after: u64,
    pub referrers: u64,
    pub fill: Duration,
    pub cap: Duration,
    pub reads: Vec<Read>,
}

pub fn measure(pg: &Cluster, bins: &Binaries, work: &Path) -> Result<StatsReads> {
    println!("==> stats: GET /api/v1/links/{{code}}/stats over a year of visits");
    let url = pg.fresh_database(DB)?;
    let service = Service::start_with(
        &bins.service,
        work,
        &url,
        4,
        "shortener-stats.log",
        &[
            ("SHORTENER__REDIRECT__COUNT_CLICKS", "false".to_owned()),
            ("SHORTENER__SUBSCRIPTIONS__EXPIRY_SWEEP", "1d".to_owned()),
        ],
    )?;
    let key = service.account_key(0)?;
    let code = service.create_link(&key, "https://example.com/stats")?;
    let id = pg.psql(
        DB,
        &format!("SELECT id FROM shortener.links WHERE code = '{code}'"),
    )?;

    let started = Instant::now();
    fill(pg, &id)?;
    let fill_took = started.elapsed();
    let count = |sql: &str| -> Result<u64> {
        let n = pg.psql(DB, sql)?;
        n.parse().with_context(|| format!("unexpected count {n:?}"))
    };
    let rows_sql =
        format!("SELECT count(*) FROM shortener.link_daily_visits WHERE link_id = '{id}'");
    let rows_before = count(&rows_sql)?;
    let referrers = count(&format!(
        "SELECT count(DISTINCT value) FROM shortener.link_daily_visits \
         WHERE link_id = '{id}' AND dimension = 1"
    ))?;
    println!(
        "    filled {rows_before} rows, {referrers} distinct referrers, in {:.1?}",
        fill_took
    );

    let mut reads = Vec::new();
    let mut answers = Vec::new();
    for days in [366, 30] {
        let (read, answer) = time(&service, &key, &code, days, "not capped (baseline)", false)?;
        reads.push(read);
        answers.push(answer);
    }

    let started = Instant::now();
    pg.psql(
        DB,
        &format!(
            "DO $$ BEGIN \
               WHILE shortener.compact_visit_days((now() AT TIME ZONE 'UTC')::date - 2, 50, {}) \
                     = 50 LOOP COMMIT; END LOOP; \
             END $$",
            shortener_pg::VISIT_DAY_VALUES
        ),
    )?;
    let cap_took = started.elapsed();
    let rows_after = count(&rows_sql)?;
    println!("    capped to {rows_after} rows in {cap_took:.1?}");
    for days in [366, 30] {
        let (read, _) = time(&service, &key, &code, days, "capped, before VACUUM", false)?;
        reads.push(read);
    }
    // As autovacuum would, soon after: the tail's deleted rows leave the index.
    pg.psql(DB, "VACUUM ANALYZE shortener.link_daily_visits")?;
    for (days, before) in [366, 30].into_iter().zip(&answers) {
        let (read, answer) = time(&service, &key, &code, days, "capped", days == 366)?;
        reads.push(read);
        if answer["clicks"] != before["clicks"] || answer["breakdowns"] != before["breakdowns"] {
            bail!("days={days}: the stats changed when capped:\n{before}\n{answer}");
        }
    }
    drop(service);
    Ok(StatsReads {
        rows_before,
        rows_after,
        referrers,
        fill: fill_took,
        cap: cap_took,
        reads,
    })
}

/// A year of visits for link `id`, ending today (UTC).
fn fill(pg: &Cluster, id: &str) -> Result<()> {
    pg.psql(
        DB,
        &format!(
            "INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks) \
             SELECT '{id}', 1, (now() AT TIME ZONE 'UTC')::date - d, \
                    'h' || ((d * 1000 + i) % 100000) || '.example', \
                    1 + 1000 / (1 + (i * 7) % 1000) \
             FROM generate_series(0, 365) AS d, generate_series(0, 999) AS i"
        ),
    )?;
    pg.psql(
        DB,
        &format!(
            "INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks) \
             SELECT '{id}', x.dim, (now() AT TIME ZONE 'UTC')::date - d, x.value, x.clicks \
             FROM generate_series(0, 365) AS d, \
                  (VALUES (2, 'DE', 3000), (2, 'US', 2500), (2, 'FR', 1000), (2, 'GB', 800), \
                          (2, 'NL', 500), (2, 'JP', 200), (2, '--', 69), \
                          (3, 'Firefox', 3000), (3, 'Chrome', 4000), (3, 'Safari', 1000), \
                          (3, 'Other', 69), \
                          (4, 'Linux', 2000), (4, 'Windows', 4000), (4, 'macOS', 2000), \
                          (4, 'Other', 69), \
                          (5, 'desktop', 6000), (5, 'mobile', 2000), (5, 'bot', 69)) \
                  AS x (dim, value, clicks)"
        ),
    )?;
    pg.psql(DB, "VACUUM ANALYZE shortener.link_daily_visits")?;
    Ok(())
}

/// `GET .../stats?days={days}`: [`WARM_UP`] calls, then [`CALLS`] timed; the median and
/// the slowest, and the last answer.
fn time(
    service: &Service,
    key: &str,
    code: &str,
    days: u32,
    what: &str,
    target: bool,
) -> Result<(Read, serde_json::Value)> {
    // A new connection: the fill outlasts the service's keep-alive.
    let mut http = Http::new(service.addr());
    let path = format!("/api/v1/links/{code}/stats?days={days}");
    let mut times = Vec::with_capacity(CALLS);
    let mut last = Vec::new();
    for i in 0..WARM_UP + CALLS {
        let started = Instant::now();
        let (status, answer) = http.request("GET", &path, Some(key), None)?;
        let took = started.elapsed();
        if status != 200 {
            bail!("GET {path}: {status}: {}", String::from_utf8_lossy(&answer));
        }
        if i >= WARM_UP {
            times.push(took);
        }
        last = answer;
    }
    times.sort_unstable();
    let read = Read {
        name: format!("days={days}, {what}"),
        p50: times[times.len() / 2],
        max: times[times.len() - 1],
        target,
    };
    println!(
        "    {}: median {:.1} ms, max {:.1} ms",
        read.name,
        read.p50.as_secs_f64() * 1e3,
        read.max.as_secs_f64() * 1e3
    );
    let answer = serde_json::from_slice(&last).with_context(|| format!("GET {path}: the JSON"))?;
    Ok((read, answer))
}

//! Click reads against the journal (issue #13, item 8): how long `GET /api/v1/links`
//! takes for a page of 100 links whose clicks are partly unfolded, with the journal
//! empty (the baseline) and at the sizes the click counter lets it reach.
//!
//! A link's `clicks` adds its bucket's journal rows to its folded days, so a page read
//! costs in proportion to what the journal holds. The counter folds at once when a write
//! reports more than `ClickSettings::fold_at` (6 000 000 entries or 65 536 rows), so the
//! shapes measured are those limits: many entries in few rows (heavy traffic from one
//! instance), many rows of few entries (many instances, light traffic), and twice the
//! entry limit (what a fold still running meets). The journal is filled with SQL, in the
//! service's own layout: 1 024 bucket rows per batch, the page's 100 links in every batch
//! of their bucket beside random others.
//!
//! The service runs with click counting off, so it never folds what the bench wrote.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::build::Binaries;
use super::cluster::Cluster;
use super::http::Http;
use super::service::Service;

/// The database of the read runs.
const DB: &str = "bench_4";
/// Links on the page read.
const PAGE: usize = 100;
/// Requests timed per journal shape.
const REQUESTS: usize = 30;

/// One journal shape and the page reads over it.
pub struct Shape {
    pub name: &'static str,
    /// Journal rows and entries, as counted after the fill.
    pub rows: u64,
    pub entries: u64,
    /// Page read latency.
    pub p50: Duration,
    pub p90: Duration,
}

/// Every shape, the empty journal first.
pub struct ClickReads {
    pub shapes: Vec<Shape>,
}

/// Journal shapes: (name, batches, random entries per bucket row).
const SHAPES: [(&str, u64, u64); 4] = [
    ("journal empty (all folded): the baseline", 0, 0),
    ("at the entry limit: 60 batches x 1 024 rows x 98", 60, 98),
    ("at the row limit: 64 batches x 1 024 rows x 2", 64, 2),
    (
        "twice the entry limit: 120 batches x 1 024 rows x 98",
        120,
        98,
    ),
];

pub fn measure(pg: &Cluster, bins: &Binaries, work: &Path) -> Result<ClickReads> {
    println!("==> click reads: GET /api/v1/links?limit={PAGE} over the click journal");
    let url = pg.fresh_database(DB)?;
    let service = Service::start_with(
        &bins.service,
        work,
        &url,
        4,
        "shortener-reads.log",
        &[("SHORTENER__REDIRECT__COUNT_CLICKS", "false".to_owned())],
    )?;
    let key = service.account_key(0)?;
    let mut http = Http::new(service.addr());
    for n in 0..PAGE {
        let body = format!(r#"{{"url":"https://example.com/read/{n}"}}"#);
        let (status, answer) = http.request("POST", "/api/v1/links", Some(&key), Some(&body))?;
        if status != 201 {
            bail!(
                "creating link {n}: {status}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
    }
    pg.psql(
        DB,
        "CREATE TABLE bench_page AS SELECT id FROM shortener.links; ANALYZE bench_page",
    )?;
    let mut shapes = Vec::new();
    for (name, batches, random) in SHAPES {
        fill(pg, batches, random)?;
        let counted = pg.psql(
            DB,
            "SELECT count(*) || ' ' || coalesce(sum(cardinality(link_ids)), 0) \
             FROM shortener.click_journal",
        )?;
        let (rows, entries) = counted
            .split_once(' ')
            .and_then(|(r, e)| Some((r.parse().ok()?, e.parse().ok()?)))
            .with_context(|| format!("unexpected journal count {counted:?}"))?;
        // A new connection: the fill outlasts the service's keep-alive.
        let mut http = Http::new(service.addr());
        let mut times = Vec::with_capacity(REQUESTS);
        // One read first, untimed: the journal's pages come into memory.
        for i in 0..=REQUESTS {
            let started = Instant::now();
            let (status, answer) = http.request(
                "GET",
                &format!("/api/v1/links?limit={PAGE}"),
                Some(&key),
                None,
            )?;
            let took = started.elapsed();
            if status != 200 {
                bail!(
                    "GET /api/v1/links: {status}: {}",
                    String::from_utf8_lossy(&answer)
                );
            }
            if i > 0 {
                times.push(took);
            }
        }
        times.sort_unstable();
        let shape = Shape {
            name,
            rows,
            entries,
            p50: times[times.len() / 2],
            p90: times[times.len() * 9 / 10],
        };
        println!(
            "    {name}: {rows} rows, {entries} entries: p50 {:.1} ms, p90 {:.1} ms",
            shape.p50.as_secs_f64() * 1e3,
            shape.p90.as_secs_f64() * 1e3
        );
        shapes.push(shape);
    }
    drop(service);
    Ok(ClickReads { shapes })
}

/// Empties the journal and writes `batches` batches of 1 024 bucket rows, each with
/// `random` random links and the page's links of that bucket.
fn fill(pg: &Cluster, batches: u64, random: u64) -> Result<()> {
    pg.psql(DB, "TRUNCATE shortener.click_journal")?;
    if batches == 0 {
        return Ok(());
    }
    pg.psql(
        DB,
        &format!(
            "INSERT INTO shortener.click_journal (bucket, batch_id, link_ids, days, clicks) \
             SELECT bk, gen_random_uuid(), ids, \
                    array_fill(current_date, ARRAY[cardinality(ids)]), \
                    array_fill(1::bigint, ARRAY[cardinality(ids)]) \
             FROM generate_series(1, {batches}) AS b, generate_series(0, 1023) AS bk, \
             LATERAL (SELECT array(SELECT gen_random_uuid() \
                                   FROM generate_series(1, {random} + b * 0)) \
                             || coalesce((SELECT array_agg(id) FROM bench_page \
                                          WHERE shortener.click_bucket(id) = bk), '{{}}') \
                             AS ids) AS x"
        ),
    )?;
    pg.psql(DB, "VACUUM ANALYZE shortener.click_journal")?;
    Ok(())
}

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
    /// Whether the journal can stand at this size (the 50 ms target applies), or only
    /// pass through it while a fold runs.
    pub target: bool,
}

/// Every shape, the empty journal first; then the export.
pub struct ClickReads {
    pub shapes: Vec<Shape>,
    pub export: Export,
}

/// `GET /api/v1/links/export` of [`EXPORTED`] links (issue #15): streamed, so the
/// service's peak memory should not grow with the account.
pub struct Export {
    pub rows: u64,
    pub bytes: u64,
    pub took: Duration,
    /// The service's peak resident memory before the export and after it.
    pub peak_before: u64,
    pub peak_after: u64,
}

/// Links in the exported account.
pub const EXPORTED: u64 = 100_000;

/// Journal shapes: (name, batches, random entries per bucket row, target applies).
const SHAPES: [(&str, u64, u64, bool); 4] = [
    ("journal empty (all folded): the baseline", 0, 0, true),
    (
        "at the entry limit: 60 batches x 1 024 rows x 98",
        60,
        98,
        true,
    ),
    ("at the row limit: 64 batches x 1 024 rows x 2", 64, 2, true),
    (
        "twice the entry limit: 120 batches x 1 024 rows x 98",
        120,
        98,
        false,
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
    for (name, batches, random, target) in SHAPES {
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
            target,
        };
        println!(
            "    {name}: {rows} rows, {entries} entries: p50 {:.1} ms, p90 {:.1} ms",
            shape.p50.as_secs_f64() * 1e3,
            shape.p90.as_secs_f64() * 1e3
        );
        shapes.push(shape);
    }
    let export = export(pg, &service, &key)?;
    drop(service);
    Ok(ClickReads { shapes, export })
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

/// Fills the account to [`EXPORTED`] links and exports them.
fn export(pg: &Cluster, service: &Service, key: &str) -> Result<Export> {
    println!("==> export: GET /api/v1/links/export of {EXPORTED} links");
    pg.psql(DB, "TRUNCATE shortener.click_journal")?;
    pg.psql(
        DB,
        &format!(
            "INSERT INTO shortener.links (id, code, account_id, target, created_at) \
             SELECT gen_random_uuid(), 'exp' || n, (SELECT account_id FROM shortener.links LIMIT 1), \
                    'https://example.com/export/' || n, now() \
             FROM generate_series(1, {}) AS n",
            EXPORTED - PAGE as u64
        ),
    )?;
    pg.psql(DB, "VACUUM ANALYZE shortener.links")?;
    let peak_before = service.peak_rss()?;
    let started = Instant::now();
    let (status, body) =
        Http::new(service.addr()).request("GET", "/api/v1/links/export", Some(key), None)?;
    let took = started.elapsed();
    if status != 200 {
        bail!(
            "GET /api/v1/links/export: {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let rows = body.iter().filter(|b| **b == b'\n').count() as u64 - 1;
    if rows != EXPORTED {
        bail!("the export has {rows} rows, not {EXPORTED}");
    }
    let export = Export {
        rows,
        bytes: body.len() as u64,
        took,
        peak_before,
        peak_after: service.peak_rss()?,
    };
    println!(
        "    {rows} rows, {} bytes in {:.2?}; service peak RSS {:.1} MB before, {:.1} MB after",
        export.bytes,
        took,
        peak_before as f64 / 1e6,
        export.peak_after as f64 / 1e6
    );
    Ok(export)
}

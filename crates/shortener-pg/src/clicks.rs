//! Clicks on PostgreSQL: a journal that takes each flush cheaply, folded into the days
//! about once a minute (migration 000009 says why and what it measured).
//!
//! A flush becomes one `click_journal` row per bucket of links it touches, the counts as
//! parallel arrays; the batch id goes into `click_batches` in the same statement, so a
//! retried batch adds nothing. The fold moves journal rows into `link_daily_clicks`
//! a range of buckets at a time, each range in one transaction (the rows leave the journal
//! and reach the days in the same commit), so totals read the same before, during and after.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::NaiveDate;
use diesel::sql_types::{Array, BigInt, Bool, Date, Integer, SmallInt, Text, Uuid as SqlUuid};
use diesel::{QueryableByName, sql_query};
use diesel_async::{AsyncConnection, RunQueryDsl};
use shortener_app::{AppError, ClickBatch, ClickCount, ClickStore, Unfolded, VisitCount, VisitKey};
use shortener_domain::visit::RefHost;
use uuid::Uuid;

use crate::arrays::ArrayParam;
use crate::{Db, PgError, PgStore};

/// Buckets of links in the journal; `shortener.click_bucket` computes the same.
const BUCKETS: i16 = 1024;
/// Buckets folded in one transaction: 1/64 of the journal, so a fold never holds more
/// than a few megabytes in memory, and each of its statements stays well within the
/// statement timeout, however much the journal has gathered. At 1/16, a minute of visits
/// under the bench's load (every click a visit of its own, 60 000 a second, each split
/// into five rows in SQL) took more than the 10 s timeout.
const FOLD_BUCKETS: i16 = 16;

/// The journal bucket of `link`: the last ten bits of its id, as `shortener.click_bucket`.
fn bucket(link: Uuid) -> i16 {
    let b = link.as_bytes();
    (i16::from(b[14] & 3) << 8) | i16::from(b[15])
}

/// Where each bucket's run of a journal INSERT's entries starts and ends (1-based,
/// inclusive, as SQL array slices), the entries sorted by bucket.
#[derive(Debug, Default, PartialEq)]
struct Runs {
    buckets: Vec<i16>,
    starts: Vec<i32>,
    ends: Vec<i32>,
}

/// A batch's clicks laid out for one `click_journal` INSERT.
#[derive(Debug, Default, PartialEq)]
struct Journal {
    links: Vec<Uuid>,
    days: Vec<NaiveDate>,
    clicks: Vec<i64>,
    runs: Runs,
}

impl Journal {
    /// The counts sorted by their link's bucket (then by link and day, so that concurrent
    /// writes touch rows in one order), with the runs of each bucket.
    fn of(counts: &[ClickCount]) -> Journal {
        let mut sorted: Vec<(i16, &ClickCount)> = counts
            .iter()
            .map(|c| (bucket(c.link.as_uuid()), c))
            .collect();
        sorted.sort_by_key(|(b, c)| (*b, c.link.as_uuid(), c.day));
        let mut j = Journal {
            links: Vec::with_capacity(sorted.len()),
            days: Vec::with_capacity(sorted.len()),
            clicks: Vec::with_capacity(sorted.len()),
            runs: Runs::default(),
        };
        for (i, (b, c)) in sorted.into_iter().enumerate() {
            // Batches hold at most BATCH_LIMIT (65 536) entries: the position fits.
            let at = i32::try_from(i + 1).unwrap_or(i32::MAX);
            if j.runs.buckets.last() == Some(&b) {
                if let Some(end) = j.runs.ends.last_mut() {
                    *end = at;
                }
            } else {
                j.runs.buckets.push(b);
                j.runs.starts.push(at);
                j.runs.ends.push(at);
            }
            j.links.push(c.link.as_uuid());
            j.days.push(c.day);
            j.clicks.push(i64::try_from(c.clicks).unwrap_or(i64::MAX));
        }
        j
    }
}

/// A batch's visits laid out for one `visit_journal` INSERT: one entry per distinct
/// visit, its bucket, link, day, referring host and traits side by side (the fold, in
/// SQL, splits them into dimensions). Every value is a number but the hosts, and each
/// host is sent once (`hosts`, `(direct)` first), its visits naming its place: five text
/// values a visit were most of what a flush cost the service (migration 000025). Unlike [`Journal`], the entries are grouped
/// into buckets by PostgreSQL (`GROUP BY`), not sliced out of the parameters by runs: a
/// slice of a text array walks it from its start, so 1 024 slices of a 65 536-entry batch
/// took 3.9 s against 0.18 s grouped.
#[derive(Debug, Default, PartialEq)]
struct VisitJournal<'a> {
    buckets: Vec<i16>,
    links: Vec<Uuid>,
    days: Vec<NaiveDate>,
    /// Each visit's referring host: its 1-based place in `hosts`.
    referrers: Vec<i32>,
    traits: Vec<i32>,
    clicks: Vec<i64>,
    /// The referring hosts, `(direct)` first. A host is listed once per worker that
    /// classified it (visits share their worker's copy, found by address, not by text):
    /// a repeat costs the INSERT one more row to join.
    hosts: Vec<&'a str>,
}

impl<'a> VisitJournal<'a> {
    fn of(visits: &'a [VisitCount]) -> VisitJournal<'a> {
        let n = visits.len();
        let mut j = VisitJournal {
            buckets: Vec::with_capacity(n),
            links: Vec::with_capacity(n),
            days: Vec::with_capacity(n),
            referrers: Vec::with_capacity(n),
            traits: Vec::with_capacity(n),
            clicks: Vec::with_capacity(n),
            // As `VisitValue::Referrer(None)` shows it.
            hosts: vec!["(direct)"],
        };
        let mut places: HashMap<*const RefHost, i32, foldhash::fast::RandomState> =
            HashMap::default();
        for v in visits {
            let key = &v.visit;
            j.buckets.push(bucket(v.link.as_uuid()));
            j.links.push(v.link.as_uuid());
            j.days.push(v.day);
            j.referrers.push(match &key.referrer {
                None => 1,
                Some(host) => *places.entry(Arc::as_ptr(host)).or_insert_with(|| {
                    j.hosts.push(host.as_str());
                    // At most one host per visit, and a batch's visits fit an i32.
                    i32::try_from(j.hosts.len()).unwrap_or(i32::MAX)
                }),
            });
            j.traits.push(traits(key));
            j.clicks.push(i64::try_from(v.clicks).unwrap_or(i64::MAX));
        }
        j
    }
}

/// A visit's country, browser, OS and device as one number, as migration 000025's
/// `shortener.visit_label` takes it apart: the domain's codes, country in bits 0-9,
/// browser 10-14, OS 15-19, device 20-23.
fn traits(visit: &VisitKey) -> i32 {
    i32::from(visit.country.code())
        | i32::from(visit.agent.browser.code()) << 10
        | i32::from(visit.agent.os.code()) << 15
        | i32::from(visit.agent.device.code()) << 20
}

/// What a fold took from the click journal, and the (link, day) pairs it added to.
#[derive(QueryableByName)]
struct Taken {
    #[diesel(sql_type = BigInt)]
    entries: i64,
    #[diesel(sql_type = BigInt)]
    journal_rows: i64,
    #[diesel(sql_type = BigInt)]
    pairs: i64,
}

/// The journal's size, as `shortener.click_journal_size` keeps it (migration `000014`).
#[derive(QueryableByName)]
struct Size {
    #[diesel(sql_type = BigInt)]
    entries: i64,
    #[diesel(sql_type = BigInt)]
    journal_rows: i64,
}

impl Size {
    fn unfolded(&self) -> Unfolded {
        Unfolded {
            counts: u64::try_from(self.entries).unwrap_or(0),
            records: u64::try_from(self.journal_rows).unwrap_or(0),
        }
    }
}

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = Bool)]
    locked: bool,
}

impl ClickStore for PgStore {
    async fn add_clicks(&self, batch: &ClickBatch) -> Result<Unfolded, AppError> {
        if batch.counts.is_empty() {
            return Ok(Unfolded::default());
        }
        let j = Journal::of(&batch.counts);
        let v = VisitJournal::of(&batch.visits);
        let (entries, rows) = (j.links.len() as i64, j.runs.buckets.len() as i64);
        let mut conn = self.db().conn().await?;
        // One statement: the batch id, its journal rows and the journal's size commit
        // together or not at all, and a batch id seen before adds nothing (and reads the
        // size as it is).
        let size: Vec<Size> = sql_query(
            "WITH b AS (INSERT INTO shortener.click_batches (id) VALUES ($1) \
                        ON CONFLICT (id) DO NOTHING RETURNING id), \
                  pruned AS (DELETE FROM shortener.click_batches \
                             WHERE written_at < now() - interval '1 day'), \
                  journalled AS ( \
                    INSERT INTO shortener.click_journal (bucket, batch_id, link_ids, days, clicks) \
                    SELECT s.bucket, $1, ($2::uuid[])[s.lo:s.hi], ($3::date[])[s.lo:s.hi], \
                           ($4::bigint[])[s.lo:s.hi] \
                    FROM unnest($5::smallint[], $6::int[], $7::int[]) AS s (bucket, lo, hi) \
                    WHERE EXISTS (SELECT 1 FROM b)), \
                  visited AS ( \
                    INSERT INTO shortener.visit_journal (bucket, batch_id, link_ids, days, \
                        referrers, traits, clicks) \
                    SELECT e.bucket, $1, array_agg(e.link_id), array_agg(e.day), \
                           array_agg(h.host), array_agg(e.traits), array_agg(e.n) \
                    FROM unnest($10::smallint[], $11::uuid[], $12::date[], $13::int[], \
                                $14::int[], $15::bigint[]) \
                        AS e (bucket, link_id, day, referrer, traits, n) \
                    JOIN unnest($16::text[]) WITH ORDINALITY AS h (host, place) \
                        ON h.place = e.referrer \
                    WHERE EXISTS (SELECT 1 FROM b) GROUP BY e.bucket), \
                  sized AS ( \
                    UPDATE shortener.click_journal_size \
                    SET entries = entries + $8, journal_rows = journal_rows + $9 \
                    WHERE EXISTS (SELECT 1 FROM b) RETURNING entries, journal_rows) \
             SELECT entries, journal_rows FROM sized \
             UNION ALL \
             SELECT entries, journal_rows FROM shortener.click_journal_size \
             WHERE NOT EXISTS (SELECT 1 FROM b)",
        )
        .bind::<SqlUuid, _>(batch.id)
        .bind::<Array<SqlUuid>, _>(ArrayParam(&j.links))
        .bind::<Array<Date>, _>(ArrayParam(&j.days))
        .bind::<Array<BigInt>, _>(ArrayParam(&j.clicks))
        .bind::<Array<SmallInt>, _>(ArrayParam(&j.runs.buckets))
        .bind::<Array<Integer>, _>(ArrayParam(&j.runs.starts))
        .bind::<Array<Integer>, _>(ArrayParam(&j.runs.ends))
        .bind::<BigInt, _>(entries)
        .bind::<BigInt, _>(rows)
        .bind::<Array<SmallInt>, _>(ArrayParam(&v.buckets))
        .bind::<Array<SqlUuid>, _>(ArrayParam(&v.links))
        .bind::<Array<Date>, _>(ArrayParam(&v.days))
        .bind::<Array<Integer>, _>(ArrayParam(&v.referrers))
        .bind::<Array<Integer>, _>(ArrayParam(&v.traits))
        .bind::<Array<BigInt>, _>(ArrayParam(&v.clicks))
        .bind::<Array<Text>, _>(ArrayParam(&v.hosts))
        .load(&mut conn)
        .await
        .map_err(PgError::from)?;
        Ok(<[Size]>::first(&size)
            .map(Size::unfolded)
            .unwrap_or_default())
    }

    async fn fold_clicks(&self) -> Result<u64, AppError> {
        let mut conn = self.db().conn().await?;
        let mut folded = 0u64;
        for first in (0..BUCKETS).step_by(FOLD_BUCKETS as usize) {
            let last = first + FOLD_BUCKETS - 1;
            let range = conn
                .transaction(async move |conn| {
                    // Another instance folding now: let it (it takes what is there).
                    let lock = sql_query(
                        "SELECT pg_try_advisory_xact_lock(hashtext('shortener.click_journal')) \
                         AS locked",
                    )
                    .get_result::<Locked>(conn)
                    .await?;
                    if !lock.locked {
                        return Ok::<_, diesel::result::Error>(None);
                    }
                    // Room to add the range's visits up and sort them in memory (a
                    // minute under load is a few hundred thousand rows a range), and no
                    // JIT: the statements' estimates set it off, and compiling took
                    // about 8 ms of each range's visit statement (auto_explain), for
                    // nothing.
                    sql_query(
                        "SELECT set_config('work_mem', '32MB', true), \
                                set_config('jit', 'off', true)",
                    )
                    .execute(conn)
                    .await?;
                    // The range's clicks, added up by link and day in SQL (as the visits
                    // below), upserted in key order, as a concurrent fold would.
                    let taken = sql_query(
                        "WITH taken AS (DELETE FROM shortener.click_journal \
                                        WHERE bucket BETWEEN $1 AND $2 \
                                        RETURNING link_ids, days, clicks), \
                              folded AS ( \
                                INSERT INTO shortener.link_daily_clicks (link_id, day, clicks) \
                                SELECT j.link_id, j.day, \
                                       least(sum(j.n), 9223372036854775807)::bigint \
                                FROM taken t, unnest(t.link_ids, t.days, t.clicks) \
                                    AS j (link_id, day, n) \
                                GROUP BY 1, 2 ORDER BY 1, 2 \
                                ON CONFLICT (link_id, day) DO UPDATE \
                                SET clicks = link_daily_clicks.clicks + excluded.clicks \
                                RETURNING 1) \
                         SELECT (SELECT coalesce(sum(cardinality(link_ids)), 0) FROM taken)::bigint \
                                    AS entries, \
                                (SELECT count(*) FROM taken) AS journal_rows, \
                                (SELECT count(*) FROM folded) AS pairs",
                    )
                    .bind::<SmallInt, _>(first)
                    .bind::<SmallInt, _>(last)
                    .get_result::<Taken>(conn)
                    .await?;
                    let n = u64::try_from(taken.pairs).unwrap_or(0);
                    let taken = (taken.entries, taken.journal_rows);
                    // The range's visits, split into their dimensions and added up in
                    // SQL, so they never travel to the service and back; upserted in key
                    // order, as a concurrent fold would.
                    sql_query(
                        "WITH taken AS (DELETE FROM shortener.visit_journal \
                                        WHERE bucket BETWEEN $1 AND $2 RETURNING *) \
                         INSERT INTO shortener.link_daily_visits \
                             (link_id, dimension, day, value, clicks) \
                         SELECT r.link_id, r.dimension, r.day, r.value, sum(r.clicks) \
                         FROM taken t, \
                              shortener.visit_journal_rows(t::shortener.visit_journal) r \
                         GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4 \
                         ON CONFLICT (link_id, dimension, day, value) DO UPDATE \
                         SET clicks = link_daily_visits.clicks + excluded.clicks",
                    )
                    .bind::<SmallInt, _>(first)
                    .bind::<SmallInt, _>(last)
                    .execute(conn)
                    .await?;
                    // Last, so the size row is locked only for the commit: flushes wait on
                    // it for no longer than that.
                    if taken.1 > 0 {
                        sql_query(
                            "UPDATE shortener.click_journal_size \
                             SET entries = greatest(entries - $1, 0), \
                                 journal_rows = greatest(journal_rows - $2, 0)",
                        )
                        .bind::<BigInt, _>(taken.0)
                        .bind::<BigInt, _>(taken.1)
                        .execute(conn)
                        .await?;
                    }
                    Ok(Some(n))
                })
                .await
                .map_err(PgError::from)?;
            match range {
                Some(n) => folded += n,
                None => break,
            }
        }
        Ok(folded)
    }
}

impl Db {
    /// Deletes visit day rows of days before `before` (the retention, `analytics.retention`),
    /// at most `limit` a statement, through the `day` index, so the sweep holds few rows at
    /// a time however many are due. Several instances may prune at once.
    pub async fn prune_visits(&self, before: NaiveDate, limit: u32) -> Result<usize, PgError> {
        let mut conn = self.conn().await?;
        let n = sql_query(
            "DELETE FROM shortener.link_daily_visits WHERE ctid IN \
             (SELECT ctid FROM shortener.link_daily_visits WHERE day < $1 LIMIT $2)",
        )
        .bind::<Date, _>(before)
        .bind::<BigInt, _>(i64::from(limit))
        .execute(&mut conn)
        .await?;
        Ok(n)
    }

    /// Caps visit days up to `last_day` (migration `000019`): takes up to `limit` queued
    /// (link, day) pairs and keeps, per dimension, the [`VISIT_DAY_VALUES`] values with most
    /// clicks, the rest added to the day's `(other)` row, in one statement. Returns the pairs
    /// taken (fewer than `limit`: nothing more is due). Several instances may run it at
    /// once (each takes pairs the others do not hold), and a pair queued again by a late
    /// fold is capped again, its new tail added to `(other)`.
    pub async fn compact_visit_days(
        &self,
        last_day: NaiveDate,
        limit: u32,
    ) -> Result<usize, PgError> {
        #[derive(QueryableByName)]
        struct Taken {
            #[diesel(sql_type = Integer)]
            pairs: i32,
        }
        let mut conn = self.conn().await?;
        let taken = sql_query("SELECT shortener.compact_visit_days($1, $2, $3) AS pairs")
            .bind::<Date, _>(last_day)
            .bind::<Integer, _>(i32::try_from(limit).unwrap_or(i32::MAX))
            .bind::<Integer, _>(VISIT_DAY_VALUES)
            .get_result::<Taken>(&mut conn)
            .await?;
        Ok(usize::try_from(taken.pairs).unwrap_or(0))
    }
}

/// Values a capped visit day keeps per link and dimension (the rest become `(other)`).
pub const VISIT_DAY_VALUES: i32 = 100;

#[cfg(test)]
mod tests {
    use shortener_domain::LinkId;

    use super::*;

    fn count(link: Uuid, d: u32, clicks: u64) -> ClickCount {
        ClickCount {
            link: LinkId::from_uuid(link),
            day: NaiveDate::from_ymd_opt(2026, 11, d).unwrap_or(NaiveDate::MIN),
            clicks,
        }
    }

    #[test]
    fn visits_name_each_host_once_per_copy_and_pack_their_traits() {
        use shortener_domain::visit::{Agent, Browser, Country, CountryCode, Device, Os};
        let host = |h: &str| match shortener_domain::visit::Referrer::parse(Some(h), None) {
            shortener_domain::visit::Referrer::Host(host) => Arc::new(host),
            other => panic!("{h}: {other:?}"),
        };
        let (news, other_copy, blog) = (
            host("https://news.example/a"),
            host("https://news.example/b"),
            host("https://blog.example/"),
        );
        let visit = |referrer: Option<&Arc<RefHost>>, country: &str, agent: Agent| VisitCount {
            link: LinkId::from_uuid(Uuid::from_u128(0x0301)),
            day: NaiveDate::from_ymd_opt(2026, 12, 8).unwrap_or(NaiveDate::MIN),
            visit: VisitKey {
                referrer: referrer.cloned(),
                country: CountryCode::parse(country).map_or(Country::Unknown, Country::Known),
                agent,
            },
            clicks: 2,
        };
        let firefox = Agent {
            browser: Browser::Firefox,
            os: Os::Linux,
            device: Device::Desktop,
        };
        let visits = [
            visit(Some(&news), "DE", firefox),
            visit(None, "", Agent::default()),
            visit(Some(&blog), "ZZ", firefox),
            visit(Some(&news), "AA", firefox),
            visit(Some(&other_copy), "DE", firefox),
        ];
        let j = VisitJournal::of(&visits);
        assert_eq!(
            j.hosts,
            ["(direct)", "news.example", "blog.example", "news.example"]
        );
        assert_eq!(j.referrers, [2, 1, 3, 2, 4]);
        let de = 1 + 3 * 26 + 4;
        let ff = 2 << 10 | 5 << 15 | 1 << 20;
        assert_eq!(j.traits, [de | ff, 0, 676 | ff, 1 | ff, de | ff]);
        assert_eq!(j.buckets, [769; 5]);
        assert_eq!(j.clicks, [2; 5]);
    }

    #[test]
    fn the_bucket_is_the_last_ten_bits_of_the_id() {
        let id = |last: [u8; 2]| {
            let mut b = [0u8; 16];
            b[14] = last[0];
            b[15] = last[1];
            Uuid::from_bytes(b)
        };
        assert_eq!(bucket(id([0x00, 0x00])), 0);
        assert_eq!(bucket(id([0x00, 0xff])), 255);
        assert_eq!(bucket(id([0xfe, 0x01])), 2 * 256 + 1);
        assert_eq!(bucket(id([0xff, 0xff])), BUCKETS - 1);
    }

    #[test]
    fn a_batch_is_laid_out_in_runs_of_one_bucket() {
        let a = Uuid::from_u128(0x0101); // bucket 257
        let b = Uuid::from_u128(0x0201); // bucket 513
        let c = Uuid::from_u128(0x1101); // bucket 257 too
        let j = Journal::of(&[
            count(b, 1, 4),
            count(a, 2, 1),
            count(c, 1, 7),
            count(a, 1, 2),
        ]);
        assert_eq!(j.runs.buckets, vec![257, 513]);
        assert_eq!(j.runs.starts, vec![1, 4]);
        assert_eq!(j.runs.ends, vec![3, 4]);
        assert_eq!(j.links, vec![a, a, c, b]);
        assert_eq!(j.clicks, vec![2, 1, 7, 4]);
    }
}

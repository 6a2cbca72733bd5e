-- Capped visit days (issue #17): once a day is two days old (UTC), each link's values of
-- that day beyond the 100 with most clicks, in each dimension, are merged into one row
-- whose value is `(other)` (no host, country or label can be that). Totals stay exact;
-- only the long tail's ranking becomes approximate. Without it a link with a year of
-- history and 100 000 referring hosts read 365 000 rows per stats call (860 ms measured);
-- capped, a day holds at most 101 rows per dimension.
--
-- What to cap is queued, not searched for: every statement that adds value rows (the
-- fold, and a late fold after an outage into a day already capped) queues the (link, day)
-- pairs it added to, in the same transaction, so a pair waits here until
-- `compact_visit_days` has capped everything its day holds. Capping a pair again is safe:
-- the new tail adds to the stored `(other)`. Rows only ever leave `link_daily_visits` to
-- reach `(other)` in the same statement, so no click is lost or counted twice: a fold
-- that adds to a value being moved waits, and the move carries what it added (or, the
-- row gone, the fold inserts it anew and queues the day again). Two late folds into the
-- same capped day while it is being capped can deadlock with the cap; PostgreSQL then
-- rolls one back whole (a fold is retried from the journal a minute later, a cap at the
-- next sweep), so even that loses nothing.
--
-- A day is capped once it is two days old (UTC, the caller's `last_day`): by then its
-- clicks have been folded but for those an outage held back.

CREATE TABLE shortener.visit_days_to_cap (
    day      date  NOT NULL,
    link_id  uuid  NOT NULL,
    PRIMARY KEY (day, link_id)
);

-- Only rows inserted (an upsert that adds to an existing value changes no ranking that
-- capping could fix: at worst the tail's order, which is approximate anyway), and not
-- the `(other)` rows capping writes itself.
CREATE FUNCTION shortener.queue_visit_days() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
    BEGIN
        INSERT INTO shortener.visit_days_to_cap (day, link_id)
        SELECT DISTINCT day, link_id FROM inserted WHERE value <> '(other)'
        ORDER BY day, link_id
        ON CONFLICT (day, link_id) DO NOTHING;
        RETURN NULL;
    END
    $$;

CREATE TRIGGER link_daily_visits_queue
    AFTER INSERT ON shortener.link_daily_visits
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION shortener.queue_visit_days();

-- What was there before this migration.
INSERT INTO shortener.visit_days_to_cap (day, link_id)
SELECT DISTINCT day, link_id FROM shortener.link_daily_visits WHERE value <> '(other)';

-- One bounded step: takes up to `pairs` queued (link, day) pairs of days up to `last_day`
-- (oldest first; pairs another run holds are skipped, so runs at once share the work
-- without doubling it) and caps each of their dimensions at the `keep` values with most
-- clicks (ties by value, bytewise), the rest added to the day's `(other)` row. Returns
-- the pairs taken: fewer than `pairs` when nothing more is due.
CREATE FUNCTION shortener.compact_visit_days(last_day date, pairs integer, keep integer)
    RETURNS integer
    LANGUAGE sql VOLATILE STRICT
    AS $$
        WITH taken AS (
            DELETE FROM shortener.visit_days_to_cap q
             USING (SELECT day, link_id FROM shortener.visit_days_to_cap
                     WHERE day <= last_day
                     ORDER BY day, link_id LIMIT pairs
                       FOR UPDATE SKIP LOCKED) due
             WHERE q.day = due.day AND q.link_id = due.link_id
            RETURNING q.day, q.link_id),
        ranked AS (
            SELECT v.link_id, v.dimension, v.day, v.value,
                   row_number() OVER (PARTITION BY v.link_id, v.dimension, v.day
                                      ORDER BY v.clicks DESC, v.value COLLATE "C") AS rank
              FROM taken t
              JOIN shortener.link_daily_visits v
                ON v.link_id = t.link_id AND v.dimension = ANY ('{1,2,3,4,5}') AND v.day = t.day
             WHERE v.value <> '(other)'),
        tail AS (
            DELETE FROM shortener.link_daily_visits v
             USING ranked r
             WHERE r.rank > keep
               AND v.link_id = r.link_id AND v.dimension = r.dimension
               AND v.day = r.day AND v.value = r.value
            RETURNING v.link_id, v.dimension, v.day, v.clicks),
        merged AS (
            INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks)
            SELECT link_id, dimension, day, '(other)', sum(clicks)::bigint
              FROM tail GROUP BY link_id, dimension, day
            ON CONFLICT (link_id, dimension, day, value) DO UPDATE
            SET clicks = link_daily_visits.clicks + excluded.clicks
            RETURNING 1)
        SELECT count(*)::integer FROM taken
    $$;

GRANT SELECT, INSERT, UPDATE, DELETE ON shortener.visit_days_to_cap TO shortener_service;

-- Stats read these inside a larger query; STRICT kept PostgreSQL from inlining them, so
-- every row went through a tuplestore first (a year of a capped link: some 45 000 rows,
-- a quarter of the read). Called with a NULL they return nothing either way.
ALTER FUNCTION shortener.link_visits_between(uuid, date, date) CALLED ON NULL INPUT;
ALTER FUNCTION shortener.account_visits_between(uuid, date, date) CALLED ON NULL INPUT;

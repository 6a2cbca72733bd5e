-- Back to one journal entry per dimension value: what the journal holds is folded first.

INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks)
SELECT r.link_id, r.dimension, r.day, r.value, sum(r.clicks)
  FROM shortener.visit_journal vj, shortener.visit_journal_rows(vj) r
 GROUP BY 1, 2, 3, 4
ON CONFLICT (link_id, dimension, day, value) DO UPDATE
   SET clicks = link_daily_visits.clicks + excluded.clicks;

DROP FUNCTION shortener.account_visits_between(uuid, date, date);
DROP FUNCTION shortener.link_visits_between(uuid, date, date);
DROP FUNCTION shortener.visit_journal_rows(shortener.visit_journal);
DROP TABLE shortener.visit_journal;

ALTER TABLE shortener.link_daily_visits
    DROP CONSTRAINT link_daily_visits_value_check,
    ADD CONSTRAINT link_daily_visits_value_check
        CHECK (value ~ '^[a-z0-9.:\[\]()A-Z -]{1,253}$'),
    ADD CONSTRAINT link_daily_visits_link_id_fkey
        FOREIGN KEY (link_id) REFERENCES shortener.links (id);

CREATE TABLE shortener.visit_journal (
    bucket      smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 1023),
    batch_id    uuid        NOT NULL,
    link_ids    uuid[]      NOT NULL,
    days        date[]      NOT NULL,
    dimensions  smallint[]  NOT NULL,
    vals        text[]      NOT NULL,
    clicks      bigint[]    NOT NULL,
    PRIMARY KEY (bucket, batch_id),
    CHECK (cardinality(link_ids) = cardinality(days)
           AND cardinality(days) = cardinality(dimensions)
           AND cardinality(dimensions) = cardinality(vals)
           AND cardinality(vals) = cardinality(clicks))
);

CREATE FUNCTION shortener.link_visits_between(link uuid, first_day date, last_day date)
    RETURNS TABLE (dimension smallint, day date, value text, clicks bigint)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT v.dimension, v.day, v.value, v.clicks FROM shortener.link_daily_visits v
         WHERE v.link_id = link AND v.day BETWEEN first_day AND last_day
        UNION ALL
        SELECT j.dimension, j.day, j.value, j.n
          FROM shortener.visit_journal vj,
               unnest(vj.link_ids, vj.days, vj.dimensions, vj.vals, vj.clicks)
                   AS j (link_id, day, dimension, value, n)
         WHERE vj.bucket = shortener.click_bucket(link) AND j.link_id = link
           AND j.day BETWEEN first_day AND last_day
    $$;

CREATE FUNCTION shortener.account_visits_between(account uuid, first_day date, last_day date)
    RETURNS TABLE (dimension smallint, day date, value text, clicks bigint)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT v.dimension, v.day, v.value, v.clicks
          FROM shortener.links l
          JOIN shortener.link_daily_visits v ON v.link_id = l.id
         WHERE l.account_id = account AND v.day BETWEEN first_day AND last_day
        UNION ALL
        SELECT j.dimension, j.day, j.value, j.n
          FROM shortener.visit_journal vj,
               unnest(vj.link_ids, vj.days, vj.dimensions, vj.vals, vj.clicks)
                   AS j (link_id, day, dimension, value, n)
          JOIN shortener.links l ON l.id = j.link_id
         WHERE l.account_id = account AND j.day BETWEEN first_day AND last_day
    $$;

GRANT SELECT, INSERT, DELETE ON shortener.visit_journal TO shortener_service;

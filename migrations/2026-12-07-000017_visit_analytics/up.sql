-- Visit analytics (issue #17): what clicks were recorded as (referring host, country,
-- browser, OS, device class), kept only as counts per link, day, dimension and value.
-- Nothing here can hold an IP address, a user-agent string or a referrer path: values
-- are a host name, a country code or one of a few fixed labels (checked below).
--
-- They travel the clicks' path: each click batch journals its visits in the same
-- statement as its clicks (one `visit_journal` row per batch and bucket of links, the
-- counts as parallel arrays, under the batch's id, so a retried batch adds nothing), and
-- the fold moves them into `link_daily_visits` in the same transaction as the clicks of
-- those buckets. Reads add the journal to the folded days, as they do for clicks.
--
-- Dimensions: 1 referrer, 2 country, 3 browser, 4 OS, 5 device (shortener-domain's
-- `Dimension::code`).

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

-- The key serves a link's stats (its days of one dimension at a time) and the retention
-- sweep goes by `day` through the second index.
CREATE TABLE shortener.link_daily_visits (
    link_id     uuid        NOT NULL REFERENCES shortener.links (id),
    dimension   smallint    NOT NULL CHECK (dimension BETWEEN 1 AND 5),
    day         date        NOT NULL,
    value       text        NOT NULL CHECK (value ~ '^[a-z0-9.:\[\]()A-Z -]{1,253}$'),
    clicks      bigint      NOT NULL CHECK (clicks > 0),
    PRIMARY KEY (link_id, dimension, day, value)
) WITH (fillfactor = 80);

CREATE INDEX link_daily_visits_day ON shortener.link_daily_visits (day);

-- A link's visits between two days, journalled or folded, one row per source (sum them).
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

-- The same for every link of an account (deleted ones included: their visits happened).
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

GRANT SELECT, INSERT, DELETE         ON shortener.visit_journal     TO shortener_service;
GRANT SELECT, INSERT, UPDATE, DELETE ON shortener.link_daily_visits TO shortener_service;
-- Account stats read every click of an account through the clicks view.
GRANT SELECT                         ON shortener.clicks            TO shortener_service;

-- Clicks land in a journal first and are folded into their days later.
--
-- Counting must be durable and visible within a second, and under traffic spread over many
-- links almost every click of a second is a different link-day: upserting day rows every
-- second cost PostgreSQL about 4 µs per link-day (an index probe, a row lock and a new row
-- version each). The journal instead takes a whole flush as one row per bucket of links
-- (the link ids, days and counts as arrays, ~0.2 µs per link-day), and the counter folds
-- it into `link_daily_clicks` about once a minute, when each link-day is written once for
-- all the clicks of that minute. Reads add the journal to the days (`link_clicks`,
-- `link_clicks_between`), so a click still shows within a second.

-- Which of 1024 buckets a link's clicks are journalled under: the last ten bits of its id
-- (random in every UUID version the service makes). The service computes the same.
CREATE FUNCTION shortener.click_bucket(link uuid) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT ((get_byte(uuid_send(link), 14) & 3) * 256
                  + get_byte(uuid_send(link), 15))::smallint $$;

-- One row per batch and bucket; the arrays run in parallel (link i clicked clicks[i] times
-- on days[i]). The key serves reads (one bucket) and the fold (a range of buckets).
CREATE TABLE shortener.click_journal (
    bucket      smallint    NOT NULL CHECK (bucket BETWEEN 0 AND 1023),
    batch_id    uuid        NOT NULL,
    link_ids    uuid[]      NOT NULL,
    days        date[]      NOT NULL,
    clicks      bigint[]    NOT NULL,
    PRIMARY KEY (bucket, batch_id),
    CHECK (cardinality(link_ids) = cardinality(days)
           AND cardinality(days) = cardinality(clicks))
);

-- A link's clicks on each day, journalled or folded, one row per source (sum them).
CREATE FUNCTION shortener.link_clicks_between(link uuid, first_day date, last_day date)
    RETURNS TABLE (day date, clicks bigint)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT d.day, d.clicks FROM shortener.link_daily_clicks d
         WHERE d.link_id = link AND d.day BETWEEN first_day AND last_day
        UNION ALL
        SELECT j.day, j.n
          FROM shortener.click_journal cj,
               unnest(cj.link_ids, cj.days, cj.clicks) AS j (link_id, day, n)
         WHERE cj.bucket = shortener.click_bucket(link) AND j.link_id = link
           AND j.day BETWEEN first_day AND last_day
    $$;

-- A link's total clicks.
CREATE FUNCTION shortener.link_clicks(link uuid) RETURNS bigint
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT (SELECT coalesce(sum(d.clicks), 0) FROM shortener.link_daily_clicks d
                 WHERE d.link_id = link)
             + (SELECT coalesce(sum(j.n), 0)
                  FROM shortener.click_journal cj,
                       unnest(cj.link_ids, cj.clicks) AS j (link_id, n)
                 WHERE cj.bucket = shortener.click_bucket(link) AND j.link_id = link)
    $$;

-- Every click counted, for operators' own queries: one row per link, day and source.
CREATE VIEW shortener.clicks AS
    SELECT link_id, day, clicks FROM shortener.link_daily_clicks
    UNION ALL
    SELECT j.link_id, j.day, j.n
      FROM shortener.click_journal cj,
           unnest(cj.link_ids, cj.days, cj.clicks) AS j (link_id, day, n);

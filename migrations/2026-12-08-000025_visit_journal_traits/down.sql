INSERT INTO shortener.link_daily_visits (link_id, dimension, day, value, clicks)
SELECT r.link_id, r.dimension, r.day, r.value, sum(r.clicks)
  FROM shortener.visit_journal vj, shortener.visit_journal_rows(vj) r
 GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4
ON CONFLICT (link_id, dimension, day, value) DO UPDATE
   SET clicks = link_daily_visits.clicks + excluded.clicks;

DELETE FROM shortener.visit_journal;

DROP FUNCTION shortener.visit_journal_rows(shortener.visit_journal);
DROP FUNCTION shortener.visit_label(smallint, integer);

ALTER TABLE shortener.visit_journal
    DROP CONSTRAINT visit_journal_check,
    DROP COLUMN traits,
    ADD COLUMN countries text[] NOT NULL,
    ADD COLUMN browsers text[] NOT NULL,
    ADD COLUMN oses text[] NOT NULL,
    ADD COLUMN devices text[] NOT NULL,
    ADD CONSTRAINT visit_journal_check
        CHECK (cardinality(link_ids) = cardinality(days)
               AND cardinality(days) = cardinality(referrers)
               AND cardinality(referrers) = cardinality(countries)
               AND cardinality(countries) = cardinality(browsers)
               AND cardinality(browsers) = cardinality(oses)
               AND cardinality(oses) = cardinality(devices)
               AND cardinality(devices) = cardinality(clicks));

CREATE FUNCTION shortener.visit_journal_rows(vj shortener.visit_journal)
    RETURNS TABLE (link_id uuid, dimension smallint, day date, value text, clicks bigint)
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$
        SELECT j.link_id, d.dimension, j.day, d.value, j.n
          FROM unnest(vj.link_ids, vj.days, vj.referrers, vj.countries, vj.browsers,
                      vj.oses, vj.devices, vj.clicks)
                   AS j (link_id, day, referrer, country, browser, os, device, n),
               LATERAL (VALUES (1::smallint, j.referrer), (2::smallint, j.country),
                               (3::smallint, j.browser), (4::smallint, j.os),
                               (5::smallint, j.device)) AS d (dimension, value)
    $$;

DROP FUNCTION shortener.visit_journal_rows(shortener.visit_journal);

-- Rows journalled with traits get their labels back as text.
UPDATE shortener.visit_journal vj
   SET countries = l.countries, browsers = l.browsers, oses = l.oses, devices = l.devices,
       traits = NULL
  FROM (SELECT j.bucket, j.batch_id,
               array_agg(shortener.visit_label(2::smallint, t.traits) ORDER BY t.n) AS countries,
               array_agg(shortener.visit_label(3::smallint, t.traits) ORDER BY t.n) AS browsers,
               array_agg(shortener.visit_label(4::smallint, t.traits) ORDER BY t.n) AS oses,
               array_agg(shortener.visit_label(5::smallint, t.traits) ORDER BY t.n) AS devices
          FROM shortener.visit_journal j, unnest(j.traits) WITH ORDINALITY AS t (traits, n)
         WHERE j.traits IS NOT NULL
         GROUP BY j.bucket, j.batch_id) l
 WHERE vj.bucket = l.bucket AND vj.batch_id = l.batch_id;

DROP FUNCTION shortener.visit_label(smallint, integer);
DROP FUNCTION shortener.visit_traits_of(text[], text[], text[], text[]);

ALTER TABLE shortener.visit_journal
    DROP CONSTRAINT visit_journal_check,
    DROP COLUMN traits,
    ALTER COLUMN countries SET NOT NULL,
    ALTER COLUMN browsers SET NOT NULL,
    ALTER COLUMN oses SET NOT NULL,
    ALTER COLUMN devices SET NOT NULL,
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

-- The visit journal keeps a visit's country, browser, OS and device as one number (its
-- "traits") instead of four labels as text (issue #17), and a flush sends each referring
-- host once, its visits naming its place in that list. Encoding five text values a visit
-- was most of what visit analytics cost the service per redirect (about 1 200 of 1 900
-- instructions, callgrind), and PostgreSQL parsed them again; the labels are a fixed set,
-- so they are now named once, here, when the fold splits a visit into its dimensions.
--
-- traits: country in bits 0-9 (0 unknown, else 1 + 26 x first letter + second, `AA` = 1),
-- browser in bits 10-14, OS in 15-19, device in 20-23: shortener-domain's `code()`s.
-- A code `visit_label` does not know yet reads as `Other` (a newer service's browser,
-- say), so a fold never fails on it.

DROP FUNCTION shortener.visit_journal_rows(shortener.visit_journal);

-- Instances still running the previous release (a rolling upgrade) keep writing the four
-- text columns: they stay, nullable, until a later release drops them, and such rows
-- fold and read as before (`visit_journal_rows` encodes them). New rows leave them NULL.
ALTER TABLE shortener.visit_journal
    DROP CONSTRAINT visit_journal_check,
    ALTER COLUMN countries DROP NOT NULL,
    ALTER COLUMN browsers DROP NOT NULL,
    ALTER COLUMN oses DROP NOT NULL,
    ALTER COLUMN devices DROP NOT NULL,
    ADD COLUMN traits integer[],
    ADD CONSTRAINT visit_journal_check
        CHECK (cardinality(link_ids) = cardinality(days)
               AND cardinality(days) = cardinality(referrers)
               AND cardinality(referrers) = cardinality(clicks)
               AND CASE WHEN traits IS NULL
                        THEN cardinality(clicks) = cardinality(countries)
                             AND cardinality(countries) = cardinality(browsers)
                             AND cardinality(browsers) = cardinality(oses)
                             AND cardinality(oses) = cardinality(devices)
                        ELSE cardinality(clicks) = cardinality(traits)
                             AND countries IS NULL AND browsers IS NULL AND oses IS NULL
                             AND devices IS NULL
                   END);

-- The traits of visits journalled as labels by the previous release (the inverse of
-- `visit_label` below).
CREATE FUNCTION shortener.visit_traits_of(countries text[], browsers text[], oses text[],
                                          devices text[]) RETURNS integer[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        -- Parenthesised: `|` and `<<` bind alike in PostgreSQL, left to right.
        SELECT array_agg(
                   (CASE WHEN c ~ '^[A-Z]{2}$'
                         THEN 1 + (ascii(c) - 65) * 26 + ascii(substr(c, 2)) - 65
                         ELSE 0 END)
                   | (coalesce(array_position('{Chrome,Firefox,Safari,Edge,Opera,'
                                              '"Samsung Internet","Yandex Browser",'
                                              '"Internet Explorer"}'::text[], b), 0) << 10)
                   | (coalesce(array_position('{Windows,macOS,iOS,Android,Linux,ChromeOS}'
                                              ::text[], o), 0) << 15)
                   | (coalesce(array_position('{desktop,mobile,tablet,bot}'::text[], d), 0)
                      << 20)
                   ORDER BY n)
          FROM unnest(countries, browsers, oses, devices) WITH ORDINALITY AS v (c, b, o, d, n)
    $$;

-- A visit's label in dimension 2 to 5 (country, browser, OS, device) from its traits.
-- Neither this nor `visit_journal_rows` is STRICT: PostgreSQL inlines SQL functions into
-- the query that calls them only when they are not (and a NULL gives NULL, or no rows,
-- anyway). Called through a function scan, the old STRICT `visit_journal_rows` spent
-- about 1.8 us a row: four fifths of a fold's time (auto_explain); inlined, a fifth of
-- that.
CREATE FUNCTION shortener.visit_label(dimension smallint, traits integer) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT CASE dimension
            WHEN 2 THEN CASE WHEN traits & 1023 BETWEEN 1 AND 676
                             THEN chr(65 + ((traits & 1023) - 1) / 26)
                                  || chr(65 + ((traits & 1023) - 1) % 26)
                             ELSE '(unknown)' END
            WHEN 3 THEN coalesce(('[0:8]={Other,Chrome,Firefox,Safari,Edge,Opera,'
                                  '"Samsung Internet","Yandex Browser","Internet Explorer"}'
                                  ::text[])[(traits >> 10) & 31], 'Other')
            WHEN 4 THEN coalesce(('[0:6]={Other,Windows,macOS,iOS,Android,Linux,ChromeOS}'
                                  ::text[])[(traits >> 15) & 31], 'Other')
            WHEN 5 THEN coalesce(('[0:4]={other,desktop,mobile,tablet,bot}'
                                  ::text[])[(traits >> 20) & 15], 'other')
        END
    $$;

-- A journal's entries as the dimension rows they fold into (one per entry and dimension).
CREATE FUNCTION shortener.visit_journal_rows(vj shortener.visit_journal)
    RETURNS TABLE (link_id uuid, dimension smallint, day date, value text, clicks bigint)
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$
        SELECT j.link_id, d.dimension, j.day,
               CASE d.dimension WHEN 1 THEN j.referrer
                                ELSE shortener.visit_label(d.dimension, j.traits) END,
               j.n
          FROM unnest(vj.link_ids, vj.days, vj.referrers,
                      coalesce(vj.traits, shortener.visit_traits_of(vj.countries, vj.browsers,
                                                                    vj.oses, vj.devices)),
                      vj.clicks)
                   AS j (link_id, day, referrer, traits, n),
               (VALUES (1::smallint), (2::smallint), (3::smallint), (4::smallint),
                       (5::smallint)) AS d (dimension)
    $$;

-- A link's clicks in the journal, found by position instead of by unnesting. Each row of
-- the link's bucket holds a second's clicks of about a thousandth of the links clicked,
-- and reading a link unnested every one of them into rows: a page of 100 links over a
-- minute's journal (100 000 links clicked at random) took 125-220 ms. `array_positions`
-- finds the link in a row's ids in one scan in C, and only its entries become rows: 27 ms.
CREATE OR REPLACE FUNCTION shortener.link_clicks_between(link uuid, first_day date, last_day date)
    RETURNS TABLE (day date, clicks bigint)
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT d.day, d.clicks FROM shortener.link_daily_clicks d
         WHERE d.link_id = link AND d.day BETWEEN first_day AND last_day
        UNION ALL
        SELECT cj.days[p], cj.clicks[p]
          FROM shortener.click_journal cj,
               unnest(array_positions(cj.link_ids, link)) AS p
         WHERE cj.bucket = shortener.click_bucket(link)
           AND cj.days[p] BETWEEN first_day AND last_day
    $$;

CREATE OR REPLACE FUNCTION shortener.link_clicks(link uuid) RETURNS bigint
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT (SELECT coalesce(sum(d.clicks), 0) FROM shortener.link_daily_clicks d
                 WHERE d.link_id = link)
             + (SELECT coalesce(sum(cj.clicks[p]), 0)
                  FROM shortener.click_journal cj,
                       unnest(array_positions(cj.link_ids, link)) AS p
                 WHERE cj.bucket = shortener.click_bucket(link))
    $$;

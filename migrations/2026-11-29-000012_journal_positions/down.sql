-- The journal read by unnesting every row of the link's bucket, as before.
CREATE OR REPLACE FUNCTION shortener.link_clicks_between(link uuid, first_day date, last_day date)
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

CREATE OR REPLACE FUNCTION shortener.link_clicks(link uuid) RETURNS bigint
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$
        SELECT (SELECT coalesce(sum(d.clicks), 0) FROM shortener.link_daily_clicks d
                 WHERE d.link_id = link)
             + (SELECT coalesce(sum(j.n), 0)
                  FROM shortener.click_journal cj,
                       unnest(cj.link_ids, cj.clicks) AS j (link_id, n)
                 WHERE cj.bucket = shortener.click_bucket(link) AND j.link_id = link)
    $$;

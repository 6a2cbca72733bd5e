-- Folds what the journal holds into the days before dropping it.
INSERT INTO shortener.link_daily_clicks (link_id, day, clicks)
SELECT link_id, day, sum(clicks) FROM (
    SELECT j.link_id, j.day, j.n AS clicks
      FROM shortener.click_journal cj,
           unnest(cj.link_ids, cj.days, cj.clicks) AS j (link_id, day, n)) s
 GROUP BY link_id, day
ON CONFLICT (link_id, day) DO UPDATE
    SET clicks = shortener.link_daily_clicks.clicks + excluded.clicks;
DROP VIEW shortener.clicks;
DROP FUNCTION shortener.link_clicks(uuid);
DROP FUNCTION shortener.link_clicks_between(uuid, date, date);
DROP TABLE shortener.click_journal;
DROP FUNCTION shortener.click_bucket(uuid);

ALTER TABLE shortener.link_daily_clicks RESET (fillfactor);
ALTER TABLE shortener.links ADD COLUMN clicks bigint NOT NULL DEFAULT 0 CHECK (clicks >= 0);
UPDATE shortener.links l SET clicks = d.total
  FROM (SELECT link_id, sum(clicks) AS total FROM shortener.link_daily_clicks GROUP BY link_id) d
 WHERE d.link_id = l.id;

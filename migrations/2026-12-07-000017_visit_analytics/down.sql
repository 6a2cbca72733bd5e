REVOKE SELECT ON shortener.clicks FROM shortener_service;
DROP FUNCTION shortener.account_visits_between(uuid, date, date);
DROP FUNCTION shortener.link_visits_between(uuid, date, date);
DROP TABLE shortener.link_daily_visits;
DROP TABLE shortener.visit_journal;

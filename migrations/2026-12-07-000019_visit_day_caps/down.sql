ALTER FUNCTION shortener.account_visits_between(uuid, date, date) STRICT;
ALTER FUNCTION shortener.link_visits_between(uuid, date, date) STRICT;
DROP FUNCTION shortener.compact_visit_days(date, integer, integer);
DROP TRIGGER link_daily_visits_queue ON shortener.link_daily_visits;
DROP FUNCTION shortener.queue_visit_days();
DROP TABLE shortener.visit_days_to_cap;

-- The role stays (roles are cluster-wide); everything granted to it here is taken back.
GRANT EXECUTE ON FUNCTION audit.ensure_partitions(date, integer) TO PUBLIC;
REVOKE EXECUTE ON FUNCTION audit.ensure_partitions(date, integer) FROM shortener_service;
ALTER FUNCTION audit.ensure_partitions(date, integer) SECURITY INVOKER RESET search_path;

REVOKE ALL ON audit.entries               FROM shortener_service;
REVOKE ALL ON subscriptions.link_usage    FROM shortener_service;
REVOKE ALL ON subscriptions.subscriptions FROM shortener_service;
REVOKE ALL ON shortener.link_changes      FROM shortener_service;
REVOKE ALL ON shortener.click_batches     FROM shortener_service;
REVOKE ALL ON shortener.click_journal     FROM shortener_service;
REVOKE ALL ON shortener.link_daily_clicks FROM shortener_service;
REVOKE ALL ON shortener.links             FROM shortener_service;
REVOKE ALL ON shortener.api_keys          FROM shortener_service;
REVOKE ALL ON shortener.accounts          FROM shortener_service;

REVOKE USAGE ON SCHEMA shortener, subscriptions, audit FROM shortener_service;

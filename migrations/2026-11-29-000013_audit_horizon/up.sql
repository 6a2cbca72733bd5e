-- The audit readers' watermark: the start of the calling statement, or of the oldest
-- transaction in this database that has written anything and not finished, if earlier.
-- Readers hand out only entries older than it (an entry is timed by the database's clock
-- at its insert, so never before its transaction's start): whatever commits later is at
-- or above it, never behind a reader.
--
-- pg_stat_activity shows a session's transaction only to its own role, members of it,
-- and roles with pg_read_all_stats; so the function runs as its owner, the migrating
-- role, which must see every session (a superuser does; otherwise grant it
-- pg_read_all_stats once). The service gets one timestamp out of it, nothing more.
CREATE FUNCTION audit.write_horizon() RETURNS timestamptz
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog
    AS $$
        SELECT least(statement_timestamp(),
                     (SELECT min(xact_start) FROM pg_catalog.pg_stat_activity
                       WHERE backend_xid IS NOT NULL AND datname = current_database()))
    $$;
REVOKE EXECUTE ON FUNCTION audit.write_horizon() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.write_horizon() TO shortener_service;

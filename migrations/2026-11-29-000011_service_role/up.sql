-- The service runs with less than the migrations: `serve` connects as a member of
-- `shortener_service`, which may read and write rows exactly where the service does and
-- nothing else: no table, view or function is its own, so it cannot drop, alter, detach,
-- truncate or disable triggers on anything, and on the audit log it may only add and read
-- entries. Migrations run as the owner of every object (whoever applies them).
--
-- Roles are cluster-wide: the group role is created once and never dropped here (other
-- databases of the cluster may use it). Operators may create it beforehand, so the owner
-- needs no CREATEROLE; an owner that lacks it gets told what to run.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'shortener_service') THEN
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = current_user
                                              AND (rolsuper OR rolcreaterole)) THEN
            RAISE EXCEPTION 'role "shortener_service" does not exist, and % may not create it', current_user
                USING HINT = 'as a superuser, run once: CREATE ROLE shortener_service NOLOGIN',
                      ERRCODE = 'insufficient_privilege';
        END IF;
        CREATE ROLE shortener_service NOLOGIN;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA shortener, subscriptions, audit TO shortener_service;

-- Verbs per table, as the code in shortener-pg uses them (SELECT wherever a statement reads
-- a column: WHERE, RETURNING, ON CONFLICT ... WHERE, FOR UPDATE/SHARE; UPDATE for
-- upserts and row locks). Functions run as the caller: `link_clicks*` read the days and the
-- journal, the link trigger inserts into `link_changes`. Codes are never reused and
-- accounts never removed, so neither table has DELETE.
GRANT SELECT, INSERT                 ON shortener.accounts          TO shortener_service;
GRANT SELECT, INSERT, UPDATE         ON shortener.api_keys          TO shortener_service;
GRANT SELECT, INSERT, UPDATE         ON shortener.links             TO shortener_service;
GRANT SELECT, INSERT, UPDATE         ON shortener.link_daily_clicks TO shortener_service;
GRANT SELECT, INSERT, DELETE         ON shortener.click_journal     TO shortener_service;
GRANT SELECT, INSERT, DELETE         ON shortener.click_batches     TO shortener_service;
GRANT SELECT, INSERT, DELETE         ON shortener.link_changes      TO shortener_service;
GRANT SELECT, INSERT, UPDATE         ON subscriptions.subscriptions TO shortener_service;
GRANT SELECT, INSERT, UPDATE         ON subscriptions.link_usage    TO shortener_service;
-- Rows reach the partitions through the parent, which checks its own privileges only.
GRANT SELECT, INSERT                 ON audit.entries               TO shortener_service;

-- Every instance makes the coming months' partitions. That is DDL, so the function runs
-- as its owner (the migrations' role), who also owns the partitions it makes; with a fixed
-- search_path (every name in its body is qualified anyway) a caller cannot slip in objects
-- of its own. Only the service may call it.
ALTER FUNCTION audit.ensure_partitions(date, integer)
    SECURITY DEFINER SET search_path = pg_catalog, audit;
REVOKE EXECUTE ON FUNCTION audit.ensure_partitions(date, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.ensure_partitions(date, integer) TO shortener_service;

-- Every write that changes what a redirect answers for an existing link (a new target or
-- expiry, a deletion) tells every instance, so their resolve caches drop the code. NOTIFY
-- is transactional: it is delivered when the change commits, never for a rolled-back one.
-- Inserts do not notify: a committing NOTIFY takes a database-wide lock until its commit
-- is flushed, which would serialise every link creation; instances remember an unknown
-- code for one second only instead. Click counts (`clicks`) are not in the column list,
-- so batched click writes are silent too.
CREATE FUNCTION shortener.notify_link_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shortener_links', NEW.code);
    RETURN NULL;
END;
$$;

CREATE TRIGGER links_notify
    AFTER UPDATE OF code, target, expires_at, deleted_at ON shortener.links
    FOR EACH ROW EXECUTE FUNCTION shortener.notify_link_change();

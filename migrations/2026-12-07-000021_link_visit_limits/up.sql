-- Visit limits (issue #18): a link may redirect at most `max_visits` GET requests (one-time
-- links are `max_visits = 1`), exactly, under concurrency and across instances.
--
-- Exactness needs one place that every instance asks before it answers: the link's row.
-- Each GET of a limited link takes one visit with a row-locking statement (batched per
-- worker, see `PgStore::take_visits`), which PostgreSQL serialises however many
-- instances ask. `visits_used` is a bigint because a limit put on an existing link starts
-- from the clicks the link already had. Links without a limit never touch it: their
-- redirects stay on the cached, batched path.
--
-- `visits_used` is left out of the notify trigger's columns (taking a visit changes
-- nothing a cache holds); `max_visits` is in it, so a limit set, changed or removed drops
-- the code from every instance's resolve cache.
ALTER TABLE shortener.links
    ADD COLUMN max_visits integer
        CONSTRAINT links_max_visits_check CHECK (max_visits BETWEEN 1 AND 1000000000),
    ADD COLUMN visits_used bigint NOT NULL DEFAULT 0
        CONSTRAINT links_visits_used_check CHECK (visits_used >= 0);

DROP TRIGGER links_notify ON shortener.links;
CREATE TRIGGER links_notify
    AFTER UPDATE OF code, target, expires_at, deleted_at, max_visits ON shortener.links
    FOR EACH ROW EXECUTE FUNCTION shortener.notify_link_change();

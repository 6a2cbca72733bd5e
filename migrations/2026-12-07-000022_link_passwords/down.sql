DROP TRIGGER links_notify ON shortener.links;
-- MERGE: add max_visits to this list (as migration 000021 leaves it)
CREATE TRIGGER links_notify
    AFTER UPDATE OF code, target, expires_at, deleted_at ON shortener.links
    FOR EACH ROW EXECUTE FUNCTION shortener.notify_link_change();

ALTER TABLE shortener.links DROP COLUMN password_hash;

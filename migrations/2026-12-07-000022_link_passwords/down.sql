DROP TRIGGER links_notify ON shortener.links;
CREATE TRIGGER links_notify
    AFTER UPDATE OF code, target, expires_at, deleted_at, max_visits ON shortener.links
    FOR EACH ROW EXECUTE FUNCTION shortener.notify_link_change();

ALTER TABLE shortener.links DROP COLUMN password_hash;

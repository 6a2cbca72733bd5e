-- Password-protected links (issue #18): a link may ask a visitor for a password before it
-- redirects. Only the password's Argon2id hash is kept, as a PHC string
-- (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`), which names its own algorithm,
-- parameters and salt, so stronger parameters later need no new column: old hashes still
-- verify with the parameters they were made with. NULL: no password.
--
-- The redirect reads the hash with the target (the resolve cache keeps it beside the
-- target), so setting, changing or removing a password must reach every instance's cache
-- like a new target does: the column joins the list of the trigger that notifies
-- (migrations 000006 and 000010). Changing a password notifies too, so a cache never
-- checks a guess against a password its owner has replaced.
ALTER TABLE shortener.links
    ADD COLUMN password_hash text
        CONSTRAINT links_password_hash_check CHECK (password_hash LIKE '$argon2id$%');

DROP TRIGGER links_notify ON shortener.links;
CREATE TRIGGER links_notify
    AFTER UPDATE OF code, target, expires_at, deleted_at, max_visits, password_hash
    ON shortener.links
    FOR EACH ROW EXECUTE FUNCTION shortener.notify_link_change();

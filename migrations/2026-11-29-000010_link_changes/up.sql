-- What changed, kept for a while, so an instance that lost its LISTEN connection can find
-- exactly the codes it was not told about and drop only those (instead of its whole
-- resolve cache, which made every redirect wait for the database). The trigger that
-- notifies writes here too, in the same transaction: a row exists exactly when its
-- notification was sent. `changed_at` is the time of the change statement, so a reader
-- catching up from an instant minus a margin sees every change that committed after it.
-- Rows older than a day are deleted by the listeners.
CREATE TABLE shortener.link_changes (
    seq         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code        text        NOT NULL,
    changed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX link_changes_changed_at_idx ON shortener.link_changes (changed_at);

CREATE OR REPLACE FUNCTION shortener.notify_link_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO shortener.link_changes (code) VALUES (NEW.code);
    PERFORM pg_notify('shortener_links', NEW.code);
    RETURN NULL;
END;
$$;

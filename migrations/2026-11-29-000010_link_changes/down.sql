CREATE OR REPLACE FUNCTION shortener.notify_link_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('shortener_links', NEW.code);
    RETURN NULL;
END;
$$;

DROP TABLE shortener.link_changes;

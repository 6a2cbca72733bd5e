DROP TRIGGER links_notify ON shortener.links;
DROP FUNCTION shortener.notify_link_change();

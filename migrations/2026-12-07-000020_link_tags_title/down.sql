DROP INDEX shortener.links_tags_idx;
DROP INDEX shortener.links_search_idx;
ALTER TABLE shortener.links DROP COLUMN title, DROP COLUMN tags;
-- Without CASCADE: if something else has come to use pg_trgm since, the down stops here
-- rather than take it away.
DROP EXTENSION IF EXISTS pg_trgm;

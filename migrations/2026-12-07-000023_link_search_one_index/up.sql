-- One index for tags and search text together (issue #18), in place of migration 000020's
-- two. A search by a tag and a text that are each on many links but on few together
-- (`?tag=sale&q=spring`: 5 % and 1.7 % of a million links, none with both) went through
-- the trigram index alone and re-read every link holding the text to check its tags:
-- 16 667 rows, 100 to 180 ms. A GIN index over both columns answers both conditions
-- inside the index (the intersection of the tag's and the trigrams' posting lists), so
-- only the links that match both are read: 6 to 13 ms on the same data (bench/README.md,
-- "Search over a million links"). A GIN index over several columns serves a condition
-- on any one of them as well, so neither old index is needed, and each link written
-- maintains one GIN index instead of two.
--
-- The search expression is spelled exactly as before (and as `SEARCH_TEXT` in
-- shortener-pg's store.rs), or the planner would not use the index.
DROP INDEX shortener.links_search_idx;
DROP INDEX shortener.links_tags_idx;

CREATE INDEX links_tags_search_idx ON shortener.links
    USING gin (tags, (code || E'\n' || target || E'\n' || coalesce(title, '')) gin_trgm_ops)
    WHERE deleted_at IS NULL;

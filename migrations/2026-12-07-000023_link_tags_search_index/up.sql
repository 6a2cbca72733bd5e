-- Tags and search text in one index (issue #18), in place of migration 000020's trigram
-- index. A search by a tag and a text that are each on many links but on few together
-- (`?tag=sale&q=spring`: 5 % and 1.7 % of a million links, none with both) went through
-- the trigram index alone and re-read every link holding the text to check its tags:
-- 16 667 rows, 100 to 180 ms. A GIN index over both columns answers both conditions
-- inside the index (the intersection of the tag's and the trigrams' posting lists), so
-- only the links that match both are read: 9 ms median, 11 ms p99 on the same data
-- (bench/README.md, "Search over a million links"). It serves a text alone as well as
-- the trigram index did, which it replaces (a link written still maintains two GIN
-- indexes, as before).
--
-- The small tags-only index stays: for a tag alone the planner prices this index by its
-- size (it holds every trigram too) and, without the small one, walked the account's
-- links instead: a tag on 100 of a million links took 106 ms instead of 2.
--
-- The search expression is spelled exactly as before (and as `SEARCH_TEXT` in
-- shortener-pg's store.rs), or the planner would not use the index.
DROP INDEX shortener.links_search_idx;

CREATE INDEX links_tags_search_idx ON shortener.links
    USING gin (tags, (code || E'\n' || target || E'\n' || coalesce(title, '')) gin_trgm_ops)
    WHERE deleted_at IS NULL;

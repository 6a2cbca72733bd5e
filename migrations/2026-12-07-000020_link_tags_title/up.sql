-- Tags and titles (issue #18): the owner's own labels on a link, and searching an
-- account's links by them.
--
-- `tags` is an array on the row (at most 10, each `[a-z0-9_-]{1,32}`, lower-case, no
-- repeats: the service validates, the checks keep the bounds), so a link and its tags are
-- one row written by one statement, like every other field. `title` is 1 to 200
-- characters or NULL.
--
-- Search (`GET /api/v1/links?q=`) is a case-insensitive substring match on the code, the
-- target and the title. One trigram index covers the three: its expression joins them
-- with a line feed, which no code, URL or title holds and a search text may not hold
-- either, so a match can never run across two fields. The query in shortener-pg
-- (`SEARCH_TEXT` in store.rs) spells the expression exactly as the index does, or the
-- planner would not use it. `pg_trgm` ships with the server (contrib) and is a trusted
-- extension (PostgreSQL 13 on), so the database owner that applies the migrations may
-- create it without being a superuser. It goes where the owner's search_path puts
-- extensions (normally `public`); the service only uses operators and the index, both of
-- which need no privilege of their own.
--
-- Texts on many links (`https`), or too short to hold a trigram, are found faster by
-- reading the account's newest links one by one until a page is full than through this
-- index; PostgreSQL cannot tell them apart from rare ones (its estimate of a substring
-- match is a rule of the pattern's length), so the search statement reads the newest
-- links first and turns to the index only for what they do not hold (shortener-pg,
-- `PgStore::search_links`).
CREATE EXTENSION IF NOT EXISTS pg_trgm;

ALTER TABLE shortener.links
    ADD COLUMN tags  text[] NOT NULL DEFAULT '{}'
        CONSTRAINT links_tags_check CHECK (cardinality(tags) <= 10),
    ADD COLUMN title text
        CONSTRAINT links_title_check CHECK (char_length(title) BETWEEN 1 AND 200);

CREATE INDEX links_search_idx ON shortener.links
    USING gin ((code || E'\n' || target || E'\n' || coalesce(title, '')) gin_trgm_ops)
    WHERE deleted_at IS NULL;

-- `tags @> ARRAY[tag]`: links of every account carrying the tag; the account is then a
-- filter. A tag on many of an account's links is found faster by walking the account's
-- page index, which the planner sees from the array's element statistics.
CREATE INDEX links_tags_idx ON shortener.links USING gin (tags)
    WHERE deleted_at IS NULL;

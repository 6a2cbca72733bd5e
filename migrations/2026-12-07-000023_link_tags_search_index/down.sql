DROP INDEX shortener.links_tags_search_idx;

CREATE INDEX links_search_idx ON shortener.links
    USING gin ((code || E'\n' || target || E'\n' || coalesce(title, '')) gin_trgm_ops)
    WHERE deleted_at IS NULL;

-- `entity_id` is a filter of its own in the query API (a link's code, an account id), so
-- it leads the index: with `entity_type` first, a query by id alone could not use it.
DROP INDEX audit.entries_entity_idx;
CREATE INDEX entries_entity_idx ON audit.entries (entity_id, entity_type, occurred_at DESC, id DESC);

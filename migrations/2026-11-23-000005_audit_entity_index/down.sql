DROP INDEX audit.entries_entity_idx;
CREATE INDEX entries_entity_idx ON audit.entries (entity_type, entity_id, occurred_at DESC, id DESC);

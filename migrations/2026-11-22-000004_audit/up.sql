-- The audit module owns this schema. Entries are append-only, and PostgreSQL itself
-- enforces it: whatever the service (or anyone with its credentials) asks, UPDATE, DELETE
-- and TRUNCATE on the entries are refused.
CREATE SCHEMA audit;

-- Range-partitioned by month on occurred_at, so old months can be archived as whole
-- partitions (by an operator, deliberately, outside the service) and queries bounded in
-- time touch only their months. The primary key must include the partition key.
CREATE TABLE audit.entries (
    id           uuid        NOT NULL,              -- UUIDv7
    occurred_at  timestamptz NOT NULL,
    actor_kind   text        NOT NULL CHECK (actor_kind IN ('admin', 'account', 'system')),
    actor_id     uuid,
    action       text        NOT NULL,
    entity_type  text        NOT NULL CHECK (entity_type IN ('link', 'account', 'key', 'subscription')),
    entity_id    text        NOT NULL,
    account_id   uuid,                              -- whose entry it is, for /api/v1/audit
    changes      jsonb       NOT NULL,
    PRIMARY KEY (occurred_at, id),
    CHECK ((actor_kind = 'system') = (actor_id IS NULL)),
    CHECK (split_part(action, '.', 1) = entity_type)
) PARTITION BY RANGE (occurred_at);

-- One index per filter the API offers, each ending in the newest-first keyset order.
CREATE INDEX entries_entity_idx  ON audit.entries (entity_type, entity_id, occurred_at DESC, id DESC);
CREATE INDEX entries_actor_idx   ON audit.entries (actor_id, occurred_at DESC, id DESC);
CREATE INDEX entries_action_idx  ON audit.entries (action, occurred_at DESC, id DESC);
CREATE INDEX entries_account_idx ON audit.entries (account_id, occurred_at DESC, id DESC);
CREATE INDEX entries_time_idx    ON audit.entries (occurred_at DESC, id DESC);

CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % is refused on %', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

-- Row triggers on the parent are cloned onto every partition, present and future.
CREATE TRIGGER entries_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit.entries
    FOR EACH ROW EXECUTE FUNCTION audit.refuse_change();
CREATE TRIGGER entries_no_truncate
    BEFORE TRUNCATE ON audit.entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change();

-- Statement (TRUNCATE) triggers are not cloned, so every partition is made here, with its
-- own. The service calls this at start and daily for the coming months; it is idempotent.
CREATE FUNCTION audit.ensure_partitions(from_month date, months integer) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_month)::date;
    part text;
    created integer := 0;
BEGIN
    FOR i IN 0 .. months - 1 LOOP
        part := format('entries_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(format('audit.%I', part)) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE audit.%I PARTITION OF audit.entries FOR VALUES FROM (%L) TO (%L)',
                part, m, (m + interval '1 month')::date);
            EXECUTE format(
                'CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON audit.%I '
                'FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', part);
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END;
$$;

-- The months around the migration itself; the service keeps creating them ahead.
SELECT audit.ensure_partitions((now() - interval '1 month')::date, 4);

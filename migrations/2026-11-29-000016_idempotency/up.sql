-- Idempotency keys (issue #15): the first answer to a create sent with an
-- `Idempotency-Key`, so a retry with the same key gets that answer again instead of a
-- second link. Keys are the account's own (the primary key starts with it); the row is
-- written in the create's own transaction, so it exists exactly when the link does.
-- Requests with one key are serialised by a transaction-scoped advisory lock on the
-- account and key (taken with pg_try_advisory_xact_lock: a second request while the first
-- runs is told so at once), which every instance on the database shares.
--
-- `request_hash` is SHA-256 of what was asked (the route and the canonical JSON body): a
-- reuse of the key for something else is refused. `status` and `body` are the answer as
-- sent. Rows are pruned once older than the retention (24 hours) by the periodic sweep,
-- in small batches, oldest first through `idempotency_keys_created_at`.
CREATE TABLE shortener.idempotency_keys (
    account_id   uuid        NOT NULL REFERENCES shortener.accounts (id),
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    request_hash bytea       NOT NULL CHECK (length(request_hash) = 32),
    status       smallint    NOT NULL CHECK (status BETWEEN 200 AND 599),
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (account_id, key)
);

CREATE INDEX idempotency_keys_created_at ON shortener.idempotency_keys (created_at);

-- Rows are written once and never changed: no UPDATE.
GRANT SELECT, INSERT, DELETE ON shortener.idempotency_keys TO shortener_service;

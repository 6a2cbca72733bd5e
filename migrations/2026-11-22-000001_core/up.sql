-- The core module (accounts, API keys, links, click counts) lives in its own schema.
CREATE SCHEMA shortener;

CREATE TABLE shortener.accounts (
    id          uuid        PRIMARY KEY,              -- UUIDv7: sorts by creation
    name        text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL
);

-- Keys are stored hashed. `lookup` is the non-secret id part of the key that finds the row;
-- `secret_hash` is SHA-256 of the whole key, compared in constant time by the service.
CREATE TABLE shortener.api_keys (
    id          uuid        PRIMARY KEY,
    lookup      text        NOT NULL UNIQUE,
    secret_hash bytea       NOT NULL CHECK (octet_length(secret_hash) = 32),
    kind        text        NOT NULL CHECK (kind IN ('admin', 'account')),
    account_id  uuid        REFERENCES shortener.accounts (id),
    created_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CHECK ((kind = 'admin') = (account_id IS NULL))
);
CREATE INDEX api_keys_account_id_idx ON shortener.api_keys (account_id);

-- Deleted links keep their row (and so their code): a short URL that once pointed
-- somewhere must never start pointing somewhere else.
CREATE TABLE shortener.links (
    id          uuid        PRIMARY KEY,              -- UUIDv7: keyset order, newest first
    code        text        NOT NULL UNIQUE,
    account_id  uuid        NOT NULL REFERENCES shortener.accounts (id),
    target      text        NOT NULL CHECK (octet_length(target) <= 2048),
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz,
    deleted_at  timestamptz,
    clicks      bigint      NOT NULL DEFAULT 0 CHECK (clicks >= 0)
);
CREATE INDEX links_account_page_idx ON shortener.links (account_id, id DESC)
    WHERE deleted_at IS NULL;

CREATE TABLE shortener.link_daily_clicks (
    link_id     uuid        NOT NULL REFERENCES shortener.links (id),
    day         date        NOT NULL,
    clicks      bigint      NOT NULL CHECK (clicks >= 0),
    PRIMARY KEY (link_id, day)
);

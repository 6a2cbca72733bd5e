-- Sessions of the web interface (issue #19). A person signs in at /ui with an API key;
-- the browser then carries a random 256-bit token in a cookie, and only the token's
-- SHA-256 is kept here, as with keys. Each session names the key that opened it: a resume
-- reads the key again, so revoking a key ends its sessions at once, and a deleted row is
-- a session signed out. Expired rows are deleted by the periodic sweep (by `expires_at`).
CREATE TABLE shortener.ui_sessions (
    token_hash bytea PRIMARY KEY CONSTRAINT ui_sessions_token_hash_check CHECK (octet_length(token_hash) = 32),
    key_id uuid NOT NULL REFERENCES shortener.api_keys (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT ui_sessions_expiry_check CHECK (expires_at > created_at)
);

CREATE INDEX ui_sessions_expires_at ON shortener.ui_sessions (expires_at);
-- Revoking a key finds its sessions through the foreign key's cascade check.
CREATE INDEX ui_sessions_key_id ON shortener.ui_sessions (key_id);

GRANT SELECT, INSERT, DELETE ON shortener.ui_sessions TO shortener_service;

-- The subscriptions module owns this schema. It refers to accounts by id only (no foreign
-- key into another module's schema): modules stay separable.
CREATE SCHEMA subscriptions;

-- One row per account. Which columns are set depends on the state, mirroring the
-- `Subscription` enum: the CHECK makes a half-written state impossible.
CREATE TABLE subscriptions.subscriptions (
    account_id  uuid        PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('trial', 'active', 'expired', 'cancelled')),
    plan        text        CHECK (plan IN ('pro', 'business')),
    ends_at     timestamptz NOT NULL,  -- trial: expires_at; active: renews_at; else: when it ended
    reason      text,
    version     bigint      NOT NULL CHECK (version >= 1),
    updated_at  timestamptz NOT NULL,
    CHECK ((state = 'active') = (plan IS NOT NULL)),
    CHECK ((state = 'cancelled') = (reason IS NOT NULL))
);
CREATE INDEX subscriptions_state_idx ON subscriptions.subscriptions (state, account_id);

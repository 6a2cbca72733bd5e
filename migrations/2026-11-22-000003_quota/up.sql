-- The monthly link allowance, counted where it can be enforced exactly: one row per account
-- and calendar month (UTC), incremented in the same transaction as the link insert by a
-- conditional upsert. Concurrent creates queue on the row lock, so the limit holds exactly
-- under concurrency (a count-then-insert would not). A rolled-back insert gives its unit back.
CREATE TABLE subscriptions.link_usage (
    account_id     uuid    NOT NULL,
    month          date    NOT NULL CHECK (extract(day FROM month) = 1),
    links_created  bigint  NOT NULL CHECK (links_created >= 0),
    PRIMARY KEY (account_id, month)
);

-- The expiry sweep looks for live subscriptions whose period has ended.
CREATE INDEX subscriptions_due_idx ON subscriptions.subscriptions (ends_at)
    WHERE state IN ('trial', 'active');

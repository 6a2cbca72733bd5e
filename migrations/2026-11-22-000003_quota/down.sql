DROP INDEX subscriptions.subscriptions_due_idx;
DROP TABLE subscriptions.link_usage;

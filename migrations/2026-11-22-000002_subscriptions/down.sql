DROP TABLE subscriptions.subscriptions;
DROP SCHEMA subscriptions;

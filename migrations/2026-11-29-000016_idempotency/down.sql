DROP TABLE shortener.idempotency_keys;

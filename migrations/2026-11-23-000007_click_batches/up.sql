-- Click batches already applied. A batch whose write committed but whose answer was lost
-- (the connection dropped) is retried under the same id; finding the id here makes the
-- retry a no-op, so no click is ever counted twice. Ids are kept a day (a batch lives in
-- one process's memory for seconds at most), then pruned by the writes themselves.
CREATE TABLE shortener.click_batches (
    id          uuid        PRIMARY KEY,
    written_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX click_batches_written_at_idx ON shortener.click_batches (written_at);

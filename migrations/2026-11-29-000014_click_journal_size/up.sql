-- How much the click journal holds, kept by the statements that change it, so that every
-- write learns it for free and folds at once when reads would get slow.
--
-- A link's clicks read its bucket's journal rows (000012), so a read costs about 2.4 µs
-- per row and 0.035 µs per entry of its bucket (probe, 2026-11-29: a page of 100 links
-- took 23 ms over 60 rows of 100 entries per bucket, 145 ms over 600 rows of 5). Folding
-- once a minute keeps the journal small under one instance's traffic, but not under many
-- instances', nor when instances die before their first fold. The counter folds as soon
-- as a write reports more than its thresholds, whichever instance wrote it.
--
-- One row, updated by each flush (one short row lock per flush per instance) and by each
-- fold's range transaction as its last statement.
CREATE TABLE shortener.click_journal_size (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    entries  bigint  NOT NULL CHECK (entries >= 0),
    journal_rows bigint NOT NULL CHECK (journal_rows >= 0)
);

INSERT INTO shortener.click_journal_size (entries, journal_rows)
SELECT coalesce(sum(cardinality(link_ids)), 0), count(*) FROM shortener.click_journal;

GRANT SELECT, UPDATE ON shortener.click_journal_size TO shortener_service;

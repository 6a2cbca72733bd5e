DROP TABLE shortener.click_journal_size;

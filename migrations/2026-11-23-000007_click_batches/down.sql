DROP TABLE shortener.click_batches;

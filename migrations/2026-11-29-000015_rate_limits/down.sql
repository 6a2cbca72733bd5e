DROP FUNCTION shortener.rate_take(text, uuid, integer, integer, bigint, integer, bigint, integer);
DROP TABLE shortener.rate_slots;

DROP TABLE shortener.link_daily_clicks;
DROP TABLE shortener.links;
DROP TABLE shortener.api_keys;
DROP TABLE shortener.accounts;
DROP SCHEMA shortener;

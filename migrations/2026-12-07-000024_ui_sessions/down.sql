DROP TABLE shortener.ui_sessions;

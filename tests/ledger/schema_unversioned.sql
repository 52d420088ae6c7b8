-- The tables SqlEventStore created before its schema was versioned ({p} is the
-- table prefix): run on every open with IF NOT EXISTS, nothing recorded in
-- schema_migrations. Frozen: the upgrade test builds a database from it. Portable
-- plaza.db SQL.
CREATE TABLE IF NOT EXISTS {p}_events (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    type TEXT NOT NULL,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    body BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS {p}_events_type ON {p}_events (type, seq);
CREATE TABLE IF NOT EXISTS {p}_checkpoints (
    size INTEGER PRIMARY KEY,
    body BLOB NOT NULL
)

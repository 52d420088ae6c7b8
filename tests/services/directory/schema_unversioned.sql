-- The tables DirectoryStore created before its schema was versioned: run on every
-- open with IF NOT EXISTS, nothing recorded in schema_migrations. Frozen: the
-- upgrade test builds a database from it. Portable plaza.db SQL.
CREATE TABLE IF NOT EXISTS plc_dids (
    did TEXT PRIMARY KEY,
    head TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS plc_operations (
    seq SERIAL_PK,
    did TEXT NOT NULL,
    cid TEXT NOT NULL,
    operation TEXT NOT NULL,
    key_index INTEGER NOT NULL,
    nullified INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    UNIQUE (did, cid)
);
CREATE INDEX IF NOT EXISTS plc_operations_by_did ON plc_operations (did, seq);
CREATE INDEX IF NOT EXISTS plc_operations_by_time ON plc_operations (created_at, cid)

-- The tables PdsStore created before its schema was versioned: run on every
-- open with IF NOT EXISTS, nothing recorded in schema_migrations. Frozen: the
-- upgrade test builds a database from it. Portable plaza.db SQL.
CREATE TABLE IF NOT EXISTS pds_account (
    did TEXT PRIMARY KEY,
    handle TEXT NOT NULL UNIQUE,
    email TEXT UNIQUE,
    password_hash TEXT NOT NULL,
    signing_key BLOB NOT NULL,
    created_at TEXT NOT NULL,
    status TEXT NOT NULL,
    status_at TEXT,
    delete_after TEXT,
    email_confirmed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS pds_repo_root (
    did TEXT PRIMARY KEY,
    commit_cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    data_cid BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pds_block (
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE INDEX IF NOT EXISTS pds_block_rev ON pds_block (did, rev);
CREATE TABLE IF NOT EXISTS pds_record (
    did TEXT NOT NULL,
    collection TEXT NOT NULL,
    rkey TEXT NOT NULL,
    cid BLOB NOT NULL,
    rev TEXT NOT NULL,
    PRIMARY KEY (did, collection, rkey)
);
CREATE INDEX IF NOT EXISTS pds_record_cid ON pds_record (did, cid);
CREATE TABLE IF NOT EXISTS pds_blob (
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    mime TEXT NOT NULL,
    size INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE TABLE IF NOT EXISTS pds_blob_orphan (
    did TEXT NOT NULL,
    cid BLOB NOT NULL,
    since_s INTEGER NOT NULL,
    PRIMARY KEY (did, cid)
);
CREATE TABLE IF NOT EXISTS pds_record_blob (
    did TEXT NOT NULL,
    blob_cid BLOB NOT NULL,
    record_uri TEXT NOT NULL,
    PRIMARY KEY (did, blob_cid, record_uri)
);
CREATE TABLE IF NOT EXISTS pds_app_password (
    did TEXT NOT NULL,
    name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    privileged INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (did, name)
);
CREATE TABLE IF NOT EXISTS pds_refresh_token (
    jti TEXT PRIMARY KEY,
    did TEXT NOT NULL,
    app_password TEXT,
    expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS pds_refresh_token_did ON pds_refresh_token (did);
CREATE TABLE IF NOT EXISTS pds_email_token (
    did TEXT NOT NULL,
    purpose TEXT NOT NULL,
    token_hash TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (did, purpose)
);
CREATE TABLE IF NOT EXISTS pds_preferences (
    did TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS pds_event (
    seq INTEGER PRIMARY KEY,
    did TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    frame BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS pds_usage (
    did TEXT PRIMARY KEY,
    requests INTEGER NOT NULL,
    egress_bytes INTEGER NOT NULL
)

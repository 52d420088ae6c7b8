"""The labeler's tables.

``labels`` is the append-only log of every label the labeler has issued (negations
included), its ``seq`` the ``subscribeLabels`` cursor; ``sig`` and the DAG-CBOR of the
label are kept so a replay sends the exact bytes that were signed. ``reviews`` is the
human review queue: items the classifier was unsure of, reports
(``com.atproto.moderation.createReport``) and appeals, each ``open`` until a moderator
resolves it (``labelled``, ``dismissed`` or ``reversed``). ``strikes`` counts the spam
labels each account has had, for the account label.
"""

from __future__ import annotations

from plaza.db import Migration, Migrations

_INITIAL = """
CREATE TABLE IF NOT EXISTS labels (
    seq SERIAL_PK,
    uri TEXT NOT NULL,
    val TEXT NOT NULL,
    neg INTEGER NOT NULL,
    cts TEXT NOT NULL,
    label BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS labels_uri ON labels (uri, seq);
CREATE TABLE IF NOT EXISTS reviews (
    id SERIAL_PK,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    cid TEXT,
    did TEXT NOT NULL,
    reason_type TEXT NOT NULL,
    reason TEXT NOT NULL,
    score REAL,
    reporter TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    resolved_at TEXT,
    resolution TEXT
);
CREATE INDEX IF NOT EXISTS reviews_status ON reviews (status, id);
CREATE TABLE IF NOT EXISTS strikes (
    did TEXT PRIMARY KEY,
    count INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ingest (
    source TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
"""

MIGRATIONS = Migrations("labeler", (Migration(1, "labels, reviews, strikes, ingest", _INITIAL),))

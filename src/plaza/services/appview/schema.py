"""The app view's tables: a compact index of the network's ``app.bsky`` records.

Theory of the layout. Every account the app view has heard of gets a small integer id
in ``actors`` (its DID once, there); every other table names accounts by that id and
records by ``(actor id, rkey)``, never by AT-URI, so a like costs a few integers and
one short string. A record that points at a post (a like, a repost, a reply, a quote)
stores the post's ``(author id, rkey)``; the post may arrive later (backfill order) or
never, and the reference still holds. CIDs are kept as their raw bytes (``BLOB``);
times as integer microseconds since the epoch (``sort_at`` is ``createdAt`` clamped
to the time the app view first saw the record, as Bluesky sorts).

Records come back byte for byte (views return them; a post's or notification's CID is
the hash of its block, not stored), but are stored by what the index does not already
hold of them (migration 5, :mod:`plaza.services.appview.compact`): a post keeps its
text in ``posts.text`` and in ``posts.record`` the rest of its record; a notification
keeps no record its source row (the post, like, repost or follow) rebuilds. Lists and
feed generators keep their record's DAG-CBOR. Likes, reposts, follows, blocks and list
items keep only what the views need, and their views rebuild the record.

Counts (posts' likes, reposts, replies, quotes; actors' followers, follows, posts) are
columns kept in step by the indexer inside the transaction that indexes the record.

``notifications`` rows are written at index time (reason codes in
:data:`NOTIFICATION_REASONS`), with the record that caused them (most by reference, see
above). ``ingest`` holds the firehose cursor of each source, written in the transaction
that indexes the event.

Indexes (migration 6): the hot feed's ``posts_recent`` holds only the top-level posts
that were recent when indexed (:data:`RECENT_US`), so backfilled history stays out of
it; on SQLite the tables keyed by ``(actor, rkey)`` (and ``mutes``) are ``WITHOUT
ROWID``, their rows stored in key order with no index repeating the key. A like's or
repost's notification keeps no ``subject_rkey``: its like or repost row has it.

Full-text search: on SQLite two contentless FTS5 tables (``posts_fts`` with rowid =
``posts.id``, no per-row sizes and no word positions, so phrases are checked against
``posts.text``; ``actors_fts`` with rowid = ``actors.id``; deleting a row from them
needs the text it was indexed with, which the indexer has); on
PostgreSQL a GIN index over ``to_tsvector('simple', posts.text)`` and a ``tsvector``
column on ``actors`` with a GIN index. Both use the ``simple`` configuration (no
stemming), so searches behave the same on both.
"""

from __future__ import annotations

from typing import Final

from plaza.atproto import cbor
from plaza.db import Database, Migration, Migrations
from plaza.services.appview.compact import DERIVED, follow_block, pack_post, subject_block

NOTIFICATION_REASONS: Final = ("like", "repost", "follow", "mention", "reply", "quote")
"""Index = the ``reason`` integer stored in ``notifications``."""

NOTIFICATION_COLLECTIONS: Final = (
    "app.bsky.feed.like",
    "app.bsky.feed.repost",
    "app.bsky.graph.follow",
    "app.bsky.feed.post",
    "app.bsky.feed.post",
    "app.bsky.feed.post",
)
"""The collection of the record behind each reason (same index)."""

# embed flags of a post (posts.embed), for getAuthorFeed's posts_with_media filter
EMBED_IMAGES: Final = 1
EMBED_VIDEO: Final = 2
EMBED_EXTERNAL: Final = 4
EMBED_RECORD: Final = 8

# actors.repo_state
REPO_UNSEEN: Final = 0  # heard of (referenced, or a first event), never backfilled
REPO_CURRENT: Final = 1  # backfilled; live events apply on top
REPO_FAILED: Final = 2  # backfill failed; retried on the next event or #sync

_TABLES: Final = """
CREATE TABLE actors (
    id SERIAL_PK,
    did TEXT NOT NULL UNIQUE,
    handle TEXT,
    pds TEXT,
    profile_cid BLOB,
    display_name TEXT,
    description TEXT,
    avatar BLOB,
    banner BLOB,
    pinned_uri TEXT,
    pinned_cid BLOB,
    profile_created TEXT,
    indexed_at INTEGER NOT NULL,
    followers INTEGER NOT NULL DEFAULT 0,
    follows INTEGER NOT NULL DEFAULT 0,
    posts INTEGER NOT NULL DEFAULT 0,
    rev TEXT,
    repo_state INTEGER NOT NULL DEFAULT 0,
    active INTEGER NOT NULL DEFAULT 1,
    seen_at INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX actors_by_handle ON actors (handle);
CREATE TABLE posts (
    id SERIAL_PK,
    author INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    cid BLOB NOT NULL,
    record BLOB NOT NULL,
    sort_at INTEGER NOT NULL,
    indexed_at INTEGER NOT NULL,
    parent_author INTEGER,
    parent_rkey TEXT,
    root_author INTEGER,
    root_rkey TEXT,
    quote_author INTEGER,
    quote_rkey TEXT,
    embed INTEGER NOT NULL DEFAULT 0,
    likes INTEGER NOT NULL DEFAULT 0,
    reposts INTEGER NOT NULL DEFAULT 0,
    replies INTEGER NOT NULL DEFAULT 0,
    quotes INTEGER NOT NULL DEFAULT 0,
    UNIQUE (author, rkey)
);
CREATE INDEX posts_by_author ON posts (author, sort_at);
CREATE INDEX posts_by_parent ON posts (parent_author, parent_rkey) WHERE parent_author IS NOT NULL;
CREATE INDEX posts_by_quote ON posts (quote_author, quote_rkey) WHERE quote_author IS NOT NULL;
CREATE TABLE likes (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    subject_author INTEGER NOT NULL,
    subject_rkey TEXT NOT NULL,
    subject_cid BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (actor, rkey)
);
CREATE INDEX likes_by_subject ON likes (subject_author, subject_rkey, actor);
CREATE TABLE reposts (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    subject_author INTEGER NOT NULL,
    subject_rkey TEXT NOT NULL,
    subject_cid BLOB NOT NULL,
    created INTEGER NOT NULL,
    sort_at INTEGER NOT NULL,
    PRIMARY KEY (actor, rkey)
);
CREATE INDEX reposts_by_subject ON reposts (subject_author, subject_rkey, actor);
CREATE INDEX reposts_by_actor ON reposts (actor, sort_at);
CREATE TABLE follows (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    subject INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (actor, rkey)
);
CREATE INDEX follows_by_subject ON follows (subject, actor);
CREATE INDEX follows_by_actor ON follows (actor, subject);
CREATE TABLE blocks (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    subject INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (actor, rkey)
);
CREATE INDEX blocks_by_subject ON blocks (subject, actor);
CREATE INDEX blocks_by_actor ON blocks (actor, subject);
CREATE TABLE mutes (
    actor INTEGER NOT NULL,
    subject INTEGER NOT NULL,
    PRIMARY KEY (actor, subject)
);
CREATE TABLE lists (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    cid BLOB NOT NULL,
    record BLOB NOT NULL,
    indexed_at INTEGER NOT NULL,
    items INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (actor, rkey)
);
CREATE TABLE list_items (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    list_rkey TEXT NOT NULL,
    subject INTEGER NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (actor, rkey)
);
CREATE INDEX list_items_by_list ON list_items (actor, list_rkey, subject);
CREATE INDEX list_items_by_subject ON list_items (subject);
CREATE TABLE feed_generators (
    actor INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    cid BLOB NOT NULL,
    record BLOB NOT NULL,
    indexed_at INTEGER NOT NULL,
    likes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (actor, rkey)
);
CREATE TABLE notifications (
    id SERIAL_PK,
    recipient INTEGER NOT NULL,
    author INTEGER NOT NULL,
    reason INTEGER NOT NULL,
    rkey TEXT NOT NULL,
    cid BLOB NOT NULL,
    subject_rkey TEXT,
    record BLOB NOT NULL,
    indexed_at INTEGER NOT NULL
);
CREATE INDEX notifications_by_recipient ON notifications (recipient, id);
CREATE INDEX notifications_by_source ON notifications (author, rkey);
CREATE TABLE labels (
    id SERIAL_PK,
    src INTEGER NOT NULL,
    uri TEXT NOT NULL,
    cid BLOB,
    val TEXT NOT NULL,
    neg INTEGER NOT NULL DEFAULT 0,
    cts TEXT NOT NULL,
    exp TEXT,
    sig BLOB
);
CREATE INDEX labels_by_uri ON labels (uri, src, val);
CREATE TABLE ingest (
    source TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
)
"""

_SQLITE_SEARCH: Final = """
CREATE VIRTUAL TABLE posts_fts USING fts5(
    text, content='', tokenize='unicode61 remove_diacritics 2'
);
CREATE VIRTUAL TABLE actors_fts USING fts5(
    handle, display_name, description, content='', tokenize='unicode61 remove_diacritics 2'
)
"""

_PG_SEARCH: Final = """
ALTER TABLE posts ADD COLUMN search tsvector;
ALTER TABLE actors ADD COLUMN search tsvector;
CREATE INDEX posts_search ON posts USING GIN (search);
CREATE INDEX actors_search ON actors USING GIN (search);
CREATE INDEX actors_by_handle_prefix ON actors (handle text_pattern_ops)
"""


def _initial(db: Database) -> None:
    db.executescript(_TABLES)
    db.executescript(_PG_SEARCH if db.dialect == "postgresql" else _SQLITE_SEARCH)


def _posts_by_time(db: Database) -> None:
    # the built-in "hot" feed ranks the posts of the last day (plaza.services.appview.feeds)
    db.executescript("CREATE INDEX posts_by_time ON posts (sort_at)")


def _posts_no_cid(db: Database) -> None:
    db.executescript("ALTER TABLE posts DROP COLUMN cid")


def _notes_no_cid(db: Database) -> None:
    db.executescript("ALTER TABLE notifications DROP COLUMN cid")


_NOTE_SOURCES: Final = (
    # reason, the source table and what rebuilds its record (see compact.py)
    (0, "likes", "app.bsky.feed.like"),
    (1, "reposts", "app.bsky.feed.repost"),
    (2, "follows", "app.bsky.graph.follow"),
)


def _compact(db: Database) -> None:
    """Posts keep their text in a column and the rest of their record; notifications
    keep no record their source row rebuilds; search reads ``posts.text`` (SQLite: a
    contentless FTS5 table without per-row sizes; PostgreSQL: a GIN index over the
    expression, no stored ``tsvector``)."""
    db.execute("ALTER TABLE posts ADD COLUMN text TEXT NOT NULL DEFAULT ''")
    last = 0
    while rows := db.query(
        "SELECT id, record, sort_at FROM posts WHERE id > ? ORDER BY id LIMIT 2000", (last,)
    ):
        updates = []
        for ident, record, sort_at in rows:
            value = cbor.decode(bytes(record))
            text = value.get("text")
            text = text if isinstance(text, str) else ""
            updates.append((pack_post(bytes(record), value, int(sort_at)), text, ident))
        db.executemany("UPDATE posts SET record = ?, text = ? WHERE id = ?", updates)
        last = int(rows[-1][0])
    db.execute(
        f"UPDATE notifications SET record = ? WHERE reason IN ({', '.join('?' * 3)})",
        (DERIVED, *(NOTIFICATION_REASONS.index(r) for r in ("mention", "reply", "quote"))),
    )
    for reason, table, collection in _NOTE_SOURCES:
        follow = table == "follows"
        cols = "NULL, NULL" if follow else "s.subject_rkey, s.subject_cid"
        last = 0
        while rows := db.query(
            f"SELECT n.id, n.record, a.did, {cols}, s.created "
            f"FROM notifications n JOIN {table} s ON s.actor = n.author AND s.rkey = n.rkey "
            f"JOIN actors a ON a.id = {'s.subject' if follow else 's.subject_author'} "
            "WHERE n.reason = ? AND n.id > ? ORDER BY n.id LIMIT 2000",
            (reason, last),
        ):
            derived = []
            for ident, record, did, rkey, cid, created in rows:
                rebuilt = (
                    follow_block(did, int(created))
                    if follow
                    else subject_block(collection, did, rkey, bytes(cid), int(created))
                )
                if rebuilt == bytes(record):
                    derived.append((DERIVED, ident))
            db.executemany("UPDATE notifications SET record = ? WHERE id = ?", derived)
            last = int(rows[-1][0])
    if db.dialect == "postgresql":
        db.executescript(
            "DROP INDEX posts_search; ALTER TABLE posts DROP COLUMN search; "
            "CREATE INDEX posts_search ON posts USING GIN (to_tsvector('simple', text))"
        )
        return
    db.executescript(
        "DROP TABLE posts_fts; CREATE VIRTUAL TABLE posts_fts USING fts5(text, content='', "
        "columnsize=0, tokenize='unicode61 remove_diacritics 2'); "
        "INSERT INTO posts_fts (rowid, text) SELECT id, text FROM posts"
    )


RECENT_US: Final = 2 * 24 * 3600 * 1_000_000
"""``posts_recent`` holds the top-level posts whose ``sort_at`` was at most this long
before they were indexed. The hot feed reads the last day's top-level posts: a post of
that day was indexed before now, so less than a day after its ``sort_at``; the second
day is a margin for the clocks of processes that index and serve."""

_EDGE_TABLES: Final = ("likes", "reposts", "follows", "blocks", "list_items", "mutes")


def _smaller(db: Database) -> None:
    """Indexes hold less: the hot feed's time index only the posts that were recent when
    indexed; like and repost notifications no ``subject_rkey`` (their row has it); on
    SQLite, the post search table no positions (``detail=none``; phrases are checked
    against ``posts.text``), and the tables keyed by ``(actor, rkey)`` (or
    ``(actor, subject)``) stored in their key's order (``WITHOUT ROWID``: no second
    copy of the key in an index)."""
    db.execute(
        "UPDATE notifications SET subject_rkey = NULL WHERE reason IN (?, ?)",
        (NOTIFICATION_REASONS.index("like"), NOTIFICATION_REASONS.index("repost")),
    )
    db.execute("DROP INDEX posts_by_time")
    db.execute(
        "CREATE INDEX posts_recent ON posts (sort_at) "
        f"WHERE parent_author IS NULL AND sort_at >= indexed_at - {RECENT_US}"
    )
    if db.dialect == "postgresql":
        return
    db.executescript(
        "DROP TABLE posts_fts; CREATE VIRTUAL TABLE posts_fts USING fts5(text, content='', "
        "columnsize=0, detail=none, tokenize='unicode61 remove_diacritics 2'); "
        "INSERT INTO posts_fts (rowid, text) SELECT id, text FROM posts"
    )
    for table in _EDGE_TABLES:
        create = str(db.scalar("SELECT sql FROM sqlite_schema WHERE name = ?", (table,)))
        indexes = [
            str(r[0])
            for r in db.query(
                "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? "
                "AND sql IS NOT NULL",
                (table,),
            )
        ]
        db.execute(
            create.replace(f"CREATE TABLE {table}", f"CREATE TABLE {table}_keyed", 1)
            + " WITHOUT ROWID"
        )
        db.execute(f"INSERT INTO {table}_keyed SELECT * FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_keyed RENAME TO {table}")
        for sql in indexes:
            db.execute(sql)


MIGRATIONS: Final = Migrations(
    "appview",
    (
        Migration(1, "initial tables", _initial),
        Migration(2, "posts by time", _posts_by_time),
        Migration(3, "posts keep no CID: it is the hash of the stored record", _posts_no_cid),
        Migration(4, "notifications keep no CID: the hash of their record", _notes_no_cid),
        Migration(5, "posts keep their text apart; notifications rebuild records", _compact),
        Migration(6, "smaller indexes: recent posts, no positions, tables in key order", _smaller),
    ),
)
"""The app view's schema, step by step (see :mod:`plaza.db.migrations`)."""

"""The archive: a verified copy of every repository and blob, served after its host dies.

``create_app(ArchiveSettings(...))`` builds the ASGI app. It follows a
``com.atproto.sync.subscribeRepos`` firehose (normally the relay's), verifies every
event (:mod:`.follower`), fetches whole repositories and blobs from the accounts' hosts
when it must (:mod:`.repo_fetch`, :mod:`.blob_fetch`), keeps them in its store
(:mod:`.store`, SQLite or PostgreSQL; blobs as files, :mod:`.blobs`) and serves them
with the ``com.atproto.sync.*`` reads (:mod:`.xrpc`).
"""

from plaza.services.archive.app import Archive, create_app, open_archive
from plaza.services.archive.schema import MIGRATIONS
from plaza.services.archive.settings import DEFAULT_PORT, ArchiveSettings
from plaza.services.archive.store import ArchiveStore

__all__ = [
    "DEFAULT_PORT",
    "MIGRATIONS",
    "Archive",
    "ArchiveSettings",
    "ArchiveStore",
    "create_app",
    "open_archive",
]

"""Backfill: on its first start the archive asks its source which repositories exist.

The firehose replays only the window its source keeps, so an account that was created
before that window and has been quiet since would never appear in it. On a first start
(no cursor stored yet) the archive pages through the source's
``com.atproto.sync.listRepos`` (a relay and a PDS both serve it) and marks every DID it
does not hold for a resync; the repo fetcher then fetches each from its own PDS and
verifies it. A source that does not answer is logged and left: the firehose still
brings every repository that changes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Final

import httpx

from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.services.archive.errors import FetchError
from plaza.services.archive.retry import get_bytes
from plaza.services.archive.settings import ArchiveSettings
from plaza.services.archive.store import ArchiveStore

log = logging.getLogger("plaza.archive")

PAGE: Final = 1000
MAX_PAGE_BYTES: Final = 4_000_000


async def backfill(
    settings: ArchiveSettings,
    store: ArchiveStore,
    http: httpx.AsyncClient,
    *,
    clock: Callable[[], float],
) -> int:
    """Mark every repository the source lists and the archive lacks; return how many."""
    url = f"{settings.source_http_url}/xrpc/com.atproto.sync.listRepos"
    cursor: str | None = None
    marked = 0
    while True:
        params = {"limit": str(PAGE)} | ({"cursor": cursor} if cursor else {})
        try:
            page = json.loads(await get_bytes(http, url, params, MAX_PAGE_BYTES))
            repos = page["repos"]
            cursor = page.get("cursor")
            dids = [syntax.validate_did_plc(item["did"]) for item in repos]
        except (FetchError, ValueError, KeyError, TypeError, AtprotoError) as exc:
            log.warning("archive: could not list the source's repositories: %s", exc)
            return marked
        for did in dids:
            if store.head(did) is None:
                store.want_resync(did, None, now=clock())
                marked += 1
        if not repos or not isinstance(cursor, str) or not cursor:
            return marked

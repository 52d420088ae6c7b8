"""Settings of one app view, read once at the edge (``plaza serve appview`` flags)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


def service_did_for(public_url: str) -> str:
    """The ``did:web`` an app view at ``public_url`` calls itself (port percent-encoded)."""
    return "did:web:" + urlsplit(public_url).netloc.replace(":", "%3A")


@dataclass(frozen=True)
class AppviewSettings:
    """Everything one app view needs to run.

    ``relay_urls`` are ``com.atproto.sync.subscribeRepos`` sources (normally the one
    relay; on a small local network the PDSs themselves), each followed with its own
    cursor; ``db`` a PostgreSQL URL (SQLite at ``DATA_DIR/appview.db`` when None);
    ``service_did`` the DID inter-service tokens must name as their audience (default:
    the ``did:web`` of ``public_url``). ``labelers`` are the labeler DIDs whose labels
    the app view subscribes to and shows by default; ``remote_*`` bound the calls made
    to services other people's records name (:mod:`plaza.services.appview.remote`).
    """

    data_dir: Path
    public_url: str
    directory_url: str
    relay_urls: tuple[str, ...] = ()
    db: str | None = None
    service_did: str | None = None
    max_limit: int = 100
    follow: bool = True  # run the firehose follower in the app's lifespan
    # custom feeds and labels (plaza.services.appview.feeds, .labels)
    labelers: tuple[str, ...] = ()  # labeler DIDs whose labels are accepted and shown
    remote_allow_private: bool = False  # let feed generators/labelers be on private hosts
    remote_timeout_s: float = 5.0  # bound of one call to a feed generator or a labeler
    remote_max_bytes: int = 1024 * 1024  # bound of one answer of a feed generator

    @property
    def did(self) -> str:
        return self.service_did or service_did_for(self.public_url)

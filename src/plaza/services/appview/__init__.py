"""The app view: an index of the network's ``app.bsky`` records, fed by a firehose and
served as the Lexicon's ``app.bsky.*`` views (see docs/appview.md and
/work/coord/APPVIEW.md while it is being built)."""

from __future__ import annotations

from plaza.services.appview.app import create_app
from plaza.services.appview.schema import MIGRATIONS
from plaza.services.appview.service import Appview
from plaza.services.appview.settings import AppviewSettings, service_did_for
from plaza.services.appview.store import AppviewStore

__all__ = [
    "MIGRATIONS",
    "Appview",
    "AppviewSettings",
    "AppviewStore",
    "create_app",
    "service_did_for",
]

"""Plaza's web client and the members' dashboard: server-rendered pages over the
network's public APIs (the entryway or PDS, the app view through it, the DAO's and the
market's HTTP APIs). See docs/web.md."""

from plaza.web.app import create_app
from plaza.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]

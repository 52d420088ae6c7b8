"""The DAO's and the market's ``/docs``: one HTML page that lists every endpoint and
loads nothing from anywhere else (no CDN: the machine may have no network)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from plaza.atproto.crypto import PrivateKey
from plaza.dao.api import ApiSettings
from plaza.dao.api import create_app as create_dao
from plaza.dao.mandate import default_mandate
from plaza.market.api import MarketSettings
from plaza.market.api import create_app as create_market


class _Refs(HTMLParser):
    """Every URL the page would load or link to."""

    def __init__(self) -> None:
        super().__init__()
        self.loads: list[str] = []
        self.links: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name == "href" and tag == "a":
                self.links.append(value or "")
            elif name in {"src", "href", "srcset", "data", "action", "poster"}:
                self.loads.append(value or "")


def _apps(tmp_path: Path) -> dict[str, FastAPI]:
    key = PrivateKey.generate()
    return {
        "dao": create_dao(ApiSettings(db_url=str(tmp_path / "dao.db"))),
        "market": create_market(
            MarketSettings(
                ledger_url=str(tmp_path / "market.db"),
                operator_did=key.did_key(),
                operator_key=key,
                mandate=default_mandate(),
            )
        ),
    }


@pytest.mark.parametrize("name", ["dao", "market"])
def test_docs_is_self_contained_and_lists_every_endpoint(tmp_path: Path, name: str) -> None:
    with TestClient(_apps(tmp_path)[name]) as client:
        page = client.get("/docs")
        spec = client.get("/openapi.json").json()
        assert client.get("/redoc").status_code == 404
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    refs = _Refs()
    refs.feed(page.text)
    assert refs.loads == []  # no script, style sheet, image or frame from anywhere
    assert "script" not in refs.tags and "link" not in refs.tags
    assert refs.links == ["openapi.json"]  # relative: this server
    assert not re.search(r"(?i)\b(?:https?:)?//[a-z0-9]", page.text)  # no absolute URL
    for path, ops in spec["paths"].items():
        for method in ops:
            assert f"<code>{method.upper()}</code></td><td><code>{path}</code>" in page.text

"""Query parameters: integers are ASCII digits of bounded length, revisions are TIDs,
and anything else is a 400 — never a 500, and never read some other way.

Python's ``int()`` accepts other scripts' digits (``٥``), underscores (``1_0``), signs
and spaces, and ``str.isdigit`` says yes to ``²``, which ``int()`` then refuses.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import pytest
from websockets.sync.client import connect

from plaza.atproto import cbor
from tests.services.pds.conftest import Network

IDS_CURSOR = ["superscript", "arabic-indic", "underscore", "5000-digits"]

BAD_INTEGERS = ["²", "٥", "1_0", "+5", " 5", "5 ", "-5", "0x10", "9" * 5000, "5.0", "５"]
IDS = [
    "superscript",
    "arabic-indic",
    "underscore",
    "plus",
    "leading-space",
    "trailing-space",
    "negative",
    "hex",
    "5000-digits",
    "decimal",
    "fullwidth",
]


@pytest.mark.parametrize("value", BAD_INTEGERS, ids=IDS)
def test_limit_must_be_ascii_digits(network: Network, value: str) -> None:
    acct = network.new_account(0, prefix="prm")
    r = httpx.get(
        f"{network.pds[0]}/xrpc/com.atproto.repo.listRecords",
        params={"repo": acct["did"], "collection": "app.bsky.feed.post", "limit": value},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequest"


@pytest.mark.parametrize("value", BAD_INTEGERS, ids=IDS)
def test_service_auth_exp_must_be_ascii_digits(network: Network, value: str) -> None:
    acct = network.new_account(0, prefix="prm")
    r = httpx.get(
        f"{network.pds[0]}/xrpc/com.atproto.server.getServiceAuth",
        params={"aud": "did:web:example.com", "exp": value},
        headers={"authorization": f"Bearer {acct['access']}"},
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "BadExpiration"


def test_service_auth_exp_in_plain_digits_works(network: Network) -> None:
    acct = network.new_account(0, prefix="prm")
    r = httpx.get(
        f"{network.pds[0]}/xrpc/com.atproto.server.getServiceAuth",
        params={"aud": "did:web:example.com", "exp": str(int(time.time()) + 120)},
        headers={"authorization": f"Bearer {acct['access']}"},
    )
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("nsid", "param"),
    [("com.atproto.sync.getRepo", "since"), ("com.atproto.sync.listBlobs", "since")],
)
@pytest.mark.parametrize("value", ["not-a-tid", "zzzzzzzzzzzzz", "x" * 5000])
def test_since_must_be_a_revision(network: Network, nsid: str, param: str, value: str) -> None:
    acct = network.new_account(0, prefix="prm")
    r = httpx.get(f"{network.pds[0]}/xrpc/{nsid}", params={"did": acct["did"], param: value})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequest"


@pytest.mark.parametrize("value", ["²", "٥", "1_0", "9" * 5000], ids=IDS_CURSOR)
def test_firehose_cursor_must_be_ascii_digits(network: Network, value: str) -> None:
    ws_url = network.pds[0].replace("http://", "ws://") + "/xrpc/com.atproto.sync.subscribeRepos"
    with connect(f"{ws_url}?cursor={quote(value)}") as ws:
        header, body = cbor.decode_multi(ws.recv(timeout=5))
    assert header == {"op": -1}
    assert body["error"] == "InvalidRequest"

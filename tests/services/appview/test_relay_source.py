"""The app view following a real relay process (``plaza serve relay``) rather than a PDS:
a post and a like made with the atproto SDK on a PDS reach the app view through the
relay's firehose, and the app view's health names the relay as its source."""

from __future__ import annotations

import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from atproto import Client
from plaza.services.appview import AppviewSettings
from plaza.services.appview import create_app as create_appview
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.runner import ServedApp, ServerThread
from tests.cli.test_serve import serve
from tests.services.appview.conftest import DEADLINE_S, _free_port


def _eventually(check: Any, what: str) -> Any:
    """``check()``'s first truthy answer, polled until the deadline."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)  # polling other servers: a short interval, bounded above


@pytest.fixture
def network(tmp_path: Path) -> Iterator[tuple[str, str, str]]:
    """``(pds, relay, appview)`` URLs: the relay a real process crawling the PDS, the
    app view following only the relay."""
    dport, pport = _free_port(), _free_port()
    directory, pds = f"http://127.0.0.1:{dport}", f"http://127.0.0.1:{pport}"
    dapp = ServedApp(
        "directory", create_directory(DirectorySettings.for_data_dir(tmp_path / "d")), port=dport
    )
    papp = ServedApp(
        "pds",
        create_app(PdsSettings(data_dir=tmp_path / "pds", public_url=pds, directory_url=directory)),
        port=pport,
    )
    with ServerThread([dapp, papp]):
        relay_proc, relay = serve(
            "relay",
            "--port",
            "0",
            "--data-dir",
            str(tmp_path / "relay"),
            "--directory",
            directory,
            "--crawl",
            f"127.0.0.1:{pport}",
        )
        try:
            aport = _free_port()
            appview = f"http://127.0.0.1:{aport}"
            settings = AppviewSettings(
                data_dir=tmp_path / "appview",
                public_url=appview,
                directory_url=directory,
                relay_urls=(relay,),
            )
            with ServerThread([ServedApp("appview", create_appview(settings), port=aport)]):
                yield pds, relay, appview
        finally:
            relay_proc.send_signal(signal.SIGINT)
            relay_proc.communicate(timeout=30)


def _account(pds: str) -> tuple[Client, str]:
    handle = f"r{secrets.token_hex(3)}.test"
    password = "pw-" + secrets.token_hex(8)
    r = httpx.post(
        f"{pds}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": password, "email": f"{handle}@example.com"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    client = Client(base_url=pds)
    client.login(handle, password)
    return client, str(r.json()["did"])


def test_the_app_view_indexes_what_the_relay_relays(network: tuple[str, str, str]) -> None:
    pds, relay, appview = network
    alice, alice_did = _account(pds)
    bob, _ = _account(pds)
    post = alice.send_post(text="through the relay")
    bob.like(post.uri, post.cid)

    def liked_post() -> dict[str, Any] | None:
        r = httpx.get(
            f"{appview}/xrpc/app.bsky.feed.getPosts", params={"uris": post.uri}, timeout=10
        )
        posts = r.json().get("posts", []) if r.status_code == 200 else []
        return posts[0] if posts and posts[0].get("likeCount") == 1 else None

    got = _eventually(liked_post, "the post and its like at the app view")
    assert got["record"]["text"] == "through the relay"
    assert got["author"]["did"] == alice_did and got["cid"] == post.cid
    health = httpx.get(f"{appview}/xrpc/_health", timeout=10).json()
    (source,) = health["sources"]
    assert source["url"] == relay and source["seq"] > 0 and source["events"] > 0
    relayed = httpx.get(
        f"{relay}/xrpc/com.atproto.sync.getLatestCommit", params={"did": alice_did}, timeout=10
    )
    assert relayed.status_code == 200, relayed.text

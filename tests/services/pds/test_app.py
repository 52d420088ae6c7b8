"""The PDS's ASGI entry: XRPC calls take the fast path, everything else answers as the
Starlette app does; a remembered access token still expires and dies with its account."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app
from plaza.services.pds.mail import read_token
from plaza.services.runner import ServedApp, ServerThread

TTL_S = 2


class Clock:
    """A clock the test moves: the PDS's session tokens are issued and checked by it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


CLOCK = Clock()


@pytest.fixture(scope="module")
def urls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    root: Path = tmp_path_factory.mktemp("app")
    directory = ServedApp("directory", create_directory(DirectorySettings.for_data_dir(root / "d")))
    with ServerThread([directory]) as (dir_url,):
        pds = create_app(
            PdsSettings(
                data_dir=root / "pds",
                public_url="http://127.0.0.1:1",
                directory_url=dir_url,
                access_ttl_s=TTL_S,
            ),
            clock=CLOCK,
        )
        assert pds.state.pds is not None  # the Starlette app's state, through the entry
        with ServerThread([ServedApp("pds", pds)]) as (url,):
            yield url, root / "pds" / "mail"


def _account(url: str) -> dict[str, str]:
    handle = f"a{secrets.token_hex(4)}.test"
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "pw-12345678", "email": f"{handle}@x.test"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return {**r.json(), "password": "pw-12345678"}


def _post(url: str, acct: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{url}/xrpc/com.atproto.repo.createRecord",
        json={
            "repo": acct["did"],
            "collection": "app.bsky.feed.post",
            "record": {"text": "hi", "createdAt": "2026-01-01T00:00:00.000Z"},
        },
        headers={"authorization": f"Bearer {acct['accessJwt']}"},
    )


def test_routes_outside_the_fast_path_answer_as_before(urls: tuple[str, Path]) -> None:
    url, _ = urls
    assert httpx.get(f"{url}/xrpc/_health").json()["version"].startswith("plaza-pds")
    assert httpx.put(f"{url}/xrpc/com.atproto.server.describeServer").status_code == 405
    assert httpx.get(f"{url}/xrpc/com.atproto/server.describeServer").status_code == 404
    assert httpx.get(f"{url}/nothing-here").status_code == 404
    assert httpx.get(f"{url}/.well-known/did.json").json()["id"].startswith("did:web:")
    assert b"plaza_pds_xrpc_requests" in httpx.get(f"{url}/metrics").content


def test_xrpc_calls_are_dispatched_and_metered(urls: tuple[str, Path]) -> None:
    url, _ = urls
    r = httpx.get(f"{url}/xrpc/com.atproto.server.describeServer")
    assert r.status_code == 200 and r.json()["availableUserDomains"] == [".test"]
    r = httpx.get(f"{url}/xrpc/com.example.nothing")
    assert r.status_code == 501 and r.json()["error"] == "MethodNotImplemented"
    assert httpx.head(f"{url}/xrpc/com.atproto.server.describeServer").status_code == 200
    metrics = httpx.get(f"{url}/metrics").text
    assert (
        'plaza_pds_xrpc_requests_total{method="com.atproto.server.describeServer",status="200"}'
        in metrics
    )
    assert 'plaza_pds_xrpc_requests_total{method="unknown",status="501"}' in metrics


def test_a_remembered_token_still_expires(urls: tuple[str, Path]) -> None:
    url, _ = urls
    acct = _account(url)
    assert _post(url, acct).status_code == 200  # verified once, now remembered
    CLOCK.now += TTL_S - 1
    assert _post(url, acct).status_code == 200  # not expired yet
    CLOCK.now += 2
    r = _post(url, acct)
    assert r.status_code == 400 and r.json()["error"] == "ExpiredToken"


def test_a_remembered_token_dies_with_its_account(urls: tuple[str, Path]) -> None:
    url, mail = urls
    acct = _account(url)
    assert _post(url, acct).status_code == 200  # verified once, now remembered
    auth = {"authorization": f"Bearer {acct['accessJwt']}"}
    r = httpx.post(f"{url}/xrpc/com.atproto.server.requestAccountDelete", headers=auth)
    assert r.status_code == 200, r.text
    token = read_token(mail, acct["did"], "delete_account")
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.deleteAccount",
        json={"did": acct["did"], "password": acct["password"], "token": token},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    r = _post(url, acct)
    assert r.status_code == 400 and r.json()["error"] == "InvalidToken"


def test_method_labels_come_from_the_method_table(tmp_path: Path) -> None:
    """A metric label per NSID a client invents would grow the registry without end."""
    settings = PdsSettings(
        data_dir=tmp_path,
        public_url="http://127.0.0.1:1",
        directory_url="-",
        appview_url="http://127.0.0.1:9",
        appview_did="did:web:appview.test",
    )
    with ServerThread([ServedApp("pds", create_app(settings))]) as (url,):
        invented = [f"app.bsky.feed.made{secrets.token_hex(4)}" for _ in range(20)]
        invented += [f"com.example.made{secrets.token_hex(4)}" for _ in range(5)]
        for nsid in invented:
            assert httpx.get(f"{url}/xrpc/{nsid}").status_code in (401, 501)
        httpx.get(f"{url}/xrpc/com.atproto.server.describeServer")
        metrics = httpx.get(f"{url}/metrics").text
    assert not any(nsid in metrics for nsid in invented)
    assert 'method="com.atproto.server.describeServer"' in metrics
    assert 'method="proxied",status="401"' in metrics

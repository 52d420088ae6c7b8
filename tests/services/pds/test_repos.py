"""The write path keeps every block a record still needs.

Records are content-addressed: two records with the same content share one block. A
commit that deletes or changes one of them must not drop the block the other still
points at, on either backend.
"""

from __future__ import annotations

from typing import Any

import httpx

from plaza.atproto.repo_verify import import_car
from tests.services.pds.conftest import BACKENDS, Network
from tests.services.pds.streaming import chunked_until_answered

SAME = {"$type": "app.bsky.feed.post", "text": "same", "createdAt": "2026-01-01T00:00:00.000Z"}


def _call(url: str, nsid: str, acct: dict[str, str], body: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/xrpc/{nsid}",
        json=body,
        headers={"authorization": f"Bearer {acct['access']}"},
        timeout=30,
    )


def _put(url: str, acct: dict[str, str], rkey: str, record: dict[str, Any]) -> str:
    r = _call(
        url,
        "com.atproto.repo.putRecord",
        acct,
        {"repo": acct["did"], "collection": "app.bsky.feed.post", "rkey": rkey, "record": record},
    )
    assert r.status_code == 200, r.text
    cid: str = r.json()["cid"]
    return cid


def _get(url: str, acct: dict[str, str], rkey: str) -> httpx.Response:
    return httpx.get(
        f"{url}/xrpc/com.atproto.repo.getRecord",
        params={"repo": acct["did"], "collection": "app.bsky.feed.post", "rkey": rkey},
    )


def _verified_records(url: str, did: str) -> dict[str, Any]:
    car = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": did}).content
    return dict(import_car(car, did=did).records)


@BACKENDS
def test_deleting_one_of_two_identical_records_keeps_the_other(network: Network, i: int) -> None:
    url = network.on_backend(i)
    acct = network.new_account(i, prefix="same")
    assert _put(url, acct, "3aaaaaaaaaaaa", SAME) == _put(url, acct, "3aaaaaaaaaaab", SAME)
    r = _call(
        url,
        "com.atproto.repo.deleteRecord",
        acct,
        {"repo": acct["did"], "collection": "app.bsky.feed.post", "rkey": "3aaaaaaaaaaaa"},
    )
    assert r.status_code == 200, r.text
    kept = _get(url, acct, "3aaaaaaaaaaab")
    assert kept.status_code == 200, kept.text
    assert kept.json()["value"]["text"] == "same"
    assert list(_verified_records(url, acct["did"])) == ["app.bsky.feed.post/3aaaaaaaaaaab"]


@BACKENDS
def test_changing_one_of_two_identical_records_keeps_the_other(network: Network, i: int) -> None:
    url = network.on_backend(i)
    acct = network.new_account(i, prefix="same")
    _put(url, acct, "3aaaaaaaaaaaa", SAME)
    _put(url, acct, "3aaaaaaaaaaab", SAME)
    _put(url, acct, "3aaaaaaaaaaaa", {**SAME, "text": "changed"})
    assert _get(url, acct, "3aaaaaaaaaaab").json()["value"]["text"] == "same"
    assert len(_verified_records(url, acct["did"])) == 2


@BACKENDS
def test_deleting_both_in_one_commit_drops_the_block(network: Network, i: int) -> None:
    url = network.on_backend(i)
    acct = network.new_account(i, prefix="same")
    _put(url, acct, "3aaaaaaaaaaaa", SAME)
    _put(url, acct, "3aaaaaaaaaaab", SAME)
    deletes = [
        {
            "$type": "com.atproto.repo.applyWrites#delete",
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
        }
        for rkey in ("3aaaaaaaaaaaa", "3aaaaaaaaaaab")
    ]
    r = _call(url, "com.atproto.repo.applyWrites", acct, {"repo": acct["did"], "writes": deletes})
    assert r.status_code == 200, r.text
    ctx = network.apps[i].state.pds
    blocks = ctx.store.count_blocks(acct["did"])
    assert _verified_records(url, acct["did"]) == {}
    car = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": acct["did"]}).content
    assert blocks == len(import_car(car, did=acct["did"]).blocks)  # nothing unreachable left


def test_an_import_of_the_wrong_type_is_refused_before_it_is_read(network: Network) -> None:
    acct = network.new_account(0, prefix="imp")
    total = 40_000_000
    sent, response = chunked_until_answered(
        network.pds[0],
        "com.atproto.repo.importRepo",
        total,
        {"content-type": "text/plain", "authorization": f"Bearer {acct['access']}"},
    )
    assert response.startswith(b"HTTP/1.1 400"), response[:300]
    assert sent < total // 2, "the server read the whole body before refusing it"

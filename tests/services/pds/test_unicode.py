"""Invalid Unicode is refused at the edge: a lone UTF-16 surrogate anywhere in a JSON
body is 400 ``InvalidRequest``, and nothing changes — no account, no DID in the
directory, no record, no app password, preferences still readable."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.services.pds.conftest import Network

BAD = "x\ud800y"  # a high surrogate with no low one after it
POST = "app.bsky.feed.post"

Body = Callable[[dict[str, str]], dict[str, Any]]


def _post_record(text: str) -> dict[str, Any]:
    return {"$type": POST, "text": text, "createdAt": "2026-01-01T00:00:00.000Z"}


CASES: dict[str, tuple[str, Body]] = {
    "createSession-identifier": (
        "com.atproto.server.createSession",
        lambda a: {"identifier": a["handle"] + BAD, "password": a["password"]},
    ),
    "createSession-password": (
        "com.atproto.server.createSession",
        lambda a: {"identifier": a["handle"], "password": a["password"] + BAD},
    ),
    "createAccount-handle": (
        "com.atproto.server.createAccount",
        lambda a: {"handle": "new" + BAD + ".test", "password": "a long password"},
    ),
    "createAccount-email": (
        "com.atproto.server.createAccount",
        lambda a: {"handle": "fresh1.test", "password": "a long password", "email": BAD + "@x"},
    ),
    "createAccount-password": (
        "com.atproto.server.createAccount",
        lambda a: {"handle": "fresh2.test", "password": "a long password" + BAD},
    ),
    "createAppPassword-name": (
        "com.atproto.server.createAppPassword",
        lambda a: {"name": "app" + BAD},
    ),
    "createRecord-repo": (
        "com.atproto.repo.createRecord",
        lambda a: {"repo": a["did"] + BAD, "collection": POST, "record": _post_record("hi")},
    ),
    "createRecord-rkey": (
        "com.atproto.repo.createRecord",
        lambda a: {
            "repo": a["did"],
            "collection": POST,
            "rkey": "k" + BAD,
            "record": _post_record("hi"),
        },
    ),
    "createRecord-text": (
        "com.atproto.repo.createRecord",
        lambda a: {"repo": a["did"], "collection": POST, "record": _post_record(BAD)},
    ),
    "createRecord-key": (
        "com.atproto.repo.createRecord",
        lambda a: {
            "repo": a["did"],
            "collection": POST,
            "record": {**_post_record("hi"), "note" + BAD: 1},
        },
    ),
    "applyWrites-rkey": (
        "com.atproto.repo.applyWrites",
        lambda a: {
            "repo": a["did"],
            "writes": [
                {
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": POST,
                    "rkey": "k" + BAD,
                    "value": _post_record("hi"),
                }
            ],
        },
    ),
    "applyWrites-text": (
        "com.atproto.repo.applyWrites",
        lambda a: {
            "repo": a["did"],
            "writes": [
                {
                    "$type": "com.atproto.repo.applyWrites#create",
                    "collection": POST,
                    "value": _post_record(BAD),
                }
            ],
        },
    ),
    "putPreferences-value": (
        "app.bsky.actor.putPreferences",
        lambda a: {"preferences": [{"$type": "app.bsky.actor.defs#interestsPref", "tags": [BAD]}]},
    ),
    "deleteAccount-did": (
        "com.atproto.server.deleteAccount",
        lambda a: {"did": a["did"] + BAD, "password": a["password"], "token": "AAAAA-BBBBB"},
    ),
    "deleteAccount-password": (
        "com.atproto.server.deleteAccount",
        lambda a: {"did": a["did"], "password": a["password"] + BAD, "token": "AAAAA-BBBBB"},
    ),
    "deleteAccount-token": (
        "com.atproto.server.deleteAccount",
        lambda a: {"did": a["did"], "password": a["password"], "token": "A" + BAD},
    ),
}


@pytest.fixture(scope="module")
def victim(network: Network) -> dict[str, str]:
    return network.new_account(0, prefix="uni")


def _auth(acct: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {acct['access']}"}


def _snapshot(network: Network, acct: dict[str, str]) -> dict[str, Any]:
    """Everything a refused call could have changed, read through the public API."""
    base = network.pds[0]
    prefs = httpx.get(f"{base}/xrpc/app.bsky.actor.getPreferences", headers=_auth(acct), timeout=30)
    assert prefs.status_code == 200, prefs.text
    head = httpx.get(
        f"{base}/xrpc/com.atproto.sync.getLatestCommit", params={"did": acct["did"]}, timeout=30
    )
    assert head.status_code == 200, head.text
    apps = httpx.get(
        f"{base}/xrpc/com.atproto.server.listAppPasswords", headers=_auth(acct), timeout=30
    )
    assert apps.status_code == 200, apps.text
    return {
        "directory": network.directory_seq(),
        "head": head.json(),
        "preferences": prefs.json(),
        "app passwords": apps.json(),
    }


@pytest.mark.parametrize("case", list(CASES))
def test_a_lone_surrogate_is_refused_and_changes_nothing(
    network: Network, victim: dict[str, str], case: str
) -> None:
    nsid, body = CASES[case]
    before = _snapshot(network, victim)
    raw = json.dumps(body(victim)).encode()  # ASCII JSON: the surrogate as \ud800
    assert b"\\ud800" in raw
    # createAccount reads a bearer token as a service token: it gets none.
    auth = {} if nsid.endswith("createAccount") else _auth(victim)
    r = httpx.post(
        f"{network.pds[0]}/xrpc/{nsid}",
        content=raw,
        headers={**auth, "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequest" and "Unicode" in r.json()["message"]
    assert _snapshot(network, victim) == before
    login = httpx.post(
        f"{network.pds[0]}/xrpc/com.atproto.server.createSession",
        json={"identifier": victim["handle"], "password": victim["password"]},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    for handle in ("fresh1.test", "fresh2.test"):
        missing = httpx.get(
            f"{network.directory}/xrpc/com.atproto.identity.resolveHandle",
            params={"handle": handle},
            timeout=30,
        )
        assert missing.status_code == 400, missing.text


def test_a_surrogate_pair_is_text_and_is_accepted(network: Network, victim: dict[str, str]) -> None:
    raw = json.dumps(
        {"repo": victim["did"], "collection": POST, "record": _post_record("smile \U0001f600")}
    ).encode()
    assert b"\\ud83d\\ude00" in raw
    r = httpx.post(
        f"{network.pds[0]}/xrpc/com.atproto.repo.createRecord",
        content=raw,
        headers={**_auth(victim), "Content-Type": "application/json"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    got = httpx.get(
        f"{network.pds[0]}/xrpc/com.atproto.repo.getRecord",
        params={"repo": victim["did"], "collection": POST, "rkey": r.json()["uri"].split("/")[-1]},
        timeout=30,
    )
    assert got.json()["value"]["text"] == "smile \U0001f600"


@pytest.mark.parametrize(
    "query",
    [
        "com.atproto.repo.describeRepo?repo=%ED%A0%80",
        "com.atproto.identity.resolveHandle?handle=a%ED%A0%80.test",
        "com.atproto.repo.getRecord?repo=%ED%A0%80&collection=%ED%A0%80&rkey=%ED%A0%80",
        "com.atproto.sync.getLatestCommit?did=did%3Aplc%3A%ED%A0%80",
    ],
)
def test_surrogate_bytes_in_query_parameters_are_a_client_error(
    network: Network, query: str
) -> None:
    # UTF-8-encoded surrogates are invalid UTF-8: they reach handlers as U+FFFD.
    r = httpx.get(f"{network.pds[0]}/xrpc/{query}", timeout=30)
    assert 400 <= r.status_code < 500, r.text

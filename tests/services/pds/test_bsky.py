"""Preferences: private to their account, with the personal details (birth date) kept
from app passwords, and bounded in shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.services.pds.conftest import Network

ADULT = {"$type": "app.bsky.actor.defs#adultContentPref", "enabled": False}
BIRTH = {
    "$type": "app.bsky.actor.defs#personalDetailsPref",
    "birthDate": "1990-01-01T00:00:00.000Z",
}
FEEDS = {"$type": "app.bsky.actor.defs#savedFeedsPrefV2", "items": []}


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _get(url: str, token: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{url}/xrpc/app.bsky.actor.getPreferences", headers=_auth(token))
    assert r.status_code == 200, r.text
    prefs: list[dict[str, Any]] = r.json()["preferences"]
    return prefs


def _put(url: str, token: str, prefs: list[Any]) -> httpx.Response:
    return httpx.post(
        f"{url}/xrpc/app.bsky.actor.putPreferences",
        json={"preferences": prefs},
        headers=_auth(token),
    )


def _app_session(url: str, acct: dict[str, str], privileged: bool) -> str:
    made = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAppPassword",
        json={"name": f"app-{privileged}", "privileged": privileged},
        headers=_auth(acct["access"]),
    ).json()
    session = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["handle"], "password": made["password"]},
    ).json()
    token: str = session["accessJwt"]
    return token


@pytest.mark.parametrize("privileged", [False, True], ids=["app-password", "privileged"])
def test_app_passwords_neither_read_nor_write_personal_details(
    network: Network, privileged: bool
) -> None:
    url = network.pds[0]
    acct = network.new_account(0, prefix="pref")
    assert _put(url, acct["access"], [ADULT, BIRTH]).status_code == 200
    app = _app_session(url, acct, privileged)
    assert _get(url, app) == [ADULT]
    refused = _put(url, app, [BIRTH])
    assert refused.status_code == 400 and refused.json()["error"] == "InvalidRequest"
    assert _get(url, acct["access"]) == [ADULT, BIRTH]  # the refusal changed nothing
    assert _put(url, app, [FEEDS]).status_code == 200
    assert _get(url, acct["access"]) == [BIRTH, FEEDS]  # the birth date was kept


@pytest.mark.parametrize(
    "prefs",
    [["not an object"], [{"$type": "com.example.other"}], [{"no": "type"}]],
    ids=["not-an-object", "other-namespace", "no-type"],
)
def test_malformed_preferences_are_refused(network: Network, prefs: list[Any]) -> None:
    url = network.pds[0]
    acct = network.new_account(0, prefix="pref")
    r = _put(url, acct["access"], prefs)
    assert r.status_code == 400, r.text
    assert _get(url, acct["access"]) == []


def test_deeply_nested_preferences_are_refused(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0, prefix="pref")
    value: Any = "x"
    for _ in range(500):
        value = [value]
    r = _put(url, acct["access"], [{"$type": "app.bsky.actor.defs#mutedWordsPref", "items": value}])
    assert r.status_code == 400 and r.json()["error"] == "InvalidRequest", r.text
    assert _get(url, acct["access"]) == []

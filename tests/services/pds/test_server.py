"""``com.atproto.server.*`` inputs are validated and a refused call changes nothing;
session values keep their tokens out of logs."""

from __future__ import annotations

import httpx
import pytest

from plaza.services.pds.auth import SessionTokens
from tests.services.pds.conftest import Network


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    "params",
    [
        {"aud": "not a did"},
        {"aud": "did:web:example.com/../admin"},
        {"aud": "did:web:example.com", "lxm": "not an nsid"},
        {"aud": "did:web:example.com", "lxm": "com.example.*"},
    ],
    ids=["aud-not-a-did", "aud-with-path", "lxm-not-an-nsid", "lxm-wildcard"],
)
def test_service_auth_inputs_are_validated(network: Network, params: dict[str, str]) -> None:
    acct = network.new_account(0, prefix="sa")
    r = httpx.get(
        f"{network.pds[0]}/xrpc/com.atproto.server.getServiceAuth",
        params=params,
        headers=_auth(acct["access"]),
    )
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "InvalidRequest"


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01T00:00:00Z", "x" * 300])
def test_a_bad_delete_after_leaves_the_account_active(network: Network, value: str) -> None:
    url = network.pds[0]
    acct = network.new_account(0, prefix="da")
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.deactivateAccount",
        json={"deleteAfter": value},
        headers=_auth(acct["access"]),
    )
    assert r.status_code == 400, r.text
    status = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepoStatus", params={"did": acct["did"]})
    assert status.json()["active"] is True
    ok = httpx.post(
        f"{url}/xrpc/com.atproto.server.deactivateAccount",
        json={"deleteAfter": "2030-01-01T00:00:00.000Z"},
        headers=_auth(acct["access"]),
    )
    assert ok.status_code == 200, ok.text


def test_app_passwords_are_capped(network: Network) -> None:
    """Every failed login tries each app password's hash: their number is bounded."""
    from plaza.services.pds.accounts import MAX_APP_PASSWORDS

    url = network.pds[0]
    acct = network.new_account(0, prefix="ap")
    for n in range(MAX_APP_PASSWORDS):
        r = httpx.post(
            f"{url}/xrpc/com.atproto.server.createAppPassword",
            json={"name": f"p{n}"},
            headers=_auth(acct["access"]),
            timeout=30,
        )
        assert r.status_code == 200, r.text
    r = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAppPassword",
        json={"name": "one too many"},
        headers=_auth(acct["access"]),
    )
    assert r.status_code == 400, r.text
    listed = httpx.get(
        f"{url}/xrpc/com.atproto.server.listAppPasswords", headers=_auth(acct["access"])
    ).json()["passwords"]
    assert len(listed) == MAX_APP_PASSWORDS


def test_session_tokens_stay_out_of_reprs() -> None:
    tokens = SessionTokens("access.jwt.value", "refresh.jwt.value", "the-jti", 1)
    assert "jwt.value" not in repr(tokens) and "the-jti" not in repr(tokens)

"""Sessions, app passwords, service auth, identity methods, metering and /metrics."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from plaza.atproto.crypto import PrivateKey
from plaza.services.pds import jwt
from tests.services.pds.conftest import ADMIN_PASSWORD, Network


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def _payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    value: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return value


def test_access_token_shape_and_session_lifecycle(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0)
    claims = _payload(acct["access"])
    assert claims["sub"] == acct["did"] and claims["scope"] == "com.atproto.access"
    assert claims["exp"] > claims["iat"]
    me = httpx.get(f"{url}/xrpc/com.atproto.server.getSession", headers=_auth(acct["access"]))
    assert me.json()["handle"] == acct["handle"] and me.json()["active"] is True
    assert me.json()["didDoc"]["id"] == acct["did"]
    out = httpx.post(f"{url}/xrpc/com.atproto.server.deleteSession", headers=_auth(acct["refresh"]))
    assert out.status_code == 200
    again = httpx.post(
        f"{url}/xrpc/com.atproto.server.refreshSession", headers=_auth(acct["refresh"])
    )
    assert again.status_code == 400 and again.json()["error"] == "InvalidToken"


def test_app_passwords(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0)
    made = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAppPassword",
        json={"name": "phone"},
        headers=_auth(acct["access"]),
    ).json()
    assert len(made["password"]) == 19 and made["privileged"] is False
    session = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["handle"], "password": made["password"]},
    ).json()
    assert _payload(session["accessJwt"])["scope"] == "com.atproto.appPass"
    token = session["accessJwt"]
    post = httpx.post(
        f"{url}/xrpc/com.atproto.repo.createRecord",
        headers=_auth(token),
        json={
            "repo": acct["did"],
            "collection": "app.bsky.feed.post",
            "record": {
                "$type": "app.bsky.feed.post",
                "text": "via app password",
                "createdAt": "2026-01-01T00:00:00.000Z",
            },
        },
    )
    assert post.status_code == 200
    # An app password cannot mint app passwords or migration tokens.
    denied = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAppPassword", json={"name": "x"}, headers=_auth(token)
    )
    assert denied.status_code == 403
    denied = httpx.get(
        f"{url}/xrpc/com.atproto.server.getServiceAuth",
        headers=_auth(token),
        params={"aud": "did:web:example.com", "lxm": "com.atproto.server.createAccount"},
    )
    assert denied.status_code == 403
    listed = httpx.get(
        f"{url}/xrpc/com.atproto.server.listAppPasswords", headers=_auth(acct["access"])
    ).json()
    assert [p["name"] for p in listed["passwords"]] == ["phone"]
    httpx.post(
        f"{url}/xrpc/com.atproto.server.revokeAppPassword",
        json={"name": "phone"},
        headers=_auth(acct["access"]),
    )
    gone = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["handle"], "password": made["password"]},
    )
    assert gone.status_code == 401
    refresh = httpx.post(
        f"{url}/xrpc/com.atproto.server.refreshSession", headers=_auth(session["refreshJwt"])
    )
    assert refresh.status_code == 400


def test_service_auth_is_es256k_with_lxm_and_verifies(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0)
    resp = httpx.get(
        f"{url}/xrpc/com.atproto.server.getServiceAuth",
        headers=_auth(acct["access"]),
        params={"aud": "did:web:appview.test", "lxm": "app.bsky.feed.getTimeline"},
    )
    token = resp.json()["token"]
    parsed = jwt.parse(token)
    assert parsed.header["alg"] == "ES256K"
    assert (
        parsed.payload["iss"] == acct["did"]
        and parsed.payload["lxm"] == "app.bsky.feed.getTimeline"
    )
    data = httpx.get(f"{network.directory}/{acct['did']}/data").json()
    from plaza.atproto.crypto import parse_did_key

    key = parse_did_key(data["verificationMethods"]["atproto"])
    payload = jwt.verify_service_jwt(
        parsed,
        key,
        aud="did:web:appview.test",
        lxm="app.bsky.feed.getTimeline",
        now=parsed.payload["iat"],
    )
    assert payload["aud"] == "did:web:appview.test"
    with pytest.raises(jwt.InvalidTokenError):
        jwt.verify_service_jwt(
            parsed, key, aud="did:web:appview.test", lxm="other.method", now=parsed.payload["iat"]
        )
    with pytest.raises(jwt.InvalidTokenError):
        jwt.verify_service_jwt(
            parsed,
            PrivateKey.generate().public_key,
            aud="did:web:appview.test",
            lxm=None,
            now=parsed.payload["iat"],
        )
    too_long = httpx.get(
        f"{url}/xrpc/com.atproto.server.getServiceAuth",
        headers=_auth(acct["access"]),
        params={"aud": "did:web:a.test", "exp": str(10**10)},
    )
    assert too_long.status_code == 400 and too_long.json()["error"] == "BadExpiration"
    # createAccount with an existing DID refuses a token for another method.
    create = httpx.post(
        f"{network.pds[1]}/xrpc/com.atproto.server.createAccount",
        headers=_auth(token),
        json={"did": acct["did"], "handle": acct["handle"], "password": "whatever-long"},
    )
    assert create.status_code == 400 and create.json()["error"] == "InvalidToken"


def test_recovery_key_goes_first_and_handles(network: Network) -> None:
    url = network.pds[1]
    recovery = PrivateKey.generate()
    resp = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={
            "handle": "keeper.test",
            "password": "a long password",
            "recoveryKey": recovery.did_key(),
        },
    )
    assert resp.status_code == 200, resp.text
    did = resp.json()["did"]
    data = httpx.get(f"{network.directory}/{did}/data").json()
    assert data["rotationKeys"][0] == recovery.did_key() and len(data["rotationKeys"]) == 2
    assert data["services"]["atproto_pds"]["endpoint"] == url
    assert data["alsoKnownAs"] == ["at://keeper.test"]
    got = httpx.get(
        f"{url}/xrpc/com.atproto.identity.resolveHandle", params={"handle": "keeper.test"}
    ).json()
    assert got == {"did": did}
    taken = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={"handle": "keeper.test", "password": "a long password"},
    )
    assert taken.status_code == 400 and taken.json()["error"] == "HandleNotAvailable"
    bad = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAccount",
        json={"handle": "keeper.example.com", "password": "a long password"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "InvalidHandle"
    token = resp.json()["accessJwt"]
    moved = httpx.post(
        f"{url}/xrpc/com.atproto.identity.updateHandle",
        json={"handle": "keeper2.test"},
        headers=_auth(token),
    )
    assert moved.status_code == 200, moved.text
    data = httpx.get(f"{network.directory}/{did}/data").json()
    assert data["alsoKnownAs"] == ["at://keeper2.test"]
    assert data["rotationKeys"][0] == recovery.did_key()


def test_usage_is_metered_per_account(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0)
    for i in range(3):
        httpx.post(
            f"{url}/xrpc/com.atproto.repo.createRecord",
            headers=_auth(acct["access"]),
            json={
                "repo": acct["did"],
                "collection": "app.bsky.feed.post",
                "record": {
                    "$type": "app.bsky.feed.post",
                    "text": f"n{i}",
                    "createdAt": "2026-01-01T00:00:00.000Z",
                },
            },
        )
    car = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepo", params={"did": acct["did"]})
    httpx.post(
        f"{url}/xrpc/com.atproto.repo.uploadBlob",
        content=b"abc" * 100,
        headers={**_auth(acct["access"]), "content-type": "text/plain"},
    )
    basic = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
    denied = httpx.get(f"{url}/xrpc/social.plaza.provider.getUsage", params={"did": acct["did"]})
    assert denied.status_code == 401
    denied = httpx.get(
        f"{url}/xrpc/social.plaza.provider.getUsage",
        params={"did": acct["did"]},
        headers=_auth(acct["access"]),
    )
    assert denied.status_code == 401
    usage = httpx.get(
        f"{url}/xrpc/social.plaza.provider.getUsage",
        params={"did": acct["did"]},
        headers={"authorization": f"Basic {basic}"},
    ).json()
    (row,) = usage["accounts"]
    assert row["did"] == acct["did"] and row["records"] == 3
    assert row["blobBytes"] == 300
    assert row["repoBytes"] > 0
    assert row["requests"] >= 6  # createAccount, 3 writes, getRepo, uploadBlob
    assert row["egressBytes"] >= len(car.content)
    from plaza.services.pds.lexicons import plaza_registry

    plaza_registry().validate_output("social.plaza.provider.getUsage", usage)
    text = httpx.get(f"{url}/metrics", headers={"authorization": f"Basic {basic}"}).text
    assert f'plaza_pds_account_records{{did="{acct["did"]}"}} 3.0' in text
    assert (
        'plaza_pds_xrpc_requests_total{method="com.atproto.repo.createRecord",status="200"}' in text
    )


def test_delete_account_with_emailed_token(network: Network) -> None:
    from plaza.services.pds.mail import read_token

    url = network.pds[0]
    acct = network.new_account(0, prefix="del")
    no_token = httpx.post(
        f"{url}/xrpc/com.atproto.server.deleteAccount",
        json={"did": acct["did"], "password": acct["password"], "token": "x"},
    )
    assert no_token.status_code == 400 and no_token.json()["error"] == "InvalidToken"
    sent = httpx.post(
        f"{url}/xrpc/com.atproto.server.requestAccountDelete", headers=_auth(acct["access"])
    )
    assert sent.status_code == 200
    token = read_token(network.mail_dir(0), acct["did"], "delete_account")
    assert token
    wrong_pw = httpx.post(
        f"{url}/xrpc/com.atproto.server.deleteAccount",
        json={"did": acct["did"], "password": "nope-nope", "token": token},
    )
    assert wrong_pw.status_code == 401
    gone = httpx.post(
        f"{url}/xrpc/com.atproto.server.deleteAccount",
        json={"did": acct["did"], "password": acct["password"], "token": token},
    )
    assert gone.status_code == 200, gone.text
    status = httpx.get(f"{url}/xrpc/com.atproto.sync.getRepoStatus", params={"did": acct["did"]})
    assert status.status_code == 400 and status.json()["error"] == "RepoNotFound"
    stale = httpx.get(f"{url}/xrpc/com.atproto.server.getSession", headers=_auth(acct["access"]))
    assert stale.status_code == 400 and stale.json()["error"] == "InvalidToken"


def test_failed_logins_back_off(network: Network) -> None:
    url = network.pds[1]
    acct = network.new_account(1, prefix="rl")
    codes = [
        httpx.post(
            f"{url}/xrpc/com.atproto.server.createSession",
            json={"identifier": acct["handle"], "password": "wrong password"},
        ).status_code
        for _ in range(6)
    ]
    # Five free tries (the default), then this address waits a second for this account.
    assert codes == [401] * 5 + [429]
    # Per account: another account still logs in from the same address.
    other = network.new_account(1, prefix="rl")
    ok = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": other["handle"], "password": other["password"]},
    )
    assert ok.status_code == 200


def test_app_bsky_reads_are_proxied_to_the_app_view(network: Network) -> None:
    # pds1 is configured with pds2 as its app view (see conftest).
    remote = network.new_account(1, prefix="far")
    local = network.new_account(0, prefix="near")
    got = httpx.get(
        f"{network.pds[0]}/xrpc/app.bsky.actor.getProfile",
        params={"actor": remote["did"]},
        headers=_auth(local["access"]),
    )
    assert got.status_code == 200, got.text
    assert got.json()["handle"] == remote["handle"]
    appview_did = "did:web:" + network.pds[1].split("//", 1)[1].replace(":", "%3A")
    named = httpx.get(
        f"{network.pds[0]}/xrpc/app.bsky.actor.getProfiles",
        params={"actors": remote["did"]},
        headers={**_auth(local["access"]), "atproto-proxy": f"{appview_did}#bsky_appview"},
    )
    assert named.status_code == 200, named.text
    assert [p["did"] for p in named.json()["profiles"]] == [remote["did"]]
    forwarded = httpx.get(
        f"{network.pds[0]}/xrpc/app.bsky.feed.getTimeline", headers=_auth(local["access"])
    )
    # The app view (pds2) has no timeline and says so; the proxy passes its answer on.
    assert forwarded.status_code == 501
    assert forwarded.json()["error"] == "MethodNotImplemented"
    bad = httpx.get(
        f"{network.pds[0]}/xrpc/app.bsky.feed.getTimeline",
        headers={**_auth(local["access"]), "atproto-proxy": "not-a-did"},
    )
    assert bad.status_code == 400

"""Identity methods and the directory client: a refused call keeps its confirmation
token, app passwords cannot submit PLC operations, and a DID is checked before it
becomes part of a URL."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from plaza.services.pds.errors import InvalidRequestError
from plaza.services.pds.identity import DirectoryClient
from plaza.services.pds.mail import read_token
from tests.services.pds.conftest import Network


def _auth(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_refused_sign_request_keeps_the_token(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0, prefix="plc")
    r = httpx.post(
        f"{url}/xrpc/com.atproto.identity.requestPlcOperationSignature",
        headers=_auth(acct["access"]),
    )
    assert r.status_code == 200, r.text
    token = read_token(network.mail_dir(0), acct["did"], "plc_operation")
    assert token is not None
    for bad in (
        {"services": {"atproto_pds": "not an object"}},
        {"rotationKeys": "not a list"},
        {"verificationMethods": {"atproto": 5}},
    ):
        refused = httpx.post(
            f"{url}/xrpc/com.atproto.identity.signPlcOperation",
            json={"token": token, **bad},
            headers=_auth(acct["access"]),
        )
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "InvalidRequest"
    signed = httpx.post(
        f"{url}/xrpc/com.atproto.identity.signPlcOperation",
        json={"token": token, "alsoKnownAs": [f"at://{acct['handle']}"]},
        headers=_auth(acct["access"]),
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["operation"]["alsoKnownAs"] == [f"at://{acct['handle']}"]


def test_app_passwords_cannot_submit_plc_operations(network: Network) -> None:
    url = network.pds[0]
    acct = network.new_account(0, prefix="plc")
    made = httpx.post(
        f"{url}/xrpc/com.atproto.server.createAppPassword",
        json={"name": "phone"},
        headers=_auth(acct["access"]),
    ).json()
    session = httpx.post(
        f"{url}/xrpc/com.atproto.server.createSession",
        json={"identifier": acct["handle"], "password": made["password"]},
    ).json()
    r = httpx.post(
        f"{url}/xrpc/com.atproto.identity.submitPlcOperation",
        json={"operation": {"type": "plc_operation"}},
        headers=_auth(session["accessJwt"]),
    )
    assert r.status_code == 403 and r.json()["error"] == "Forbidden", r.text


@pytest.mark.parametrize(
    "did",
    ["did:plc:abc/../../export", "did:plc:aaaaaaaaaaaaaaaaaaaaaaaa?x=1", "did:web:example.com"],
    ids=["path", "query", "not-plc"],
)
def test_the_directory_client_checks_a_did_before_asking(did: str) -> None:
    """Nothing listens on port 1: a request would be an UpstreamError, not this."""

    async def ask() -> None:
        async with httpx.AsyncClient() as http:
            client = DirectoryClient("http://127.0.0.1:1", http)
            for call in (client.data, client.document, client.last_operation, client.signing_key):
                with pytest.raises(InvalidRequestError):
                    await call(did)

    asyncio.run(ask())


def test_the_directory_clients_caches_are_bounded(network: Network) -> None:
    """Any DID can be named by a service token or a proxy header: what is remembered of
    them is bounded."""
    dids = [network.new_account(0, prefix="cache")["did"] for _ in range(4)]

    async def resolve() -> DirectoryClient:
        async with httpx.AsyncClient() as http:
            client = DirectoryClient(network.directory, http, max_entries=2)
            for did in dids:
                assert (await client.data(did)).did == did
                assert (await client.document(did) or {}).get("id") == did
            return client

    client = asyncio.run(resolve())
    assert len(client._cache) <= 2 and len(client._docs) <= 2

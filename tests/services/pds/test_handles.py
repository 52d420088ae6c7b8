"""One handle authority for the network: two real PDSs and the real directory.

A handle of the network's domains names one DID, whichever PDS is asked, and only when
both directions agree (handle → DID at the directory, DID → handle in its document).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import httpx
import pytest

from plaza.atproto.crypto import ES256K, PrivateKey
from plaza.atproto.plc import create_update, parse_operation
from plaza.errors import PlazaError
from plaza.services.pds import PdsSettings
from plaza.services.pds.components import open_components
from tests.services.pds.conftest import Network

RESOLVE = "/xrpc/com.atproto.identity.resolveHandle"


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _resolve(base: str, handle: str) -> httpx.Response:
    return httpx.get(base + RESOLVE, params={"handle": handle}, timeout=30)


def _resolved_everywhere(network: Network, handle: str) -> set[Any]:
    """What the directory and both PDSs answer for ``handle`` (a DID, or the error)."""
    answers = set()
    for base in (network.directory, *network.pds):
        r = _resolve(base, handle)
        answers.add(r.json()["did"] if r.status_code == 200 else (r.status_code, r.json()["error"]))
    return answers


def _describe(network: Network, i: int, did: str) -> dict[str, Any]:
    r = httpx.get(
        f"{network.pds[i]}/xrpc/com.atproto.repo.describeRepo", params={"repo": did}, timeout=30
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_a_handle_taken_on_one_pds_cannot_be_created_on_the_other(network: Network) -> None:
    alice = network.new_account(0, prefix="alice")
    seq = network.directory_seq()
    for handle in (alice["handle"], alice["handle"].upper()):
        r = httpx.post(
            f"{network.pds[1]}/xrpc/com.atproto.server.createAccount",
            json={"handle": handle, "password": "another long password"},
            timeout=30,
        )
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "HandleNotAvailable", r.text
    assert network.directory_seq() == seq  # nothing registered
    login = httpx.post(
        f"{network.pds[1]}/xrpc/com.atproto.server.createSession",
        json={"identifier": alice["handle"], "password": "another long password"},
        timeout=30,
    )
    assert login.status_code == 401  # and no account on the second PDS
    assert _resolved_everywhere(network, alice["handle"]) == {alice["did"]}
    assert _describe(network, 0, alice["did"])["handleIsCorrect"] is True


def test_update_handle_cannot_take_a_handle_held_on_the_other_pds(network: Network) -> None:
    alice, bob = network.new_account(0, prefix="alice"), network.new_account(1, prefix="bob")
    seq = network.directory_seq()
    r = httpx.post(
        f"{network.pds[1]}/xrpc/com.atproto.identity.updateHandle",
        json={"handle": alice["handle"]},
        headers=_auth(bob["access"]),
        timeout=30,
    )
    assert r.status_code == 400 and r.json()["error"] == "HandleNotAvailable", r.text
    assert network.directory_seq() == seq
    assert _resolved_everywhere(network, alice["handle"]) == {alice["did"]}
    assert _resolved_everywhere(network, bob["handle"]) == {bob["did"]}
    assert _describe(network, 1, bob["did"])["handle"] == bob["handle"]


def test_a_released_handle_moves_and_every_pds_agrees(network: Network) -> None:
    alice, bob = network.new_account(0, prefix="alice"), network.new_account(1, prefix="bob")
    old, new = alice["handle"], f"moved{secrets.token_hex(4)}.test"
    r = httpx.post(
        f"{network.pds[0]}/xrpc/com.atproto.identity.updateHandle",
        json={"handle": new},
        headers=_auth(alice["access"]),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert _resolved_everywhere(network, new) == {alice["did"]}
    assert _resolved_everywhere(network, old) == {(400, "HandleNotFound")}
    r = httpx.post(
        f"{network.pds[1]}/xrpc/com.atproto.identity.updateHandle",
        json={"handle": old},
        headers=_auth(bob["access"]),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert _resolved_everywhere(network, old) == {bob["did"]}
    assert _describe(network, 1, bob["did"])["handleIsCorrect"] is True
    assert _describe(network, 0, alice["did"])["handleIsCorrect"] is True


def test_a_handle_the_did_document_no_longer_names_is_not_correct(network: Network) -> None:
    # The member holds a recovery key and moves their DID's handle behind the PDS's back:
    # the PDS's record of the handle now points one way only.
    recovery = PrivateKey.generate(ES256K)
    handle = f"carol{secrets.token_hex(4)}.test"
    r = httpx.post(
        f"{network.pds[0]}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "a long password", "recoveryKey": recovery.did_key()},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    did = r.json()["did"]
    assert _describe(network, 0, did)["handleIsCorrect"] is True
    last = httpx.get(f"{network.directory}/{did}/log/last", timeout=30).json()
    elsewhere = f"elsewhere{secrets.token_hex(4)}.test"
    op = create_update(parse_operation(last), recovery, handle=elsewhere)
    assert httpx.post(f"{network.directory}/{did}", json=op.to_json(), timeout=30).is_success
    network.apps[0].state.pds.identity.forget(did)  # the PDS caches DID state for a minute
    view = _describe(network, 0, did)
    assert view["handle"] == handle and view["handleIsCorrect"] is False
    assert _resolved_everywhere(network, handle) == {(400, "HandleNotFound")}


def test_a_sign_up_that_fails_to_store_tombstones_its_did(network: Network, tmp_path: Any) -> None:
    """Nothing stays registered: the store refuses the account after the directory
    accepted its genesis, and the PDS takes the registration back."""
    parts = open_components(
        PdsSettings(
            data_dir=tmp_path,
            public_url="http://127.0.0.1:9",
            directory_url=network.directory,
        )
    )
    parts.store.db.execute(
        "CREATE TRIGGER refuse BEFORE INSERT ON pds_account "
        "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
    )
    handle = f"dora{secrets.token_hex(4)}.test"
    seq = network.directory_seq()

    async def sign_up() -> None:
        try:
            await parts.accounts.create(
                handle=handle,
                email=None,
                password="a long password",
                did=None,
                recovery_key=None,
                service_creds=None,
            )
        finally:
            await parts.aclose()

    with pytest.raises(PlazaError):
        asyncio.run(sign_up())
    ops = network.directory_ops_after(seq)
    assert [op["operation"]["type"] for op in ops] == ["plc_operation", "plc_tombstone"]
    assert len({op["did"] for op in ops}) == 1
    assert httpx.get(f"{network.directory}/{ops[0]['did']}", timeout=30).status_code == 404
    assert _resolved_everywhere(network, handle) == {(400, "HandleNotFound")}
    fresh = httpx.post(
        f"{network.pds[1]}/xrpc/com.atproto.server.createAccount",
        json={"handle": handle, "password": "a long password"},
        timeout=30,
    )
    assert fresh.status_code == 200, fresh.text  # the handle was released

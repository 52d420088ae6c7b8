"""Offline identity proofs: a did:plc's active chain proves which keys its document lists."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

import pytest

from plaza.atproto.crypto import ES256, ES256K, PrivateKey
from plaza.atproto.plc import (
    PlcOperation,
    create_genesis,
    create_tombstone,
    create_update,
    sign_operation,
    validate_audit_log,
)
from plaza.atproto.plc.proof import (
    MAX_CHAIN,
    PLAZA_KEY,
    PlcProofError,
    chain_from_value,
    proof_value,
    supersedes,
    verify_chain,
)
from tests.vectors import vector_path


def _key(name: str, alg: str = ES256K) -> PrivateKey:
    return PrivateKey.from_bytes(alg, hashlib.sha256(name.encode()).digest())  # type: ignore[arg-type]


RECOVERY = _key("proof-recovery")
PDS = _key("proof-pds", ES256)
MEMBER = _key("proof-member")
THIEF = _key("proof-thief")


def _genesis() -> tuple[str, PlcOperation]:
    return create_genesis(
        key=PDS,
        rotation_keys=[RECOVERY.did_key(), PDS.did_key()],
        signing_key=_key("proof-repo").did_key(),
        handle="alice.test",
        pds_endpoint="https://pds.example",
    )


def _listing(prev: PlcOperation, key: PrivateKey, signer: PrivateKey) -> PlcOperation:
    methods = {**prev.verification_methods, PLAZA_KEY: key.did_key()}
    return create_update(prev, signer, verification_methods=methods)


def test_a_chain_proves_the_keys_its_head_lists() -> None:
    did, g = _genesis()
    u = _listing(g, MEMBER, RECOVERY)
    proof = verify_chain(did, [g.to_json(), u.to_json()])
    assert proof.listed(MEMBER.did_key()) == PLAZA_KEY
    assert proof.listed(_key("proof-repo").did_key()) == "atproto"
    assert proof.listed(THIEF.did_key()) is None
    assert proof.signers == (1, 0)  # genesis by the PDS key, the update by the recovery key
    assert chain_from_value(did, proof_value([g, u])) == proof


@pytest.mark.parametrize(
    "name",
    ["other-did", "no-genesis", "gap", "wrong-signer", "tombstone", "forged-sig", "not-a-list"],
)
def test_a_chain_that_does_not_prove_is_refused(name: str) -> None:
    did, g = _genesis()
    u = _listing(g, MEMBER, RECOVERY)
    ops: Any = [g, u]
    target = did
    if name == "other-did":
        target = "did:plc:" + "a" * 24
    elif name == "no-genesis":
        ops = [u]
    elif name == "gap":
        ops = [g, _listing(u, THIEF, RECOVERY)]
    elif name == "wrong-signer":
        # THIEF is no rotation key of the genesis: a stranger cannot extend the chain.
        ops = [g, sign_operation(replace(u, sig=None), THIEF)]
    elif name == "tombstone":
        ops = [g, u, create_tombstone(u, RECOVERY)]
    elif name == "forged-sig":
        raw = u.to_json()
        raw["verificationMethods"] = {PLAZA_KEY: THIEF.did_key()}
        ops = [g.to_json(), raw]
    elif name == "not-a-list":
        ops = "not a list"
    with pytest.raises(PlcProofError):
        verify_chain(target, ops)


def test_chain_length_is_bounded() -> None:
    did, g = _genesis()
    ops: list[PlcOperation] = [g]
    for _ in range(MAX_CHAIN):
        ops.append(_listing(ops[-1], MEMBER, PDS))
    with pytest.raises(PlcProofError, match="at most"):
        verify_chain(did, ops)
    assert verify_chain(did, ops[:MAX_CHAIN]).head_cid


def test_malformed_values_are_proof_errors() -> None:
    did, _ = _genesis()
    for value in (None, [], {"plc": "x"}, {"plc": [1]}, {"plc": [{}]}, {"other": []}):
        with pytest.raises(PlcProofError):
            chain_from_value(did, value)


def test_newer_proofs_supersede_older_ones() -> None:
    did, g = _genesis()
    thief = _listing(g, THIEF, PDS)  # the (compromised) PDS key lists a thief's key
    recovered = _listing(g, MEMBER, RECOVERY)  # the member's recovery key forks it away
    old = verify_chain(did, [g, thief])
    new = verify_chain(did, [g, recovered])
    assert supersedes(new, old)
    assert not supersedes(old, new)  # the lower-priority branch cannot win back
    extended = verify_chain(did, [g, recovered, _listing(recovered, _key("k2"), RECOVERY)])
    assert supersedes(extended, new)
    assert not supersedes(new, extended)  # a stale prefix is not newer
    assert not supersedes(new, new)


def _valid_logs() -> list[Any]:
    files = sorted(vector_path("plc-interop", "audit_log", "valid").glob("*.json"))
    return [pytest.param(f, id=f.stem.removeprefix("log_")) for f in files]


@pytest.mark.parametrize("path", _valid_logs())
def test_every_valid_interop_log_yields_a_proof_of_its_head(path: Any) -> None:
    entries = json.loads(path.read_text())
    did = entries[0]["did"]
    state = validate_audit_log(did, entries)
    head = state.head
    assert head is not None
    chain = [e.operation for e in state.active]
    if state.tombstoned:
        with pytest.raises(PlcProofError, match="tombstone"):
            verify_chain(did, chain)
        return
    proof = verify_chain(did, [op.to_json() for op in chain])
    assert proof.head_cid == head.cid

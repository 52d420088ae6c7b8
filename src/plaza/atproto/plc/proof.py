"""Offline proof that a did:plc lists a key: the DID's own chain of signed operations.

A did:plc is self-certifying. Its genesis operation hashes to the DID, and every later
operation names its predecessor's CID as ``prev`` and is signed by one of the
predecessor's rotation keys. So the *active chain* (genesis first, each operation naming
the one before it, as ``GET /{did}/log`` lists it) proves, to anyone, without asking a
directory, that the DID's controller published the head operation, and with it the
head's ``verificationMethods``. Nobody without one of the DID's rotation keys can make
such a chain, so it is a proof that a key belongs to the DID when the head lists the key
under ``#plaza`` (a key the member keeps for Plaza) or ``#atproto`` (the repository key).

What the chain cannot show offline is that it is *current*: the directory's
``createdAt`` stamps are not signed, so a stale chain (the controller has since removed
the key) verifies just as well. Two rules bound that:

- :func:`supersedes` orders two proofs of one DID by the DID's own history: a chain
  that extends another is newer, and at a fork the branch whose first operation was
  signed by a higher-priority rotation key wins (PLC's recovery rule, without the
  72-hour window, which only the directory's clock can check). A holder of a key the
  controller later replaced is therefore overruled by the controller's newer proof.
- at the edge, where a directory is at hand, the caller checks that the chain's head is
  the directory's current head (see ``plaza.services.directory.client``).

Everything here is pure: values in, :class:`ChainProof` or a :class:`PlcProofError` out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto.errors import PlcError
from plaza.atproto.plc.operations import (
    ATPROTO_KEY,
    LegacyCreate,
    Operation,
    PlcOperation,
    PlcTombstone,
    authority_keys,
    did_for_genesis,
    is_did_plc,
    normalize,
    operation_cid,
    parse_operation,
    verify_operation_signature,
)

PLAZA_KEY: Final = "plaza"
"""The verification-method id under which a DID lists the key it signs Plaza events with."""

BINDABLE_KEYS: Final = (PLAZA_KEY, ATPROTO_KEY)
"""Verification methods that may bind a key to the DID, in order of preference."""

MAX_CHAIN: Final = 32
"""Longest chain accepted (each operation is at most 7,500 bytes of DAG-CBOR)."""

_OPERATION_TYPES: Final = (PlcOperation, PlcTombstone, LegacyCreate)


class PlcProofError(PlcError):
    """A chain of operations does not prove what it is offered for."""

    code = "InvalidIdentityProof"
    status = 400


@dataclass(frozen=True)
class ChainProof:
    """A verified active chain of ``did``: its operation CIDs, the index of the rotation
    key that signed each operation (among its predecessor's keys; for the genesis,
    among its own), and the head's state."""

    did: str
    cids: tuple[str, ...]
    signers: tuple[int, ...]
    head: PlcOperation

    @property
    def head_cid(self) -> str:
        return self.cids[-1]

    def listed(self, key: str) -> str | None:
        """The id (``plaza`` or ``atproto``) under which the head lists ``key``, if any."""
        methods = self.head.verification_methods
        for name in BINDABLE_KEYS:
            if methods.get(name) == key:
                return name
        return None


def verify_chain(did: str, ops: Sequence[Operation | Mapping[str, Any]]) -> ChainProof:
    """Check that ``ops`` is ``did``'s active chain from its genesis to a live head.

    Each item is an :class:`Operation` or its JSON form. Raises :class:`PlcProofError`
    (or the :class:`PlcError` subclass of the broken operation rule) naming the first
    operation that does not fit.
    """
    if not is_did_plc(did):
        raise PlcProofError(f"not a did:plc identifier: {str(did)[:80]!r}")
    if not isinstance(ops, Sequence) or isinstance(ops, str | bytes) or not ops:
        raise PlcProofError(f"a proof for {did} is a non-empty list of its operations")
    if len(ops) > MAX_CHAIN:
        raise PlcProofError(f"a proof holds at most {MAX_CHAIN} operations, not {len(ops)}")
    parsed: list[Operation] = []
    for i, raw in enumerate(ops):
        try:
            parsed.append(raw if isinstance(raw, _OPERATION_TYPES) else parse_operation(raw))
        except PlcError as exc:
            raise PlcProofError(f"operation {i} of the proof: {exc.message}") from exc
    genesis = parsed[0]
    if not genesis.is_genesis:
        raise PlcProofError("the proof must start with the DID's genesis operation")
    if did_for_genesis(genesis) != did:
        raise PlcProofError(f"the proof's genesis operation defines another DID, not {did}")
    cids = [str(operation_cid(genesis))]
    signers = [_signed_by(genesis, authority_keys(genesis), 0)]
    for i in range(1, len(parsed)):
        op, prev = parsed[i], parsed[i - 1]
        if op.prev != cids[-1]:
            raise PlcProofError(f"operation {i} of the proof does not follow operation {i - 1}")
        signers.append(_signed_by(op, authority_keys(prev), i))
        cids.append(str(operation_cid(op)))
    head = parsed[-1]
    if isinstance(head, PlcTombstone):
        raise PlcProofError(f"{did} is deactivated: its last operation is a tombstone")
    assert isinstance(head, PlcOperation | LegacyCreate)
    return ChainProof(did, tuple(cids), tuple(signers), normalize(head))


def _signed_by(op: Operation, keys: Sequence[str], i: int) -> int:
    # A tombstone before the end grants no keys, so the operation after it fails here.
    try:
        return verify_operation_signature(op, keys)
    except PlcError as exc:
        raise PlcProofError(f"operation {i} of the proof: {exc.message}") from exc


def supersedes(new: ChainProof, old: ChainProof) -> bool:
    """True when ``new`` is a later state of the same DID than ``old``.

    ``new`` extends ``old`` (``old``'s chain is a proper prefix of it), or the two fork
    and ``new``'s first operation after the fork was signed by a rotation key listed
    before the one that signed ``old``'s (a recovery). Equal chains, a prefix of ``old``,
    or a fork won by ``old`` are not newer.
    """
    if new.did != old.did:
        return False
    for i, (a, b) in enumerate(zip(new.cids, old.cids, strict=False)):
        if a != b:
            return new.signers[i] < old.signers[i]
    return len(new.cids) > len(old.cids)


def proof_value(ops: Sequence[Operation]) -> dict[str, Any]:
    """The data-model form of a proof as ledger events carry it: ``{"plc": [op, ...]}``."""
    return {"plc": [op.to_json() for op in ops]}


def chain_from_value(did: str, value: Any) -> ChainProof:
    """Verify a proof in its data-model form (see :func:`proof_value`)."""
    if not isinstance(value, Mapping) or set(value) != {"plc"}:
        raise PlcProofError('an identity proof is {"plc": [operations, genesis first]}')
    ops = value["plc"]
    if not isinstance(ops, list):
        raise PlcProofError("an identity proof's plc field is a list of operations")
    return verify_chain(did, ops)


__all__ = [
    "BINDABLE_KEYS",
    "MAX_CHAIN",
    "PLAZA_KEY",
    "ChainProof",
    "PlcProofError",
    "chain_from_value",
    "proof_value",
    "supersedes",
    "verify_chain",
]

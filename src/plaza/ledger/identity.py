"""Binding a DID to the key that signs ledger events for it, with proof from the DID.

A ``did:key`` names its own key and needs nothing. A ``did:plc`` signs with a key only
when the DID's own document lists that key, under ``#plaza`` (a key kept for Plaza) or
``#atproto`` (the repository key): the binding carries the DID's active chain of signed
PLC operations (:mod:`plaza.atproto.plc.proof`), which anyone can re-check offline, so
a replayed ledger proves every binding again. Whoever does not hold one of the DID's
rotation keys cannot make such a chain, so nobody can claim somebody else's DID.

Other DID methods (``did:web``) cannot be bound: their documents are not self-certifying
and could not be checked again on replay.
"""

from __future__ import annotations

from typing import Any

from plaza.atproto.crypto import DID_KEY_PREFIX
from plaza.atproto.plc.operations import is_did_plc
from plaza.atproto.plc.proof import BINDABLE_KEYS, ChainProof, PlcProofError, chain_from_value


def prove_binding(did: str, key: str, proof: Any) -> ChainProof | None:
    """Check that ``key`` (a ``did:key``) may sign for ``did``; return the verified chain
    (``None`` for a ``did:key`` signing for itself).

    Raises :class:`~plaza.atproto.plc.proof.PlcProofError` when the proof is missing,
    malformed, for another DID, or does not list ``key``.
    """
    if not key.startswith(DID_KEY_PREFIX):
        raise PlcProofError(f"a binding names a did:key, not {key[:80]!r}")
    if did == key:
        if proof is not None:
            raise PlcProofError("a did:key names its own key: it takes no proof")
        return None
    if did.startswith(DID_KEY_PREFIX):
        raise PlcProofError("a did:key can only be bound to its own key")
    if not is_did_plc(did):
        raise PlcProofError(
            f"only did:plc identities can be bound to a key ({did[:80]!r} cannot be proven offline)"
        )
    if proof is None:
        raise PlcProofError(
            f"binding {did} needs a proof: its chain of PLC operations, whose head lists "
            f"{key} under #{' or #'.join(BINDABLE_KEYS)}"
        )
    chain = chain_from_value(did, proof)
    if chain.listed(key) is None:
        raise PlcProofError(
            f"the DID document of {did} does not list {key} under #{' or #'.join(BINDABLE_KEYS)}"
        )
    return chain

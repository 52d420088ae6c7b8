"""Signed checkpoints: a ledger key's signature over the Merkle root of a log prefix.

A checkpoint covers the range of events ``[0, size)`` and states the RFC 6962 root of
their hashes (see :mod:`plaza.ledger.merkle`) and the hash of event ``size - 1`` (the
head of the hash chain). The range between two checkpoints is tied together by a
consistency proof, so a replica holding checkpoint ``m`` checks that a newer checkpoint
``n`` extends the same history with about ``log2 n`` hashes, and checks that one event is
in the log with an inclusion proof of the same size, without reading the log.

The signed bytes are the DAG-CBOR map ``{type: "plaza.ledger.checkpoint", size, root,
head, time, signer}``; ``signer`` is the ``did:key`` of the signing key, so a checkpoint
verifies on its own. Whether that key is *the* ledger key is a question for whoever
published it (the DAO's legal record names it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.crypto import PrivateKey, verify_signature
from plaza.atproto.errors import AtprotoError
from plaza.ledger.errors import CheckpointError
from plaza.ledger.event import GENESIS_PREV, MAX_TIME

CHECKPOINT_TYPE: Final = "plaza.ledger.checkpoint"
_FIELDS: Final = frozenset({"size", "root", "head", "time", "signer", "sig"})


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """A signed statement that the first ``size`` events have Merkle root ``root``."""

    size: int
    root: bytes
    head: bytes
    time: int
    signer: str
    signature: bytes

    def signing_bytes(self) -> bytes:
        return cbor.encode(
            {
                "type": CHECKPOINT_TYPE,
                "size": self.size,
                "root": self.root,
                "head": self.head,
                "time": self.time,
                "signer": self.signer,
            }
        )

    def verify_signature(self) -> None:
        """Raise :class:`CheckpointError` unless ``signature`` verifies against ``signer``."""
        if not verify_signature(self.signer, self.signing_bytes(), self.signature):
            raise CheckpointError(f"checkpoint at size {self.size} has a bad signature")

    def to_map(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "root": self.root,
            "head": self.head,
            "time": self.time,
            "signer": self.signer,
            "sig": self.signature,
        }

    def encode(self) -> bytes:
        return cbor.encode(self.to_map())

    @classmethod
    def from_map(cls, value: Any) -> Checkpoint:
        """Validate and build from a data-model map."""
        if type(value) is not dict or set(value) != _FIELDS:
            raise CheckpointError(f"checkpoint must be a map with the fields {sorted(_FIELDS)}")
        size, root, head, time = value["size"], value["root"], value["head"], value["time"]
        signer, sig = value["signer"], value["sig"]
        if type(size) is not int or size < 1:
            raise CheckpointError("checkpoint size must be a positive integer")
        for name, b in (("root", root), ("head", head)):
            if type(b) is not bytes or len(b) != 32:
                raise CheckpointError(f"checkpoint {name} must be 32 bytes")
        if type(time) is not int or not 0 <= time <= MAX_TIME:
            raise CheckpointError("checkpoint time must be Unix milliseconds")
        if type(signer) is not str or not signer.startswith("did:key:"):
            raise CheckpointError("checkpoint signer must be a did:key")
        if type(sig) is not bytes or len(sig) != 64:
            raise CheckpointError("checkpoint sig must be 64 bytes")
        return cls(size, root, head, time, signer, sig)

    @classmethod
    def decode(cls, raw: bytes) -> Checkpoint:
        try:
            return cls.from_map(cbor.decode(raw))
        except AtprotoError as exc:
            raise CheckpointError(f"checkpoint bytes are not DAG-CBOR: {exc}") from exc


def sign_checkpoint(
    key: PrivateKey, *, size: int, root: bytes, head: bytes, time: int
) -> Checkpoint:
    """Sign a checkpoint over the first ``size`` events."""
    if size < 1:
        raise CheckpointError("a checkpoint covers at least one event")
    if head == GENESIS_PREV:
        raise CheckpointError("checkpoint head must be the hash of an event")
    unsigned = Checkpoint(size, root, head, time, key.did_key(), b"")
    return Checkpoint(size, root, head, time, key.did_key(), key.sign(unsigned.signing_bytes()))

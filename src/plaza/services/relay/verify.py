"""What the relay checks of each event, before and apart from what it knows.

:func:`check_commit` is the stateless half of verifying a ``#commit`` the sync v1.1
way (:func:`plaza.atproto.sync.verify_commit_body`: the slice, the commit and its
signature against the account's key, the ops, their inversion back to ``prevData``).
:func:`check_sync` does the same for a ``#sync`` (a CAR holding only the signed
commit). Both return only what the stateful half needs — rev, commit and MST root —
so they can run in another process. The stateful half, in
:mod:`plaza.services.relay.relay`, compares these with the account's last known state:
``rev`` strictly increasing, ``prevData`` equal to the last verified root.

:func:`reason` names a refusal the way metrics count it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto.car import read_car
from plaza.atproto.cid import CID
from plaza.atproto.commit import decode_commit, verify_commit
from plaza.atproto.crypto import PublicKey
from plaza.atproto.errors import (
    BadSignatureError,
    CarError,
    CommitError,
    InversionError,
    MissingBlockError,
)
from plaza.atproto.sync import verify_commit_body
from plaza.errors import PlazaError

MAX_SYNC_BLOCKS: Final = 10_000


@dataclass(frozen=True)
class Checked:
    """A commit that passed the stateless checks."""

    did: str
    rev: str
    commit: CID
    data: CID
    prev_data: CID | None


def check_commit(body: Mapping[str, Any], key: PublicKey) -> Checked:
    """Verify a decoded ``#commit`` body against ``key`` (raises an
    :class:`~plaza.atproto.errors.AtprotoError` naming the first failure).

    Only a repository's first commit (``since`` null) may come without ``prevData``:
    it has no earlier tree to invert to.
    """
    if body.get("prevData") is None and body.get("since") is not None:
        raise CommitError("#commit has no prevData (pre-sync-1.1 event)")
    verified = verify_commit_body(body, key, require_prev_data=False)
    if verified.rev is None:
        raise CommitError("commit has no rev (version 2)")
    return Checked(
        verified.did, verified.rev, verified.commit_cid, verified.data, verified.prev_data
    )


@dataclass(frozen=True)
class SyncChecked:
    """A ``#sync`` whose commit verified: its fields and the commit block itself."""

    did: str
    rev: str
    commit: CID
    data: CID
    block: bytes


def check_sync(body: Mapping[str, Any], key: PublicKey) -> SyncChecked:
    """Verify a decoded ``#sync`` body: a CAR of at most 10,000 bytes whose root is a
    commit of ``did`` at ``rev``, signed by ``key``."""
    did = body.get("did")
    rev = body.get("rev")
    blocks = body.get("blocks")
    if type(did) is not str or type(rev) is not str or type(blocks) is not bytes:
        raise CommitError("#sync needs did (string), rev (string) and blocks (bytes)")
    if len(blocks) > MAX_SYNC_BLOCKS:
        raise CommitError(f"#sync blocks are larger than {MAX_SYNC_BLOCKS} bytes")
    car = read_car(blocks, max_total_bytes=MAX_SYNC_BLOCKS)
    block = car.blocks.get(car.root)
    if block is None:
        raise CarError("the #sync CAR does not hold its root block")
    commit = decode_commit(block)
    if commit.did != did:
        raise CommitError(f"commit belongs to {commit.did}, event is for {did}")
    if commit.rev is None or commit.rev != rev:
        raise CommitError(f"commit rev {commit.rev} differs from the event's rev {rev}")
    verify_commit(commit, key)
    return SyncChecked(did, rev, car.root, commit.data, block)


_REASONS: Final = (
    (BadSignatureError, "bad-signature"),
    (InversionError, "bad-inversion"),
    (MissingBlockError, "missing-block"),
    (CarError, "bad-car"),
)


def reason(exc: PlazaError) -> str:
    """The metrics name of a verification failure."""
    for kind, name in _REASONS:
        if isinstance(exc, kind):
            return name
    return "invalid-commit"

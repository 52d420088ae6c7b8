"""The directory as the network's handle authority: who claims which handle.

Theory of operation. A DID claims a handle by listing ``at://<handle>`` in the
``alsoKnownAs`` of its current operation. The ``plc_handles`` table holds every claim
of every live DID — ``(handle, did, seq)``, ``seq`` being the operation that first made
the claim — and is maintained in the same transaction that appends an operation:

- an operation's claims replace its DID's claims (a claim it keeps keeps its ``seq``);
- a tombstone drops every claim of its DID, releasing its handles.

For handles in the network's handle domains (``.test`` by default: the domains the
network's PDSs give out) the directory is the one authority: an operation claiming such
a handle while another DID claims it is refused with :class:`HandleTakenError` and
nothing of it is written. Appends hold the directory's write lock, so two operations
claiming one handle at once are decided one after the other: the second is refused.
Handles outside those domains are recorded but never refused, because their authority
is DNS or ``/.well-known/atproto-did``, not this directory: refusing them would let
anyone who listed a foreign name first block its owner.

:meth:`HandleClaims.resolve` answers ``handle → DID`` for the network's domains. A
database upgraded from before this table existed may hold two DIDs claiming one handle;
resolution then answers the earliest claim, the one made first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from plaza.atproto import syntax
from plaza.atproto.errors import AtprotoError
from plaza.atproto.plc import Operation, op_data, parse_operation
from plaza.db import Database
from plaza.errors import ConflictError, InvalidInputError

DEFAULT_HANDLE_DOMAINS: Final = (".test",)

_TABLE: Final = """
CREATE TABLE IF NOT EXISTS plc_handles (
    handle TEXT NOT NULL,
    did TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (handle, did)
);
CREATE INDEX IF NOT EXISTS plc_handles_by_did ON plc_handles (did)
"""


class HandleTakenError(ConflictError):
    """The operation claims a handle of the network's domains that another DID holds."""

    code = "HandleNotAvailable"
    status = 409


class HandleNotFoundError(InvalidInputError):
    """No live DID claims this handle (or it is outside the network's domains)."""

    code = "HandleNotFound"
    status = 400


def claimed_handles(op: Operation) -> tuple[str, ...]:
    """The handles ``op`` claims: its valid ``at://`` aliases, lower-cased, in order."""
    data = op_data("", op)
    if data is None:  # a tombstone claims nothing
        return ()
    out: list[str] = []
    for aka in data.also_known_as:
        if not aka.startswith("at://"):
            continue
        try:
            handle = syntax.normalize_handle(aka[len("at://") :])
        except AtprotoError:
            continue  # not a handle (the PLC rules allow any URI here)
        if handle not in out:
            out.append(handle)
    return tuple(out)


def create_table(db: Database) -> None:
    """Migration step: create ``plc_handles`` and fill it from every DID's head."""
    db.executescript(_TABLE)
    rows = db.query(
        "SELECT o.did, o.seq, o.operation FROM plc_dids d JOIN plc_operations o "
        "ON o.did = d.did AND o.cid = d.head"
    )
    for did, seq, text in rows:
        for handle in claimed_handles(parse_operation(json.loads(text))):
            db.execute(
                "INSERT INTO plc_handles (handle, did, seq) VALUES (?, ?, ?)",
                (handle, did, int(seq)),
            )


class HandleClaims:
    """The ``plc_handles`` table, for the directory's store (which holds the lock)."""

    def __init__(self, db: Database, domains: Iterable[str] = DEFAULT_HANDLE_DOMAINS) -> None:
        self.db = db
        self.domains = tuple(d if d.startswith(".") else "." + d for d in domains)

    def governs(self, handle: str) -> bool:
        """True when ``handle`` is in the network's domains (this directory decides it)."""
        return any(handle.endswith(d) and len(handle) > len(d) for d in self.domains)

    def check(self, did: str, op: Operation) -> tuple[str, ...]:
        """The handles ``op`` claims; :class:`HandleTakenError` if another DID holds one
        of the network's. Call it inside the write transaction, before writing."""
        handles = claimed_handles(op)
        for handle in handles:
            if not self.governs(handle):
                continue
            holder = self.db.scalar(
                "SELECT did FROM plc_handles WHERE handle = ? AND did <> ? ORDER BY seq LIMIT 1",
                (handle, did),
            )
            if holder is not None:
                raise HandleTakenError(f"handle already taken: {handle} is claimed by {holder}")
        return handles

    def replace(self, did: str, handles: tuple[str, ...], seq: int) -> None:
        """Make ``handles`` the claims of ``did`` (``seq``: the operation making them)."""
        held = {
            str(h) for (h,) in self.db.query("SELECT handle FROM plc_handles WHERE did = ?", (did,))
        }
        for handle in held - set(handles):
            self.db.execute("DELETE FROM plc_handles WHERE handle = ? AND did = ?", (handle, did))
        for handle in handles:
            if handle not in held:
                self.db.execute(
                    "INSERT INTO plc_handles (handle, did, seq) VALUES (?, ?, ?)",
                    (handle, did, seq),
                )

    def resolve(self, handle: str) -> str:
        """The DID that holds ``handle``; :class:`HandleNotFoundError` if none does."""
        try:
            handle = syntax.normalize_handle(handle)
        except AtprotoError as exc:
            raise HandleNotFoundError(f"not a handle: {exc.message}") from exc
        if not self.governs(handle):
            raise HandleNotFoundError(
                f"{handle} is outside this network's handle domains ({', '.join(self.domains)})"
            )
        did = self.db.scalar(
            "SELECT did FROM plc_handles WHERE handle = ? ORDER BY seq LIMIT 1", (handle,)
        )
        if did is None:
            raise HandleNotFoundError(f"no DID claims {handle}")
        return str(did)

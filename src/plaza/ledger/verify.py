"""Verify a ledger from its bytes: every hash, signature and checkpoint, and the state.

:func:`verify_log` walks the stored events in order and stops at the first problem,
naming it. For each event it checks that the bytes are a canonical event, that ``seq``
is the next position (a jump means an event was dropped or reordered), that
``prev_hash`` is the hash of the event before, that time does not run backwards, that
the signature verifies against the author's keys *as of that point in the log*, and that
the projection accepts it (a well-signed vote by a non-member is still a bad event).
Along the way it rebuilds the RFC 6962 tree and checks each checkpoint when the log
reaches its size: signature, signer, head hash and root. A checkpoint beyond the end of
the log means events were dropped from the tail.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any

from plaza.errors import PlazaError
from plaza.ledger import merkle
from plaza.ledger.checkpoint import Checkpoint
from plaza.ledger.errors import ArchiveError
from plaza.ledger.event import GENESIS_PREV, Event
from plaza.ledger.keys import DidKeyRegistry, KeyRegistry, verify_event_signature
from plaza.ledger.replay import Projection


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong with a log: the event (``seq``) or checkpoint it concerns."""

    seq: int | None
    code: str
    reason: str
    checkpoint_size: int | None = None

    def describe(self) -> str:
        where = f"event {self.seq}" if self.seq is not None else "log"
        if self.checkpoint_size is not None:
            where += f" (checkpoint at size {self.checkpoint_size})"
        return f"{where}: {self.reason}"


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """What :func:`verify_log` found. ``ok`` iff ``problem`` is None."""

    events: int
    checkpoints: int
    head: bytes
    root: bytes
    problem: Problem | None
    fingerprint: bytes | None

    @property
    def ok(self) -> bool:
        return self.problem is None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "ok": self.ok,
            "events": self.events,
            "checkpoints": self.checkpoints,
            "head": self.head.hex(),
            "root": self.root.hex(),
            "state": None if self.fingerprint is None else self.fingerprint.hex(),
        }
        if self.problem is not None:
            out["problem"] = {
                "seq": self.problem.seq,
                "code": self.problem.code,
                "reason": self.problem.reason,
                "checkpoint": self.problem.checkpoint_size,
            }
        return out


def verify_log(
    raw_events: Iterable[tuple[int, bytes]],
    checkpoints: Iterable[Checkpoint] = (),
    *,
    projection: Projection | None = None,
    registry: KeyRegistry | None = None,
    checkpoint_signers: Collection[str] | None = None,
) -> VerifyReport:
    """Check a whole log; see the module docstring for what is checked.

    Keys come from ``registry`` if given, else from ``projection`` if it is a
    :class:`KeyRegistry` (so keys bound by earlier events sign later ones), else only
    ``did:key`` authors verify. Checkpoint signers must be in ``checkpoint_signers`` if
    given, else in ``projection.checkpoint_signers()`` if the projection has it.
    """
    keys: KeyRegistry
    if registry is not None:
        keys = registry
    elif isinstance(projection, KeyRegistry):
        keys = projection
    else:
        keys = DidKeyRegistry()
    cps = sorted(checkpoints, key=lambda c: c.size)
    acc = merkle.Accumulator()
    expected, prev, last_time, ci = 0, GENESIS_PREV, 0, 0

    def report(problem: Problem | None) -> VerifyReport:
        return VerifyReport(
            events=acc.size,
            checkpoints=ci,
            head=prev,
            root=acc.root(),
            problem=problem,
            fingerprint=None if projection is None else projection.fingerprint(),
        )

    items = iter(raw_events)
    while True:
        try:
            stored_seq, raw = next(items)
        except StopIteration:
            break
        except ArchiveError as exc:
            seq = exc.seq if exc.seq is not None else expected
            return report(Problem(seq, exc.code, exc.message))
        if stored_seq != expected:
            what = "missing" if stored_seq > expected else "stored out of order"
            return report(
                Problem(
                    expected,
                    "MissingEvent",
                    f"event {expected} is {what} (found seq {stored_seq} at position {expected})",
                )
            )
        try:
            ev = Event.decode(raw)
        except PlazaError as exc:
            return report(Problem(expected, exc.code, f"undecodable: {exc.message}"))
        if ev.seq != expected:
            return report(
                Problem(
                    expected,
                    "OutOfOrder",
                    f"event bytes say seq {ev.seq} at position {expected}: reordered or replayed",
                )
            )
        if ev.prev_hash != prev:
            return report(
                Problem(
                    expected,
                    "BrokenChain",
                    f"prev_hash does not match the hash of event {expected - 1}"
                    if expected
                    else "prev_hash of event 0 is not zero",
                )
            )
        if ev.time < last_time:
            return report(Problem(expected, "TimeReversed", "time runs backwards"))
        try:
            verify_event_signature(ev, keys)
            if projection is not None:
                projection.apply(ev)
        except PlazaError as exc:
            return report(Problem(expected, exc.code, exc.message))
        acc.push(merkle.leaf_hash(ev.hash))
        prev, last_time = ev.hash, ev.time
        expected += 1
        while ci < len(cps) and cps[ci].size == acc.size:
            problem = _check_checkpoint(cps[ci], acc.root(), prev, projection, checkpoint_signers)
            if problem is not None:
                return report(problem)
            ci += 1
        while ci < len(cps) and cps[ci].size < acc.size:
            ci += 1  # unreachable for sorted sizes >= 1; kept for duplicate sizes
    if ci < len(cps):
        cp = cps[ci]
        return report(
            Problem(
                acc.size,
                "MissingEvent",
                f"event {acc.size} is missing: a checkpoint "
                f"covers {cp.size} events but the log ends at {acc.size}",
                cp.size,
            )
        )
    return report(None)


def _check_checkpoint(
    cp: Checkpoint,
    root: bytes,
    head: bytes,
    projection: Projection | None,
    signers: Collection[str] | None,
) -> Problem | None:
    try:
        cp.verify_signature()
    except PlazaError as exc:
        return Problem(None, exc.code, exc.message, cp.size)
    allowed = signers
    if allowed is None and projection is not None:
        getter = getattr(projection, "checkpoint_signers", None)
        if callable(getter):
            allowed = getter()  # None: the projection names no ledger keys
    if allowed is not None and cp.signer not in allowed:
        return Problem(
            None,
            "UntrustedCheckpoint",
            f"checkpoint signed by {cp.signer}, which is not a ledger key",
            cp.size,
        )
    if cp.head != head:
        return Problem(
            cp.size - 1,
            "CheckpointMismatch",
            "the hash of this event differs from the head its checkpoint signed",
            cp.size,
        )
    if cp.root != root:
        return Problem(
            None,
            "CheckpointMismatch",
            f"the first {cp.size} events do not have the Merkle root the checkpoint signed",
            cp.size,
        )
    return None

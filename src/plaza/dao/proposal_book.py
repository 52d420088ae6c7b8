"""One proposal as the DAO state keeps it: fixed terms, and the ballots, stakes and
status that change as events apply.

A proposal's terms (who filed it, its method, window, choices, snapshot of eligible
members) never change after creation; its ballots, stakes and status change with every
vote. :class:`ProposalBook` keeps the changing parts in private dicts that
:class:`~plaza.dao.facts.DaoFacts` updates in place, so a vote costs one dict insert
instead of a new record. Readers get either

* :meth:`ProposalBook.snapshot`: the frozen :class:`~plaza.dao.records.Proposal`
  (built when asked for, and kept until the next change, so asking again is free), or
* the book itself typed as :class:`ProposalState`: a read-only live view for the
  DAO's rules, which judge one event at a time and hold nothing across events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import Any, Protocol

from plaza.dao.records import Proposal

__all__ = ["ProposalBook", "ProposalState", "Proposals"]


class ProposalState(Protocol):
    """What the rules read of a proposal while judging one event: live, read-only."""

    @property
    def id(self) -> int: ...

    @property
    def type(self) -> str: ...

    @property
    def author(self) -> str: ...

    @property
    def method(self) -> str: ...

    @property
    def end_ms(self) -> int: ...

    @property
    def choices(self) -> tuple[str, ...]: ...

    @property
    def snapshot_members(self) -> frozenset[str]:
        """The members eligible at creation (:attr:`Proposal.snapshot`)."""
        ...

    @property
    def epoch(self) -> int: ...

    @property
    def status(self) -> str: ...

    def voted(self, did: str) -> bool:
        """Whether ``did`` cast a ballot on it."""
        ...

    def stake_of(self, did: str) -> int:
        """The points ``did`` stakes on it now (0 for none)."""
        ...

    def staked_on(self) -> bool:
        """Whether it holds any ballot or stake."""
        ...


class ProposalBook:
    """The live state of one proposal (see the module docstring). Only
    :class:`~plaza.dao.facts.DaoFacts` calls the changing methods."""

    __slots__ = (
        "_effect",
        "_effects",
        "_eligible",
        "_executed_ms",
        "_history",
        "_stakes",
        "_terms",
        "_version",
        "_view",
        "_votes",
        "author",
        "choices",
        "end_ms",
        "epoch",
        "id",
        "method",
        "snapshot_members",
        "status",
        "type",
    )

    def __init__(self, proposal: Proposal) -> None:
        self._terms = proposal
        self.id = proposal.id
        self.type = proposal.type
        self.author = proposal.author
        self.method = proposal.method
        self.end_ms = proposal.end_ms
        self.choices = proposal.choices
        self.snapshot_members = proposal.snapshot
        self.epoch = proposal.epoch
        self.status = proposal.status
        self._executed_ms = proposal.executed_ms
        self._votes: dict[str, dict[str, Any]] = {k: dict(v) for k, v in proposal.votes.items()}
        self._stakes: dict[str, int] = dict(proposal.stakes)
        self._history: list[tuple[int, int]] = list(proposal.stake_history)
        # Each change bumps the version after it is made; the view is cached with the
        # version read before it was built, so a view built while a change was being made
        # (by a reader on another thread) is never served after that change.
        self._version = 0
        self._view: tuple[int, Proposal] = (0, proposal)
        # The terms' containers as to_map writes them, for encodable(): plain dicts (the
        # encoder takes nothing else), shared with the terms when they are dicts already.
        effect, effects = proposal.effect, proposal.effects
        self._effect = effect if effect is None or type(effect) is dict else dict(effect)
        self._effects = (
            effects
            if type(effects) is dict and all(type(v) is dict for v in effects.values())
            else {k: dict(v) for k, v in effects.items()}
        )
        self._eligible: list[str] | None = None  # the snapshot, sorted when first encoded

    # -- reading -------------------------------------------------------------------------
    def voted(self, did: str) -> bool:
        return did in self._votes

    def stake_of(self, did: str) -> int:
        return self._stakes.get(did, 0)

    def staked_on(self) -> bool:
        return bool(self._votes or self._stakes)

    def snapshot(self) -> Proposal:
        """The proposal as a frozen record, as of now."""
        version = self._version
        cached, view = self._view
        if cached != version:
            view = replace(
                self._terms,
                votes=self._votes.copy(),
                status=self.status,
                executed_ms=self._executed_ms,
                stakes=self._stakes.copy(),
                stake_history=tuple(self._history),
            )
            self._view = (version, view)
        return view

    def to_map(self) -> dict[str, Any]:
        """:meth:`Proposal.to_map` of :meth:`snapshot`."""
        return self.snapshot().to_map()

    def encodable(self) -> dict[str, Any]:
        """A map whose DAG-CBOR encoding is that of :meth:`to_map`, sharing this book's
        containers instead of copying them (the encoder sorts map keys and writes tuples
        as arrays). For the encoder only: never hand it out or change it."""
        t = self._terms
        return {
            "id": t.id,
            "type": t.type,
            "author": t.author,
            "title": t.title,
            "body": t.body,
            "method": t.method,
            "executes": t.executes,
            "topic": t.topic,
            "created": t.created_ms,
            "end": t.end_ms,
            "choices": t.choices,
            "effect": self._effect,
            "effects": self._effects,
            "snapshot": self._sorted_snapshot(),
            "epoch": t.epoch,
            "votes": self._votes,
            "status": self.status,
            "executed": self._executed_ms,
            "stakes": self._stakes,
            "stake_history": self._history,
            "motion": t.motion,
        }

    def _sorted_snapshot(self) -> list[str]:
        if self._eligible is None:
            self._eligible = sorted(self.snapshot_members)
        return self._eligible

    # -- changes (called only by DaoFacts) -----------------------------------------------
    def add_vote(self, voter: str, ballot: Mapping[str, Any]) -> None:
        self._votes[voter] = dict(ballot)
        self._version += 1

    def set_stake(self, member: str, points: int, at_ms: int) -> int:
        """Set ``member``'s stake to ``points``; return the stake it replaces."""
        old = self._stakes.pop(member, 0)
        if points:
            self._stakes[member] = points
        self._history.append((at_ms, sum(self._stakes.values())))
        self._version += 1
        return old

    def close(self, status: str, at_ms: int) -> dict[str, int]:
        """Mark it ``executed`` or ``cancelled`` at ``at_ms``; return the stakes it frees."""
        freed = self._stakes
        if freed:
            self._history.append((at_ms, 0))
        self._stakes = {}
        self.status = status
        if status == "executed":
            self._executed_ms = at_ms
        self._version += 1
        return freed


class Proposals(Mapping[int, Proposal]):
    """A read-only, live view of proposal books as frozen :class:`Proposal` records."""

    __slots__ = ("_books",)

    def __init__(self, books: Mapping[int, ProposalBook]) -> None:
        self._books = books

    def __getitem__(self, pid: int) -> Proposal:
        return self._books[pid].snapshot()

    def __iter__(self) -> Iterator[int]:
        return iter(self._books)

    def __len__(self) -> int:
        return len(self._books)

    def __contains__(self, pid: object) -> bool:
        return pid in self._books

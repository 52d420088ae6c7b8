"""The agent loop: decisions go through the mandate guard, then execute or escalate.

Theory of operation. Reconcilers are pure; this module is where their actions meet the
world. For every action the loop

1. splits it into the pieces the guard judges one at a time (a placement or migration
   with several destination providers becomes one piece per destination, in small
   round-robin chunks, so the guard's concentration check sees each step of the plan);
2. asks the guard (:func:`plaza.dao.mandate.check`) with the current spending and the
   accounts each provider hosts, updated after every executed piece;
3. executes what is allowed through the :class:`Executor` (``plaza.market`` and the
   simulated world in the simulator, the live services with ``plaza agents run``); hands
   ``Optimistic`` and ``NeedsVote`` to a :class:`Proposer` — the loop's own veto windows
   in the simulator, DAO motions and proposals members veto or vote on in a live run —
   and executes what the proposer says members let through — an optimistic one only if
   the guard, asked again when its window has passed (spending since, the mandate then,
   accounts then), still lets it; drops what is denied;
4. records every piece — executed, proposed, denied or failed — with its reason in the
   ledger (the action's canonical map, the rule, the numbers, the digest of the inputs
   and a plain-language explanation).

The loop never holds a decision back on its own judgement: anything it does not execute
is in the ledger with the guard's words for why.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from plaza.agents.types import Action, MandateLimits
from plaza.atproto.crypto import PrivateKey
from plaza.dao import action as dao_action
from plaza.dao.mandate import (
    PPM,
    Allow,
    Deny,
    GuardState,
    Mandate,
    NeedsVote,
    Optimistic,
    Spend,
    Verdict,
    check,
)
from plaza.dao.money import Currency, default_currency
from plaza.errors import PlazaError
from plaza.ledger import Ledger

#: Ledger event type of every recorded agent action.
EVENT_TYPE = "agent.action"


class Executor(Protocol):
    """Carries out an allowed action (the market and the simulated world in the simulator;
    the market and the live services in a live run)."""

    def execute(self, action: Action) -> Any:
        """Do it; raise a :class:`~plaza.errors.PlazaError` if it cannot be done."""
        ...


@dataclass(frozen=True)
class Proposal:
    """An action that needs members: machine-readable intent plus an explanation.
    ``ref`` names where members act on it (``motion:N``/``proposal:N`` in a DAO)."""

    intent: dict[str, Any]
    explanation: str
    verdict: str
    execute_after_ms: int | None
    ref: str = ""
    why: str = ""


class Proposer(Protocol):
    """Where the actions the mandate does not allow at once wait for members.

    ``propose`` files one (raising a :class:`~plaza.errors.PlazaError` if it cannot, and
    returning None when the same action already waits for members);
    ``due`` returns those members have let through by ``now_ms`` — an optimistic one
    whose veto window passed unvetoed, a voted one that passed — each with the
    authority to name in the record, ready to execute (for a DAO, the action carries
    the motion or proposal the market cites). ``resolved`` returns, once each, those
    members did not let through — a vote rejected or expired (a vetoed motion becomes
    such a vote) — each with a :class:`Proposal` naming it and its outcome, so that the
    loop records the end and the reconciler decides again.
    """

    def propose(
        self, action: Action, guard: dao_action.Action, verdict: Verdict, now_ms: int
    ) -> Proposal | None: ...

    def due(self, now_ms: int) -> list[tuple[Action, str]]: ...

    def resolved(self, now_ms: int) -> list[tuple[Action, Proposal]]: ...


#: How long a members' vote stays open when the proposer keeps it (the default
#: constitution's ``agent-action`` window): nobody votes in memory, so it expires then.
VOTE_WINDOW_S = 5 * 86400


class MemoryProposer:
    """Proposals kept by the loop itself: an optimistic one executes once its window has
    passed (nobody can veto in memory: the simulator has no members); one that needs a
    vote expires unvoted after ``vote_window_s`` (the default constitution's window for
    an ``agent-action`` proposal), as a DAO proposal nobody votes on does."""

    def __init__(self, vote_window_s: int = VOTE_WINDOW_S) -> None:
        self._queue: list[tuple[int, Action]] = []
        self._votes: list[tuple[int, Action, Proposal]] = []
        self.vote_window_s = vote_window_s

    def propose(
        self, action: Action, guard: dao_action.Action, verdict: Verdict, now_ms: int
    ) -> Proposal:
        after: int | None = None
        if isinstance(verdict, Optimistic):
            after = now_ms + verdict.window_s * 1000
            self._queue.append((after, action))
            name = f"optimistic:{verdict.window_s}s"
            why = f"executes after {verdict.window_s}s unless members veto"
        else:
            assert isinstance(verdict, NeedsVote)
            name, why = "vote", verdict.reason
        proposal = Proposal(guard.to_map(), f"{action.reason.text} ({why})", name, after, why=why)
        if isinstance(verdict, NeedsVote):
            self._votes.append((now_ms + self.vote_window_s * 1000, action, proposal))
        return proposal

    def due(self, now_ms: int) -> list[tuple[Action, str]]:
        due = [(a, "optimistic-window-passed") for t, a in self._queue if t <= now_ms]
        self._queue = [(t, a) for t, a in self._queue if t > now_ms]
        return due

    def resolved(self, now_ms: int) -> list[tuple[Action, Proposal]]:
        ended = [
            (a, replace(p, why=f"expired unvoted after {self.vote_window_s}s"))
            for t, a, p in self._votes
            if t <= now_ms
        ]
        self._votes = [v for v in self._votes if v[0] > now_ms]
        return ended


@dataclass(frozen=True)
class LoopRecord:
    """What happened to one guard-sized piece of an action."""

    time_ms: int
    action: Action
    outcome: str  # executed | proposed | denied | failed | dropped
    verdict: str
    detail: str
    proposal: Proposal | None = None
    #: Accounts per provider the guard saw, for placements and migrations (the replay
    #: of the ledger, :mod:`plaza.agents.audit`, judges them with it).
    accounts: Mapping[str, int] | None = None


def limits_from_mandate(
    mandate: Mandate, total_accounts: int = 0, currency: Currency | None = None
) -> MandateLimits:
    """The planning numbers reconcilers need, read from a mandate document whose amounts
    are minor units of ``currency`` (the DAO's; by default the shipped constitution's)."""
    money = currency or default_currency()
    lim = mandate.limits
    batch = lim.migration_batch_max_accounts
    if total_accounts >= lim.concentration_min_accounts:
        batch = min(batch, lim.migration_batch_max_share_ppm * total_accounts // PPM)
    budget_per_day: float | None = None
    rule = mandate.rule("capacity.procure")
    category = rule.category if rule is not None else None
    if category and category in mandate.budgets:
        b = mandate.budgets[category]
        budget_per_day = money.to_units(b.limit) * min(1.0, 86400 / b.period)
    return MandateLimits(
        max_provider_share=lim.max_provider_share_ppm / PPM,
        migration_batch_limit=max(1, batch),
        budget_per_day=budget_per_day,
        concentration_floor=lim.concentration_min_accounts,
        currency=money,
    )


def to_guard_action(
    action: Action, provider_did: Callable[[int], str], currency: Currency | None = None
) -> dao_action.Action:
    """The DAO's view of an action: kind, params, amount (minor units of ``currency``,
    the action's ``cost`` being in currency units), provider, accounts.

    Capacity actions count their units as accounts (the market sizes every service in
    accounts served) with no single provider, so the mandate's per-action account
    thresholds apply to them and its concentration rules do not (the market's award
    applies those, contract by contract). Provider actions name their provider's DID.
    """
    payload = action.as_payload()
    params = {"params": payload["params"], "rule": action.reason.rule}
    amount = 0
    cost = action.get("cost")
    if cost is not None:
        amount = (currency or default_currency()).from_units(float(cost))
    provider = source = ""
    accounts = 0
    if action.kind == "placement.assign":
        allocs = action["allocations"]
        if len({p for _, p, _ in allocs}) == 1:
            provider = provider_did(int(allocs[0][1]))
        accounts = int(sum(c for _, _, c in allocs))
    elif action.kind == "migration.batch":
        to = action["to"]
        if len(to) == 1:
            provider = provider_did(int(to[0][0]))
        source = provider_did(int(action["from"]))
        accounts = int(sum(c for _, c in to))
    elif action.kind.startswith("capacity."):
        accounts = max(0, math.ceil(float(action.get("units", 0.0)) - 1e-9))
    elif action.kind.startswith("provider."):
        provider = str(action["provider"])
    return dao_action.Action(
        kind=action.kind,
        params=params,
        amount=amount,
        category="",
        provider=provider,
        source=source,
        accounts=accounts,
    )


def split_for_guard(action: Action, rounds: int = 10) -> Iterator[Action]:
    """Pieces of ``action`` the guard can judge one provider at a time.

    Placements are cut into ``rounds`` round-robin chunks per destination so that a plan
    that is balanced overall is also balanced at every step the guard sees.
    """
    if action.kind == "placement.assign":
        allocs = [(int(r), int(p), int(c)) for r, p, c in action["allocations"]]
        chunks = [(r, p, c, math.ceil(c / rounds)) for r, p, c in allocs]
        left = {(r, p): c for r, p, c in allocs}
        while any(left.values()):
            for r, p, _, size in chunks:
                n = min(size, left[(r, p)])
                if n:
                    left[(r, p)] -= n
                    yield replace(
                        action, params=_with(action, allocations=((r, p, n),), accounts=n)
                    )
        return
    if action.kind == "migration.batch":
        for p, c in action["to"]:
            yield replace(action, params=_with(action, to=((int(p), int(c)),), accounts=int(c)))
        return
    yield action


#: Parameters that say when or by whose leave an action runs, not what it does.
_AUTHORITY_PARAMS = frozenset({"proposed_ms", "motion", "proposal"})


def _waiting_key(action: Action) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """What a proposal would do, without when it was proposed or who let it through.

    An action with an ``intent`` param is the same request as any other of its kind
    and intent, whatever its numbers: a reconciler asks again every pass, with a start
    and a size that move with time and load, for what one pending proposal already asks
    (reserved capacity: more units, starting now); while that one waits, the others are
    not proposed, so that a veto window's end does not carry out a pile of them.
    """
    intent = action.get("intent")
    if intent is not None:
        return action.kind, (("intent", intent),)
    return action.kind, tuple((k, v) for k, v in action.params if k not in _AUTHORITY_PARAMS)


def _with(action: Action, **changes: Any) -> tuple[tuple[str, Any], ...]:
    merged = dict(action.params)
    merged.update(changes)
    return tuple(sorted(merged.items()))


class LedgerRecorder:
    """Writes each :class:`LoopRecord` as a signed ``agent.action`` ledger event."""

    def __init__(self, ledger: Ledger, key: PrivateKey, author_did: str | None = None) -> None:
        self.ledger = ledger
        self.key = key
        self.author_did = author_did or key.did_key()

    def __call__(self, record: LoopRecord, guard_action: dao_action.Action) -> None:
        payload: dict[str, Any] = {
            "outcome": record.outcome,
            "verdict": record.verdict,
            "detail": record.detail,
            "action": guard_action.to_map(),
            "reason": record.action.reason.as_payload(),
        }
        if record.proposal is not None:
            payload["proposal"] = {
                "intent": record.proposal.intent,
                "explanation": record.proposal.explanation,
                "verdict": record.proposal.verdict,
            }
            if record.proposal.execute_after_ms is not None:
                payload["proposal"]["executeAfterMs"] = record.proposal.execute_after_ms
            if record.proposal.ref:
                payload["proposal"]["ref"] = record.proposal.ref
        if record.accounts is not None:
            payload["accounts"] = dict(sorted(record.accounts.items()))
        self.ledger.record(
            self.key,
            author_did=self.author_did,
            type=EVENT_TYPE,
            payload=payload,
            time=record.time_ms,
        )


@dataclass
class LoopStats:
    executed: int = 0
    proposed: int = 0
    denied: int = 0
    failed: int = 0
    dropped: int = 0
    escalations: int = 0
    denials_by_code: dict[str, int] = field(default_factory=dict)


class AgentLoop:
    """Guard, execute, escalate and record the actions of the reconcilers.

    ``currency`` is the one the mandate's amounts are minor units of (the DAO's
    constitution's; by default the shipped constitution's)."""

    def __init__(
        self,
        mandate: Mandate,
        executor: Executor,
        recorder: Callable[[LoopRecord, dao_action.Action], None],
        provider_did: Callable[[int], str],
        proposer: Proposer | None = None,
        *,
        currency: Currency | None = None,
    ) -> None:
        self.mandate = mandate
        self.currency = currency or default_currency()
        self.executor = executor
        self.recorder = recorder
        self.provider_did = provider_did
        self.proposer: Proposer = proposer or MemoryProposer()
        self.stats = LoopStats()
        self._spends: dict[str, deque[Spend]] = {}
        # Proposals waiting (a veto window or a vote), by what they would do: a
        # level-based reconciler asks again every time, and one proposal is enough.
        self._waiting: set[tuple[str, tuple[tuple[str, Any], ...]]] = set()
        self._horizon_s = max((b.period for b in mandate.budgets.values()), default=86400)

    def add_spends(self, category: str, spends: list[Spend]) -> None:
        """Spends made elsewhere (an earlier run, the market) that count against
        ``category``'s budget; they must be older than any spend the loop records."""
        window = self._spends.setdefault(category, deque())
        for s in sorted(spends, key=lambda s: s.time_ms):
            window.append(s)

    def spent(self, category: str, now_ms: int, period_s: int) -> int:
        """Minor units spent in ``category`` during ``(now - period, now]``."""
        start = now_ms - period_s * 1000
        total = 0
        # Spends are appended in time order: walk back from the newest.
        for s in reversed(self._spends.get(category, ())):
            if s.time_ms <= start:
                break
            if s.time_ms <= now_ms:
                total += s.amount
        return total

    def _state(self, now_ms: int, accounts: Mapping[str, int]) -> GuardState:
        cutoff = now_ms - self._horizon_s * 1000
        spends: dict[str, tuple[Spend, ...]] = {}
        for category, window in self._spends.items():
            while window and window[0].time_ms <= cutoff:
                window.popleft()
            budget = self.mandate.budgets.get(category)
            if budget is not None and window:
                # The guard sums a category over its own budget's period only, so one
                # spend holding that sum is exact (and keeps each check O(1)).
                spends[category] = (Spend(now_ms, self.spent(category, now_ms, budget.period)),)
        return GuardState(mandate=self.mandate, now_ms=now_ms, spends=spends, accounts=accounts)

    def submit(
        self, actions: list[Action], now_ms: int, accounts: Mapping[str, int]
    ) -> list[LoopRecord]:
        """Run ``actions`` through the guard; execute, escalate or deny; record all."""
        records: list[LoopRecord] = []
        acc = dict(accounts)
        # Decisions were made before the due proposals below executed: one that asks
        # for what a due proposal has just done is already answered.
        answered = set()
        for action, proposal in self.proposer.resolved(now_ms):
            records.append(self._drop(action, proposal, now_ms))
        for action, authority in self.proposer.due(now_ms):
            key = _waiting_key(action)
            self._waiting.discard(key)
            answered.add(key)
            records.append(self._carry_out(action, authority, now_ms, acc))
        for action in actions:
            key = _waiting_key(action)
            if key in self._waiting or key in answered:
                continue
            for piece in split_for_guard(action):
                ga = self._guard_action(piece)
                verdict = check(ga, self._state(now_ms, acc))
                rec = self._apply(piece, ga, verdict, now_ms, acc)
                if rec is not None:
                    records.append(rec)
        return records

    def waiting(self) -> int:
        """Proposals still waiting for their veto window or a vote."""
        return len(self._waiting)

    def _drop(self, action: Action, proposal: Proposal, now_ms: int) -> LoopRecord:
        """Members did not let a proposal through (rejected, expired): record its end and
        forget it, so the reconciler's next request is judged afresh."""
        self._waiting.discard(_waiting_key(action))
        self.stats.dropped += 1
        where = proposal.ref or "the proposal"
        detail = f"{where} {proposal.why}: not executed; the reconcilers decide again"
        rec = LoopRecord(now_ms, action, "dropped", proposal.verdict, detail, proposal)
        self.recorder(rec, self._guard_action(action))
        return rec

    def _guard_action(self, action: Action) -> dao_action.Action:
        return to_guard_action(action, self.provider_did, self.currency)

    def _carry_out(
        self, action: Action, authority: str, now_ms: int, acc: dict[str, int]
    ) -> LoopRecord:
        """Execute a proposal members let through, asking the guard again first.

        A voted one (``proposal:N``) has the members' own authority and executes as
        passed. An optimistic one only waited out its veto window: the guard judges it
        again with the state of now (spending since, the mandate in force, accounts),
        exactly as the DAO does when a motion executes, and anything but ``Allow`` or
        ``Optimistic`` is a denial, recorded, and not executed.
        """
        ga = self._guard_action(action)
        if authority.startswith("proposal:"):
            return self._execute(action, ga, now_ms, acc, authority)
        verdict = check(ga, self._state(now_ms, acc))
        if isinstance(verdict, Allow | Optimistic):
            return self._execute(action, ga, now_ms, acc, authority)
        if isinstance(verdict, Deny):
            code, name, why = verdict.code, f"deny:{verdict.code}", verdict.reason
        else:
            assert isinstance(verdict, NeedsVote)
            code, name, why = "NeedsVote", "vote", verdict.reason
        self.stats.denied += 1
        self.stats.denials_by_code[code] = self.stats.denials_by_code.get(code, 0) + 1
        detail = f"{authority}, but at execution the guard says no: {why}; not executed"
        rec = LoopRecord(now_ms, action, "denied", name, detail)
        self.recorder(rec, ga)
        return rec

    def _apply(
        self,
        action: Action,
        ga: dao_action.Action,
        verdict: Verdict,
        now_ms: int,
        acc: dict[str, int],
    ) -> LoopRecord | None:
        if isinstance(verdict, Allow):
            return self._execute(action, ga, now_ms, acc, "allow")
        if isinstance(verdict, Deny):
            self.stats.denied += 1
            self.stats.denials_by_code[verdict.code] = (
                self.stats.denials_by_code.get(verdict.code, 0) + 1
            )
            rec = LoopRecord(now_ms, action, "denied", f"deny:{verdict.code}", verdict.reason)
            self.recorder(rec, ga)
            return rec
        try:
            proposal = self.proposer.propose(action, ga, verdict, now_ms)
            if proposal is None:  # members already have it before them
                self._waiting.add(_waiting_key(action))
                return None
        except PlazaError as exc:
            self.stats.failed += 1
            rec = LoopRecord(
                now_ms, action, "failed", verdict.verdict, f"{exc.code}: {exc.message}"
            )
            self.recorder(rec, ga)
            return rec
        self.stats.proposed += 1
        self.stats.escalations += 1
        self._waiting.add(_waiting_key(action))
        rec = LoopRecord(
            now_ms, action, "proposed", proposal.verdict, proposal.why, proposal,
            _seen(ga, acc),
        )  # fmt: skip
        self.recorder(rec, ga)
        return rec

    def _execute(
        self, action: Action, ga: dao_action.Action, now_ms: int, acc: dict[str, int], verdict: str
    ) -> LoopRecord:
        try:
            result = self.executor.execute(action)
        except PlazaError as exc:
            self.stats.failed += 1
            rec = LoopRecord(now_ms, action, "failed", verdict, f"{exc.code}: {exc.message}")
            self.recorder(rec, ga)
            return rec
        self.stats.executed += 1
        seen = _seen(ga, acc)
        if ga.amount > 0:
            rule = self.mandate.rule(action.kind)
            category = ga.category or (rule.category if rule else "") or ""
            self._spends.setdefault(category, deque()).append(Spend(now_ms, ga.amount))
        if ga.accounts and ga.provider:
            acc[ga.provider] = acc.get(ga.provider, 0) + ga.accounts
            if ga.source:
                acc[ga.source] = acc.get(ga.source, 0) - ga.accounts
        detail = getattr(result, "detail", "") or "done"
        rec = LoopRecord(now_ms, action, "executed", verdict, str(detail), accounts=seen)
        self.recorder(rec, ga)
        return rec


def _seen(ga: dao_action.Action, acc: Mapping[str, int]) -> dict[str, int] | None:
    """The accounts the guard judged ``ga`` with, when they mattered to it."""
    return {p: n for p, n in acc.items() if n} if ga.accounts and ga.provider else None

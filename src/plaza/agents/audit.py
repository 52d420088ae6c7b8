"""Replaying the agents' own records: every ``agent.action`` judged again by the guard.

Theory of operation. :class:`AgentActions` is a projection (see
:mod:`plaza.ledger.replay`) over the ``agent.action`` events the agent loop records
(:class:`~plaza.agents.loop.LedgerRecorder`). Signatures only say who wrote a record;
this says whether the mandate let it happen. For each record it runs the mandate guard
(:func:`plaza.dao.mandate.check`) again, with

* the mandate as of that point in the ledger: a DAO's (the :class:`DaoState` replayed
  alongside, before this part, in a :class:`~plaza.ledger.replay.Combined`), or the
  one given for a ledger without a DAO (a market on its own, the simulator), whose
  mandate is not in the ledger;
* the spending so far: every executed ``agent.action`` with an amount, charged to its
  rule's category at its event time, over the mandate's budget windows;
* the accounts per provider the loop saw, recorded with placements and migrations
  (``accounts`` in the payload: hosts report them, the ledger cannot know them).

and refuses (:class:`~plaza.dao.errors.MandateDeniedError`, an ``EventRejectedError``)

* an ``executed`` action under the mandate's own authority (``allow``) unless the guard
  allows it;
* an ``executed`` action whose veto window passed (``optimistic-window-passed``,
  ``motion:N``) unless the guard allows it or would open a window for it (the loop asks
  again at execution, as the DAO does for a motion);
* an ``executed`` action by a vote (``proposal:N``) without a DAO (nobody votes there);
* a ``proposed`` action the guard denies.

Denied, failed and dropped records change nothing and pass. The spending counted is
only the agents' own, so the check is a lower bound of what the loop saw (a live loop
also counts the DAO's other spending): an action the loop allowed is allowed here, and
one over budget by the agents' own record is refused. Money that moves through a DAO is
checked again by the DAO's own events (``dao.action.executed``, motions).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from plaza.atproto import cbor
from plaza.dao import action as dao_action
from plaza.dao.errors import ActionError, InvalidPayloadError, MandateDeniedError, NotAllowedError
from plaza.dao.mandate import Allow, Deny, GuardState, Mandate, Optimistic, Spend, Verdict, check
from plaza.dao.state import DaoState
from plaza.ledger.event import Event

#: The ledger event type the agent loop records (``plaza.agents.loop.EVENT_TYPE``).
EVENT_TYPE = "agent.action"


class AgentActions:
    """The agents' spending as their ``agent.action`` records tell it, each record
    checked against the mandate (see the module docstring)."""

    def __init__(self, mandate: Mandate | None = None, dao: DaoState | None = None) -> None:
        if (mandate is None) == (dao is None):
            raise ValueError("give the mandate, or the DaoState to read it from, not both")
        self._fixed = mandate
        self._dao = dao
        self.spends: dict[str, list[Spend]] = {}
        self.checked = 0

    # -- the projection protocol ----------------------------------------------------------
    def check(self, event: Event) -> None:
        self._judge(event)

    def apply(self, event: Event) -> None:
        spend = self._judge(event)
        if event.type != EVENT_TYPE:
            return
        self.checked += 1
        if spend is not None:
            category, amount = spend
            mandate = self._mandate()
            assert mandate is not None
            # Forget what no budget window will count again (ledger time only advances).
            longest = max((b.period for b in mandate.budgets.values()), default=0) * 1000
            kept = [s for s in self.spends.get(category, []) if s.time_ms > event.time - longest]
            self.spends[category] = [*kept, Spend(event.time, amount)]

    def fingerprint(self) -> bytes:
        state = {k: [[s.time_ms, s.amount] for s in v] for k, v in sorted(self.spends.items())}
        return hashlib.sha256(cbor.encode({"agentSpends": state})).digest()

    # -- judging ---------------------------------------------------------------------------
    def _mandate(self) -> Mandate | None:
        if self._fixed is not None:
            return self._fixed
        assert self._dao is not None
        return self._dao.mandate if self._dao.initialized else None

    def _judge(self, event: Event) -> tuple[str, int] | None:
        """Raise if ``event`` is an agent record the mandate would not have let happen;
        return the spend it adds (category, amount), if any."""
        if event.type != EVENT_TYPE:
            return None
        mandate = self._mandate()
        if mandate is None:  # a DAO ledger before its genesis: no mandate to judge by
            return None
        if self._dao is not None and not self._dao.is_agent(event.author_did):
            raise NotAllowedError(f"{event.author_did} is not one of the DAO's agents")
        payload = event.payload
        outcome = payload.get("outcome")
        verdict_name = payload.get("verdict")
        if not isinstance(outcome, str) or not isinstance(verdict_name, str):
            raise InvalidPayloadError("an agent.action record names its outcome and verdict")
        try:
            action = dao_action.Action.from_map(payload.get("action"))
        except ActionError as exc:
            raise InvalidPayloadError(f"agent.action: {exc.message}") from exc
        if outcome not in ("executed", "proposed"):
            return None
        verdict = check(action, self._state(mandate, event, payload.get("accounts")))
        if outcome == "proposed":
            if isinstance(verdict, Deny):
                raise MandateDeniedError(_refusal(action, verdict, "proposed"))
            return None
        if verdict_name.startswith("proposal:"):
            if self._dao is None:
                raise MandateDeniedError(
                    f"{action.kind} executed by {verdict_name}, but a ledger without a "
                    "DAO has no votes"
                )
            ok = True  # members voted: their authority, checked by the DAO's own events
        elif verdict_name == "allow":
            ok = isinstance(verdict, Allow)
        else:
            ok = isinstance(verdict, Allow | Optimistic)
        if not ok:
            raise MandateDeniedError(_refusal(action, verdict, f"executed ({verdict_name})"))
        if action.amount <= 0:
            return None
        rule = mandate.rule(action.kind)
        return action.category or (rule.category if rule else "") or "", action.amount

    def _state(self, mandate: Mandate, event: Event, accounts: Any) -> GuardState:
        seen: dict[str, int] = {}
        if accounts is not None:
            if not isinstance(accounts, Mapping) or not all(
                isinstance(k, str) and type(v) is int and v >= 0 for k, v in accounts.items()
            ):
                raise InvalidPayloadError("agent.action accounts map provider DIDs to counts")
            seen = dict(accounts)
        longest = max((b.period for b in mandate.budgets.values()), default=0) * 1000
        start = event.time - longest
        spends = {k: [s for s in v if s.time_ms > start] for k, v in self.spends.items()}
        return GuardState(mandate=mandate, now_ms=event.time, spends=spends, accounts=seen)


def _refusal(action: dao_action.Action, verdict: Verdict, what: str) -> str:
    why = getattr(verdict, "reason", "") or verdict.verdict
    return f"agent.action {what} {action.kind} ({action.amount}), but the mandate says {why}"

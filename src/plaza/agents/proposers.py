"""Proposers for the live agents: where what the mandate does not allow at once goes.

Theory of operation. The agent loop (:mod:`plaza.agents.loop`) hands an ``optimistic``
or ``vote`` verdict to a proposer and, every pass, asks it which proposals members let
through (``due``) and which they did not (``resolved``). :class:`DaoProposer` makes each
a DAO motion members may veto or an ``agent-action`` proposal they vote on, carries it
out once the window has passed unvetoed or the vote has passed, and closes a motion the
DAO's guard refuses after its window (``dao.motion.lapsed``). :class:`LedgerProposer`
serves a market without a DAO: the proposal is the ``agent.action`` record itself, it
executes after its window (nobody can veto a market without members), and one that
needs a vote expires unvoted after :data:`~plaza.agents.loop.VOTE_WINDOW_S`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from plaza.agents.loop import (
    EVENT_TYPE,
    VOTE_WINDOW_S,
    Proposal,
)
from plaza.agents.types import Action, Reason
from plaza.dao import action as dao_action
from plaza.dao.mandate import NeedsVote, Optimistic, Verdict
from plaza.errors import PlazaError
from plaza.ledger.keystore import Signer
from plaza.market import Market
from plaza.market.settle import funding_action, status_action


def _from_motion(
    kind: str, m: Any, ref: str, rule: str = "dao.members-let-it-through"
) -> Action | None:
    """The agents' action that carries out DAO motion/proposal ``m`` (its action)."""
    a = m.action
    reason = Reason.of(rule, f"{m.reason} ({ref})", {"ref": ref})
    if kind in ("provider.suspend", "provider.offboard"):
        status = "suspended" if kind == "provider.suspend" else "offboarded"
        key = "motion" if ref.startswith("motion") else "proposal"
        return Action.make(
            kind, reason, provider=a.provider, status=status,
            proposed_ms=int(getattr(m, "opened_ms", 0)), **{key: int(ref.split(":")[1])},
        )  # fmt: skip
    if kind == "settlement.pay" and ref.startswith("motion"):
        return Action.make(
            kind, reason, escrow="market", amount=a.amount, cost=a.amount / 100,
            motion=int(ref.split(":")[1]),
        )  # fmt: skip
    return None


def _market_action(action: Action, guard: dao_action.Action) -> dao_action.Action:
    """The DAO action the market will execute for ``action`` (what a motion must hold)."""
    if action.kind in ("provider.suspend", "provider.offboard"):
        return status_action(str(action["provider"]), str(action["status"]))
    if action.kind == "settlement.pay":
        return funding_action(int(action["amount"]))
    return guard


class DaoProposer:
    """Motions and proposals in the DAO; carried out once members let them through.

    ``drafter``, when given, writes the body of each proposal members vote on from the
    action's facts (``plaza.assist.draft``: words only; the proposal's effect is the
    action itself). It is given no key and its text changes nothing the vote decides.
    """

    def __init__(
        self,
        market: Market,
        signer: Signer,
        drafter: Callable[[dict[str, Any]], str] | None = None,
    ) -> None:
        assert market.dao is not None
        self.market = market
        self.dao: Any = market.dao.dao  # type: ignore[attr-defined]
        self.signer = signer
        self.drafter = drafter

    def propose(
        self, action: Action, guard: dao_action.Action, verdict: Verdict, now_ms: int
    ) -> Proposal | None:
        a = _market_action(action, guard)
        st = self.dao.state
        for m in st.motions.values():
            if m.agent == self.signer.did and m.status == "open" and m.digest == a.digest():
                return None
        for p in st.proposals.values():
            effect = p.effect or {}
            if (
                effect.get("action") == a.to_map()
                and self.dao.outcome(p.id, now_ms).status == "open"
            ):
                return None
        payload = {"action": a.to_map(), "reason": action.reason.text[:1000]}
        if isinstance(verdict, Optimistic):
            ev = self.dao.record(self.signer, "dao.motion.opened", payload, now_ms)
            why = f"DAO motion {ev.seq}: executes after {verdict.window_s}s unless members veto"
            after = now_ms + verdict.window_s * 1000
            return Proposal(a.to_map(), action.reason.text, f"optimistic:{verdict.window_s}s",
                            after, ref=f"motion:{ev.seq}", why=why)  # fmt: skip
        assert isinstance(verdict, NeedsVote)
        ptype = st.constitution.proposal_type(verdict.proposal_type)
        kind = (
            verdict.proposal_type if ptype and ptype.executes == "agent-action" else "agent-action"
        )
        body = ""
        if self.drafter is not None:
            body = self.drafter(_draft_facts(action, a, verdict))[:20_000]
        pid = self.dao.propose(self.signer, kind, f"{action.kind}: {action.reason.text}"[:300],
                               now_ms, body=body, effect=payload)  # fmt: skip
        why = f"DAO proposal {pid}: {verdict.reason}"
        return Proposal(
            a.to_map(), action.reason.text, "vote", None, ref=f"proposal:{pid}", why=why
        )

    def due(self, now_ms: int) -> list[tuple[Action, str]]:
        st = self.dao.state
        out: list[tuple[Action, str]] = []
        for m in st.motions.values():
            if m.agent == self.signer.did and m.status == "open" and m.end_ms <= now_ms:
                act = _from_motion(m.action.kind, m, f"motion:{m.id}")
                if act is not None:
                    out.append((act, f"motion:{m.id}"))
        providers = self.market.state.providers
        for p in st.proposals.values():
            effect = p.effect or {}
            if p.author != self.signer.did or "action" not in effect:
                continue
            a = dao_action.Action.from_map(effect["action"])
            if a.kind not in ("provider.suspend", "provider.offboard"):
                continue
            target = "suspended" if a.kind == "provider.suspend" else "offboarded"
            prov = providers.get(a.provider)
            if prov is None or prov.status in (target, "offboarded"):
                continue
            if self.dao.outcome(p.id, now_ms).status in ("passed", "executed"):
                m = _Voted(a, str(effect.get("reason", "")), p.id)
                act = _from_motion(a.kind, m, f"proposal:{p.id}")
                if act is not None:
                    out.append((act, f"proposal:{p.id}"))
        return out

    def resolved(self, now_ms: int) -> list[tuple[Action, Proposal]]:
        """The agent's proposals members rejected or let expire (a vetoed motion's
        proposal too) and its motions that lapsed, each until its end is in the ledger
        as a ``dropped`` record.

        First it closes its own motions that can no longer execute: a window passed and
        the DAO's guard, asked as at execution, refusing the action (``dao.motion.lapsed``
        with the guard's reason). Otherwise such a motion would stay open and every pass
        would judge it again and record one more denial.
        """
        self._lapse_refused(now_ms)
        st = self.dao.state
        reported = _dropped_refs(self.market, self.signer.did)
        out: list[tuple[Action, Proposal]] = []
        for m in st.motions.values():
            ref = f"motion:{m.id}"
            if m.agent != self.signer.did or m.status != "lapsed" or ref in reported:
                continue
            rule = "dao.mandate-refused-after-the-window"
            act = _from_motion(m.action.kind, m, ref, rule)
            if act is None:
                act = Action.make(
                    m.action.kind, Reason.of(rule, f"{m.reason} ({ref})", {"ref": ref})
                )
            window = f"optimistic:{(m.end_ms - m.opened_ms) // 1000}s"
            why = f"lapsed (the guard refused it after its window: {m.lapse_reason})"
            out.append((act, Proposal(m.action.to_map(), m.reason, window, None, ref=ref, why=why)))
        for p in st.proposals.values():
            effect = p.effect or {}
            ref = f"proposal:{p.id}"
            if p.author != self.signer.did or "action" not in effect or ref in reported:
                continue
            status = self.dao.outcome(p.id, now_ms).status
            if status not in ("rejected", "expired", "cancelled"):
                continue
            a = dao_action.Action.from_map(effect["action"])
            why = str(effect.get("reason", "")) or p.title
            rule = "dao.members-did-not-let-it-through"
            act = _from_motion(a.kind, _Voted(a, why, p.id), ref, rule)
            if act is None:
                act = Action.make(a.kind, Reason.of(rule, f"{why} ({ref})", {"ref": ref}))
            out.append((act, Proposal(a.to_map(), why, "vote", None, ref=ref, why=f"was {status}")))
        return out

    def _lapse_refused(self, now_ms: int) -> None:
        """Record ``dao.motion.lapsed`` for each of the agent's open motions whose window
        has passed and whose action the DAO's guard now refuses."""
        for m in list(self.dao.state.motions.values()):
            if m.agent != self.signer.did or m.status != "open" or m.end_ms > now_ms:
                continue
            if self.dao.motion_refusal(m.id, now_ms) is None:
                continue  # due: the loop carries it out
            try:
                self.dao.lapse_motion(self.signer, m.id, now_ms)
            except PlazaError:
                # Another writer moved the state on (a member closed it, or executed it
                # once allowed again): what the ledger now says is what counts.
                self.dao.sync()


def _draft_facts(action: Action, a: dao_action.Action, verdict: NeedsVote) -> dict[str, Any]:
    """What a proposal's drafter is told: the action members vote on and why."""
    inner = a.params.get("params")
    params = dict(inner) if isinstance(inner, Mapping) else {}
    return {
        "kind": a.kind,
        "guard": verdict.reason,
        "reason": action.reason.text,
        "amount": a.amount,
        "accounts": a.accounts,
        "provider": a.provider,
        "params": params,
    }


def _dropped_refs(market: Market, did: str) -> set[str]:
    """The proposals whose end ``did`` has recorded (``dropped`` agent.action events)."""
    return {
        str(ev.payload.get("proposal", {}).get("ref", ""))
        for ev in market.ledger.read()
        if ev.type == EVENT_TYPE and ev.author_did == did and ev.payload.get("outcome") == "dropped"
    }


@dataclass(frozen=True)
class _Voted:
    action: dao_action.Action
    reason: str
    id: int
    opened_ms: int = 0


class LedgerProposer:
    """Without a DAO: the ledger record is the proposal; an optimistic one executes
    once its window has passed (nobody can veto), a voted one never: it expires after
    :data:`~plaza.agents.loop.VOTE_WINDOW_S` (nobody can vote either)."""

    def __init__(self, market: Market, signer: Signer) -> None:
        self.market = market
        self.signer = signer

    def propose(
        self, action: Action, guard: dao_action.Action, verdict: Verdict, now_ms: int
    ) -> Proposal | None:
        if self._waiting(guard.to_map()):
            return None
        after = now_ms + verdict.window_s * 1000 if isinstance(verdict, Optimistic) else None
        name = f"optimistic:{verdict.window_s}s" if isinstance(verdict, Optimistic) else "vote"
        why = "executes after its window (no DAO: nobody can veto)" if after else "needs a vote"
        return Proposal(guard.to_map(), action.reason.text, name, after, why=why)

    def _records(self) -> list[dict[str, Any]]:
        return [r for _, r in self._timed_records()]

    def _timed_records(self) -> list[tuple[int, dict[str, Any]]]:
        return [
            (ev.time, ev.payload)
            for ev in self.market.ledger.read()
            if ev.type == EVENT_TYPE and ev.author_did == self.signer.did
        ]

    def _waiting(self, intent: dict[str, Any]) -> bool:
        state = None
        for r in self._records():
            if _intent_key(r["action"]) == _intent_key(intent):
                state = r["outcome"]
        return state == "proposed"

    def due(self, now_ms: int) -> list[tuple[Action, str]]:
        latest: dict[str, dict[str, Any]] = {}
        for r in self._records():
            latest[_intent_key(r["action"])] = r
        out = []
        for r in latest.values():
            after = r.get("proposal", {}).get("executeAfterMs")
            if r["outcome"] != "proposed" or after is None or after > now_ms:
                continue
            out.append((_recorded_action(r), "optimistic-window-passed"))
        return out

    def resolved(self, now_ms: int) -> list[tuple[Action, Proposal]]:
        """Proposals waiting for a vote that cannot come, once their window is over."""
        latest: dict[str, tuple[int, dict[str, Any]]] = {}
        for t, r in self._timed_records():
            latest[_intent_key(r["action"])] = (t, r)
        out = []
        for t, r in latest.values():
            if r["outcome"] != "proposed" or r.get("proposal", {}).get("verdict") != "vote":
                continue
            if t + VOTE_WINDOW_S * 1000 > now_ms:
                continue
            why = f"expired unvoted after {VOTE_WINDOW_S}s (no DAO: nobody can vote)"
            proposal = Proposal(r["action"], r["reason"]["text"], "vote", None, why=why)
            out.append((_recorded_action(r), proposal))
        return out


def _recorded_action(r: dict[str, Any]) -> Action:
    """The agents' action an ``agent.action`` record holds."""
    params = r["action"]["params"]["params"]
    reason = Reason.of(r["reason"]["rule"], r["reason"]["text"], {"r": r["reason"]["digest"]})
    frozen = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
    return Action.make(r["action"]["kind"], reason, **frozen)


def _intent_key(guard_map: dict[str, Any]) -> str:
    """What a recorded action does, without when it was proposed or on whose leave."""
    params = guard_map.get("params", {}).get("params", {})
    what = {k: v for k, v in params.items() if k not in ("proposed_ms", "motion", "proposal")}
    return repr((guard_map.get("kind"), sorted(what.items())))

"""The agents against a live network: one pass of the reconcilers over a DAO's market and
its hosting services.

Theory of operation. :func:`run_once` is level-based end to end: every pass reads the
world afresh — the market's state from the ledger, the hosting providers' PDSs over
HTTP — and remembers nothing between passes except what is in the ledger. A pass

1. settles: :mod:`plaza.agents.settlement` funds escrow, settles ended epochs and asks
   for the penalties the market's ladder calls for;
2. migrates: providers the market offboarded (a migration need names each) are drained
   by :mod:`plaza.agents.migration`, the accounts moved with the DAO agent's migration
   key (:mod:`plaza.agents.hosting`), each move verified;
3. places: pending sign-ups (:class:`SignUp`) go by :mod:`plaza.agents.placement` to
   the contracted PDSs with free capacity, created there with ``createAccount``.

Every action goes through :class:`~plaza.agents.loop.AgentLoop` — the mandate guard on
the DAO's (or the market's) spending so far, and a ledger record with the verdict and
the reason. What the guard does not allow at once goes to members: with a DAO, an
optimistic action is a DAO motion any member may veto (``plaza dao veto N``) and a
voted one an ``agent-action`` proposal; a later pass carries it out once the window has
passed unvetoed or the vote has passed (:class:`DaoProposer`) — or, if the DAO's guard
then refuses the motion's action, closes the motion (``dao.motion.lapsed``) and drops
it, so the reconcilers decide afresh. Without a DAO the proposal is the ledger record
itself and executes after its window (:class:`LedgerProposer`; nobody can veto a market
without members).

The capacity reconciler does not run here: it needs a demand feed that a data directory
does not hold (it runs in the simulator, ``plaza sim``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plaza.agents import migration, placement, settlement
from plaza.agents.hosting import Hosting, HostingError, NotOptedInError
from plaza.agents.loop import (
    EVENT_TYPE,
    VOTE_WINDOW_S,
    AgentLoop,
    LedgerRecorder,
    LoopRecord,
    Proposal,
    limits_from_mandate,
)
from plaza.agents.migration import MigrationDesired, MigrationObserved
from plaza.agents.placement import PlacementDesired, PlacementObserved
from plaza.agents.settlement import Done, SettlementDesired, SettlementExecutor
from plaza.agents.types import Action, Reason
from plaza.atproto.crypto import PrivateKey
from plaza.dao import action as dao_action
from plaza.dao.mandate import NeedsVote, Optimistic, Spend, Verdict
from plaza.errors import InvalidInputError, PlazaError
from plaza.ledger.keystore import Signer
from plaza.market import Market
from plaza.market.journal import MARKET_ESCROW
from plaza.market.registry import BIDDABLE
from plaza.market.settle import funding_action, status_action

HOSTING = "hosting"


@dataclass(frozen=True)
class SignUp:
    """A new member waiting for an account (``region`` empty: any)."""

    handle: str
    email: str
    password: str = field(repr=False)
    region: str = ""


@dataclass
class Network:
    """The hosting providers as the agents see them now (index ``p`` throughout)."""

    dids: list[str]
    endpoints: list[str]
    regions: list[str]
    region: np.ndarray
    slots: np.ndarray
    hosted: np.ndarray
    accounts: list[list[str]]  # the accounts the agent may move, per provider
    reachable: np.ndarray
    accepting: np.ndarray
    leaving: np.ndarray

    def accounts_map(self) -> dict[str, int]:
        return {d: int(n) for d, n in zip(self.dids, self.hosted, strict=True) if n}


def observe_network(market: Market, hosting: Hosting, key: PrivateKey | None) -> Network:
    """Hosting providers from the market (status, region, contracted accounts) and their
    PDSs (reachable, accounts hosted, which of those list the migration key)."""
    st = market.state
    providers = sorted(d for d, p in st.providers.items() if HOSTING in p.services)
    regions = sorted({r for d in providers for r in st.providers[d].regions})
    leaving_dids = {n.provider for n in st.needs if n.kind == "migration"}
    held = st.accounts_by_provider(HOSTING)
    n = len(providers)
    net = Network(
        dids=providers,
        endpoints=[st.providers[d].endpoint for d in providers],
        regions=regions,
        region=np.array(
            [regions.index(st.providers[d].regions[0]) for d in providers], dtype=np.int64
        ),
        slots=np.array([held.get(d, 0) for d in providers], dtype=np.int64),
        hosted=np.zeros(n, dtype=np.int64),
        accounts=[[] for _ in providers],
        reachable=np.zeros(n, dtype=bool),
        accepting=np.zeros(n, dtype=bool),
        leaving=np.zeros(n, dtype=bool),
    )
    for p, did in enumerate(providers):
        prov = st.providers[did]
        net.leaving[p] = prov.status == "offboarded" or did in leaving_dids
        net.reachable[p] = hosting.reachable(net.endpoints[p])
        if net.reachable[p]:
            dids = hosting.accounts(net.endpoints[p])
            net.hosted[p] = len(dids)
            if net.leaving[p] and key is not None:
                # Only accounts whose members opted in can be moved by the agent.
                dids = [
                    a for a in dids if key.did_key() in hosting.did_data(a).get("rotationKeys", [])
                ]
                net.hosted[p] = len(dids)
            net.accounts[p] = sorted(dids)
        net.accepting[p] = bool(net.reachable[p]) and not net.leaving[p] and prov.status in BIDDABLE
    return net


class LiveExecutor:
    """Carries out actions on the live network and the market."""

    def __init__(
        self,
        market: Market,
        clock: Callable[[], int],
        *,
        hosting: Hosting | None = None,
        network: Network | None = None,
        signups: list[SignUp] | None = None,
        migration_key: PrivateKey | None = None,
    ) -> None:
        self.settlement = SettlementExecutor(market, clock)
        self.hosting = hosting
        self.network = network
        self.signups = list(signups or [])
        self.key = migration_key
        self.created: list[tuple[SignUp, str]] = []

    def execute(self, action: Action) -> Done:
        if action.kind in SettlementExecutor.kinds:
            return self.settlement.execute(action)
        if self.hosting is None or self.network is None:
            raise InvalidInputError(f"{action.kind} needs the live network (a directory URL)")
        if action.kind == "placement.assign":
            return self._place(action, self.hosting, self.network)
        if action.kind == "migration.batch":
            return self._migrate(action, self.hosting, self.network)
        raise InvalidInputError(f"a live run cannot execute {action.kind!r}")

    def _place(self, action: Action, hosting: Hosting, net: Network) -> Done:
        made = []
        for r, p, count in action["allocations"]:
            region = net.regions[int(r)]
            for _ in range(int(count)):
                i = next((i for i, s in enumerate(self.signups) if s.region in ("", region)), None)
                if i is None:
                    break
                s = self.signups.pop(i)
                did = hosting.create_account(
                    net.endpoints[int(p)], handle=s.handle, email=s.email, password=s.password
                )
                self.created.append((s, did))
                net.hosted[int(p)] += 1
                made.append(f"{s.handle} ({did}) on {net.endpoints[int(p)]}")
        return Done(f"created {len(made)} accounts: " + "; ".join(made), {"created": made})

    def _migrate(self, action: Action, hosting: Hosting, net: Network) -> Done:
        src = int(action["from"])
        if action["source"] != "host":
            raise HostingError(
                f"{net.endpoints[src]} is unreachable and no relay mirror is configured to "
                "restore its accounts from"
            )
        if self.key is None:
            raise InvalidInputError("moving accounts needs the agent's migration key")
        queue = list(net.accounts[src])
        moved, refused = [], []
        for dest, count in action["to"]:
            for _ in range(int(count)):
                if not queue:
                    break
                did = queue.pop(0)
                try:
                    m = hosting.move(did, net.endpoints[src], net.endpoints[int(dest)], self.key)
                except NotOptedInError:
                    refused.append(did)
                    continue
                if not m.ok:
                    failed = [k for k, v in m.checks.items() if not v]
                    raise HostingError(f"moved {did} but could not verify: {', '.join(failed)}")
                net.accounts[src].remove(did)
                net.hosted[src] -= 1
                net.hosted[int(dest)] += 1
                moved.append(
                    f"{did} -> {net.endpoints[int(dest)]} (root {m.root}, {m.records} records)"
                )
        detail = f"moved {len(moved)} accounts from {net.endpoints[src]}, verified: " + "; ".join(
            moved
        )
        if refused:
            detail += f"; {len(refused)} not opted in: {', '.join(refused)}"
        return Done(detail, {"moved": moved, "refused": refused})


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
    """Motions and proposals in the DAO; carried out once members let them through."""

    def __init__(self, market: Market, signer: Signer) -> None:
        assert market.dao is not None
        self.market = market
        self.dao: Any = market.dao.dao  # type: ignore[attr-defined]
        self.signer = signer

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
        pid = self.dao.propose(self.signer, kind, f"{action.kind}: {action.reason.text}"[:300],
                               now_ms, effect=payload)  # fmt: skip
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


@dataclass
class LiveAgent:
    """What one pass needs: the market (under its DAO if it has one), the agent's
    identity, and optionally the live network and the sign-ups waiting for it."""

    market: Market
    signer: Signer
    hosting: Hosting | None = None
    migration_key: PrivateKey | None = None
    signups: list[SignUp] = field(default_factory=list)
    settle: SettlementDesired = field(default_factory=SettlementDesired)
    migrate: MigrationDesired = field(default_factory=MigrationDesired)


def _spends(market: Market, now_ms: int) -> dict[str, list[Spend]]:
    if market.dao is not None:
        return {k: list(v) for k, v in market.dao.guard_state(now_ms).spends.items()}
    fundings = [
        Spend(e.time_ms, a)
        for e in market.state.journal.entries
        for acct, a in e.postings
        if acct == MARKET_ESCROW and a > 0
    ]
    return {"infrastructure": fundings}


def run_once(agent: LiveAgent, now_ms: int) -> list[LoopRecord]:
    """One pass of the reconcilers (see the module docstring); returns every record."""
    m = agent.market
    m.sync()
    mandate = m.mandate
    net = observe_network(m, agent.hosting, agent.migration_key) if agent.hosting else None
    executor = LiveExecutor(
        m,
        lambda: now_ms,
        hosting=agent.hosting,
        network=net,
        signups=agent.signups,
        migration_key=agent.migration_key,
    )
    proposer = (
        DaoProposer(m, agent.signer) if m.dao is not None else LedgerProposer(m, agent.signer)
    )
    dids = net.dids if net is not None else []
    loop = AgentLoop(
        mandate,
        executor,
        LedgerRecorder(m.ledger, agent.signer.key, agent.signer.did),
        lambda p: dids[p],
        proposer,
    )
    for category, spends in _spends(m, now_ms).items():
        loop.add_spends(category, spends)
    accounts = net.accounts_map() if net is not None else {}
    total = int(net.hosted.sum()) if net is not None else 0
    limits = limits_from_mandate(mandate, total)
    obs = settlement.observe(m.state, now_ms, agent.settle)
    records = loop.submit(settlement.decide(obs, agent.settle, limits), now_ms, accounts)
    if any(r.action.kind == "settlement.settle" and r.outcome == "executed" for r in records):
        # Settling changed the providers' standing: the follow-ups in the same pass.
        obs = settlement.observe(m.state, now_ms, agent.settle)
        records += loop.submit(settlement.decide(obs, agent.settle, limits), now_ms, accounts)
    if agent.hosting is None:
        return records
    m.sync()
    net = observe_network(m, agent.hosting, agent.migration_key)
    executor.network, dids[:] = net, net.dids
    mobs = MigrationObserved(
        0, net.hosted, net.slots, net.region, np.where(net.reachable, 0, 1), ~net.reachable,
        net.leaving,
    )  # fmt: skip
    records += loop.submit(
        migration.decide(mobs, agent.migrate, limits), now_ms, net.accounts_map()
    )
    if executor.signups:
        pending = np.zeros(max(1, len(net.regions)), dtype=np.int64)
        for s in executor.signups:
            pending[net.regions.index(s.region) if s.region in net.regions else 0] += 1
        pobs = PlacementObserved(0, net.hosted, net.slots, net.region, net.accepting, pending)
        records += loop.submit(
            placement.decide(pobs, PlacementDesired(), limits), now_ms, net.accounts_map()
        )
    agent.signups[:] = executor.signups
    return records

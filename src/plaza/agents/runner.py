"""The agents against a live network: one pass of the reconcilers over a DAO's market and
its hosting services.

Theory of operation. :func:`run_once` is level-based end to end: every pass reads the
world afresh — the market's state from the ledger, the hosting providers' PDSs over
HTTP — and remembers nothing between passes except what is in the ledger. A pass

1. settles: :mod:`plaza.agents.settlement` funds escrow, settles ended epochs and asks
   for the penalties the market's ladder calls for;
2. migrates: providers the market offboarded (a migration need names each) are drained
   by :mod:`plaza.agents.migration`, the accounts moved with the DAO agent's migration
   key (:mod:`plaza.agents.hosting`), each move verified; a provider whose PDS does
   not answer is restored instead: its accounts (those an archive holds whose DID names
   it and lists the migration key) are rebuilt on other PDSs from the archive's copies
   (:meth:`~plaza.agents.hosting.Hosting.restore`) — at once, or, with
   :attr:`LiveAgent.dead_after_s`, once it has been unreachable that long (counted from
   the first pass that found it down; this is the one thing a pass remembers, in
   :attr:`LiveAgent.down_since`, and a restarted agent counts afresh);
3. places: pending sign-ups (:class:`SignUp`) go by :mod:`plaza.agents.placement` to
   the contracted PDSs with free capacity, created there with ``createAccount``
   (:func:`place`, which the entryway calls for each sign-up it takes); a member who
   consents (:attr:`SignUp.dao_recovery`) gets the agent's migration key as the
   account's recovery key, so the agents can restore it if its host dies;
4. buys capacity (when :attr:`LiveAgent.capacity` holds a plan):
   :mod:`plaza.agents.live_capacity` compares the hosting capacity under contract on
   live providers plus the capacity coming with what the network wants — the accounts
   hosted and waiting over the plan's threshold, and at least the plan's floor — opens
   a request for bids for the difference (so a dead or leaving provider's capacity is
   replaced, once), awards it once bidding has closed, and signs for the DAO the
   contracts their providers signed.

Every action goes through :class:`~plaza.agents.loop.AgentLoop` — the mandate guard on
the DAO's (or the market's) spending so far, and a ledger record with the verdict and
the reason. What the guard does not allow at once goes to members through a proposer
(:mod:`plaza.agents.proposers`): with a DAO, an optimistic action is a DAO motion any
member may veto (``plaza dao veto N``) and a voted one an ``agent-action`` proposal; a
later pass carries it out once the window has passed unvetoed or the vote has passed —
or, if the DAO's guard then refuses the motion's action, closes the motion
(``dao.motion.lapsed``) and drops it, so the reconcilers decide afresh. Without a DAO
the proposal is the ledger record itself and executes after its window (nobody can veto
a market without members).

The simulator's capacity reconciler (:mod:`plaza.agents.capacity`, reserved and
on-demand units against a demand trace) does not run here; the live one counts accounts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from plaza.agents import live_capacity, migration, placement, settlement
from plaza.agents.hosting import Hosting, HostingError, Moved, NotOptedInError
from plaza.agents.live_capacity import CapacityExecutor, LiveCapacityDesired, LoadHistory
from plaza.agents.loop import (
    AgentLoop,
    LedgerRecorder,
    LoopRecord,
    Proposal,
    Proposer,
    limits_from_mandate,
)
from plaza.agents.migration import MigrationDesired, MigrationObserved
from plaza.agents.placement import PlacementDesired, PlacementObserved
from plaza.agents.proposers import DaoProposer, LedgerProposer
from plaza.agents.settlement import Done, SettlementDesired, SettlementExecutor
from plaza.agents.types import Action
from plaza.atproto.crypto import PrivateKey
from plaza.dao import action as dao_action
from plaza.dao.mandate import Spend, Verdict
from plaza.dao.money import Currency, currency_for
from plaza.errors import InvalidInputError
from plaza.ledger.keystore import Signer
from plaza.market import Market
from plaza.market.dao_port import DaoLink
from plaza.market.journal import MARKET_ESCROW
from plaza.market.registry import BIDDABLE

HOSTING = "hosting"


@dataclass(frozen=True)
class SignUp:
    """A new member waiting for an account (``region`` empty: any). ``recovery_key``, a
    did:key, is listed first among the new DID's rotation keys (createAccount's
    ``recoveryKey``; empty: none)."""

    handle: str
    email: str
    password: str = field(repr=False)
    region: str = ""
    recovery_key: str = ""
    """A did:key listed first among the account's rotation keys (empty: none)."""
    dao_recovery: bool = False
    """The member lets the DAO's agent hold a rotation key of the account (to restore it
    from the archive if its host dies)."""


@dataclass(frozen=True)
class Created:
    """A sign-up placed: the host it went to and the host's ``createAccount`` answer
    (the session and the DID document)."""

    signup: SignUp
    host: str
    answer: dict[str, Any] = field(repr=False)

    @property
    def did(self) -> str:
        return str(self.answer["did"])


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


def observe_network(
    market: Market, hosting: Hosting, key: PrivateKey | None, archive: str | None = None
) -> Network:
    """Hosting providers from the market (status, region, contracted accounts) and their
    PDSs (reachable, accounts hosted, which of those list the migration key). For a PDS
    that does not answer, the accounts are those ``archive`` holds whose DID names it
    and lists the migration key (none without an archive)."""
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
        if net.reachable[p] or archive is not None:
            if net.reachable[p]:
                dids = hosting.accounts(net.endpoints[p])
            else:
                assert archive is not None
                dids = hosting.archived_accounts(archive, net.endpoints[p])
            net.hosted[p] = len(dids)
            if (net.leaving[p] or not net.reachable[p]) and key is not None:
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
        archive: str | None = None,
        credentials: Callable[[str], str | None] | None = None,
    ) -> None:
        self.settlement = SettlementExecutor(market, clock, currency=market_currency(market))
        self.capacity = CapacityExecutor(market, clock)
        self.hosting = hosting
        self.network = network
        self.signups = list(signups or [])
        self.key = migration_key
        self.archive = archive
        self.credentials = credentials
        self.created: list[Created] = []

    def execute(self, action: Action) -> Done:
        if action.kind in SettlementExecutor.kinds:
            return self.settlement.execute(action)
        if action.kind in CapacityExecutor.kinds:
            return self.capacity.execute(action)
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
                host = net.endpoints[int(p)]
                dao_key = self.key.did_key() if self.key is not None and s.dao_recovery else None
                answer = hosting.create_account(
                    host,
                    handle=s.handle,
                    email=s.email,
                    password=s.password,
                    recovery_key=s.recovery_key or dao_key,
                )
                self.created.append(Created(s, host, answer))
                net.hosted[int(p)] += 1
                made.append(f"{s.handle} ({answer['did']}) on {host}")
        return Done(f"created {len(made)} accounts: " + "; ".join(made), {"created": made})

    def _migrate(self, action: Action, hosting: Hosting, net: Network) -> Done:
        src = int(action["from"])
        archive = self.archive
        if action["source"] != "host" and archive is None:
            raise HostingError(
                f"{net.endpoints[src]} is unreachable and no archive is configured to "
                "restore its accounts from (plaza agents run --archive URL)"
            )
        if self.key is None:
            raise InvalidInputError("moving accounts needs the agent's migration key")
        key = self.key

        def move(did: str, dest: str) -> Moved:
            # The entryway's escrowed host password, so its member logs in as before.
            password = self.credentials(did) if self.credentials is not None else None
            if archive is None or action["source"] == "host":
                return hosting.move(did, net.endpoints[src], dest, key, password=password)
            return hosting.restore(did, archive, dest, key, password=password)

        queue = list(net.accounts[src])
        moved, refused = [], []
        for dest, count in action["to"]:
            for _ in range(int(count)):
                if not queue:
                    break
                did = queue.pop(0)
                try:
                    m = move(did, net.endpoints[int(dest)])
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
        how = "moved" if action["source"] == "host" else f"restored from {archive}"
        detail = f"{how} {len(moved)} accounts of {net.endpoints[src]}, verified: " + "; ".join(
            moved
        )
        if refused:
            detail += f"; {len(refused)} not opted in: {', '.join(refused)}"
        return Done(detail, {"moved": moved, "refused": refused})


@dataclass
class LiveAgent:
    """What one pass needs: the market (under its DAO if it has one), the agent's
    identity, and optionally the live network and the sign-ups waiting for it."""

    market: Market
    signer: Signer
    hosting: Hosting | None = None
    migration_key: PrivateKey | None = None
    archive_url: str | None = None  # where a gone host's accounts are restored from
    signups: list[SignUp] = field(default_factory=list)
    # A moved or restored account's host password (the entryway's escrow), or None: a
    # random one.
    credentials: Callable[[str], str | None] | None = None
    settle: SettlementDesired = field(default_factory=SettlementDesired)
    migrate: MigrationDesired = field(default_factory=MigrationDesired)
    #: The hosting capacity plan (None: the agents buy no capacity).
    capacity: LiveCapacityDesired | None = None
    load_history: LoadHistory = field(default_factory=LoadHistory)
    dead_after_s: int | None = None
    """Seconds a PDS may be unreachable before its accounts are restored elsewhere;
    None: restored as soon as it does not answer."""
    down_since: dict[str, int] = field(default_factory=dict)
    """Provider DID -> when (Unix ms) a pass first found its PDS unreachable."""
    drafter: Callable[[dict[str, Any]], str] | None = None
    """Writes the body of each proposal filed for a members' vote from the action's
    facts (``plaza agents run --assist``); None: proposals carry no body."""


def outage(agent: LiveAgent, net: Network, now_ms: int) -> MigrationObserved:
    """What the migration reconciler sees of each host's outage, as of ``now_ms``:
    with :attr:`LiveAgent.dead_after_s`, a host is failing once it has been unreachable
    that many seconds (``down_for`` counts seconds, ``sla_down_steps`` is the limit);
    without, an unreachable host is gone at once. Updates ``agent.down_since``."""
    for p, did in enumerate(net.dids):
        if net.reachable[p]:
            agent.down_since.pop(did, None)
        else:
            agent.down_since.setdefault(did, now_ms)
    if agent.dead_after_s is None:
        down_for = np.where(net.reachable, 0, 1)
        gone = ~net.reachable
    else:
        down_for = np.array(
            [0 if net.reachable[p] else 1 + (now_ms - agent.down_since[d]) // 1000
             for p, d in enumerate(net.dids)],
            dtype=np.int64,
        )  # fmt: skip
        gone = np.zeros(len(net.dids), dtype=bool)
    return MigrationObserved(
        0, net.hosted, net.slots, net.region, down_for, gone, net.leaving
    )  # fmt: skip


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


def market_currency(market: Market) -> Currency:
    """The market's currency; under a DAO (a :class:`DaoLink`) its constitution says the
    minor digits."""
    link = market.dao
    return currency_for(
        market.state.currency or market.mandate.currency,
        link.dao.state.constitution if isinstance(link, DaoLink) else None,
    )


class _FilingOnly:
    """A proposer that files what the guard leaves to members and carries out nothing:
    what members let through is carried out by a pass of :func:`run_once`, once."""

    def __init__(self, inner: Proposer) -> None:
        self.inner = inner

    def propose(
        self, action: Action, guard: dao_action.Action, verdict: Verdict, now_ms: int
    ) -> Proposal | None:
        return self.inner.propose(action, guard, verdict, now_ms)

    def due(self, now_ms: int) -> list[tuple[Action, str]]:
        return []

    def resolved(self, now_ms: int) -> list[tuple[Action, Proposal]]:
        return []


def _loop(
    agent: LiveAgent, executor: LiveExecutor, dids: list[str], now_ms: int, *, carry_out: bool
) -> AgentLoop:
    """The agent loop of one pass, with the spending so far; ``carry_out``: it also
    carries out what members have let through since."""
    m = agent.market
    proposer: Proposer = (
        DaoProposer(m, agent.signer, agent.drafter)
        if m.dao is not None
        else LedgerProposer(m, agent.signer)
    )
    loop = AgentLoop(
        m.mandate,
        executor,
        LedgerRecorder(m.ledger, agent.signer.key, agent.signer.did),
        lambda p: dids[p],
        proposer if carry_out else _FilingOnly(proposer),
        currency=market_currency(m),
    )
    for category, spends in _spends(m, now_ms).items():
        loop.add_spends(category, spends)
    return loop


def place(
    agent: LiveAgent,
    signups: list[SignUp],
    now_ms: int,
    created: list[Created] | None = None,
) -> list[LoopRecord]:
    """Place ``signups`` on the contracted PDSs with free capacity: the placement
    reconciler decides over the network as observed now, the loop puts each piece to the
    mandate guard, creates the allowed accounts and records every piece with its reason.
    The placed sign-ups leave ``signups``; each account made is appended to ``created``.
    What the guard leaves to members is filed (a DAO motion or proposal) and carried out
    by a later :func:`run_once`. Needs the live network (``agent.hosting``)."""
    if agent.hosting is None:
        raise InvalidInputError("placement needs the live network (a directory URL)")
    if not signups:
        return []
    m = agent.market
    m.sync()
    net = observe_network(m, agent.hosting, agent.migration_key, agent.archive_url)
    executor = LiveExecutor(
        m,
        lambda: now_ms,
        hosting=agent.hosting,
        network=net,
        signups=signups,
        migration_key=agent.migration_key,
    )
    loop = _loop(agent, executor, net.dids, now_ms, carry_out=False)
    limits = limits_from_mandate(m.mandate, int(net.hosted.sum()), market_currency(m))
    pending = np.zeros(max(1, len(net.regions)), dtype=np.int64)
    for s in signups:
        pending[net.regions.index(s.region) if s.region in net.regions else 0] += 1
    pobs = PlacementObserved(0, net.hosted, net.slots, net.region, net.accepting, pending)
    records = loop.submit(
        placement.decide(pobs, PlacementDesired(), limits), now_ms, net.accounts_map()
    )
    signups[:] = executor.signups
    if created is not None:
        created.extend(executor.created)
    return records


def run_once(agent: LiveAgent, now_ms: int) -> list[LoopRecord]:
    """One pass of the reconcilers (see the module docstring); returns every record."""
    m = agent.market
    m.sync()
    mandate = m.mandate
    money = market_currency(m)
    net = (
        observe_network(m, agent.hosting, agent.migration_key, agent.archive_url)
        if agent.hosting
        else None
    )
    executor = LiveExecutor(
        m,
        lambda: now_ms,
        hosting=agent.hosting,
        network=net,
        signups=agent.signups,
        migration_key=agent.migration_key,
        archive=agent.archive_url,
        credentials=agent.credentials,
    )
    dids = net.dids if net is not None else []
    loop = _loop(agent, executor, dids, now_ms, carry_out=True)
    accounts = net.accounts_map() if net is not None else {}
    total = int(net.hosted.sum()) if net is not None else 0
    limits = limits_from_mandate(mandate, total, money)
    obs = settlement.observe(m.state, now_ms, agent.settle)
    records = loop.submit(settlement.decide(obs, agent.settle, limits), now_ms, accounts)
    if any(r.action.kind == "settlement.settle" and r.outcome == "executed" for r in records):
        # Settling changed the providers' standing: the follow-ups in the same pass.
        obs = settlement.observe(m.state, now_ms, agent.settle)
        records += loop.submit(settlement.decide(obs, agent.settle, limits), now_ms, accounts)
    if agent.hosting is None:
        return records
    m.sync()
    net = observe_network(m, agent.hosting, agent.migration_key, agent.archive_url)
    executor.network, dids[:] = net, net.dids
    mobs = outage(agent, net, now_ms)
    desired = (
        agent.migrate
        if agent.dead_after_s is None
        else MigrationDesired(sla_down_steps=agent.dead_after_s, unit="s")
    )
    records += loop.submit(migration.decide(mobs, desired, limits), now_ms, net.accounts_map())
    # A placement a DAO motion let through ran above with these sign-ups; the rest wait.
    agent.signups[:] = executor.signups
    # ``net`` was observed before placing: the sign-ups count as load placed or not.
    waiting = len(agent.signups)
    records += place(agent, agent.signups, now_ms)
    if agent.capacity is not None:
        records += _capacity(
            agent, agent.capacity, loop=loop, net=net, waiting=waiting, now_ms=now_ms
        )
    return records


def _capacity(
    agent: LiveAgent,
    plan: LiveCapacityDesired,
    *,
    loop: AgentLoop,
    net: Network,
    waiting: int,
    now_ms: int,
) -> list[LoopRecord]:
    """The capacity step: observe, decide, and put the actions through ``loop``."""
    m = agent.market
    m.sync()
    hosted = int(net.hosted.sum())
    growth = agent.load_history.add(now_ms, hosted + waiting, plan.growth_window_s)
    usable = {d: bool(net.reachable[p] and not net.leaving[p]) for p, d in enumerate(net.dids)}
    why = {
        d: "its PDS does not answer" if not net.reachable[p] else "it is leaving"
        for p, d in enumerate(net.dids)
        if not usable[d]
    }
    obs = live_capacity.observe(
        m.state, usable_provider=usable, why_lost=why, hosted=hosted, waiting=waiting,
        growth_per_s=growth, now_ms=now_ms, region=net.regions[0] if net.regions else "",
    )  # fmt: skip
    limits = limits_from_mandate(m.mandate, hosted, market_currency(m))
    return loop.submit(live_capacity.decide(obs, plan, limits), now_ms, net.accounts_map())

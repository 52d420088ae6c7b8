"""The simulated providers on the real market: the executor the ``agent`` policy uses.

Theory of operation. :class:`Marketplace` puts a real :class:`plaza.market.Market` (on
the run's in-memory ledger) between the agents and the simulated world. At set-up the
simulated providers and probers register with their own keys, and the agent buys a
*standing offer* of on-demand capacity from every provider through a request for bids
(pay as you go: nothing is committed until capacity is called off). Then, for each
action the agent loop lets through:

* ``capacity.procure`` of reserved capacity is one request for bids (the quantity in
  lots of ``unit`` capacity units, the scenario's minimum term, the reserved price as
  the maximum), a signed bid from every provider that can serve, the market's
  deterministic award under the mandate's share and HHI limits, and a signed contract
  per winning bid, approved for the DAO as the guard's verdict allows. The world gets
  the contracted capacity the market awarded — which providers, how much — not what the
  reconciler had pencilled in;
* ``capacity.procure`` of on-demand capacity is a call-off under the providers' standing
  offers, for the steps asked;
* ``capacity.release`` ends contracts, or releases part of one, once their minimum
  term has run (the market refuses anything earlier);
* placements and migrations go to the world's account plane; settlement actions to
  :class:`~plaza.agents.settlement.SettlementExecutor`.

At the end of every epoch (a day) the simulated providers sign one usage report per
contract that ran — reserved capacity held, on-demand capacity called off, in lot-steps
— which an independent prober observes, and every prober signs one probe document with
its samples of every provider in every window of the epoch (a window is down when the
provider could not serve in that step; one prober is slightly broken and the quorum
outvotes it). The settlement reconciler then settles the epoch through the market. When
the trace ends, running contracts are ended as soon as their minimum term allows and
the remaining epochs are evidenced and settled, so the run's cost is what the market
invoiced for it, to the cent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from plaza.agents.settlement import SettlementExecutor
from plaza.agents.types import Action
from plaza.atproto.crypto import PrivateKey
from plaza.dao.mandate import Mandate
from plaza.errors import ConflictError, InvalidInputError
from plaza.ledger import Event, Head, Ledger, MemoryEventStore
from plaza.market import Market, MarketParams
from plaza.market.contracts import Contract
from plaza.market.invoicing import outstanding
from plaza.market.registry import BIDDABLE
from plaza.sim.outcome import Outcome
from plaza.sim.parties import POOL, SERVICE, Parties, provider_did
from plaza.sim.world import World

#: Standing offers and reserved contracts run at most this long (a reserved contract
#: normally ends when the agent releases it, after its minimum term).
HORIZON_S = 365 * 86_400
PROBERS = 3


class SimEventStore(MemoryEventStore):
    """The in-memory store, also keeping every appended event decoded: the agent loop and
    the market share the run's ledger, and each catches up with what the other wrote
    before writing (decoding tens of thousands of events again would dominate a run)."""

    def __init__(self) -> None:
        super().__init__()
        self._events: list[Event] = []

    def append(self, events: Sequence[Event]) -> Head:
        head = super().append(events)
        self._events.extend(events)
        return head

    def read(self, start: int = 0, stop: int | None = None) -> Iterator[Event]:
        yield from self._events[start:stop]


@dataclass
class _Held:
    """A reserved contract as the simulator tracks it: lots held from step to step."""

    market_id: str
    provider: int
    world_id: int
    segments: list[list[int]] = field(default_factory=list)  # [from, to (-1 open), lots]
    pending_until_ms: int = 0  # an optimistic award waits for its veto window

    def open_lots(self) -> int:
        return self.segments[-1][2] if self.segments and self.segments[-1][1] < 0 else 0

    def close(self, step: int) -> None:
        if self.segments and self.segments[-1][1] < 0:
            self.segments[-1][1] = step

    def lot_steps(self, lo: int, hi: int) -> int:
        total = 0
        for a, b, lots in self.segments:
            end = hi if b < 0 else min(b, hi)
            total += max(0, end - max(a, lo)) * lots
        return total


class Marketplace:
    """The executor between the agent loop and the world (see the module docstring)."""

    def __init__(
        self,
        world: World,
        ledger: Ledger,
        key: PrivateKey,
        mandate: Mandate,
        *,
        seed: int,
        base_ms: int,
        settled: Callable[[Any], None] | None = None,
    ) -> None:
        self.world = world
        self.base_ms = base_ms
        self.step_ms = world.step_seconds * 1000
        self.wpe = world.steps_per_day
        self.unit = world.scenario.unit
        self.market = Market(ledger, operator_did=key.did_key(), operator_key=key, mandate=mandate)
        self.parties = Parties(world.cap.size, PROBERS, seed, market=self.market.operator_did)
        self.now_ms = base_ms
        self.settlement = SettlementExecutor(self.market, lambda: self.now_ms, settled)
        self._held: dict[str, _Held] = {}
        self._by_world: dict[int, _Held] = {}
        self._standing: dict[int, str] = {}  # provider -> its standing contract
        self._od: dict[int, NDArray[np.int64]] = defaultdict(
            lambda: np.zeros(world.cap.size, dtype=np.int64)
        )  # epoch -> lot-steps called off per provider
        self._evidenced: set[int] = set()
        self._awaiting: list[_Held] = []  # optimistic awards in their veto window
        self.rfbs = 0

    # -- time ------------------------------------------------------------------------
    def at_step(self, step: int) -> int:
        """Unix ms of the start of ``step``."""
        return self.base_ms + step * self.step_ms

    def lots(self, units: float) -> int:
        return max(0, round(units / self.unit))

    # -- set-up ----------------------------------------------------------------------
    def setup(self) -> None:
        """Open the market, register everyone, and buy the standing on-demand offers."""
        w = self.world
        t0 = self.base_ms - 60_000
        self.now_ms = t0
        self.market.open(
            MarketParams(
                genesis_ms=self.base_ms,
                epoch_s=self.wpe * w.step_seconds,
                window_s=w.step_seconds,
            ),
            t0,
        )
        day = w.res_lot_price * self.wpe // 1_000_000
        for p in range(w.cap.size):
            cap = self.lots(float(w.cap[p]))
            bond = max(1, cap * day // 10)
            doc = self.parties.registration(
                p,
                capacity=cap,
                lot_price=w.res_lot_price,
                region=w.scenario.regions[int(w.region[p]) % len(w.scenario.regions)],
                bond=bond,
                now_ms=t0,
            )
            did = self.market.register_provider(doc, t0)
            self.market.receive_bond(did, bond, f"sim-bond-{p}", t0)  # paid up front
        for i in range(PROBERS):
            self.market.register_provider(self.parties.prober_registration(i, t0), t0)
        bidders = [p for p in range(w.cap.size) if not w.gone[p]]
        caps = {p: self.lots(float(w.cap[p])) for p in bidders}
        contracts = self._buy(
            quantity=sum(caps.values()),
            start_step=0,
            lot_price=w.od_lot_price,
            extra={"standing": True, "profile": {}},
            offers=caps,
        )
        for c in contracts:
            self._standing[self._index(c.provider)] = c.id

    def _index(self, did: str) -> int:
        return self.parties.index(did)

    def _buy(
        self,
        *,
        quantity: int,
        start_step: int,
        lot_price: int,
        extra: dict[str, Any],
        offers: dict[int, int],
    ) -> list[Contract]:
        """One request for bids, a signed bid per offer, the award, signed contracts.
        Returns the contracts the award made (approved unless the guard made them wait)."""
        now = self.now_ms
        start_ms = self.at_step(start_step)
        spec: dict[str, Any] = {
            "service": SERVICE,
            "quantity": quantity,
            "region": POOL,
            "start_ms": start_ms,
            "term_s": HORIZON_S,
            "max_prices": {"account": 0, "request": lot_price},
            "sla": {"availability_ppm": 999_000, "latency_p95_ms": 1_000},
            "max_bids": len(offers),
            "deadline_ms": start_ms,
            "profile": {"request": self.wpe},
            "notice_s": 0,
            "exit_fee": 0,
            **extra,
        }
        rfb = self.market.create_rfb(spec, now)
        self.rfbs += 1
        for p, q in sorted(offers.items()):
            doc = self.parties.bid(
                p, rfb.id, quantity=min(q, quantity), lot_price=lot_price, expires_ms=start_ms
            )
            self.market.submit_bid(doc, now)
        _, contracts = self.market.award(rfb.id, now)
        out = []
        for c in contracts:
            p = self._index(c.provider)
            self.market.sign_contract(self.parties.terms(p, c.id, c.terms_digest()), now)
            if c.verdict == "allow":
                c = self.market.approve_contract(c.id, now)
            out.append(c)
        return out

    # -- what the reconcilers observe -------------------------------------------------
    def accepting(self) -> NDArray[np.bool_]:
        """Providers the agent may buy from: reachable, not leaving, in good standing,
        with a standing offer to call on-demand capacity off."""
        w = self.world
        ok = w.accepting().copy()
        providers = self.market.state.providers
        contracts = self.market.state.contracts
        for p in range(ok.size):
            cid = self._standing.get(p)
            if (
                cid is None
                or contracts[cid].status != "active"
                or providers[provider_did(p)].status not in BIDDABLE
            ):
                ok[p] = False
        return ok

    def offboarded(self) -> NDArray[np.bool_]:
        """Providers the market has offboarded (a migration need names each)."""
        st = self.market.state.providers
        return np.array(
            [st[provider_did(p)].status == "offboarded" for p in range(self.world.cap.size)]
        )

    # -- the executor ----------------------------------------------------------------
    def execute(self, action: Action) -> Outcome:
        if action.kind == "capacity.procure":
            if action["contract"] == "reserved":
                return self._reserve(action)
            return self._call_off(action)
        if action.kind == "capacity.release":
            return self._release(action)
        if action.kind in SettlementExecutor.kinds:
            done = self.settlement.execute(action)
            return Outcome(True, done.detail, done.data)
        return self.world.execute(action)

    def _reserve(self, action: Action) -> Outcome:
        w = self.world
        # ``start`` is the earliest start: a purchase carried out after its veto window
        # starts its term as soon as the lead time allows then (see World._procure).
        # The market takes bids until the start, which must be after now (the start of
        # step ``w.now + 1``): with a lead time of one step (hour-long steps), a
        # reservation starts two steps on.
        start = max(int(action["start"]), w.now + max(w.res_lead, 2))
        quantity = self.lots(float(action["units"]))
        if quantity < 1:
            raise InvalidInputError("a reservation needs at least one lot")
        ok = self.accepting()
        offers = {}
        for i in np.nonzero(ok)[0].tolist():
            spare = self.market.state.spare_capacity(provider_did(i), SERVICE)
            if spare > 0:
                offers[i] = spare
        if not offers:
            raise ConflictError("no provider can offer reserved capacity now")
        term = max(int(action.get("term_steps", w.res_term)), w.res_term)
        contracts = self._buy(
            quantity=quantity,
            start_step=start,
            lot_price=w.res_lot_price,
            extra={"min_term_s": term * w.step_seconds},
            offers=offers,
        )
        got = []
        for c in contracts:
            p = self._index(c.provider)
            if c.status == "active":
                wid = w.add_contract(p, c.quantity * self.unit, start, start + term)
                held = _Held(c.id, p, wid, [[start, -1, c.quantity]])
            else:  # optimistic: signed for the DAO once its veto window has passed
                held = _Held(c.id, p, -1, [], c.awarded_ms + c.window_s * 1000)
                self._awaiting.append(held)
            self._held[c.id] = held
            if held.world_id >= 0:
                self._by_world[held.world_id] = held
            got.append(f"{c.id} p{p}:{c.quantity}")
        rfb = contracts[0].rfb if contracts else f"rfb-{self.rfbs}"
        return Outcome(
            bool(contracts),
            f"{rfb}: {quantity} lots asked, awarded {', '.join(got) or 'nothing'}",
            {"contracts": [c.id for c in contracts]},
        )

    def _call_off(self, action: Action) -> Outcome:
        w = self.world
        start = int(action["start"])
        term = max(int(action.get("term_steps", 1)), w.od_term)
        alloc = [(int(p), float(u)) for p, u in action["allocations"]]
        for p, _ in alloc:
            cid = self._standing.get(p)
            if cid is None or self.market.state.contracts[cid].status != "active":
                raise ConflictError(f"p{p} has no standing offer to call capacity off")
        out = w.execute(action)
        for p, u in alloc:
            lots = self.lots(u)
            for k in range(term):
                self._od[(start + k) // self.wpe][p] += lots
        return out

    def _release(self, action: Action) -> Outcome:
        w = self.world
        # The earliest step, as a reservation's start: a release carried out after its
        # veto window takes effect from the next step then.
        at = max(int(action.get("at", w.now + 1)), w.now + 1)
        if self.at_step(at) != self.now_ms:
            raise ConflictError("a release takes effect from the next step")
        total = 0.0
        for wid, units in action["releases"]:
            held = self._by_world.get(int(wid))
            if held is None or int(wid) not in w.contracts:
                raise ConflictError(f"contract {wid} is not held")
            lots = self.lots(float(units))
            have = held.open_lots()
            reason = f"release {lots} of {have} lots: {action.reason.rule}"
            if lots >= have:
                self.market.end_contract(held.market_id, reason, self.now_ms)
                held.close(at)
            else:
                self.market.release(held.market_id, lots, reason, self.now_ms)
                held.close(at)
                held.segments.append([at, -1, have - lots])
            total += w.shrink_contract(int(wid), lots * self.unit)
        return Outcome(True, f"released {total:g} units from step {at}")

    def tick(self) -> None:
        """Approve optimistic awards whose veto window has passed (nobody vetoes here)."""
        w = self.world
        due = [h for h in self._awaiting if h.pending_until_ms <= self.now_ms]
        if not due:
            return
        self._awaiting = [h for h in self._awaiting if h.pending_until_ms > self.now_ms]
        for held in due:
            c = self.market.approve_contract(held.market_id, self.now_ms)
            start = max(w.now + 1, (c.start_ms - self.base_ms) // self.step_ms)
            end = (c.releasable_at() - self.base_ms) // self.step_ms
            held.world_id = w.add_contract(held.provider, c.quantity * self.unit, start, end)
            held.segments.append([start, -1, c.quantity])
            held.pending_until_ms = 0
            self._by_world[held.world_id] = held

    # -- evidence --------------------------------------------------------------------
    def file_evidence(self, epoch: int) -> int:
        """The providers' usage reports and the probers' samples for ``epoch`` (which
        has ended); returns the documents filed."""
        if epoch in self._evidenced:
            return 0
        self._evidenced.add(epoch)
        w = self.world
        lo, hi = epoch * self.wpe, (epoch + 1) * self.wpe
        usable = self._usable(lo, hi)
        docs = 0
        for i in range(PROBERS):
            doc = self.parties.probe(
                i, epoch, lo, usable, false_down=0.005 if i == PROBERS - 1 else 0.0
            )
            self.market.report_probes(doc, self.now_ms)
            docs += 1
        reports: list[tuple[int, str, int]] = []
        for held in self._held.values():
            n = held.lot_steps(lo, hi)
            if n > 0:
                reports.append((held.provider, held.market_id, n))
        od = self._od.pop(epoch, None)
        if od is not None:
            for i in np.nonzero(od)[0].tolist():
                reports.append((i, self._standing[i], int(od[i])))
        for p, cid, n in sorted(reports, key=lambda r: (len(r[1]), r[1])):
            if w.gone[p]:
                continue  # a provider that vanished files nothing, and is paid nothing
            self.market.report_usage(self.parties.usage(p, cid, epoch, n), self.now_ms)
            self.market.report_observation(self.parties.observation(0, cid, epoch, n), self.now_ms)
            docs += 2
        return docs

    def _usable(self, lo: int, hi: int) -> NDArray[np.float64]:
        log = self.world.usable_log
        rows = [log[t] if t < len(log) else None for t in range(lo, hi)]
        after = np.where(self.world.gone, 0.0, 1.0)
        return np.array([r if r is not None else after for r in rows])

    # -- the end of the run ----------------------------------------------------------
    def wind_down(self, settle: Callable[[int], None]) -> None:
        """End every reserved contract as soon as its minimum term allows, evidence
        every remaining epoch and settle it (``settle(now_ms)`` runs the settlement
        reconciler). Called after the world's last step."""
        w = self.world
        end = w.now + 1
        ends: dict[str, int] = {}
        for held in self._held.values():
            if held.world_id >= 0 and held.open_lots():
                c = self.market.state.contracts[held.market_id]
                ends[held.market_id] = max(
                    end, -(-(c.releasable_at() - self.base_ms) // self.step_ms)
                )
        last = max([end, *ends.values(), *(e * self.wpe + 1 for e in self._od)])
        final_epoch = (last - 1) // self.wpe
        events: list[tuple[int, int, str]] = [(s, 0, cid) for cid, s in ends.items()]
        events += [((e + 1) * self.wpe, 1, "") for e in range(end // self.wpe, final_epoch + 1)]
        for step, kind, cid in sorted(events):
            self.now_ms = max(self.now_ms, self.at_step(step))
            if kind == 0:
                held = self._held[cid]
                self.market.end_contract(cid, "the simulation ended", self.now_ms)
                held.close(step)
            else:
                epoch = step // self.wpe - 1
                for e in range(epoch + 1):
                    self.file_evidence(e)
                settle(self.now_ms)

    def invoiced(self) -> int:
        """Everything the market invoiced (and owes on upheld disputes), minor units."""
        st = self.market.state
        return sum(inv.amount + st.invoice_extra.get(i, 0) for i, inv in st.invoices.items())

    def unpaid(self) -> int:
        st = self.market.state
        return sum(outstanding(st, i) for i in st.invoices)

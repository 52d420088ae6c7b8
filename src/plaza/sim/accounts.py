"""The account plane: who hosts which account, the relay mirror, and lost records.

Accounts have a region and a weight (their share of the load, lognormal from the seed).
Each step every reachable account writes records in proportion to its load. The relay
mirror holds every record older than the mirror lag; records younger than that exist
only on the host. So:

- a host that crashes keeps its disk: accounts restored from the mirror meanwhile miss
  the newest records until the host returns and they are reconciled;
- a host that vanishes with its disk loses the records not yet mirrored, for good
  (``records_lost``) — zero when the mirror is current (lag 0);
- load of accounts whose host is unreachable is held back and served only once the
  host is back or the accounts have been moved; held too long, it is unserved.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from plaza.agents.types import Action
from plaza.errors import ConflictError, InvalidInputError
from plaza.sim.outcome import Outcome
from plaza.sim.queue import DeadlineQueue
from plaza.sim.scenario import Scenario


class AccountPlane:
    """Accounts, hosts, mirror lag and record loss for one run."""

    def __init__(
        self,
        scenario: Scenario,
        providers: int,
        *,
        provider_region: NDArray[np.int64],
        rng: np.random.Generator,
        steps_per_day: int,
        step_seconds: int,
    ) -> None:
        self.sc = scenario
        self.n_prov = providers
        self.provider_region = provider_region
        self.rng = rng
        n_regions = len(scenario.regions)
        self.n_regions = n_regions
        cap_total = scenario.accounts + scenario.signups_per_day * 60
        # Each provider can host 2.5x its equal share: enough room for a drain.
        self.slots = np.full(providers, math.ceil(2.5 * cap_total / providers), dtype=np.int64)
        self.host = np.full(0, -1, dtype=np.int64)
        self.weight = np.zeros(0)
        self.region = np.zeros(0, dtype=np.int64)
        self._room = 0
        self._buffers = (self.host, self.weight, self.region)
        self._hosted = np.zeros(providers, dtype=np.int64)
        self._pending = np.zeros(n_regions, dtype=np.int64)
        self._w_total = 0.0
        self._grow(scenario.accounts)
        self.signup_rate = scenario.signups_per_day / steps_per_day
        self._signup_acc = 0.0
        self.unreachable = np.zeros(providers, dtype=bool)
        self.gone = np.zeros(providers, dtype=bool)
        lag = math.ceil(scenario.mirror_lag_minutes * 60 / step_seconds - 1e-9)
        self.lag = lag
        self._recent = np.zeros((max(lag, 1), providers))  # records not yet mirrored
        self.unreconciled = np.zeros(providers)
        self.blocked = [DeadlineQueue(0) for _ in range(providers)]
        self.records_written = 0.0
        self.records_lost = 0.0
        self.migrations = 0
        self.max_share_seen = 0.0
        self._w_on: NDArray[np.float64] = np.zeros(providers)
        self._place_initial()

    # -- population ------------------------------------------------------------------
    def _grow(self, k: int) -> None:
        if k <= 0:
            return
        n = self.host.size
        weights = self.rng.lognormal(0.0, 1.0, k)
        new_regions = self.rng.integers(0, self.n_regions, k)
        if n + k > self._room:
            # Grow the backing arrays geometrically: sign-ups arrive a few at a time,
            # and copying every account on each would make a run quadratic.
            self._room = max(2 * self._room, n + k)
            host = np.full(self._room, -1, dtype=np.int64)
            weight = np.zeros(self._room)
            region = np.zeros(self._room, dtype=np.int64)
            host[:n], weight[:n], region[:n] = self.host, self.weight, self.region
            self._buffers = (host, weight, region)
        host, weight, region = self._buffers
        host[n : n + k] = -1
        weight[n : n + k] = weights
        region[n : n + k] = new_regions
        self.host, self.weight, self.region = host[: n + k], weight[: n + k], region[: n + k]
        self._pending += np.bincount(new_regions, minlength=self.n_regions)
        self._w_total += float(weights.sum())

    def _place_initial(self) -> None:
        """The run starts from a network that exists: the first accounts are already
        hosted, spread as the placement reconciler spreads them (home region first, no
        provider over the mandate's share). Sign-ups after that go through the agents."""
        from plaza.agents.placement import PlacementObserved, expand_assignment, plan_placement

        obs = PlacementObserved(
            -1,
            np.zeros(self.n_prov, dtype=np.int64),
            self.slots,
            self.provider_region,
            np.ones(self.n_prov, dtype=bool),
            self._pending.copy(),
        )
        alloc, _ = plan_placement(obs, self.sc.max_provider_share)
        self.host[:] = expand_assignment(self.region, alloc)
        self._refresh_weights()

    def signups(self, t: int) -> None:
        self._signup_acc += self.signup_rate
        k = int(self._signup_acc)
        if k:
            self._signup_acc -= k
            self._grow(k)

    def hosted(self) -> NDArray[np.int64]:
        """Accounts per provider (a copy)."""
        return self._hosted.copy()

    def pending_by_region(self) -> NDArray[np.int64]:
        """Accounts not yet placed, per region (a copy)."""
        return self._pending.copy()

    def _refresh_weights(self) -> None:
        placed = self.host >= 0
        self._w_on = np.bincount(
            self.host[placed], weights=self.weight[placed], minlength=self.n_prov
        ).astype(np.float64)
        self._hosted = np.bincount(self.host[placed], minlength=self.n_prov).astype(np.int64)
        pend = ~placed
        self._pending = np.bincount(self.region[pend], minlength=self.n_regions).astype(np.int64)

    def shares(self) -> NDArray[np.float64]:
        h = self._hosted.astype(np.float64)
        total = h.sum()
        return h / total if total > 0 else h

    # -- load and records ------------------------------------------------------------
    def arrive(self, t: int, amount: float) -> float:
        """Split the step's load; hold back the part of unreachable hosts; return the rest."""
        total_w = self._w_total
        if total_w <= 0 or amount <= 0:
            self._recent[t % self._recent.shape[0]] = 0.0
            return amount
        frac = self._w_on / total_w
        held = 0.0
        for p in np.nonzero(self.unreachable & (frac > 0))[0]:
            x = amount * float(frac[p])
            self.blocked[p].add(t, x)
            held += x
        rate = amount * self.sc.records_per_load_unit
        written = np.where(self.unreachable, 0.0, rate * frac)
        self.records_written += float(written.sum())
        if self.lag > 0:
            self._recent[t % self.lag] = written
        return amount - held

    def expire_blocked(self, t: int, delay: int) -> float:
        dropped = 0.0
        for q in self.blocked:
            q.delay = delay
            dropped += q.expire(t)
        return dropped

    def _at_risk(self, p: int) -> float:
        return float(self._recent[:, p].sum()) if self.lag > 0 else 0.0

    # -- host events -----------------------------------------------------------------
    def host_down(self, p: int) -> None:
        self.unreachable[p] = True

    def host_up(self, p: int) -> list[tuple[int, float]]:
        self.unreachable[p] = False
        self.unreconciled[p] = 0.0  # the disk is back: restored accounts catch up
        return self.blocked[p].take_fraction(1.0)

    def host_gone(self, p: int, *, with_disk: bool) -> None:
        self.gone[p] = True
        self.unreachable[p] = True
        # Records not yet in the mirror existed only on this disk.
        self.records_lost += self._at_risk(p) + self.unreconciled[p]
        self.unreconciled[p] = 0.0
        if self.lag > 0:
            self._recent[:, p] = 0.0

    # -- executor side -----------------------------------------------------------------
    def assign(self, action: Action) -> Outcome:
        pend_idx = np.nonzero(self.host < 0)[0]
        placed = 0
        for r, p, count in action["allocations"]:
            r, p, count = int(r), int(p), int(count)
            if not (0 <= p < self.n_prov) or count < 0:
                raise InvalidInputError(f"bad placement ({r}, {p}, {count})")
            if self.unreachable[p]:
                raise ConflictError(f"provider p{p} is unreachable")
            cand = pend_idx[(self.region[pend_idx] == r) & (self.host[pend_idx] < 0)][:count]
            self.host[cand] = p
            placed += int(cand.size)
            # Incremental bookkeeping: a full recount per placement is O(accounts).
            self._hosted[p] += cand.size
            self._w_on[p] += float(self.weight[cand].sum())
            self._pending[r] -= cand.size
        return Outcome(True, f"placed {placed} accounts", {"placed": placed})

    def migrate(self, action: Action, now: int, reachable_capacity: NDArray[np.bool_]) -> Outcome:
        src = int(action["from"])
        source = str(action["source"])
        if not 0 <= src < self.n_prov:
            raise InvalidInputError(f"bad source provider {src}")
        if source == "host" and self.unreachable[src]:
            raise ConflictError(f"p{src} is unreachable: restore from the mirror instead")
        on_src = np.nonzero(self.host == src)[0]
        moved = 0
        moved_w = 0.0
        w_before = float(self._w_on[src])
        for p, count in action["to"]:
            p, count = int(p), int(count)
            if p == src or not 0 <= p < self.n_prov or self.unreachable[p]:
                raise ConflictError(f"cannot move accounts to p{p}")
            batch = on_src[moved : moved + count]
            self.host[batch] = p
            w = float(self.weight[batch].sum())
            self._hosted[p] += batch.size
            self._w_on[p] += w
            moved_w += w
            moved += int(batch.size)
        if source == "mirror" and not self.gone[src] and w_before > 0:
            # The host's disk still has the newest records; they reconcile when it returns.
            self.unreconciled[src] += self._at_risk(src) * moved_w / w_before
        released: list[tuple[int, float]] = []
        if w_before > 0 and self.unreachable[src]:
            released = self.blocked[src].take_fraction(min(1.0, moved_w / w_before))
        self.migrations += moved
        self._hosted[src] -= moved
        self._w_on[src] = max(0.0, self._w_on[src] - moved_w) if self._hosted[src] else 0.0
        return Outcome(
            True,
            f"moved {moved} accounts from p{src} ({source})",
            {"released": released, "moved": moved},
        )

    def note_share(self) -> None:
        """Record the largest provider share; called once a step, after the agents act."""
        s = self.shares()
        if s.size:
            self.max_share_seen = max(self.max_share_seen, float(s.max()))

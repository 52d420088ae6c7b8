"""What a load run cost the network, against the simulator's oracle for the same load.

Theory of operation. Hosting is bought in accounts: a contract holds ``held`` accounts
at an account price per epoch. The load the capacity served is the accounts the run
held, step by step (:meth:`plaza.network.load.Trace.accounts`). Two costs of the run's
span are compared, in the market's currency:

* **live**: what the hosting contracts that ran during the span cost for it — for each
  contract approved for the DAO, its accounts × its account price × the seconds it
  ran within the span ÷ the epoch (the account part of what settlement invoices,
  prorated to the span);
* **oracle**: the simulator's offline optimum (:func:`plaza.sim.solve_oracle`, the LP
  of ``plaza sim run --policy oracle``) for the recorded accounts per step, with
  reserved capacity at the cheapest running contract's account price, a term of the
  contracts' minimum term capped at the span (a commitment past the run is not
  charged to it, as the live cost is prorated), on-demand capacity at the simulator's
  default 2.5 × the reserved price, no lead time and no waiting (an account needs its
  host at once).

``ratio = live / oracle`` is 1 when the network held exactly the capacity the load
needed at the cheapest price; above 1 is the price of headroom, of capacity bought
ahead of growth, and of dearer providers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from plaza.errors import InvalidInputError
from plaza.market import PRICE_SCALE
from plaza.sim import Scenario, solve_oracle

HOSTING = "hosting"


@dataclass(frozen=True)
class MarketPicture:
    """What the market says about hosting: its epoch, currency, and contracts (JSON as
    ``GET /market/contracts`` gives them)."""

    epoch_s: int
    currency: str
    minor_digits: int
    contracts: tuple[Mapping[str, Any], ...]

    @classmethod
    def of(
        cls, summary: Mapping[str, Any], contracts: Sequence[Mapping[str, Any]]
    ) -> MarketPicture:
        params = summary.get("params") or {}
        if "epoch_s" not in params:
            raise InvalidInputError("the market is not open: no epoch to price the load by")
        return cls(
            epoch_s=int(params["epoch_s"]),
            currency=str(summary.get("currency") or ""),
            minor_digits=int(summary.get("minorDigits", 2)),
            contracts=tuple(c for c in contracts if c.get("service") == HOSTING),
        )

    def _units(self, amount_scaled: float) -> float:
        """Market price scale (millionths of a minor unit) -> currency units."""
        return float(amount_scaled) / PRICE_SCALE / float(10**self.minor_digits)


def _span(c: Mapping[str, Any], lo_ms: int, hi_ms: int) -> float:
    if not c.get("approval") or c.get("standing"):
        return 0.0
    end = int(c["end_ms"])
    if c.get("ended_ms"):
        end = min(end, int(c["ended_ms"]))
    return max(0, min(hi_ms, end) - max(lo_ms, int(c["start_ms"]))) / 1000


def live_cost(m: MarketPicture, start_ms: int, end_ms: int) -> float:
    """The contracts' account charges for ``[start_ms, end_ms)``, in currency units."""
    total = 0.0
    for c in m.contracts:
        held = int(c["quantity"]) - int(c.get("released", 0))
        price = int(c.get("unit_prices", {}).get("account", 0))
        total += held * price * _span(c, start_ms, end_ms) / m.epoch_s
    return m._units(total)


def compare(
    m: MarketPicture, accounts: Sequence[int], step_s: float, start_ms: int
) -> dict[str, Any]:
    """The live cost and the oracle's for ``accounts`` per step (see the module doc)."""
    if not accounts:
        raise InvalidInputError("an empty trace has no cost")
    end_ms = start_ms + int(len(accounts) * step_s * 1000)
    running = [c for c in m.contracts if _span(c, start_ms, end_ms) > 0]
    live = live_cost(m, start_ms, end_ms)
    prices = [int(c["unit_prices"].get("account", 0)) for c in running]
    if not prices or min(prices) <= 0:
        return {"cost": live, "oracle": None, "ratio": None, "currency": m.currency,
                "why": "no hosting contract with an account price ran during the load"}  # fmt: skip
    price_per_step = m._units(min(prices) * step_s / m.epoch_s)
    min_term_s = min((int(c.get("min_term_s", 0)) for c in running), default=0)
    term = max(1, min(len(accounts), math.ceil((min_term_s or m.epoch_s) / step_s)))
    sc = Scenario()
    od = sc.on_demand.price_per_unit_hour / sc.reserved.price_per_unit_hour
    plan = solve_oracle(
        np.asarray(accounts, dtype=np.float64),
        term=term,
        delay=0,
        reserved_lead=0,
        on_demand_lead=0,
        reserved_price=price_per_step,
        on_demand_price=od * price_per_step,
        time_limit_s=60.0,
    )
    return {
        "cost": round(live, 6),
        "oracle": round(plan.cost, 6),
        "ratio": round(live / plan.cost, 4) if plan.cost > 0 else None,
        "currency": m.currency,
        "contracts": len(running),
        "account_price": m._units(min(prices)),
        "term_steps": term,
        "oracle_seconds": round(plan.seconds, 3),
    }

"""The scenario: contract rules, providers, mandate limits, accounts and the mirror.

Every number the simulator uses comes from a :class:`Scenario`. The defaults are the
issue's default scenario; a TOML file overrides any subset (see ``docs/simulation.md``)::

    [reserved]
    price_per_unit_hour = 1.0
    min_term_hours = 24
    lead_time_minutes = 60

Durations are converted to whole simulator steps with :meth:`Scenario.steps` once the
trace's step is known; a duration that is not a whole number of steps is rounded up.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from plaza.sim.errors import ScenarioError


@dataclass(frozen=True)
class ContractRules:
    """One kind of capacity contract: its price, shortest term and lead time."""

    price_per_unit_hour: float
    min_term_minutes: float
    lead_time_minutes: float


@dataclass(frozen=True)
class Scenario:
    """Everything a simulation run is parameterised by, except the trace and the policy."""

    sla_delay_minutes: float = 15.0
    reserved: ContractRules = ContractRules(1.0, 24 * 60.0, 60.0)
    # On-demand: a term of 0 means one step; the lead time is the provider's (a VM or
    # container booting: minutes), whatever the step (see World.recourse_share).
    on_demand: ContractRules = ContractRules(2.5, 0.0, 5.0)
    unit: float = 0.125  # capacity is bought in whole multiples of this (lots)
    providers: int = 12
    # Each provider's capacity cap, as a share of the trace's peak load (the environment
    # may know the trace; the policies do not). 0.25 x 12 providers = 3 x the peak.
    provider_cap_x_peak: float = 0.25
    regions: tuple[str, ...] = ("eu", "us", "ap")
    max_provider_share: float = 0.20
    migration_batch_limit: int = 2000
    budget_per_day: float | None = None  # None: 2.5 x the on-demand cost of the peak
    accounts: int = 20_000
    signups_per_day: int = 200
    records_per_load_unit: float = 1.0
    mirror_lag_minutes: float = 0.0
    sla_down_minutes: float = 10.0  # a host down this long fails its SLA and is drained
    oracle_time_limit_s: float = 900.0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def steps(self, minutes: float, step_seconds: int, *, at_least: int = 0) -> int:
        """``minutes`` in whole steps of ``step_seconds`` (rounded up, at least ``at_least``)."""
        return max(at_least, math.ceil(minutes * 60.0 / step_seconds - 1e-9))

    def validate(self) -> Scenario:
        """Return self, or raise :class:`ScenarioError` naming the impossible value."""
        checks: list[tuple[bool, str]] = [
            (self.sla_delay_minutes >= 0, "sla.delay_minutes must be >= 0"),
            (self.unit > 0, "capacity.unit must be > 0"),
            (self.providers >= 1, "providers.count must be >= 1"),
            (self.provider_cap_x_peak > 0, "providers.cap_x_peak must be > 0"),
            (0 < self.max_provider_share <= 1, "mandate.max_provider_share must be in (0, 1]"),
            (self.migration_batch_limit >= 1, "mandate.migration_batch_limit must be >= 1"),
            (self.accounts >= 1, "accounts.count must be >= 1"),
            (self.signups_per_day >= 0, "accounts.signups_per_day must be >= 0"),
            (self.mirror_lag_minutes >= 0, "mirror.lag_minutes must be >= 0"),
            (len(self.regions) >= 1, "providers.regions must name at least one region"),
            (self.budget_per_day is None or self.budget_per_day > 0, "budget must be > 0"),
        ]
        for rules, name in ((self.reserved, "reserved"), (self.on_demand, "on_demand")):
            checks.append(
                (rules.price_per_unit_hour > 0, f"{name}.price_per_unit_hour must be > 0")
            )
            checks.append((rules.min_term_minutes >= 0, f"{name}.min_term must be >= 0"))
            checks.append((rules.lead_time_minutes >= 0, f"{name}.lead_time must be >= 0"))
        for ok, message in checks:
            if not ok:
                raise ScenarioError(message)
        return self


# TOML table -> (key -> (Scenario field, converter)).
def _contract(table: dict[str, Any], base: ContractRules, name: str) -> ContractRules:
    known = {
        "price_per_unit_hour",
        "min_term_hours",
        "min_term_minutes",
        "lead_time_minutes",
        "lead_time_hours",
    }
    unknown = set(table) - known
    if unknown:
        raise ScenarioError(f"[{name}]: unknown keys {sorted(unknown)}")
    price = float(table.get("price_per_unit_hour", base.price_per_unit_hour))
    term = base.min_term_minutes
    if "min_term_hours" in table:
        term = float(table["min_term_hours"]) * 60
    if "min_term_minutes" in table:
        term = float(table["min_term_minutes"])
    lead = base.lead_time_minutes
    if "lead_time_hours" in table:
        lead = float(table["lead_time_hours"]) * 60
    if "lead_time_minutes" in table:
        lead = float(table["lead_time_minutes"])
    return ContractRules(price, term, lead)


_SIMPLE: dict[str, dict[str, str]] = {
    "sla": {"delay_minutes": "sla_delay_minutes", "down_minutes": "sla_down_minutes"},
    "capacity": {"unit": "unit"},
    "providers": {"count": "providers", "cap_x_peak": "provider_cap_x_peak", "regions": "regions"},
    "mandate": {
        "max_provider_share": "max_provider_share",
        "migration_batch_limit": "migration_batch_limit",
        "budget_per_day": "budget_per_day",
    },
    "accounts": {
        "count": "accounts",
        "signups_per_day": "signups_per_day",
        "records_per_load_unit": "records_per_load_unit",
    },
    "mirror": {"lag_minutes": "mirror_lag_minutes"},
    "oracle": {"time_limit_s": "oracle_time_limit_s"},
}


def scenario_from_dict(data: dict[str, Any], base: Scenario | None = None) -> Scenario:
    """Overlay a parsed TOML document on ``base`` (default: the default scenario)."""
    scenario = base or Scenario()
    changes: dict[str, Any] = {}
    types = {f.name: f.type for f in fields(Scenario)}
    for table, body in data.items():
        if not isinstance(body, dict):
            raise ScenarioError(f"top-level key {table!r} must be a table like [{table}]")
        if table in ("reserved", "on_demand"):
            changes[table] = _contract(body, getattr(scenario, table), table)
            continue
        if table not in _SIMPLE:
            raise ScenarioError(
                f"unknown table [{table}]; known: {sorted([*_SIMPLE, 'reserved', 'on_demand'])}"
            )
        for key, value in body.items():
            if key not in _SIMPLE[table]:
                raise ScenarioError(f"[{table}]: unknown key {key!r}")
            name = _SIMPLE[table][key]
            try:
                if name == "regions":
                    value = tuple(str(v) for v in value)
                elif "int" in str(types[name]) and "float" not in str(types[name]):
                    if isinstance(value, bool) or int(value) != value:
                        raise ValueError(value)
                    value = int(value)
                else:
                    value = float(value)
            except (TypeError, ValueError) as exc:
                raise ScenarioError(f"[{table}] {key} = {value!r} has the wrong type") from exc
            changes[name] = value
    return replace(scenario, **changes).validate()


def load_scenario(path: str | Path | None) -> Scenario:
    """The default scenario, overridden by the TOML file at ``path`` if one is given."""
    if path is None:
        return Scenario().validate()
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(f"{p}: cannot read scenario: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{p}: not valid TOML: {exc}") from exc
    return scenario_from_dict(data)

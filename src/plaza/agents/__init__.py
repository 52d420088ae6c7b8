"""Agents: pure reconcilers and the loop that puts their actions through the mandate guard.

Each reconciler is ``decide(observed, desired, mandate) -> list[Action]`` and touches
nothing; :class:`~plaza.agents.loop.AgentLoop` asks the guard, executes, escalates and
records every action in the ledger.
"""

from plaza.agents.audit import AgentActions
from plaza.agents.capacity import CapacityDesired, CapacityObserved, ReservedContract
from plaza.agents.capacity_plan import PlanProblem, ReservedPlan, plan_reserved
from plaza.agents.forecast import (
    LoadDistribution,
    LoadWindow,
    newsvendor_units,
    seasonal_profile,
    weighted_quantile,
)
from plaza.agents.loop import (
    AgentLoop,
    Executor,
    LedgerRecorder,
    LoopRecord,
    Proposal,
    limits_from_mandate,
    split_for_guard,
    to_guard_action,
)
from plaza.agents.migration import MigrationDesired, MigrationObserved
from plaza.agents.placement import (
    PlacementDesired,
    PlacementObserved,
    expand_assignment,
    plan_placement,
    water_fill,
)
from plaza.agents.settlement import (
    Penalty,
    SettlementDesired,
    SettlementExecutor,
    SettlementObserved,
)
from plaza.agents.types import ACTION_KINDS, Action, MandateLimits, Reason, digest_of

__all__ = [
    "ACTION_KINDS",
    "Action",
    "AgentActions",
    "AgentLoop",
    "CapacityDesired",
    "CapacityObserved",
    "Executor",
    "LedgerRecorder",
    "LoadDistribution",
    "LoadWindow",
    "LoopRecord",
    "MandateLimits",
    "MigrationDesired",
    "MigrationObserved",
    "Penalty",
    "PlacementDesired",
    "PlacementObserved",
    "PlanProblem",
    "Proposal",
    "Reason",
    "ReservedContract",
    "ReservedPlan",
    "SettlementDesired",
    "SettlementExecutor",
    "SettlementObserved",
    "digest_of",
    "expand_assignment",
    "limits_from_mandate",
    "newsvendor_units",
    "plan_placement",
    "plan_reserved",
    "seasonal_profile",
    "split_for_guard",
    "to_guard_action",
    "water_fill",
    "weighted_quantile",
]

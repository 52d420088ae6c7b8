"""Agents: pure reconcilers and the loop that puts their actions through the mandate guard.

Each reconciler is ``decide(observed, desired, mandate) -> list[Action]`` and touches
nothing; :class:`~plaza.agents.loop.AgentLoop` asks the guard, executes, escalates and
records every action in the ledger.
"""

from plaza.agents.capacity import CapacityDesired, CapacityObserved, ReservedContract
from plaza.agents.forecast import LoadWindow, weighted_quantile
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
    "AgentLoop",
    "CapacityDesired",
    "CapacityObserved",
    "Executor",
    "LedgerRecorder",
    "LoadWindow",
    "LoopRecord",
    "MandateLimits",
    "MigrationDesired",
    "MigrationObserved",
    "Penalty",
    "PlacementDesired",
    "PlacementObserved",
    "Proposal",
    "Reason",
    "ReservedContract",
    "SettlementDesired",
    "SettlementExecutor",
    "SettlementObserved",
    "digest_of",
    "expand_assignment",
    "limits_from_mandate",
    "plan_placement",
    "split_for_guard",
    "to_guard_action",
    "water_fill",
    "weighted_quantile",
]

"""The simulator: discrete steps of simulated time, real agent code, real traces.

:func:`run` simulates one policy on one trace and returns its :class:`Metrics`;
:func:`plaza.sim.bench.bench` runs every policy on every trace of a folder.
"""

from plaza.sim.engine import RunResult, run
from plaza.sim.errors import FaultSpecError, ScenarioError, SimError, TraceError
from plaza.sim.faults import Fault, parse_faults
from plaza.sim.metrics import Metrics, hhi, nakamoto
from plaza.sim.oracle import OraclePlan, solve_oracle
from plaza.sim.policies import POLICIES, make_policy
from plaza.sim.scenario import Scenario, load_scenario, scenario_from_dict
from plaza.sim.trace import Trace, load_trace, parse_trace, trace_from_values

__all__ = [
    "POLICIES",
    "Fault",
    "FaultSpecError",
    "Metrics",
    "OraclePlan",
    "RunResult",
    "Scenario",
    "ScenarioError",
    "SimError",
    "Trace",
    "TraceError",
    "hhi",
    "load_scenario",
    "load_trace",
    "make_policy",
    "nakamoto",
    "parse_faults",
    "parse_trace",
    "run",
    "scenario_from_dict",
    "solve_oracle",
    "trace_from_values",
]

"""Errors of the simulator: bad traces, scenario files and fault specifications."""

from __future__ import annotations

from plaza.errors import InvalidInputError


class SimError(InvalidInputError):
    """Root of the simulator's input errors."""

    code = "InvalidSimulation"


class TraceError(SimError):
    """A demand trace is malformed; the message names the file and the line."""

    code = "InvalidTrace"


class ScenarioError(SimError):
    """A scenario file is malformed or sets an impossible value."""

    code = "InvalidScenario"


class FaultSpecError(SimError):
    """A ``--faults`` specification cannot be parsed."""

    code = "InvalidFaultSpec"

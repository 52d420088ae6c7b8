"""Fault specifications for ``--faults``, e.g. ``crash:p3@2d+4h,slow:p1@3d+6h*0.5,vanish:p4@6d``.

Grammar: faults separated by commas, each ``KIND:pN@WHEN[+DURATION][*FACTOR]``.

- ``crash`` — provider N goes down at WHEN and comes back after DURATION (default 2h);
  its capacity serves nothing and its accounts cannot be reached meanwhile; disk kept.
- ``slow`` — provider N serves at FACTOR (default 0.5) of its capacity for DURATION.
- ``leave`` — provider N announces at WHEN that it leaves after DURATION (default 1d):
  it takes no new capacity or accounts, and its accounts must be moved off in time.
- ``vanish`` — provider N disappears at WHEN with its disk: capacity, contracts and any
  record not yet in the relay mirror are gone.
- ``flap`` — provider N drops for one step at the start of every hour during DURATION
  (default 1d): each outage is too short to drain its accounts, but probers see the
  windows down, so it fails its SLA epoch after epoch.
- ``chaos:K`` — K crashes of 1-4 hours at random providers and times (from the seed).

Times take a unit: ``s``, ``m``, ``h``, ``d`` (``90m``, ``2d``) or ``st`` for steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from plaza.sim.errors import FaultSpecError

KINDS = ("crash", "slow", "leave", "vanish", "flap")
_DEFAULT_DURATION = {
    "crash": 7200.0,
    "slow": 7200.0,
    "leave": 86400.0,
    "vanish": 0.0,
    "flap": 86400.0,
}
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_FAULT = re.compile(
    r"^(?P<kind>[a-z]+):p(?P<p>\d+)@(?P<when>[0-9.]+(?:st|[smhd]))"
    r"(?:\+(?P<dur>[0-9.]+(?:st|[smhd])))?(?:\*(?P<factor>[0-9.]+))?$"
)


@dataclass(frozen=True)
class Fault:
    """One fault, in simulator steps."""

    kind: str
    provider: int
    at: int
    duration: int
    factor: float = 1.0


def _steps(text: str, step_seconds: int, where: str) -> int:
    if text.endswith("st"):
        value, scale = text[:-2], float(step_seconds)
    else:
        value, scale = text[:-1], _UNITS[text[-1]]
    try:
        seconds = float(value) * scale
    except ValueError as exc:
        raise FaultSpecError(f"{where}: bad time {text!r}") from exc
    return round(seconds / step_seconds)


def parse_faults(
    spec: str | None, *, providers: int, steps: int, step_seconds: int, seed: int = 0
) -> tuple[Fault, ...]:
    """Parse a fault spec into faults sorted by time; raise :class:`FaultSpecError`."""
    if not spec or not spec.strip():
        return ()
    out: list[Fault] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        if item.startswith("chaos:"):
            try:
                count = int(item[6:])
            except ValueError as exc:
                raise FaultSpecError(f"{item!r}: chaos takes a count, like chaos:5") from exc
            rng = np.random.default_rng([seed, 7919])
            for _ in range(count):
                out.append(
                    Fault(
                        "crash",
                        int(rng.integers(providers)),
                        int(rng.integers(max(1, steps))),
                        round(float(rng.uniform(3600, 4 * 3600)) / step_seconds),
                    )
                )
            continue
        m = _FAULT.match(item)
        if not m:
            raise FaultSpecError(
                f"{item!r}: expected KIND:pN@WHEN[+DURATION][*FACTOR], e.g. crash:p3@2d+4h"
            )
        kind = m["kind"]
        if kind not in KINDS:
            raise FaultSpecError(
                f"{item!r}: unknown fault kind {kind!r}; known: {', '.join(KINDS)}"
            )
        p = int(m["p"])
        if p >= providers:
            raise FaultSpecError(f"{item!r}: provider p{p} does not exist (0..{providers - 1})")
        at = _steps(m["when"], step_seconds, item)
        if m["dur"]:
            duration = _steps(m["dur"], step_seconds, item)
        else:
            duration = round(_DEFAULT_DURATION[kind] / step_seconds)
        factor = float(m["factor"]) if m["factor"] else (0.5 if kind == "slow" else 1.0)
        if kind == "slow" and not 0 <= factor <= 1:
            raise FaultSpecError(f"{item!r}: slow factor must be in [0, 1]")
        if kind == "flap":
            hour = max(1, round(3600 / step_seconds))
            out.extend(Fault("crash", p, t, 1) for t in range(at, at + duration, hour))
            continue
        out.append(Fault(kind, p, at, max(duration, 0), factor))
    return tuple(sorted(out, key=lambda f: (f.at, f.provider, f.kind)))

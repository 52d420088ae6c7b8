"""Demand traces: ``timestamp,value`` CSV files, validated line by line.

A trace is the load arriving in each step, in capacity units (one unit serves one unit of
load per step). Rows must be evenly spaced; the step is the most common gap. Timestamps
that repeat or go backwards (a daylight-saving change in some of the AWS traces), or
that fall off the step grid, are an error unless ``repair=True``: then rows are ordered
stably and each is put in the step nearest to its time, summing rows that share one.

Timestamps are ``YYYY-MM-DD HH:MM[:SS]`` (a ``T`` may separate date and time), with an
optional UTC offset (``+02:00``, ``-0500`` or ``Z``). A timestamp without an offset is
UTC, never the machine's local time; one with an offset is converted to UTC. Every
:class:`Trace` start is therefore an aware UTC datetime, and the same file gives the same
simulation on any machine. Rows of one file may mix the two forms; the order and gaps
are those of the UTC instants (so a daylight-saving change written with its offsets is
not a repeated hour).

A trace covers at most :data:`MAX_STEPS` steps from its first timestamp to its last (a
year of 5-minute steps is 105,120): the steps are allocated, so a row a millennium after
the others would otherwise ask for a hundred million of them. Its step is at most
:data:`MAX_STEP_SECONDS`, a day (the market settles in daily epochs), so two rows a
millennium apart are not a two-step trace either.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from plaza.sim.errors import TraceError

_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M")
#: The most steps a trace may span (about 9.5 years of 5-minute steps, 8 MB of values).
MAX_STEPS = 1_000_000
#: The longest step a trace may have: a day, the length of a settlement epoch.
MAX_STEP_SECONDS = 86_400


@dataclass(frozen=True)
class Trace:
    """A validated demand trace: ``values[i]`` arrives in step ``i``."""

    name: str
    step_seconds: int
    start: datetime  # aware, UTC
    values: NDArray[np.float64]

    @property
    def steps(self) -> int:
        return int(self.values.shape[0])

    def steps_per_hour(self) -> float:
        return 3600.0 / self.step_seconds


def _parse_time(text: str, where: str) -> datetime:
    """An aware UTC datetime: naive timestamps are UTC, offsets are converted."""
    raw = text.strip()
    for fmt in _FORMATS:
        for zone in ("", "%z"):
            try:
                ts = datetime.strptime(raw, fmt + zone)
            except ValueError:
                continue
            if ts.tzinfo is None:
                return ts.replace(tzinfo=UTC)
            return ts.astimezone(UTC)
    raise TraceError(
        f"{where}: bad timestamp {text!r} (expected YYYY-MM-DD HH:MM:SS, optionally with a"
        " UTC offset such as +02:00 or Z)"
    )


def _check_span(name: str, steps: int, step: int) -> None:
    if step > MAX_STEP_SECONDS:
        raise TraceError(
            f"{name}: the step (the most common gap between rows) is {step:,}s, longer than"
            f" a day ({MAX_STEP_SECONDS:,}s)"
        )
    if steps > MAX_STEPS:
        raise TraceError(
            f"{name}: the timestamps span {steps:,} steps of {step}s, more than the"
            f" {MAX_STEPS:,} a trace may have (check the timestamps: a wrong year?)"
        )


def parse_trace(text: str, *, name: str = "trace", repair: bool = False) -> Trace:
    """Parse CSV text into a :class:`Trace`; raise :class:`TraceError` naming the bad line.

    Rules: header ``timestamp,value``; each value a finite number >= 0; at least two rows;
    every gap between consecutive timestamps a whole multiple of the step (missing steps
    are filled with zero load); no repeated or decreasing timestamps unless ``repair``;
    at most :data:`MAX_STEPS` steps from the first row to the last, each at most
    :data:`MAX_STEP_SECONDS`. Timestamps without a UTC offset are UTC; ``start`` is an
    aware UTC datetime (see the module docstring).
    """
    lines = text.splitlines()
    if not lines:
        raise TraceError(f"{name}: empty file")
    header = [h.strip().lower() for h in next(csv.reader([lines[0]]))]
    if header != ["timestamp", "value"]:
        raise TraceError(f"{name}:1: header must be 'timestamp,value', got {lines[0]!r}")
    rows: list[tuple[datetime, float]] = []
    for lineno, row in enumerate(csv.reader(lines[1:]), start=2):
        if not row or all(not c.strip() for c in row):
            continue
        where = f"{name}:{lineno}"
        if len(row) != 2:
            raise TraceError(f"{where}: expected 2 fields, got {len(row)}")
        ts = _parse_time(row[0], where)
        try:
            value = float(row[1])
        except ValueError as exc:
            raise TraceError(f"{where}: value {row[1]!r} is not a number") from exc
        if not math.isfinite(value) or value < 0:
            raise TraceError(f"{where}: value {row[1]!r} must be a finite number >= 0")
        rows.append((ts, value))
    if len(rows) < 2:
        raise TraceError(f"{name}: needs at least two data rows, got {len(rows)}")
    if repair:
        rows.sort(key=lambda r: r[0])
        gaps = [int((b[0] - a[0]).total_seconds()) for a, b in pairwise(rows)]
        positive = [g for g in gaps if g > 0]
        if not positive:
            raise TraceError(f"{name}: every row has the same timestamp")
        step = Counter(positive).most_common(1)[0][0]
        first = rows[0][0]
        _check_span(name, round((rows[-1][0] - first).total_seconds() / step) + 1, step)
        idx = np.array([round((ts - first).total_seconds() / step) for ts, _ in rows])
        values = np.zeros(int(idx[-1]) + 1, dtype=np.float64)
        np.add.at(values, idx, np.array([v for _, v in rows]))
        return Trace(name=name, step_seconds=step, start=first, values=values)
    gaps = [int((b[0] - a[0]).total_seconds()) for a, b in pairwise(rows)]
    for i, gap in enumerate(gaps):
        if gap <= 0:
            raise TraceError(
                f"{name}:{i + 3}: timestamp {rows[i + 1][0]} does not come after {rows[i][0]}"
                " (repair=True / --repair orders rows and merges repeated timestamps)"
            )
    step = Counter(gaps).most_common(1)[0][0]
    index = [0]
    for i, gap in enumerate(gaps):
        if gap % step:
            raise TraceError(
                f"{name}:{i + 3}: gap of {gap}s is not a multiple of the {step}s step"
                " (repair=True / --repair snaps rows to the nearest step)"
            )
        index.append(index[-1] + gap // step)
    _check_span(name, index[-1] + 1, step)
    values = np.zeros(index[-1] + 1, dtype=np.float64)
    values[np.asarray(index)] = [v for _, v in rows]
    return Trace(name=name, step_seconds=step, start=rows[0][0], values=values)


def load_trace(path: str | Path, *, repair: bool = False) -> Trace:
    """Read and validate a trace file (see :func:`parse_trace`)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{p}: cannot read trace: {exc}") from exc
    return parse_trace(text, name=p.name, repair=repair)


def trace_from_values(
    values: list[float] | NDArray[np.float64], *, step_seconds: int = 300, name: str = "synthetic"
) -> Trace:
    """A trace from plain numbers (tests and synthetic scenarios)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise TraceError(f"{name}: values must be >= 2 finite numbers >= 0")
    start = datetime(2000, 1, 1, tzinfo=UTC)
    return Trace(name=name, step_seconds=step_seconds, start=start, values=arr)


def resample(trace: Trace, step_seconds: int) -> Trace:
    """``trace`` at a coarser step: each new step's load is the sum of the steps it covers.

    A trace's value is the load that *arrives* in a step, so summing keeps every unit of
    load (the total is unchanged). One capacity unit serves one unit of load per step at
    any step size, and prices are per unit-hour (the simulator bills ``price x step``),
    so a unit at a 30-minute step serves what six units serve in five minutes, for the
    price of six: the cheapest plan's cost is multiplied by ``step_seconds /
    trace.step_seconds``, and the ratios between policies are comparable. The new step
    must be a whole multiple of the old one (at most a day); a last, partial step holds
    the rest of the load.
    """
    if step_seconds == trace.step_seconds:
        return trace
    if step_seconds < trace.step_seconds or step_seconds % trace.step_seconds:
        raise TraceError(
            f"{trace.name}: cannot resample a {trace.step_seconds}s step to {step_seconds}s"
            " (the new step must be a whole multiple of the old one)"
        )
    _check_span(trace.name, 1, step_seconds)
    k = step_seconds // trace.step_seconds
    n = math.ceil(trace.steps / k)
    padded = np.zeros(n * k)
    padded[: trace.steps] = trace.values
    values = padded.reshape(n, k).sum(axis=1)
    if values.size < 2:
        raise TraceError(f"{trace.name}: fewer than two steps of {step_seconds}s")
    return Trace(name=trace.name, step_seconds=step_seconds, start=trace.start, values=values)

"""Local language-model latency: one agent action explained in about 150 tokens.

Loads the ``local`` assist backend (:mod:`plaza.assist.local`: llama.cpp, two threads),
answers one warm-up prompt, then times ``runs`` explanations. Each run explains a
different agent action (a different ledger record, so llama.cpp's prompt cache cannot
in plain text as the explain job asks for it (:func:`plaza.assist.explain.explain`: no
grammar, the text wrapped as the explanation), with ``max_tokens`` tokens at most. The
result holds the latency percentiles in seconds, the mean number of tokens generated,
and how many answers were valid explanations.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Mapping
from typing import Any, Final

from pydantic import ValidationError

from plaza.assist.explain import Explanation
from plaza.assist.local import LocalBackend

SYSTEM: Final = (
    "You explain to the members of a social network, in plain words, one action that "
    "its operations agent took. Use only the ledger record and the mandate clause you "
    "are given. Write five or six sentences: what happened, why the mandate allowed it, "
    "and what it means for members. Answer in plain text."
)

_PROVIDERS: Final = ("north-1", "coastal-hosting", "atlas-pds", "riverbank", "oak-servers")


def _action(i: int) -> str:
    record = {
        "seq": 1000 + 37 * i,
        "kind": "capacity.procure",
        "agent": "capacity",
        "provider": _PROVIDERS[i % len(_PROVIDERS)],
        "accounts": 2000 + 150 * i,
        "monthly_cost_usd": 40 + 3 * i,
        "reason": f"projected load {71 + i % 20}% of provisioned capacity in region eu-{i % 3}",
    }
    clause = (
        "mandate 4.2: the capacity agent may contract hosting for up to 5000 accounts "
        "per provider and at most 250 USD a month without a vote."
    )
    return f"Ledger record: {json.dumps(record)}\nMandate clause: {clause}"


def schema_valid(text: str) -> bool:
    """Whether ``text`` is a valid :class:`~plaza.assist.explain.Explanation`."""
    try:
        Explanation.model_validate({"explanation": text.strip()})
    except ValidationError:
        return False
    return True


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q <= 100) of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def run(
    *, runs: int, max_tokens: int = 150, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Time ``runs`` explanations with the local backend (see the module docstring)."""
    t0 = time.perf_counter()
    backend = LocalBackend.load(os.environ if env is None else env)
    load_s = time.perf_counter() - t0
    backend.complete(SYSTEM, _action(-1), schema=None, max_tokens=max_tokens)
    times: list[float] = []
    cpu: list[float] = []
    tokens: list[int] = []
    valid = 0
    for i in range(runs):
        t, c = time.perf_counter(), time.process_time()
        text = backend.complete(SYSTEM, _action(i), schema=None, max_tokens=max_tokens)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
        tokens.append(backend.last_completion_tokens)
        valid += schema_valid(text)
    total_tokens = sum(tokens)
    return {
        "backend": backend.name,
        "model": backend.path.name,
        "runs": runs,
        "max_tokens": max_tokens,
        "load_s": round(load_s, 3),
        "p50_s": round(percentile(times, 50), 3),
        "p95_s": round(percentile(times, 95), 3),
        "max_s": round(max(times), 3),
        "cpu_p50_s": round(percentile(cpu, 50), 3),
        "cpu_p95_s": round(percentile(cpu, 95), 3),
        "tokens": round(statistics.mean(tokens), 1),
        "tokens_per_s": round(total_tokens / sum(times), 1),
        "schema_valid": valid,
    }

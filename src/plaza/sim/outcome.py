"""What the simulator's executor returns for one action.

The world, its account plane and the marketplace each carry out actions; they share this
result type and nothing else, so it lives apart from all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Outcome:
    """What executing an action did: ``ok`` and a short ``detail`` for the ledger."""

    ok: bool
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

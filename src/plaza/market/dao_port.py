"""The market's one coupling to the DAO: vetoes, proposals, dispute votes, the treasury.

The market needs four things from the DAO and nothing else, so they are named here as
a protocol and the rest of the market depends only on it:

* whether members vetoed an optimistic agent action (an award) during its window;
* the outcome of a proposal (a contract approved by vote, a dispute ruled on);
* to file a ``dispute`` proposal for a provider's dispute;
* how much the treasury holds, before the market moves money into its escrow.

A market without a DAO port (the simulator's in-memory mode) approves within the mandate
only and records the operator's ruling on disputes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class DaoPort(Protocol):
    """What the market asks of the DAO."""

    def vetoed(self, kind: str, subject: str) -> bool:
        """Whether members vetoed the optimistic action ``kind`` on ``subject``."""
        ...

    def outcome(self, proposal: int) -> tuple[str, int | None]:
        """``("passed" | "failed" | "open", amount the proposal names or None)``."""
        ...

    def file_dispute(self, dispute_id: str, doc: Mapping[str, Any], now_ms: int) -> int:
        """File a ``dispute`` proposal for a provider's dispute; return its number."""
        ...

    def treasury_balance(self) -> int | None:
        """Spendable treasury funds in minor units (None if unknown)."""
        ...

"""The market's one coupling to the DAO: its treasury escrows, motions, proposals and votes.

The market needs a handful of things from the DAO and nothing else, so they are named
here as a protocol (:class:`DaoPort`) and implemented once, over
:class:`plaza.dao.service.Dao`, by :class:`DaoLink`. The rest of the market depends only
on the protocol; a market without a DAO (the simulator's in-memory mode) keeps its own
journal and asks only the mandate guard.

With a DAO, the market and the DAO share one ledger, and the market's operator is one
of the DAO's agents. Every money movement becomes a DAO agent action, recorded in the
same atomic run as the market event it belongs to, so the DAO's double-entry books (and
their Beancount export) show every bond, escrow funding and payment:

====================  ==========================================================
market step           DAO action (``dao.action.executed``)
====================  ==========================================================
bond received         ``escrow.open`` bond-<id> (kind bond, on the first receipt),
                      ``escrow.deposit`` of the amount received
fund market escrow    ``escrow.open`` market (kind payment, once), then
                      ``settlement.pay`` with the amount into escrow ``market``
pay an invoice        ``escrow.release`` from ``market``
bond returned         ``escrow.release`` from bond-<id>
bond forfeited        ``escrow.forfeit`` from bond-<id>
====================  ==========================================================

An optimistic award opens a DAO motion (``contract.award``, carrying the contract id)
that members may veto during its window; approving the contract executes the motion.
A provider's dispute files a proposal of the DAO's ``dispute`` type, and its outcome
(passed or not) is the ruling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from plaza.dao import Action, GuardState, Mandate
from plaza.dao.records import Motion
from plaza.dao.service import Dao
from plaza.dao.state import DaoState
from plaza.ledger.keystore import Signer
from plaza.market.errors import MarketInputError
from plaza.market.journal import party_id

ESCROW_MARKET = "market"


def bond_escrow_id(party: str) -> str:
    """The DAO escrow id of a provider's bond (matches :func:`journal.bond_escrow`)."""
    return f"bond-{party_id(party)}"


@runtime_checkable
class DaoPort(Protocol):
    """What the market asks of the DAO."""

    @property
    def state(self) -> DaoState:
        """The DAO's replayed state (the market checks and applies events to it)."""
        ...

    def sync(self) -> None:
        """Catch up with the shared ledger."""
        ...

    def mandate(self) -> Mandate:
        """The mandate in force."""
        ...

    def guard_state(self, now_ms: int) -> GuardState:
        """What the mandate guard sees now (spends, accounts)."""
        ...

    def motion_for(self, contract_id: str) -> Motion | None:
        """The motion opened for an optimistic award of ``contract_id``, if any."""
        ...

    def outcome(self, proposal: int, now_ms: int) -> tuple[str, int | None]:
        """``("passed" | "failed" | "open", amount the proposal names or None)``."""
        ...

    def file_dispute(
        self, dispute_id: str, doc: Mapping[str, Any], operator: str, now_ms: int
    ) -> int:
        """File a ``dispute`` proposal for a provider's dispute; return its number."""
        ...

    def treasury_balance(self) -> int:
        """Spendable treasury funds in minor units."""
        ...

    def has_escrow(self, escrow_id: str) -> bool: ...


@dataclass
class DaoLink:
    """:class:`DaoPort` over a :class:`~plaza.dao.service.Dao` sharing the market's ledger.
    ``agent`` is the market operator's signer (one of the constitution's agents)."""

    dao: Dao
    agent: Signer | None

    @property
    def state(self) -> DaoState:
        return self.dao.state

    def sync(self) -> None:
        self.dao.sync()

    def reload(self) -> None:
        """Rebuild the DAO state from the ledger (after a failed atomic run)."""
        self.dao.reload()

    def mandate(self) -> Mandate:
        return self.dao.state.mandate

    def guard_state(self, now_ms: int) -> GuardState:
        return self.dao.state.guard_state(now_ms)

    def motion_for(self, contract_id: str) -> Motion | None:
        found = None
        for m in self.dao.state.motions.values():
            if m.action.kind == "contract.award" and m.action.params.get("contract") == contract_id:
                found = m
        return found

    def outcome(self, proposal: int, now_ms: int) -> tuple[str, int | None]:
        out = self.dao.outcome(proposal, now_ms)
        if out.status in ("passed", "executed"):
            return "passed", None
        if out.status == "open":
            return "open", None
        return "failed", None

    def file_dispute(
        self, dispute_id: str, doc: Mapping[str, Any], operator: str, now_ms: int
    ) -> int:
        if self.agent is None:
            raise MarketInputError("a read-only DAO link cannot file proposals")
        claim = {
            "dispute": dispute_id,
            "invoice": doc["invoice"],
            "amount": doc["claim"],
            "reason": doc["reason"],
            "evidence": [e["digest"] for e in doc["evidence"]],
        }
        return self.dao.propose(
            self.agent,
            "dispute",
            f"market dispute {dispute_id}: {doc['provider']} contests {doc['invoice']}"[:300],
            now_ms,
            body=str(doc["reason"])[:2000],
            effect={
                "subject": f"{dispute_id} on {doc['invoice']}",
                "claimant": doc["provider"],
                "respondent": operator,
                "claim": claim,
            },
        )

    def treasury_balance(self) -> int:
        return self.dao.state.books.balance("Assets:Treasury")

    def has_escrow(self, escrow_id: str) -> bool:
        return escrow_id in self.dao.state.escrows


def escrow_action(op: str, escrow_id: str, /, **params: Any) -> Action:
    """A DAO escrow action (``escrow.open`` / ``deposit`` / ``release`` / ``forfeit``)."""
    return Action(kind=op, params={"escrow": escrow_id, **params})

"""The market's journal: the double-entry postings its events make.

Every event that moves money carries its postings (``[[account, minor units], ...]``,
debits positive, summing to zero) and the market state records them here, refusing any
that would overdraw an account the market owns: an escrow account may not go below
zero, a bond or payable liability not above it. Account names follow the DAO
treasury's (``plaza.dao.treasury``): ``Assets:Treasury`` (the DAO's spendable funds,
not the market's to police), ``Assets:Escrow:Market`` (money set aside to pay
invoices), ``Assets:Escrow:Bond-<id>`` and ``Liabilities:Bonds:Bond-<id>`` (a
provider's bond and the DAO's debt to return it), ``Liabilities:Payable:P-<id>`` (an
invoice issued, not yet paid), ``Expenses:Infrastructure`` and ``Income:Forfeits``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from plaza.market.errors import MarketInputError, TreasuryPortError

TREASURY: Final = "Assets:Treasury"
MARKET_ESCROW: Final = "Assets:Escrow:Market"
EXPENSES: Final = "Expenses:Infrastructure"
FORFEITS: Final = "Income:Forfeits"
_OWNED: Final = ("Assets:Escrow:", "Liabilities:")


def party_id(did: str) -> str:
    """A short, stable account component for a DID (account names cannot hold ':')."""
    return hashlib.sha256(did.encode()).hexdigest()[:12]


def bond_escrow(did: str) -> str:
    return f"Assets:Escrow:Bond-{party_id(did)}"


def bond_liability(did: str) -> str:
    return f"Liabilities:Bonds:Bond-{party_id(did)}"


def payable(did: str) -> str:
    return f"Liabilities:Payable:P-{party_id(did)}"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    seq: int
    time_ms: int
    payee: str
    narration: str
    postings: tuple[tuple[str, int], ...]

    def to_map(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time_ms,
            "payee": self.payee,
            "narration": self.narration,
            "postings": [list(p) for p in self.postings],
        }


def postings_of(value: Any) -> tuple[tuple[str, int], ...]:
    """Validate a postings list from an event payload."""
    if not isinstance(value, list | tuple) or len(value) < 2:
        raise MarketInputError("postings must be a list of at least two [account, amount]")
    out: list[tuple[str, int]] = []
    for p in value:
        if (
            not isinstance(p, list | tuple)
            or len(p) != 2
            or type(p[0]) is not str
            or type(p[1]) is not int
            or p[1] == 0
        ):
            raise MarketInputError("a posting is [account, non-zero integer amount]")
        out.append((p[0], p[1]))
    if sum(a for _, a in out) != 0:
        raise TreasuryPortError("postings do not balance")
    return tuple(out)


class Journal:
    """Balances and entries (part of the market state)."""

    def __init__(self) -> None:
        self.balances: dict[str, int] = {}
        self.entries: list[JournalEntry] = []

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    def check(self, postings: Sequence[tuple[str, int]]) -> None:
        delta: dict[str, int] = {}
        for account, amount in postings:
            delta[account] = delta.get(account, 0) + amount
        for account, d in delta.items():
            after = self.balance(account) + d
            if account.startswith("Assets:Escrow:") and after < 0:
                raise TreasuryPortError(
                    f"{account} holds {self.balance(account)}, not enough for {-d}"
                )
            if account.startswith("Liabilities:") and after > 0:
                raise TreasuryPortError(f"{account} would owe less than nothing")

    def post(self, entry: JournalEntry) -> None:
        for account, amount in entry.postings:
            self.balances[account] = self.balances.get(account, 0) + amount
        self.entries.append(entry)

"""The treasury's books: double-entry accounting in integer minor units of one currency.

Every entry is a balanced set of postings (debits positive, credits negative, summing to
zero) under the five account types Assets, Liabilities, Income, Expenses and Equity,
named the way Beancount names them (``Assets:Treasury``, ``Income:Dues``). Asset accounts
may never go below zero and liability accounts never above zero: the books refuse any
entry that would overdraw, so "spent money we did not have" cannot be recorded.

The standard accounts:

* ``Assets:Treasury`` — money the DAO holds and may spend.
* ``Income:Dues``, ``Income:Donations``, ``Income:Grants`` — where income comes from.
* ``Expenses:<Category>`` — spending, one account per mandate budget category (or the
  category a passed proposal names).
* ``Assets:Escrow:<ID>`` — money held in an escrow account: a provider's bond, or a
  payment set aside for an invoice. ``Liabilities:Bonds:<ID>`` is what the DAO owes the
  provider back while it holds their bond. ``Income:Forfeits`` receives forfeited bonds.
* ``Equity:Opening`` — the opening balance declared at genesis.

Amounts are integers of minor units; no posting and no balance may leave the signed
64-bit range (``MAX_AMOUNT``), so every state stays a DAG-CBOR value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal

from plaza.dao.action import MAX_AMOUNT
from plaza.dao.errors import TreasuryError

AccountType = Literal["Assets", "Liabilities", "Income", "Expenses", "Equity"]
ACCOUNT_TYPES: Final = ("Assets", "Liabilities", "Income", "Expenses", "Equity")
TREASURY: Final = "Assets:Treasury"
OPENING: Final = "Equity:Opening"
FORFEITS: Final = "Income:Forfeits"
INCOME_KINDS: Final = {
    "dues": "Income:Dues",
    "donation": "Income:Donations",
    "grant": "Income:Grants",
}
_COMPONENT_RE: Final = re.compile(r"^[A-Z0-9][A-Za-z0-9-]{0,63}$")
ESCROW_ID_RE: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$")


def component(name: str) -> str:
    """A Beancount account component from a category or escrow id (``infra_ops`` ->
    ``Infra-ops``); raises :class:`TreasuryError` if none can be made."""
    c = name.replace("_", "-")
    c = c[:1].upper() + c[1:]
    if not _COMPONENT_RE.match(c):
        raise TreasuryError(f"{name!r} cannot name an account")
    return c


def expense_account(category: str) -> str:
    return f"Expenses:{component(category)}"


def escrow_account(escrow_id: str) -> str:
    return f"Assets:Escrow:{component(escrow_id)}"


def bond_account(escrow_id: str) -> str:
    return f"Liabilities:Bonds:{component(escrow_id)}"


def check_account(name: str) -> None:
    parts = name.split(":")
    if parts[0] not in ACCOUNT_TYPES or len(parts) < 2:
        raise TreasuryError(f"account {name!r} must start with one of {ACCOUNT_TYPES}")
    for p in parts[1:]:
        if not _COMPONENT_RE.match(p):
            raise TreasuryError(f"invalid account component {p!r} in {name!r}")


@dataclass(frozen=True, slots=True)
class Posting:
    account: str
    amount: int  # minor units; debit positive, credit negative


@dataclass(frozen=True, slots=True)
class Entry:
    """One balanced journal entry, recorded by ledger event ``seq``."""

    seq: int
    time_ms: int
    payee: str
    narration: str
    postings: tuple[Posting, ...]
    ref: str = ""  # the payment's reference, for income

    def to_map(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "seq": self.seq,
            "time": self.time_ms,
            "payee": self.payee,
            "narration": self.narration,
            "postings": [[p.account, p.amount] for p in self.postings],
        }
        if self.ref:
            out["ref"] = self.ref
        return out


class Books:
    """Double-entry books. :meth:`check` validates an entry; :meth:`post` records it."""

    def __init__(self, currency: str, minor_digits: int) -> None:
        self.currency = currency
        self.minor_digits = minor_digits
        self.balances: dict[str, int] = {}
        self.opened: dict[str, int] = {}
        self.entries: list[Entry] = []
        self.refs: dict[str, int] = {}  # payment reference -> the seq that recorded it

    def balance(self, account: str) -> int:
        return self.balances.get(account, 0)

    def check(self, postings: tuple[Posting, ...]) -> None:
        """Raise :class:`TreasuryError` unless the postings balance and overdraw nothing."""
        if len(postings) < 2:
            raise TreasuryError("an entry needs at least two postings")
        if sum(p.amount for p in postings) != 0:
            raise TreasuryError("postings do not balance")
        delta: dict[str, int] = {}
        for p in postings:
            check_account(p.account)
            if type(p.amount) is not int or p.amount == 0 or abs(p.amount) > MAX_AMOUNT:
                raise TreasuryError("posting amounts are non-zero integers of minor units")
            delta[p.account] = delta.get(p.account, 0) + p.amount
        for account, d in delta.items():
            after = self.balance(account) + d
            if abs(after) > MAX_AMOUNT:
                raise TreasuryError(f"{account} would hold more than the books can count")
            if account.startswith("Assets:") and after < 0:
                raise TreasuryError(
                    f"{account} holds {self.format(self.balance(account))}, "
                    f"not enough for {self.format(-d)}"
                )
            if account.startswith("Liabilities:") and after > 0:
                raise TreasuryError(f"{account} would owe less than nothing")

    def post(self, entry: Entry) -> None:
        self.check(entry.postings)
        for p in entry.postings:
            self.opened.setdefault(p.account, entry.time_ms)
            self.balances[p.account] = self.balances.get(p.account, 0) + p.amount
        if entry.ref:
            self.refs[entry.ref] = entry.seq
        self.entries.append(entry)

    def format(self, minor: int) -> str:
        """``12345`` -> ``"123.45 EUR"`` (with two minor digits)."""
        return f"{format_amount(minor, self.minor_digits)} {self.currency}"

    def to_map(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "balances": dict(sorted(self.balances.items())),
            "entries": [e.to_map() for e in self.entries],
        }


def format_amount(minor: int, digits: int) -> str:
    """Integer minor units as a decimal string, exactly (no floats)."""
    sign = "-" if minor < 0 else ""
    q, r = divmod(abs(minor), 10**digits)
    return f"{sign}{q}.{r:0{digits}d}" if digits else f"{sign}{q}"

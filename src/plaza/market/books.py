"""The market's books as Beancount text, alone or merged into the DAO's.

Every money event of the market carries balanced postings (:mod:`plaza.market.journal`).
:func:`to_beancount` writes them as a Beancount file: accounts opened on the day of
their first posting, one transaction per event in ledger order (with its ``ledger-seq``
as metadata), and a closing ``balance`` assertion per account, so ``bean-check``
proves the file's balances equal the replayed state's. Amounts are exact: integer
minor units printed with the currency's minor digits, never through floats.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from plaza.dao.treasury import format_amount
from plaza.market.journal import JournalEntry

if TYPE_CHECKING:
    from plaza.market.data import MarketData


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _text(s: str) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in s)
    return clean.replace("\\", "/").replace('"', "'")[:200]


def entries_to_beancount(
    entries: Iterable[JournalEntry], *, currency: str, title: str, digits: int = 2
) -> str:
    """Beancount text for ``entries`` (in order); see the module docstring."""
    items = list(entries)
    opened: dict[str, int] = {}
    balances: dict[str, int] = {}
    for e in items:
        for account, a in e.postings:
            opened.setdefault(account, e.time_ms)
            balances[account] = balances.get(account, 0) + a
    lines = [f'option "title" "{_text(title)}"', f'option "operating_currency" "{currency}"', ""]
    first = min(opened.values(), default=0)
    lines.append(f"{_date(first)} commodity {currency}")
    for account, t in sorted(opened.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f"{_date(t)} open {account} {currency}")
    lines.append("")
    for e in items:
        lines.append(f'{_date(e.time_ms)} * "{_text(e.payee)}" "{_text(e.narration)}"')
        lines.append(f"  ledger-seq: {e.seq}")
        for account, a in e.postings:
            lines.append(f"  {account}  {format_amount(a, digits)} {currency}")
        lines.append("")
    if items:
        day = (datetime.fromtimestamp(items[-1].time_ms / 1000, UTC) + timedelta(days=1)).strftime(
            "%Y-%m-%d"
        )
        for account in sorted(balances):
            total = format_amount(balances[account], digits)
            lines.append(f"{day} balance {account}  {total} {currency}")
    return "\n".join(lines) + "\n"


def to_beancount(state: MarketData, *, title: str = "Plaza market") -> str:
    """The market's own journal as Beancount text."""
    return entries_to_beancount(
        state.journal.entries, currency=state.currency or "EUR", title=title
    )

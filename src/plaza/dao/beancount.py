"""Export the treasury's books as a Beancount file that ``bean-check`` accepts.

Accounts are opened on the day of their first entry, entries are written in ledger
order with the ledger sequence number (and an income's payment reference) as metadata,
and the file ends with one ``balance`` assertion per account dated the day after the
last entry, with an explicit tolerance of zero (Beancount would otherwise allow one unit
of the last digit), so ``bean-check`` itself proves that the file's balances equal the
ledger's exactly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from plaza.dao.treasury import Books, format_amount


def _date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def _text(s: str) -> str:
    clean = "".join(ch if ch.isprintable() else " " for ch in s)
    return clean.replace("\\", "/").replace('"', "'")[:200]


def to_beancount(books: Books, *, title: str) -> str:
    """The books as Beancount text (see the module docstring)."""
    cur, digits = books.currency, books.minor_digits
    lines = [
        f'option "title" "{_text(title)}"',
        f'option "operating_currency" "{cur}"',
        "",
    ]
    first = min(books.opened.values(), default=0)
    lines.append(f"{_date(first)} commodity {cur}")
    for account, opened in sorted(books.opened.items(), key=lambda kv: (kv[1], kv[0])):
        lines.append(f"{_date(opened)} open {account} {cur}")
    lines.append("")
    for e in books.entries:
        lines.append(f'{_date(e.time_ms)} * "{_text(e.payee)}" "{_text(e.narration)}"')
        lines.append(f"  ledger-seq: {e.seq}")
        if e.ref:
            lines.append(f'  payment-ref: "{_text(e.ref)}"')
        for p in e.postings:
            lines.append(f"  {p.account}  {format_amount(p.amount, digits)} {cur}")
        lines.append("")
    if books.entries:
        last = datetime.fromtimestamp(books.entries[-1].time_ms / 1000, UTC) + timedelta(days=1)
        day = last.strftime("%Y-%m-%d")
        for account in sorted(books.balances):
            amount = format_amount(books.balances[account], digits)
            lines.append(f"{day} balance {account}  {amount} ~ 0 {cur}")
    return "\n".join(lines) + "\n"

"""Treasury books: double entry, overdraft refusal, and a Beancount export that the real
``bean-check`` accepts with balances equal to the ledger's."""

from __future__ import annotations

import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from beancount import loader
from beancount.core import data as bdata

from plaza.dao.action import Action
from plaza.dao.beancount import to_beancount
from plaza.dao.errors import TreasuryError
from plaza.dao.service import Dao
from plaza.dao.treasury import Books, Entry, Posting, format_amount
from tests.dao.conftest import DAY, HOUR, T0, World, signer


def bean_check() -> str:
    found = shutil.which("bean-check") or str(Path(sys.executable).with_name("bean-check"))
    assert Path(found).exists(), "bean-check (the beancount package) is a dev dependency"
    return found


def test_amount_formatting() -> None:
    assert [format_amount(x, 2) for x in (0, 5, 123, -123456, 100)] == [
        "0.00",
        "0.05",
        "1.23",
        "-1234.56",
        "1.00",
    ]
    assert format_amount(-7, 0) == "-7"
    assert format_amount(1, 3) == "0.001"


def test_books_refuse_unbalanced_and_overdrawn() -> None:
    b = Books("EUR", 2)
    with pytest.raises(TreasuryError, match="balance"):
        b.post(Entry(0, 0, "", "", (Posting("Assets:Treasury", 5), Posting("Income:Dues", -4))))
    with pytest.raises(TreasuryError, match="not enough"):
        b.post(Entry(0, 0, "", "", (Posting("Expenses:X", 5), Posting("Assets:Treasury", -5))))
    with pytest.raises(TreasuryError, match="must start with"):
        b.post(Entry(0, 0, "", "", (Posting("Cash", 5), Posting("Income:Dues", -5))))
    assert b.balances == {} and b.entries == []


def _eventful(dao: Dao, world: World) -> None:
    provider = signer("provider").did
    dao.receive(
        world.alice, "dues", 1_200, T0, source=world.alice.did, ref="sepa-1", memo='dues "2025"'
    )
    dao.receive(world.agent, "grant", 250_000, T0 + HOUR, source="Foundation", ref='wire "7"')
    steps = [
        Action("escrow.open", {"escrow": "bond-1", "kind": "bond", "party": provider}),
        Action("escrow.deposit", {"escrow": "bond-1", "amount": 40_000}),
        Action("escrow.open", {"escrow": "pay-1", "kind": "payment", "party": provider}),
        Action("settlement.pay", {"escrow": "pay-1"}, amount=12_345, category="infrastructure"),
        Action("escrow.release", {"escrow": "pay-1", "amount": 12_345}),
        Action("probe.pay", {"payee": "prober-3"}, amount=999, category="probes"),
    ]
    for i, a in enumerate(steps):
        dao.act(world.agent, a, f"step {i}", T0 + DAY + i)
    pid = dao.propose(
        world.alice,
        "treasury",
        "Conference travel",
        T0 + 2 * DAY,
        effect={"amount": 80_001, "payee": "Rail Co", "category": "travel"},
    )
    dao.vote(world.alice, pid, {"choice": "yes"}, T0 + 2 * DAY)
    dao.execute(world.bob, pid, T0 + 10 * DAY)


def test_beancount_export_passes_bean_check(dao: Dao, world: World, tmp_path: Path) -> None:
    _eventful(dao, world)
    books = dao.state.books
    text = to_beancount(books, title=dao.state.constitution.name)
    path = tmp_path / "books.beancount"
    path.write_text(text)
    run = subprocess.run(
        [bean_check(), str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout + run.stderr
    # The balances beancount computes equal the ledger's, account by account.
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    totals: dict[str, Decimal] = {}
    for e in entries:
        if isinstance(e, bdata.Transaction):
            for p in e.postings:
                totals[p.account] = totals.get(p.account, Decimal(0)) + p.units.number
    assert {a: int(v * 100) for a, v in totals.items()} == books.balances
    assert books.balance("Assets:Treasury") == 1_000_000 + 1_200 + 250_000 - 12_345 - 999 - 80_001
    assert sum(books.balances.values()) == 0


def test_bean_check_catches_a_wrong_balance(dao: Dao, world: World, tmp_path: Path) -> None:
    """The export's balance assertions are real: edit one amount and bean-check fails."""
    _eventful(dao, world)
    # Edit the dues entry (still balanced) but not the balance assertions at the end.
    text = to_beancount(dao.state.books, title="x")
    text = text.replace("Income:Dues  -12.00 EUR", "Income:Dues  -12.01 EUR", 1)
    text = text.replace("Assets:Treasury  12.00 EUR", "Assets:Treasury  12.01 EUR", 1)
    path = tmp_path / "edited.beancount"
    path.write_text(text)
    run = subprocess.run(
        [bean_check(), str(path)], check=False, capture_output=True, text=True, timeout=120
    )
    assert run.returncode != 0
    assert "Balance failed" in run.stdout + run.stderr

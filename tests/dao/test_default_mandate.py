"""The shipped default mandate lets agents operate within a budget on their own: small
purchases and releases are automatic, bigger ones wait out a veto window, the biggest go
to a vote, nothing passes the cap or the rolling budget, and migrations run in batches."""

from __future__ import annotations

import pytest

from plaza.dao.action import Action
from plaza.dao.mandate import (
    Allow,
    Deny,
    GuardState,
    NeedsVote,
    Optimistic,
    Spend,
    check,
    default_mandate,
)

NOW = 1_700_000_000_000
HOUR = 3_600_000
M = default_mandate()


def procure(amount: int) -> Action:
    return Action("capacity.procure", {"service": "hosting"}, amount=amount)


def state(**spends: list[Spend]) -> GuardState:
    return GuardState(M, now_ms=NOW, spends=spends)


@pytest.mark.parametrize(
    ("amount", "verdict"),
    [
        (1, Allow()),
        (20_000, Allow()),  # 200.00 EUR: at the threshold, still automatic
        (20_001, Optimistic(48 * 3600, 50_000)),
        (300_000, Optimistic(48 * 3600, 50_000)),
        (300_001, "vote"),
        (500_001, "deny:OverCap"),
    ],
    ids=["tiny", "at-threshold", "over-threshold", "at-vote-line", "over-vote-line", "over-cap"],
)
def test_procurement_escalates_with_its_size(amount: int, verdict: object) -> None:
    got = check(procure(amount), state())
    if verdict == "vote":
        assert isinstance(got, NeedsVote)
    elif isinstance(verdict, str):
        assert isinstance(got, Deny) and got.code == verdict.split(":")[1]
    else:
        assert got == verdict


def test_automatic_purchases_stop_at_the_rolling_daily_budget() -> None:
    limit = M.budgets["capacity"].limit
    assert M.budgets["capacity"].period == 24 * 3600
    spent = [Spend(NOW - 23 * HOUR, limit - 10_000)]
    assert check(procure(10_000), state(capacity=spent)) == Allow()
    denied = check(procure(10_001), state(capacity=spent))
    assert isinstance(denied, Deny) and denied.code == "OverBudget"
    # A day later the same spend has rolled out of the window.
    later = GuardState(M, now_ms=NOW + 2 * HOUR, spends={"capacity": spent})
    assert check(procure(10_001), later) == Allow()


def test_releases_are_automatic_until_they_are_large() -> None:
    small = Action("capacity.release", {"units": 40}, accounts=40)
    large = Action("capacity.release", {"units": 6_000}, accounts=6_000)
    assert check(small, state()) == Allow()
    assert check(large, state()) == Optimistic(24 * 3600, 50_000)


def test_small_awards_are_signed_at_once_and_big_ones_wait() -> None:
    award = Action("contract.award", amount=100_000, category="infrastructure")
    assert check(award, state()) == Allow()
    bigger = Action("contract.award", amount=100_001, category="infrastructure")
    assert check(bigger, state()) == Optimistic(72 * 3600, 50_000)


def test_migrations_run_in_batches() -> None:
    accounts = {f"did:web:p{i}.example": 10_000 for i in range(10)}
    ok = Action(
        "migration.batch",
        accounts=5_000,
        provider="did:web:p1.example",
        source="did:web:p0.example",
    )
    assert check(ok, GuardState(M, now_ms=NOW, accounts=accounts)) == Allow()
    too_big = Action(
        "migration.batch",
        accounts=5_001,
        provider="did:web:p1.example",
        source="did:web:p0.example",
    )
    denied = check(too_big, GuardState(M, now_ms=NOW, accounts=accounts))
    assert isinstance(denied, Deny) and denied.code == "OversizeBatch"


def test_settling_is_automatic_and_has_a_rule() -> None:
    assert check(Action("settlement.settle", {"epoch": 3}), state()) == Allow()

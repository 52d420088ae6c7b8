"""The DAO: members, proposals, votes, delegation, treasury and the mandate guard.

All DAO state is derived by replaying ledger events (see :mod:`plaza.ledger`).
"""

from plaza.dao.action import Action
from plaza.dao.mandate import (
    Allow,
    Deny,
    GuardState,
    Mandate,
    NeedsVote,
    Optimistic,
    Spend,
    Verdict,
    check,
    default_mandate,
    diff_mandates,
    load_mandate,
    parse_mandate,
)
from plaza.dao.money import Currency, currency_for, default_currency

__all__ = [
    "Action",
    "Allow",
    "Currency",
    "Deny",
    "GuardState",
    "Mandate",
    "NeedsVote",
    "Optimistic",
    "Spend",
    "Verdict",
    "check",
    "currency_for",
    "default_currency",
    "default_mandate",
    "diff_mandates",
    "load_mandate",
    "parse_mandate",
]

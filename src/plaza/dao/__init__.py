"""The DAO: members, proposals, votes, delegation, treasury and the mandate guard.

All DAO state is derived by replaying ledger events (see :mod:`plaza.ledger`):
:class:`Dao` records commands through the ledger's command core, :class:`DaoState`
replays them (one table of typed handlers, :data:`plaza.dao.state.TABLE`), and other
packages ask its queries (:class:`DaoFacts`: ``members()``, ``is_member(did)``,
``role_of(did)``, ``motion(id)``, ``treasury_balance()``, ...).
"""

from plaza.dao.action import Action
from plaza.dao.facts import DaoFacts
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
from plaza.dao.records import Candidate, Escrow, ExecutedAction, Member, Motion, Proposal
from plaza.dao.service import ActionOutcome, Dao
from plaza.dao.state import DaoState

__all__ = [
    "Action",
    "ActionOutcome",
    "Allow",
    "Candidate",
    "Currency",
    "Dao",
    "DaoFacts",
    "DaoState",
    "Deny",
    "Escrow",
    "ExecutedAction",
    "GuardState",
    "Mandate",
    "Member",
    "Motion",
    "NeedsVote",
    "Optimistic",
    "Proposal",
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

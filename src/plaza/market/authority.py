"""What the operator may do on its own: the mandate guard's verdicts, and carrying out
the actions it allows.

:class:`Authority` asks the guard (:func:`plaza.dao.check`) about an agent action —
against the DAO's view of spends and accounts when a DAO is connected, against the
market's own escrow fundings otherwise — and carries out what it allows: under a DAO
as a ``dao.action.executed`` event (which the DAO checks again), recorded by the
market's :class:`~plaza.market.recorder.Recorder`. An action the guard leaves to the
members is either refused (:func:`not_allowed`) or noted as :class:`Pending`.
"""

from __future__ import annotations

from dataclasses import dataclass

from plaza.dao import Action, Allow, Deny, GuardState, Mandate, NeedsVote, Spend, check
from plaza.dao.mandate import Verdict
from plaza.market.dao_port import DaoPort
from plaza.market.errors import MandateDeniedError, NotApprovedError
from plaza.market.journal import MARKET_ESCROW
from plaza.market.recorder import Recorder


@dataclass(frozen=True, slots=True)
class Pending:
    """An action the mandate did not let the agent take on its own."""

    kind: str
    subject: str
    verdict: str
    reason: str


class Authority:
    """The operator's standing under the mandate; see the module docstring.
    ``mandate``: the mandate in force without a DAO (with one, the DAO's is)."""

    def __init__(self, core: Recorder, *, dao: DaoPort | None, mandate: Mandate | None) -> None:
        self._core = core
        self._dao = dao
        self._mandate = mandate

    @property
    def mandate(self) -> Mandate:
        """The mandate in force: the DAO's when connected, else the one given."""
        if self._dao is not None:
            return self._dao.mandate()
        assert self._mandate is not None
        return self._mandate

    def guard(self, action: Action, now_ms: int) -> Verdict:
        """The mandate guard's verdict on ``action`` now."""
        if self._dao is not None:
            return check(action, self._dao.guard_state(now_ms))
        spends = []
        if action.amount:  # only spending reads the budget window: skip the scan otherwise
            spends = [
                Spend(e.time_ms, a)
                for e in self._core.state.journal.entries
                for acct, a in e.postings
                if acct == MARKET_ESCROW and a > 0
            ]
        state = GuardState(mandate=self.mandate, now_ms=now_ms, spends={"infrastructure": spends})
        return check(action, state)

    def act(self, action: Action, reason: str, now_ms: int, *, motion: int = 0) -> None:
        """Carry out an agent action: a DAO action event when connected (the DAO checks it
        again), else only the guard's check. Raises unless the guard allows it — or, with
        ``motion``, unless that DAO motion holds this very action and its veto window has
        passed unvetoed (the DAO checks both when the execution is recorded)."""
        if motion:
            if self._dao is None:
                raise NotApprovedError("motions are the DAO's: no DAO is connected")
            found = self._dao.motion(motion)
            if found is None or found.agent != self._core.operator_did:
                raise NotApprovedError(f"motion {motion} is not this agent's")
            if found.status != "open":
                raise NotApprovedError(f"motion {motion} is {found.status}: {found.why_closed()}")
            self._core.record(
                "dao.action.executed",
                {"action": action.to_map(), "reason": "veto window passed", "motion": motion},
                now_ms,
            )
            return
        verdict = self.guard(action, now_ms)
        if not isinstance(verdict, Allow):
            raise not_allowed(action.kind, verdict)
        if self._dao is not None:
            self._core.record(
                "dao.action.executed", {"action": action.to_map(), "reason": reason}, now_ms
            )

    def try_act(
        self, action: Action, reason: str, now_ms: int, *, pending: list[Pending], subject: str
    ) -> bool:
        """Carry out ``action`` if the guard allows it now; else note it as pending."""
        verdict = self.guard(action, now_ms)
        if not isinstance(verdict, Allow):
            pending.append(Pending(action.kind, subject, verdict.verdict, verdict_reason(verdict)))
            return False
        self.act(action, reason, now_ms)
        return True

    def require_passed(self, proposal: int, now_ms: int) -> None:
        """Raise unless DAO proposal ``proposal`` has passed."""
        if self._dao is None:
            raise NotApprovedError("no DAO is connected to check the proposal")
        outcome, _ = self._dao.outcome(proposal, now_ms)
        if outcome != "passed":
            raise NotApprovedError(f"proposal {proposal} has not passed ({outcome})")


def verdict_reason(verdict: Verdict) -> str:
    """Why the guard did not simply allow: the denial, the vote it needs, or the window."""
    if isinstance(verdict, Deny):
        return f"{verdict.code}: {verdict.reason}"
    if isinstance(verdict, NeedsVote):
        return verdict.reason
    return f"{verdict.verdict} (window {getattr(verdict, 'window_s', 0)} s)"


def not_allowed(kind: str, verdict: Verdict) -> MandateDeniedError | NotApprovedError:
    """The error for an action of ``kind`` the guard did not allow."""
    if isinstance(verdict, Deny):
        return MandateDeniedError(f"the mandate denies {kind}: {verdict.reason}")
    return NotApprovedError(
        f"the mandate does not let the agent {kind} alone: {verdict_reason(verdict)}"
    )

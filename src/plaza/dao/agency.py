"""Agent actions, optimistic motions, treasury income, escrow, and proposal effects.

Theory of operation. An agent's action reaches the ledger one of three ways, each
checked by the mandate guard (:func:`plaza.dao.mandate.check`) against the state at the
event's time:

* ``Allow``: the agent records ``dao.action.executed`` directly.
* ``Optimistic(window)``: the agent opens a motion (``dao.motion.opened``) holding the
  action and its digest. Members may veto while it is open; ``E`` is the number of
  members at opening and the motion stops once ``ceil(E * veto_ppm / 1e6)`` members
  (at least one) have vetoed — the veto that reaches the threshold turns it into a
  binding ``agent-action`` proposal (id = that veto's seq). Otherwise, once the window
  has passed, anyone may execute it, and only with an action whose digest equals the one
  proposed; the guard is asked again at execution (a budget spent meanwhile stops it).
  A motion the guard refuses at or after its window's end can never be carried out as
  proposed, so it *lapses*: ``dao.motion.lapsed`` (by the agent that opened it or any
  member, with the guard's reason) closes it, and replay accepts that event only while
  the motion is open, its window has passed and the guard, as of that point in the
  ledger, indeed refuses the action.
* ``NeedsVote``: the agent files an ``agent-action`` proposal; a passed vote executes it.

A denied action may be recorded (``dao.action.denied``) so its refusal is public too.
Every executed action is kept with its reason and its authority (``mandate``,
``motion:<id>`` or ``proposal:<id>``). Money moves only here and in proposal effects:
an action's ``amount`` is spending, charged to its budget category (or set aside in a
payment escrow when ``params.escrow`` names one); ``escrow.*`` actions move money that is
already set aside (bonds and payments) and carry the amount in ``params.amount``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from plaza.dao.action import Action
from plaza.dao.errors import (
    ActionError,
    ActionMismatchError,
    DuplicatePaymentError,
    DuplicateVoteError,
    InvalidPayloadError,
    MandateDeniedError,
    MotionNotRefusedError,
    NotAllowedError,
    NotFoundInStateError,
    NotMemberError,
    ProposalClosedError,
    RuleViolationError,
    TreasuryError,
)
from plaza.dao.facts import DaoFacts
from plaza.dao.mandate import Allow, Deny, NeedsVote, Optimistic, Spend, check
from plaza.dao.members import require_genesis
from plaza.dao.payload import (
    ActionExecuted,
    AgentAction,
    MotionLapsed,
    MotionVetoed,
    TreasuryReceived,
    valid_did,
)
from plaza.dao.records import Escrow, ExecutedAction, Motion, Proposal
from plaza.dao.treasury import (
    ESCROW_ID_RE,
    FORFEITS,
    INCOME_KINDS,
    TREASURY,
    Entry,
    Posting,
    bond_account,
    component,
    escrow_account,
    expense_account,
)
from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation, On

ESCALATION_TYPE = "agent-action"
RECEIVE_KIND = "treasury.receive"  # the mandate's rule for agents recording income
PPM = 1_000_000


def veto_threshold(eligible: int, veto_ppm: int) -> int:
    """``ceil(E * veto_ppm / 1e6)`` in integers, and at least one veto."""
    return max(1, -(-eligible * veto_ppm // PPM))


def action_from_map(value: Any) -> Action:
    try:
        return Action.from_map(value)
    except ActionError as exc:
        raise InvalidPayloadError(exc.message) from exc


# -- performing actions ------------------------------------------------------------------------


def spend_entry(
    st: DaoFacts, ev: Event, amount: int, category: str, *, payee: str, memo: str
) -> Entry:
    postings = (Posting(expense_account(category or "grants"), amount), Posting(TREASURY, -amount))
    st.books.check(postings)
    return Entry(ev.seq, ev.time, payee, memo, postings)


def perform(
    st: DaoFacts,
    ev: Event,
    action: Action,
    *,
    agent: str,
    reason: str,
    authority: str,
) -> Mutation:
    """Validate an authorized action's effects on the books and placement; return the
    mutation that carries them out."""
    entries: list[Entry] = []
    rule = st.mandate.rule(action.kind)
    category = action.category or (rule.category if rule and rule.category else "") or "general"
    escrow_new: Escrow | None = None
    if action.amount:
        target = action.params.get("escrow")
        if target is not None:
            esc = st.escrow(str(target))
            if esc is None or esc.kind != "payment":
                raise TreasuryError(f"no payment escrow {target!r}")
            postings = (
                Posting(escrow_account(esc.id), action.amount),
                Posting(TREASURY, -action.amount),
            )
            st.books.check(postings)
            entries.append(Entry(ev.seq, ev.time, esc.party, reason, postings))
        else:
            payee = str(action.params.get("payee", action.provider or agent))
            entries.append(spend_entry(st, ev, action.amount, category, payee=payee, memo=reason))
    if action.kind.startswith("escrow."):
        escrow_new, more = _escrow(st, ev, action, reason)
        entries.extend(more)
    if (
        action.accounts
        and action.provider
        and action.source
        and st.accounts_of(action.source) < action.accounts
    ):
        raise RuleViolationError(f"{action.source} does not host {action.accounts} accounts")

    def mutate() -> None:
        for e in entries:
            st.post(e)
        if escrow_new is not None:
            st.open_escrow(escrow_new)
        if action.amount and not authority.startswith("proposal:"):
            st.spend(category, Spend(ev.time, action.amount))
        if action.accounts and action.provider:
            st.move_accounts(action.source, action.provider, action.accounts)
        st.add_action(ExecutedAction(ev.seq, ev.time, agent, action, reason, authority))

    return mutate


def _escrow(
    st: DaoFacts, ev: Event, action: Action, reason: str
) -> tuple[Escrow | None, list[Entry]]:
    params = action.params
    esc_id = params.get("escrow")
    if not isinstance(esc_id, str) or not ESCROW_ID_RE.match(esc_id):
        raise InvalidPayloadError("escrow actions name an escrow id in params.escrow")
    op = action.kind.split(".", 1)[1]
    if op == "open":
        kind, party = params.get("kind"), params.get("party")
        if kind not in ("bond", "payment") or not valid_did(party):
            raise InvalidPayloadError(
                "escrow.open needs params.kind (bond|payment) and a party DID"
            )
        if st.has_escrow(esc_id):
            raise NotAllowedError(f"escrow {esc_id} already exists")
        category = str(params.get("category") or "infrastructure")
        component(category)
        return Escrow(esc_id, str(kind), str(party), category, ev.time, reason), []
    esc = st.escrow(esc_id)
    if esc is None:
        raise NotFoundInStateError(f"no escrow {esc_id}")
    amount = params.get("amount")
    if type(amount) is not int or amount <= 0:
        raise InvalidPayloadError("escrow actions carry a positive params.amount")
    held, owed = escrow_account(esc.id), bond_account(esc.id)
    postings: tuple[Posting, ...]
    if op == "deposit" and esc.kind == "bond":
        postings = (Posting(held, amount), Posting(owed, -amount))
    elif op == "release" and esc.kind == "bond":
        postings = (Posting(owed, amount), Posting(held, -amount))
    elif op == "forfeit" and esc.kind == "bond":
        postings = (
            Posting(owed, amount),
            Posting(FORFEITS, -amount),
            Posting(TREASURY, amount),
            Posting(held, -amount),
        )
    elif op == "release" and esc.kind == "payment":
        postings = (Posting(expense_account(esc.category), amount), Posting(held, -amount))
    elif op == "refund" and esc.kind == "payment":
        postings = (Posting(TREASURY, amount), Posting(held, -amount))
    else:
        raise InvalidPayloadError(f"escrow.{op} does not apply to a {esc.kind} escrow")
    st.books.check(postings)
    return None, [Entry(ev.seq, ev.time, esc.party, reason, postings)]


# -- events --------------------------------------------------------------------------------


def _agent_action(st: DaoFacts, ev: Event, p: AgentAction) -> tuple[Action, str]:
    require_genesis(st)
    if not st.is_agent(ev.author_did):
        raise NotAllowedError(f"{ev.author_did} is not one of the DAO's agents")
    action = action_from_map(p.action)
    if not p.reason.strip():
        raise InvalidPayloadError("every agent action states its reason")
    return action, p.reason


def action_executed(st: DaoFacts, ev: Event, p: ActionExecuted) -> Mutation:
    require_genesis(st)
    action = action_from_map(p.action)
    reason, motion_id = p.reason, p.motion
    if motion_id < 0:
        if not st.is_agent(ev.author_did):
            raise NotAllowedError(f"{ev.author_did} is not one of the DAO's agents")
        if not reason.strip():
            raise InvalidPayloadError("every agent action states its reason")
        verdict = check(action, st.guard_state(ev.time))
        if not isinstance(verdict, Allow):
            raise MandateDeniedError(_verdict_text(action, verdict))
        return perform(st, ev, action, agent=ev.author_did, reason=reason, authority="mandate")
    if not (st.is_agent(ev.author_did) or st.is_member(ev.author_did)):
        raise NotAllowedError("only members and agents execute motions")
    motion = st.motion(motion_id)
    if motion is None:
        raise NotFoundInStateError(f"no motion {motion_id}")
    if motion.status != "open":
        raise ProposalClosedError(f"motion {motion_id} is {motion.status}")
    if ev.time < motion.end_ms:
        raise ProposalClosedError(f"motion {motion_id}'s veto window runs until {motion.end_ms}")
    if action.digest() != motion.digest:
        raise ActionMismatchError(
            f"the action does not hash to what motion {motion_id} proposed "
            f"({action.hash_hex()} != {motion.digest.hex()})"
        )
    verdict = check(action, st.guard_state(ev.time))
    if not isinstance(verdict, Allow | Optimistic):
        raise MandateDeniedError(_verdict_text(action, verdict))
    done = perform(
        st,
        ev,
        action,
        agent=motion.agent,
        reason=motion.reason,
        authority=f"motion:{motion_id}",
    )

    def mutate() -> None:
        done()
        st.put_motion(replace(motion, status="executed"))

    return mutate


def _verdict_text(action: Action, verdict: Any) -> str:
    if isinstance(verdict, Deny):
        return f"mandate denies {action.kind}: {verdict.reason}"
    if isinstance(verdict, NeedsVote):
        return f"{action.kind} needs a vote: {verdict.reason}"
    if isinstance(verdict, Optimistic):
        return f"{action.kind} must wait out a {verdict.window_s}s veto window (open a motion)"
    return f"{action.kind} is not allowed now"


def action_denied(st: DaoFacts, ev: Event, p: AgentAction) -> Mutation:
    action, reason = _agent_action(st, ev, p)
    verdict = check(action, st.guard_state(ev.time))
    if not isinstance(verdict, Deny):
        raise RuleViolationError("the mandate does not deny this action", code="NotDenied")
    return lambda: st.add_denial(ev.seq, ev.author_did, action.hash_hex(), reason)


def motion_opened(st: DaoFacts, ev: Event, p: AgentAction) -> Mutation:
    action, reason = _agent_action(st, ev, p)
    verdict = check(action, st.guard_state(ev.time))
    if not isinstance(verdict, Optimistic):
        raise MandateDeniedError(_verdict_text(action, verdict))
    perform(st, ev, action, agent=ev.author_did, reason=reason, authority="motion")
    eligible = frozenset(st.members())
    motion = Motion(
        id=ev.seq,
        agent=ev.author_did,
        action=action,
        digest=action.digest(),
        reason=reason,
        opened_ms=ev.time,
        end_ms=ev.time + verdict.window_s * 1000,
        veto_ppm=verdict.veto_ppm,
        eligible=eligible,
        threshold=veto_threshold(len(eligible), verdict.veto_ppm),
    )
    return lambda: st.put_motion(motion)


def refusal(st: DaoFacts, action: Action, now_ms: int) -> str | None:
    """The guard's reason for refusing to execute a motion's ``action`` at ``now_ms``
    (denied, or now needing a vote); None if it would let the motion execute."""
    verdict = check(action, st.guard_state(now_ms))
    if isinstance(verdict, Allow | Optimistic):
        return None
    return _verdict_text(action, verdict)


def motion_lapsed(st: DaoFacts, ev: Event, p: MotionLapsed) -> Mutation:
    """Close a motion that can no longer execute: its window has passed and the guard,
    asked as at execution, refuses its action (a budget spent meanwhile, a mandate that
    now denies it or sends it to a vote).

    Who may record it: the agent that opened the motion (it gives up its own request)
    and any current member (so a motion whose agent is gone does not stay open for
    ever). Nobody else: the event closes something members could otherwise still see
    executed once the guard allows it again, and it is checked, not trusted — the
    refusal is re-derived on every replay. ``reason`` is the recorder's statement of the
    guard's words; its text is not compared (wording may change between versions), the
    refusal itself is.
    """
    require_genesis(st)
    motion_id, reason = p.motion, p.reason
    motion = st.motion(motion_id)
    if motion is None:
        raise NotFoundInStateError(f"no motion {motion_id}")
    author = ev.author_did
    if author != motion.agent and not st.is_member(author):
        raise NotAllowedError(
            f"{author} may not close motion {motion_id}: only the agent that opened it "
            "and members do"
        )
    if motion.status != "open":
        raise ProposalClosedError(f"motion {motion_id} is {motion.status}")
    if ev.time < motion.end_ms:
        raise ProposalClosedError(f"motion {motion_id}'s veto window runs until {motion.end_ms}")
    if refusal(st, motion.action, ev.time) is None:
        raise MotionNotRefusedError(
            f"the mandate still lets motion {motion_id} ({motion.action.kind}) execute: "
            "execute it instead"
        )
    if not reason.strip():
        raise InvalidPayloadError("a lapsed motion states the guard's reason")
    lapsed = replace(
        motion, status="lapsed", lapsed_ms=ev.time, lapsed_by=author, lapse_reason=reason
    )
    return lambda: st.put_motion(lapsed)


def motion_vetoed(st: DaoFacts, ev: Event, p: MotionVetoed) -> Mutation:
    require_genesis(st)
    motion_id = p.motion
    motion = st.motion(motion_id)
    if motion is None:
        raise NotFoundInStateError(f"no motion {motion_id}")
    if motion.status != "open" or ev.time >= motion.end_ms:
        raise ProposalClosedError(f"motion {motion_id} is no longer open to vetoes")
    member = ev.author_did
    if member not in motion.eligible or not st.is_member(member):
        raise NotMemberError(f"{member} is not eligible to veto motion {motion_id}")
    if member in motion.vetoes:
        raise DuplicateVoteError(f"{member} already vetoed motion {motion_id}")
    escalates = len(motion.vetoes) + 1 >= motion.threshold
    ptype = st.constitution.proposal_type(ESCALATION_TYPE)
    if escalates and (ptype is None or ptype.executes != "agent-action"):
        raise RuleViolationError("the constitution has no agent-action proposal type")
    vetoed = replace(motion, vetoes=motion.vetoes | {member})
    if not escalates:
        return lambda: st.put_motion(vetoed)
    assert ptype is not None
    c = st.constitution
    proposal = Proposal(
        id=ev.seq,
        type=ESCALATION_TYPE,
        author=motion.agent,
        title=f"Vetoed motion {motion.id}: {motion.action.kind}",
        body=motion.reason,
        method=ptype.method,
        executes="agent-action",
        topic=c.topic_of(ESCALATION_TYPE),
        created_ms=ev.time,
        end_ms=ev.time + ptype.window * 1000,
        choices=("yes", "no", "abstain"),
        effect={"action": motion.action.to_map(), "reason": motion.reason},
        effects={},
        snapshot=frozenset(st.members()),
        epoch=(ev.time - st.genesis_ms) // (c.epochs.length * 1000),
        motion=motion.id,
    )
    escalated = replace(vetoed, status="escalated", proposal=ev.seq)

    def mutate() -> None:
        st.put_motion(escalated)
        st.put_proposal(proposal)

    return mutate


def treasury_received(st: DaoFacts, ev: Event, p: TreasuryReceived) -> Mutation:
    """Income into the treasury, recorded by whoever the DAO trusts with the books: an
    agent whose mandate allows ``treasury.receive`` on its own, or a treasurer named in
    the constitution (who, if they are or were a member, must still be one). Every income
    names its payment's reference (a bank or processor transaction id), once: the same
    payment cannot be booked twice. The amount is in the DAO's currency, named."""
    require_genesis(st)
    kind, amount, currency, source, ref, memo = p.kind, p.amount, p.currency, p.from_, p.ref, p.memo
    author = ev.author_did
    if st.is_agent(author):
        verdict = check(Action(RECEIVE_KIND, {"kind": kind}), st.guard_state(ev.time))
        if not isinstance(verdict, Allow):
            raise MandateDeniedError(
                f"the mandate does not let agents record income on their own: "
                f"{_verdict_text(Action(RECEIVE_KIND), verdict)}"
            )
    elif not st.is_treasurer(author):
        raise NotAllowedError(
            f"{author} may not record income: only the DAO's agents (under the mandate) "
            "and the treasurers the constitution names do"
        )
    books = st.books
    if currency != books.currency:
        raise InvalidPayloadError(
            f"income in {currency!r}, but the DAO's books are in {books.currency}"
        )
    if not source.strip():
        raise InvalidPayloadError("income names who paid ('from')")
    if not ref.strip() or ref != ref.strip() or not ref.isprintable():
        raise InvalidPayloadError(
            "income carries its payment reference ('ref'): printable text, "
            "without surrounding spaces"
        )
    if ref in books.refs:
        raise DuplicatePaymentError(
            f"payment {ref!r} is already in the books (event {books.refs[ref]})"
        )
    postings = (Posting(TREASURY, amount), Posting(INCOME_KINDS[kind], -amount))
    books.check(postings)
    entry = Entry(ev.seq, ev.time, source, memo or kind, postings, ref=ref)
    return lambda: st.post(entry)


HANDLERS: dict[str, On[DaoFacts, Any]] = {
    "dao.action.executed": On(ActionExecuted, action_executed),
    "dao.action.denied": On(AgentAction, action_denied),
    "dao.motion.opened": On(AgentAction, motion_opened),
    "dao.motion.vetoed": On(MotionVetoed, motion_vetoed),
    "dao.motion.lapsed": On(MotionLapsed, motion_lapsed),
    "dao.treasury.received": On(TreasuryReceived, treasury_received),
}

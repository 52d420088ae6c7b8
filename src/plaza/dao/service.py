"""The DAO's commands: decide an event, check it against state, append it, apply it.

:class:`Dao` joins a :class:`~plaza.ledger.Ledger` and the :class:`DaoState` replayed
from it through the ledger's command core (:class:`~plaza.ledger.command.Commands`):
every command takes the :class:`~plaza.ledger.keystore.Signer` acting and the time
(Unix ms; the caller's clock, passed in), catches up with events other writers
appended, builds and signs the next event, asks the state whether it is legal (raising
the same error ``verify`` would name), appends it, and only then applies it; a lost
append race is retried on the new head by the core's one retry policy. State never
changes except by applying an appended event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plaza.atproto.crypto import PublicKey
from plaza.dao.action import Action
from plaza.dao.agency import ESCALATION_TYPE, refusal
from plaza.dao.constitution import Constitution
from plaza.dao.delegation import Scope
from plaza.dao.errors import NotFoundInStateError
from plaza.dao.mandate import Allow, Deny, Mandate, NeedsVote, Optimistic, Verdict, check
from plaza.dao.proposals import Outcome, outcome
from plaza.dao.state import DaoState
from plaza.errors import InvalidInputError
from plaza.ledger.checkpoint import Checkpoint
from plaza.ledger.command import RETRY, Commands, Retry
from plaza.ledger.event import Event
from plaza.ledger.keystore import Signer
from plaza.ledger.ledger import Ledger
from plaza.ledger.store import EventStore


@dataclass(frozen=True, slots=True)
class ActionOutcome:
    """What happened to an agent's action: the guard's verdict and the event recorded
    (an execution, a motion, a proposal, or a recorded denial)."""

    verdict: Verdict
    event: Event
    motion: int | None = None
    proposal: int | None = None


def _position(state: DaoState) -> int:
    return state.seq


class Dao:
    """Commands and queries over one ledger."""

    def __init__(self, store: EventStore, *, retry: Retry = RETRY) -> None:
        # The ledger checks signatures against the keys the *current* state binds (the
        # core replaces the state object when it rebuilds), hence ``registry=self``.
        self.ledger = Ledger(store, registry=self, retry=retry)
        self.commands = Commands(self.ledger, DaoState, retry=retry, position=_position)

    @property
    def state(self) -> DaoState:
        """The replayed state, as of the last sync."""
        return self.commands.state

    @property
    def store(self) -> EventStore:
        return self.ledger.store

    def keys_for(self, did: str) -> Sequence[PublicKey]:
        """The keys the state binds to ``did`` (the ledger's key registry)."""
        return self.commands.state.keys_for(did)

    def sync(self) -> int:
        """Apply events other writers appended; return how many."""
        return self.commands.sync()

    def reload(self) -> None:
        """Rebuild the state from the whole ledger."""
        self.commands.reload()

    def submit(self, event: Event) -> Event:
        """Append an event someone else built and signed (the HTTP write path).

        Order matters: position first (a stale or replayed event is a conflict), then the
        signature (authentication before any rule is evaluated), then the DAO's rules.
        Only ``dao.*`` events are taken: the DAO's rules let other planes' events pass
        (their own projections judge them), and any ``did:key`` verifies its own
        signature, so another plane's event, or any other type, would reach the shared
        ledger unjudged.
        """
        if not event.type.startswith("dao."):
            raise InvalidInputError(
                f"only dao.* events are submitted to the DAO, not {event.type!r}"
            )
        return self.commands.submit(event)

    def record(self, signer: Signer, type_: str, payload: dict[str, Any], now: int) -> Event:
        """Build, check, append and apply one event by ``signer``."""
        return self.commands.record(signer, type_, payload, now)

    # -- membership ---------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        store: EventStore,
        founder: Signer,
        *,
        constitution: Constitution,
        mandate: Mandate,
        now: int,
        cofounders: tuple[Signer, ...] = (),
        opening: int = 0,
        proofs: Mapping[str, dict[str, Any]] | None = None,
    ) -> Dao:
        """Write the genesis event: the founders are the first members.

        A founder signing as a did:plc needs its proof in ``proofs`` (see
        :meth:`register`)."""
        dao = cls(store)
        founders = [founder, *cofounders]
        keys = {s.did: s.did_key for s in founders if s.did != s.did_key}
        payload: dict[str, Any] = {
            "constitution": constitution.to_map(),
            "mandate": mandate.to_map(),
            "founders": [s.did for s in founders],
            "opening": opening,
        }
        if keys:
            payload["keys"] = keys
        if proofs:
            payload["proofs"] = dict(proofs)
        dao.record(founder, "dao.genesis.created", payload, now)
        return dao

    def register(
        self,
        key_signer: Signer,
        did: str,
        role: str,
        now: int,
        *,
        proof: dict[str, Any] | None = None,
    ) -> Event:
        """Bind ``did`` to the signer's key (signed by the key's own ``did:key``).

        A did:plc needs ``proof``, ``{"plc": [its active chain of operations]}`` whose
        head lists the key under ``#plaza`` or ``#atproto``
        (:func:`plaza.atproto.plc.proof_value` builds it); a did:key registering its own
        role needs none.
        """
        self_signed = Signer(key_signer.did_key, key_signer.key)
        payload: dict[str, Any] = {"did": did, "role": role}
        if proof is not None:
            payload["proof"] = proof
        return self.record(self_signed, "dao.identity.registered", payload, now)

    def grant_role(self, agent: Signer, did: str, role: str, now: int) -> Event:
        """Give ``did`` the ``provider`` or ``agent`` role (signed by an agent of the DAO)."""
        return self.record(agent, "dao.role.granted", {"did": did, "role": role}, now)

    def vouch(self, signer: Signer, member: str, now: int) -> Event:
        return self.record(signer, "dao.member.vouched", {"member": member}, now)

    def attest(self, signer: Signer, member: str, kind: str, now: int) -> Event:
        return self.record(signer, "dao.member.attested", {"member": member, "kind": kind}, now)

    def admit(self, signer: Signer, member: str, now: int) -> Event:
        return self.record(signer, "dao.member.admitted", {"member": member}, now)

    def delegate(
        self,
        signer: Signer,
        delegate: str,
        now: int,
        *,
        scope: Scope = "global",
        key: str = "",
        expires: int = 0,
    ) -> Event:
        payload: dict[str, Any] = {"delegate": delegate, "scope": scope, "expires": expires}
        if key:
            payload["key"] = key
        return self.record(signer, "dao.delegation.set", payload, now)

    def revoke(self, signer: Signer, now: int, *, scope: Scope = "global", key: str = "") -> Event:
        payload: dict[str, Any] = {"scope": scope}
        if key:
            payload["key"] = key
        return self.record(signer, "dao.delegation.revoked", payload, now)

    # -- proposals ------------------------------------------------------------------------
    def propose(
        self,
        signer: Signer,
        type_name: str,
        title: str,
        now: int,
        *,
        body: str = "",
        choices: tuple[str, ...] = (),
        effect: dict[str, Any] | None = None,
        effects: dict[str, dict[str, Any]] | None = None,
    ) -> int:
        """File a proposal; return its id (the seq of its event)."""
        payload: dict[str, Any] = {"type": type_name, "title": title}
        if body:
            payload["body"] = body
        if choices:
            payload["choices"] = list(choices)
        if effect is not None:
            payload["effect"] = effect
        if effects:
            payload["effects"] = effects
        return self.record(signer, "dao.proposal.created", payload, now).seq

    def vote(self, signer: Signer, proposal: int, ballot: dict[str, Any], now: int) -> Event:
        return self.record(signer, "dao.vote.cast", {"proposal": proposal, "ballot": ballot}, now)

    def stake(self, signer: Signer, proposal: int, points: int, now: int) -> Event:
        payload = {"proposal": proposal, "points": points}
        return self.record(signer, "dao.conviction.staked", payload, now)

    def execute(self, signer: Signer, proposal: int, now: int) -> Event:
        return self.record(signer, "dao.proposal.executed", {"proposal": proposal}, now)

    def cancel(self, signer: Signer, proposal: int, now: int) -> Event:
        return self.record(signer, "dao.proposal.cancelled", {"proposal": proposal}, now)

    def outcome(self, proposal: int, now: int) -> Outcome:
        self.sync()
        return outcome(self.state, proposal, now)

    # -- agents ---------------------------------------------------------------------------
    def act(self, agent: Signer, action: Action, reason: str, now: int) -> ActionOutcome:
        """Submit an agent action: execute it, open a motion, file a proposal, or record
        its denial — whichever the guard's verdict calls for."""
        self.sync()
        verdict = check(action, self.state.guard_state(max(now, self.state.now_ms)))
        payload = {"action": action.to_map(), "reason": reason}
        if isinstance(verdict, Allow):
            return ActionOutcome(verdict, self.record(agent, "dao.action.executed", payload, now))
        if isinstance(verdict, Optimistic):
            ev = self.record(agent, "dao.motion.opened", payload, now)
            return ActionOutcome(verdict, ev, motion=ev.seq)
        if isinstance(verdict, NeedsVote):
            ptype = self.state.constitution.proposal_type(verdict.proposal_type)
            type_name = (
                verdict.proposal_type
                if ptype is not None and ptype.executes == "agent-action"
                else ESCALATION_TYPE
            )
            title = f"{action.kind}: {reason}"[:300]
            pid = self.propose(agent, type_name, title, now, effect=payload)
            return ActionOutcome(verdict, self.ledger.get(pid), proposal=pid)
        assert isinstance(verdict, Deny)
        return ActionOutcome(verdict, self.record(agent, "dao.action.denied", payload, now))

    def execute_motion(self, signer: Signer, motion: int, action: Action, now: int) -> Event:
        payload = {"action": action.to_map(), "reason": "veto window passed", "motion": motion}
        return self.record(signer, "dao.action.executed", payload, now)

    def veto(self, signer: Signer, motion: int, now: int) -> Event:
        return self.record(signer, "dao.motion.vetoed", {"motion": motion}, now)

    def motion_refusal(self, motion: int, now: int) -> str | None:
        """The guard's reason for refusing to execute ``motion`` at ``now`` (ledger time
        never runs backwards: at least the head's), or None if it would let it execute."""
        self.sync()
        m = self.state.motions.get(motion)
        if m is None:
            raise NotFoundInStateError(f"no motion {motion}")
        return refusal(self.state, m.action, max(now, self.state.now_ms))

    def lapse_motion(self, signer: Signer, motion: int, now: int) -> Event:
        """Close ``motion``, whose window has passed and which the guard now refuses,
        recording the guard's reason (``dao.motion.lapsed``; the agent that opened it or
        a member). A motion the guard would let execute raises
        :class:`~plaza.dao.errors.MotionNotRefusedError` and changes nothing."""
        # Without a refusal the state's own check names why not (closed, window still
        # open, or MotionNotRefused) and the empty reason is never recorded.
        reason = self.motion_refusal(motion, now) or ""
        return self.record(signer, "dao.motion.lapsed", {"motion": motion, "reason": reason}, now)

    # -- treasury -------------------------------------------------------------------------
    def receive(
        self,
        signer: Signer,
        kind: str,
        amount: int,
        now: int,
        *,
        source: str,
        ref: str,
        memo: str = "",
        currency: str | None = None,
    ) -> Event:
        """Record income (an agent under the mandate, or a treasurer): ``amount`` minor
        units of ``currency`` (default: the DAO's), paid by ``source``, with the payment's
        reference ``ref``."""
        self.sync()
        payload: dict[str, Any] = {
            "kind": kind,
            "amount": amount,
            "currency": currency if currency is not None else self.state.books.currency,
            "from": source,
            "ref": ref,
        }
        if memo:
            payload["memo"] = memo
        return self.record(signer, "dao.treasury.received", payload, now)

    # -- ledger ---------------------------------------------------------------------------
    def checkpoint(self, ledger_key: Signer, now: int) -> Checkpoint:
        """Sign a checkpoint over the whole log with a ledger key named in the constitution."""
        self.sync()
        return self.ledger.checkpoint(ledger_key.key, time=now)

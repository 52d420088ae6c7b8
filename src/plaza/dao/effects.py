"""What a passed proposal executes: its effect, validated at filing and judged at execution.

:func:`validate_effect` checks an effect's shape when the proposal is created (so members
vote on something that can run); :func:`judge_effect` re-validates it against the state
at execution time and returns the mutation that performs it: a constitution amendment
(with a new legal-record version if it changed), a new mandate version, a treasury or
budget payment, a contract approval, an admission or removal, a dispute ruling, or an
agent action.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from plaza.dao.agency import action_from_map, perform, spend_entry
from plaza.dao.constitution import Constitution, constitution_from_map
from plaza.dao.errors import InvalidPayloadError, NotAllowedError, NotMemberError
from plaza.dao.facts import DaoFacts
from plaza.dao.mandate import Mandate, mandate_from_map
from plaza.dao.payload import (
    EFFECTS,
    AdmissionEffect,
    AgentActionEffect,
    ConstitutionEffect,
    ContractEffect,
    DisputeEffect,
    MandateEffect,
    RemovalEffect,
    SpendEffect,
    parse,
)
from plaza.dao.records import Proposal
from plaza.dao.treasury import component
from plaza.errors import PlazaError
from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation


def validate_effect(st: DaoFacts, executes: str, effect: Mapping[str, Any]) -> None:
    """Check a proposal effect's shape when the proposal is created."""
    model = EFFECTS.get(executes)
    if model is None:
        return
    value = parse(model, effect, f"{executes} effect")
    if isinstance(value, ConstitutionEffect):
        _constitution(st, value.constitution)
    elif isinstance(value, MandateEffect):
        _mandate(st, value.mandate)
    elif isinstance(value, SpendEffect):
        component(value.category or "grants")
    elif isinstance(value, RemovalEffect) and not st.is_member(value.member):
        raise NotMemberError(f"{value.member} is not a member")
    elif isinstance(value, AgentActionEffect):
        action_from_map(value.action)


def _constitution(st: DaoFacts, value: Any) -> Constitution:
    try:
        new = constitution_from_map(value)
    except PlazaError as exc:
        raise InvalidPayloadError(exc.message) from exc
    if new.currency != st.constitution.currency or new.minor_digits != st.constitution.minor_digits:
        raise InvalidPayloadError("an amendment cannot change the DAO's currency")
    return new


def _mandate(st: DaoFacts, value: Any) -> Mandate:
    try:
        new = mandate_from_map(value)
    except PlazaError as exc:
        raise InvalidPayloadError(exc.message) from exc
    if new.currency != st.constitution.currency:
        raise InvalidPayloadError("the mandate's currency differs from the DAO's")
    if new.version <= st.mandate.version:
        raise InvalidPayloadError(
            f"mandate version {new.version} does not follow the current {st.mandate.version}"
        )
    return new


def judge_effect(st: DaoFacts, prop: Proposal, effect: Mapping[str, Any], ev: Event) -> Mutation:
    """Re-validate what a passed proposal executes against the state now; return the
    mutation that performs it."""
    kind = prop.executes
    model = EFFECTS.get(kind)
    if model is None:  # a signal executes nothing
        return lambda: None
    value = parse(model, effect, f"{kind} effect")
    if isinstance(value, ConstitutionEffect):
        new = _constitution(st, value.constitution)
        return lambda: st.amend(ev.seq, ev.time, new)
    if isinstance(value, MandateEffect):
        mandate = _mandate(st, value.mandate)
        return lambda: st.adopt_mandate(ev.seq, mandate)
    if isinstance(value, SpendEffect):
        entry = spend_entry(
            st,
            ev,
            value.amount,
            value.category,
            payee=value.payee,
            memo=value.memo or f"proposal {prop.id}: {prop.title}",
        )
        return lambda: st.post(entry)
    if isinstance(value, ContractEffect):
        record = {
            "provider": value.provider,
            "terms": value.terms,
            "proposal": prop.id,
            "approved": ev.time,
        }
        return lambda: st.approve_contract(value.contract, record)
    if isinstance(value, AdmissionEffect):
        did = value.member
        if st.is_member(did):
            raise NotAllowedError(f"{did} is already a member")
        if st.is_agent(did) or st.role_of(did) in ("agent", "provider"):
            raise NotAllowedError(f"{did} is an agent or provider, not a person")
        if not st.keys_for(did):
            raise NotAllowedError(f"{did} has no key: register the identity first")
        return lambda: st.admit(did, ev.time, "vote")
    if isinstance(value, RemovalEffect):
        did, fake = value.member, value.fake
        if not st.is_member(did):
            raise NotMemberError(f"{did} is not a member")
        liability_ms = st.constitution.membership.voucher_liability * 1000
        return lambda: st.remove(did, ev.time, fake, liability_ms)
    if isinstance(value, DisputeEffect):
        ruling = {"ruling": "upheld", "subject": value.subject, "time": ev.time}
        return lambda: st.rule(prop.id, ruling)
    assert isinstance(value, AgentActionEffect)
    action = action_from_map(value.action)
    done = perform(
        st,
        ev,
        action,
        agent=prop.author,
        reason=value.reason or prop.title,
        authority=f"proposal:{prop.id}",
    )
    motion = st.motion(prop.motion) if prop.motion is not None else None

    def mutate() -> None:
        done()
        if motion is not None:
            st.put_motion(replace(motion, status="executed"))

    return mutate

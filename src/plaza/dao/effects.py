"""What a passed proposal executes: its effect, validated at filing and applied at execution.

``validate_effect`` checks an effect's shape when the proposal is created (so members
vote on something that can run); ``apply_effect`` re-validates against the state at
execution time (``commit=False``) and performs it (``commit=True``): a constitution
amendment (with a new legal-record version if it changed), a new mandate version, a
treasury or budget payment, a contract approval, an admission or removal, a dispute
ruling, or an agent action.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from plaza.dao.agency import action_from_map, perform, spend_entry
from plaza.dao.constitution import constitution_from_map
from plaza.dao.errors import InvalidPayloadError, NotAllowedError, NotMemberError
from plaza.dao.mandate import mandate_from_map
from plaza.dao.members import admit, refresh_legal, remove
from plaza.dao.payload import Payload
from plaza.dao.records import Proposal
from plaza.dao.treasury import component
from plaza.errors import PlazaError
from plaza.ledger.event import Event

if TYPE_CHECKING:
    from plaza.dao.state import DaoState


def validate_effect(st: DaoState, executes: str, effect: dict[str, Any], ev: Event) -> None:
    """Check a proposal effect's shape when the proposal is created."""
    p = Payload(effect, f"{executes} effect")
    if executes == "constitution":
        new = _constitution(st, p.mapping("constitution"))
        del new
    elif executes == "mandate":
        _mandate(st, p.mapping("mandate"))
    elif executes in ("budget", "treasury"):
        p.integer("amount", lo=1)
        p.text("payee", max_len=300)
        component(p.text("category", max_len=60, default="grants") or "grants")
        p.text("memo", max_len=500, default="")
    elif executes == "contract":
        p.text("contract", max_len=200)
        p.did("provider")
        p.mapping("terms", default=None)
    elif executes == "admission":
        p.did("member")
    elif executes == "removal":
        did = p.did("member")
        p.boolean("fake", default=False)
        if not st.is_member(did):
            raise NotMemberError(f"{did} is not a member")
    elif executes == "dispute":
        p.text("subject", max_len=500)
        p.did("claimant", default="did:web:unknown")
        p.did("respondent", default="did:web:unknown")
        p.mapping("claim", default=None)
    elif executes == "agent-action":
        action_from_map(p.mapping("action"))
        p.text("reason", max_len=2000, default="")
    p.finish()


def _constitution(st: DaoState, value: Any) -> Any:
    try:
        new = constitution_from_map(value)
    except PlazaError as exc:
        raise InvalidPayloadError(exc.message) from exc
    if new.currency != st.constitution.currency or new.minor_digits != st.constitution.minor_digits:
        raise InvalidPayloadError("an amendment cannot change the DAO's currency")
    return new


def _mandate(st: DaoState, value: Any) -> Any:
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


def apply_effect(
    st: DaoState, prop: Proposal, effect: dict[str, Any], ev: Event, *, commit: bool
) -> None:
    """Validate (``commit=False``) or perform what a passed proposal executes."""
    kind = prop.executes
    if kind == "constitution":
        new = _constitution(st, effect["constitution"])
        if commit:
            st.constitution = new
            refresh_legal(st, ev)
    elif kind == "mandate":
        mandate = _mandate(st, effect["mandate"])
        if commit:
            st.mandate = mandate
            st.mandates.append((ev.seq, mandate))
    elif kind in ("budget", "treasury"):
        entry = spend_entry(
            st,
            ev,
            effect["amount"],
            effect.get("category", "grants"),
            payee=effect["payee"],
            memo=effect.get("memo") or f"proposal {prop.id}: {prop.title}",
        )
        if commit:
            st.books.post(entry)
    elif kind == "contract":
        if commit:
            st.contracts[effect["contract"]] = {
                "provider": effect["provider"],
                "terms": effect.get("terms"),
                "proposal": prop.id,
                "approved": ev.time,
            }
    elif kind == "admission":
        did = effect["member"]
        if st.is_member(did):
            raise NotAllowedError(f"{did} is already a member")
        if st.is_agent(did) or st.roles.get(did) in ("agent", "provider"):
            raise NotAllowedError(f"{did} is an agent or provider, not a person")
        if not st.keys_for(did):
            raise NotAllowedError(f"{did} has no key: register the identity first")
        if commit:
            admit(st, did, ev.time, "vote")
    elif kind == "removal":
        did = effect["member"]
        if not st.is_member(did):
            raise NotMemberError(f"{did} is not a member")
        if commit:
            remove(st, did, ev.time, bool(effect.get("fake", False)))
    elif kind == "dispute":
        if commit:
            st.rulings[prop.id] = {
                "ruling": "upheld",
                "subject": effect["subject"],
                "time": ev.time,
            }
    elif kind == "agent-action":
        action = action_from_map(effect["action"])
        reason = str(effect.get("reason") or prop.title)
        perform(
            st,
            ev,
            action,
            agent=prop.author,
            reason=reason,
            authority=f"proposal:{prop.id}",
            commit=commit,
        )
        if commit and prop.motion is not None:
            st.motions[prop.motion].status = "executed"

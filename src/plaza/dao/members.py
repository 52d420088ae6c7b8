"""Membership events: genesis, identities, vouching with liability, attestations,
admission, and liquid delegation.

Rules (docs/governance.md has the long form):

* One member, one vote; members are DIDs. Agents (listed in the constitution) and
  providers (the role an agent grants with ``dao.role.granted``) are never members by
  their role; nobody gives a role with rights to itself.
* A candidate is admitted once ``vouches_required`` current members have vouched for
  them (and they hold ``attestations_required`` distinct attestation kinds from trusted
  attesters, when the constitution asks for any). Admission by vote is the other door.
* A member removed *as a fake* makes every member who vouched for them liable: those
  vouchers may not vouch again until ``voucher_liability`` has passed.
* A removed member is never readmitted by vouches, only by an admission vote.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from plaza.atproto.errors import PlcError
from plaza.atproto.plc.proof import ChainProof, supersedes
from plaza.dao.constitution import constitution_from_map
from plaza.dao.delegation import Delegation, Scope
from plaza.dao.errors import (
    DuplicateVoteError,
    IdentityProofError,
    InvalidPayloadError,
    NotAllowedError,
    NotFoundInStateError,
    NotMemberError,
    RuleViolationError,
)
from plaza.dao.facts import DaoFacts
from plaza.dao.mandate import mandate_from_map
from plaza.dao.payload import (
    Attested,
    DelegationRevoked,
    DelegationSet,
    Genesis,
    IdentityRegistered,
    MemberNamed,
    RoleGranted,
    valid_did,
)
from plaza.dao.records import Candidate
from plaza.dao.treasury import OPENING, TREASURY, Books, Entry, Posting
from plaza.errors import PlazaError
from plaza.ledger.event import Event
from plaza.ledger.handlers import Mutation, On
from plaza.ledger.identity import prove_binding


def require_genesis(st: DaoFacts) -> None:
    if not st.initialized:
        raise RuleViolationError("the DAO has no genesis event yet", code="NotInitialized")


def require_member(st: DaoFacts, did: str) -> None:
    if not st.is_member(did):
        raise NotMemberError(f"{did} is not a member")


def genesis(st: DaoFacts, ev: Event, p: Genesis) -> Mutation:
    if st.initialized:
        raise RuleViolationError("the DAO already has a genesis event", code="AlreadyInitialized")
    try:
        constitution = constitution_from_map(p.constitution)
        mandate = mandate_from_map(p.mandate)
    except PlazaError as exc:
        raise InvalidPayloadError(f"genesis: {exc.message}") from exc
    founders, keys, proofs = p.founders, p.keys, p.proofs
    if mandate.currency != constitution.currency:
        raise InvalidPayloadError("genesis: the mandate's currency differs from the DAO's")
    if not founders or len(set(founders)) != len(founders) or not all(map(valid_did, founders)):
        raise InvalidPayloadError("genesis: founders must be distinct DIDs")
    if ev.author_did not in founders:
        raise NotAllowedError("genesis must be signed by one of its founders")
    if set(proofs) - set(keys):
        raise InvalidPayloadError("genesis: proofs are keyed by the DIDs in keys")
    bound: dict[str, tuple[str, ChainProof | None]] = {}
    for did, key in keys.items():
        if did not in founders or not isinstance(key, str) or not key.startswith("did:key:"):
            raise InvalidPayloadError("genesis: keys maps founder DIDs to did:key strings")
        bound[did] = (key, _prove(did, key, proofs.get(did), "genesis: "))
    for did in founders:
        if did in constitution.agents:
            raise InvalidPayloadError(f"genesis: agent {did} cannot be a founding member")
        if not did.startswith("did:key:") and did not in bound:
            raise InvalidPayloadError(f"genesis: founder {did} needs a key")
    books = Books(constitution.currency, constitution.minor_digits)
    opening = None
    if p.opening:
        postings = (Posting(TREASURY, p.opening), Posting(OPENING, -p.opening))
        opening = Entry(ev.seq, ev.time, "", "opening balance", postings)

    def mutate() -> None:
        st.found(
            ev.seq,
            ev.time,
            ledger_id=ev.hash.hex(),
            constitution=constitution,
            mandate=mandate,
            books=books,
        )
        for did, (key, chain) in bound.items():
            st.bind_key(did, key, chain)
        for did in founders:
            st.admit(did, ev.time, "genesis")
        if opening is not None:
            st.post(opening)

    return mutate


def _prove(did: str, key: str, proof: object, where: str = "") -> ChainProof | None:
    try:
        return prove_binding(did, key, proof)
    except PlcError as exc:
        raise IdentityProofError(f"{where}{exc.message}") from exc


def identity_registered(st: DaoFacts, ev: Event, p: IdentityRegistered) -> Mutation:
    """Bind a did:plc ``did`` to the author's key (a did:key, signing: proof of possession).

    The DID's own proof is required (see :mod:`plaza.ledger.identity`); a DID already
    bound moves to another key only with a proof newer than the one that bound it, and
    keeps its role. A did:key needs no registration.
    """
    require_genesis(st)
    did, role = p.did, p.role
    key = ev.author_did
    if not key.startswith("did:key:"):
        raise NotAllowedError("an identity is registered by its key: the author must be a did:key")
    current = st.role_of(did)
    if current is not None and role != current:
        raise NotAllowedError(f"{did} has the {current} role; registering keeps it")
    if current is None and role != "person":
        raise NotAllowedError(
            f"the {role} role is granted by an agent of the DAO (dao.role.granted), "
            "not claimed by its holder"
        )
    if did == key:
        # It would change nothing, and it was an event any stranger could append at will.
        raise NotAllowedError("a did:key needs no registration: it names its own key")
    chain = _prove(did, key, p.proof)
    assert chain is not None  # only a did:key signing for itself needs no proof
    old = st.proof_of(did)
    if old is not None:
        if not supersedes(chain, old):
            raise NotAllowedError(
                f"{did} is bound by a proof at least as recent: rebinding needs a newer one"
            )
    elif st.has_bound_key(did):
        raise NotAllowedError(f"{did} already has a key bound")

    def mutate() -> None:
        st.bind_key(did, key, chain)
        st.set_role(did, role)

    return mutate


def role_granted(st: DaoFacts, ev: Event, p: RoleGranted) -> Mutation:
    """An agent gives a DID the provider or agent role (the market registers providers).

    Members are people by definition, so a member (current or removed) gets no other
    role; a DID that holds one cannot be vouched for or admitted.
    """
    require_genesis(st)
    did, role = p.did, p.role
    if not st.is_agent(ev.author_did):
        raise NotAllowedError(f"{ev.author_did} is not one of the DAO's agents")
    if st.member(did) is not None:
        raise NotAllowedError(f"{did} is a member (or was one): members are people")
    if st.role_of(did) == role:
        raise NotAllowedError(f"{did} already has the {role} role")
    return lambda: st.set_role(did, role)


def _candidate_check(st: DaoFacts, did: str) -> None:
    if st.is_member(did):
        raise NotAllowedError(f"{did} is already a member")
    if st.member(did) is not None:
        raise NotAllowedError(f"{did} was removed; only an admission vote can readmit them")
    if st.is_agent(did) or st.role_of(did) in ("agent", "provider"):
        raise NotAllowedError(f"{did} is an agent or provider, not a person")


def vouched(st: DaoFacts, ev: Event, p: MemberNamed) -> Mutation:
    require_genesis(st)
    did = p.member
    voucher = ev.author_did
    require_member(st, voucher)
    if not st.can_vouch(voucher, ev.time):
        raise NotAllowedError(
            f"{voucher} lost vouching rights until {st.vouching_suspended_until(voucher)} "
            "(vouched for a member removed as fake)"
        )
    if did == voucher:
        raise NotAllowedError("members cannot vouch for themselves")
    _candidate_check(st, did)
    cand = st.candidate(did) or Candidate()
    if voucher in cand.vouches:
        raise DuplicateVoteError(f"{voucher} already vouched for {did}")
    new = replace(cand, vouches={**cand.vouches, voucher: ev.time})
    return lambda: st.put_candidate(did, new)


def attested(st: DaoFacts, ev: Event, p: Attested) -> Mutation:
    require_genesis(st)
    did, kind = p.member, p.kind
    if ev.author_did not in st.constitution.membership.attesters:
        raise NotAllowedError(f"{ev.author_did} is not a trusted attester")
    if not kind:
        raise InvalidPayloadError("attestation kind is empty")
    cand = st.candidate(did) or Candidate()
    if kind in cand.attestations:
        raise DuplicateVoteError(f"{did} already holds a {kind!r} attestation")
    new = replace(cand, attestations={**cand.attestations, kind: ev.author_did})
    return lambda: st.put_candidate(did, new)


def valid_vouchers(st: DaoFacts, did: str) -> list[str]:
    cand = st.candidate(did)
    return sorted(v for v in (cand.vouches if cand else {}) if st.is_member(v))


def admitted(st: DaoFacts, ev: Event, p: MemberNamed) -> Mutation:
    require_genesis(st)
    did = p.member
    if ev.author_did != did:
        require_member(st, ev.author_did)
    _candidate_check(st, did)
    rules = st.constitution.membership
    vouchers = valid_vouchers(st, did)
    if len(vouchers) < rules.vouches_required:
        raise NotAllowedError(
            f"{did} has {len(vouchers)} vouches from current members; "
            f"{rules.vouches_required} are required"
        )
    cand = st.candidate(did)
    kinds = len(cand.attestations) if cand else 0
    if kinds < rules.attestations_required:
        raise NotAllowedError(
            f"{did} holds {kinds} attestation kinds; {rules.attestations_required} are required"
        )
    if not st.keys_for(did):
        raise NotAllowedError(f"{did} has no key: register the identity first")
    return lambda: st.admit(did, ev.time, "vouches", tuple(vouchers))


def _scope_key(st: DaoFacts, p: DelegationRevoked) -> tuple[Scope, str]:
    scope, key = p.scope, p.key
    if scope == "global" and key:
        raise InvalidPayloadError("a global delegation has no key")
    if scope == "topic" and not key:
        raise InvalidPayloadError("a topic delegation names its topic in 'key'")
    # isascii: str.isdigit() also holds for digits int() refuses, such as "²"
    if scope == "proposal" and (
        not (key.isascii() and key.isdigit()) or st.proposal(int(key)) is None
    ):
        raise NotFoundInStateError(f"no proposal {key!r}")
    return scope, key


def delegation_set(st: DaoFacts, ev: Event, p: DelegationSet) -> Mutation:
    require_genesis(st)
    scope, key = _scope_key(st, p)
    delegate, expires = p.delegate, p.expires
    require_member(st, ev.author_did)
    require_member(st, delegate)
    if delegate == ev.author_did:
        raise InvalidPayloadError("members cannot delegate to themselves")
    if expires and expires <= ev.time:
        raise InvalidPayloadError("the delegation would already have expired")
    new = Delegation(ev.author_did, delegate, scope, key, expires)
    return lambda: st.set_delegation(new)


def delegation_revoked(st: DaoFacts, ev: Event, p: DelegationRevoked) -> Mutation:
    require_genesis(st)
    scope, key = _scope_key(st, p)
    found = (ev.author_did, scope, key)
    if found not in st.delegations:
        raise NotFoundInStateError(f"{ev.author_did} has no {scope} delegation {key!r}")
    return lambda: st.drop_delegation(found)


HANDLERS: dict[str, On[DaoFacts, Any]] = {
    "dao.genesis.created": On(Genesis, genesis),
    "dao.identity.registered": On(IdentityRegistered, identity_registered),
    "dao.role.granted": On(RoleGranted, role_granted),
    "dao.member.vouched": On(MemberNamed, vouched),
    "dao.member.attested": On(Attested, attested),
    "dao.member.admitted": On(MemberNamed, admitted),
    "dao.delegation.set": On(DelegationSet, delegation_set),
    "dao.delegation.revoked": On(DelegationRevoked, delegation_revoked),
}

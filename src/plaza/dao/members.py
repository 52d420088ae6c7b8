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

from typing import TYPE_CHECKING

from plaza.atproto.errors import PlcError
from plaza.atproto.plc.proof import ChainProof, supersedes
from plaza.dao.constitution import constitution_from_map
from plaza.dao.delegation import SCOPES, Delegation, Scope
from plaza.dao.errors import (
    DuplicateVoteError,
    IdentityProofError,
    InvalidPayloadError,
    NotAllowedError,
    NotFoundInStateError,
    NotMemberError,
    RuleViolationError,
)
from plaza.dao.legal import LegalVersion, legal_record
from plaza.dao.mandate import mandate_from_map
from plaza.dao.payload import Payload, valid_did
from plaza.dao.records import Candidate, Member
from plaza.dao.treasury import OPENING, TREASURY, Books, Entry, Posting
from plaza.errors import PlazaError
from plaza.ledger.event import Event
from plaza.ledger.identity import prove_binding

if TYPE_CHECKING:
    from plaza.dao.state import DaoState

ROLES = ("person", "agent", "provider")


def require_genesis(st: DaoState) -> None:
    if not st.initialized:
        raise RuleViolationError("the DAO has no genesis event yet", code="NotInitialized")


def require_member(st: DaoState, did: str) -> None:
    if not st.is_member(did):
        raise NotMemberError(f"{did} is not a member")


def refresh_legal(st: DaoState, ev: Event) -> None:
    """Append a new legal-record version if the record changed."""
    record = legal_record(st.constitution, st.ledger_id)
    if not st.legal or st.legal[-1].record != record:
        st.legal.append(LegalVersion(ev.seq, ev.time, record))


def genesis(st: DaoState, ev: Event, commit: bool) -> None:
    if st.initialized:
        raise RuleViolationError("the DAO already has a genesis event", code="AlreadyInitialized")
    p = Payload(ev.payload, ev.type)
    try:
        constitution = constitution_from_map(p.mapping("constitution"))
        mandate = mandate_from_map(p.mapping("mandate"))
    except PlazaError as exc:
        raise InvalidPayloadError(f"genesis: {exc.message}") from exc
    founders = p.strings("founders", max_items=100)
    keys = p.mapping("keys", default={}) or {}
    proofs = p.mapping("proofs", default={}) or {}
    opening = p.integer("opening", default=0)
    p.finish()
    if mandate.currency != constitution.currency:
        raise InvalidPayloadError("genesis: the mandate's currency differs from the DAO's")
    if not founders or len(set(founders)) != len(founders) or not all(map(valid_did, founders)):
        raise InvalidPayloadError("genesis: founders must be distinct DIDs")
    if ev.author_did not in founders:
        raise NotAllowedError("genesis must be signed by one of its founders")
    if set(proofs) - set(keys):
        raise InvalidPayloadError("genesis: proofs are keyed by the DIDs in keys")
    bound: dict[str, list[str]] = {}
    chains: dict[str, ChainProof] = {}
    for did, key in keys.items():
        if did not in founders or not isinstance(key, str) or not key.startswith("did:key:"):
            raise InvalidPayloadError("genesis: keys maps founder DIDs to did:key strings")
        chain = _prove(did, key, proofs.get(did), "genesis: ")
        if chain is not None:
            chains[did] = chain
        bound[did] = [key]
    for did in founders:
        if did in constitution.agents:
            raise InvalidPayloadError(f"genesis: agent {did} cannot be a founding member")
        if not did.startswith("did:key:") and did not in bound:
            raise InvalidPayloadError(f"genesis: founder {did} needs a key")
    if not commit:
        return
    st.genesis_seq, st.genesis_ms, st.ledger_id = ev.seq, ev.time, ev.hash.hex()
    st.constitution = constitution
    st.mandate = mandate
    st.mandates.append((ev.seq, mandate))
    st.keys.update(bound)
    st.proofs.update(chains)
    for did in founders:
        st.members[did] = Member(did, ev.time, "genesis")
        st.roles[did] = "person"
    st.books = Books(constitution.currency, constitution.minor_digits)
    if opening:
        st.books.post(
            Entry(
                ev.seq,
                ev.time,
                "",
                "opening balance",
                (Posting(TREASURY, opening), Posting(OPENING, -opening)),
            )
        )
    refresh_legal(st, ev)


def _prove(did: str, key: str, proof: object, where: str = "") -> ChainProof | None:
    try:
        return prove_binding(did, key, proof)
    except PlcError as exc:
        raise IdentityProofError(f"{where}{exc.message}") from exc


def identity_registered(st: DaoState, ev: Event, commit: bool) -> None:
    """Bind a did:plc ``did`` to the author's key (a did:key, signing: proof of possession).

    The DID's own proof is required (see :mod:`plaza.ledger.identity`); a DID already
    bound moves to another key only with a proof newer than the one that bound it, and
    keeps its role. A did:key needs no registration.
    """
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    did = p.did("did")
    role = p.choice("role", ROLES)
    proof = p.mapping("proof", default=None)
    p.finish()
    key = ev.author_did
    if not key.startswith("did:key:"):
        raise NotAllowedError("an identity is registered by its key: the author must be a did:key")
    current = st.roles.get(did)
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
    chain = _prove(did, key, proof)
    assert chain is not None  # only a did:key signing for itself needs no proof
    old = st.proofs.get(did)
    if old is not None:
        if not supersedes(chain, old):
            raise NotAllowedError(
                f"{did} is bound by a proof at least as recent: rebinding needs a newer one"
            )
    elif did in st.keys:
        raise NotAllowedError(f"{did} already has a key bound")
    if not commit:
        return
    st.keys[did] = [key]
    st.proofs[did] = chain
    st.roles[did] = role


def role_granted(st: DaoState, ev: Event, commit: bool) -> None:
    """An agent gives a DID the provider or agent role (the market registers providers).

    Members are people by definition, so a member (current or removed) gets no other
    role; a DID that holds one cannot be vouched for or admitted.
    """
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    did = p.did("did")
    role = p.choice("role", ("agent", "provider"))
    p.finish()
    if not st.is_agent(ev.author_did):
        raise NotAllowedError(f"{ev.author_did} is not one of the DAO's agents")
    if did in st.members:
        raise NotAllowedError(f"{did} is a member (or was one): members are people")
    if st.roles.get(did) == role:
        raise NotAllowedError(f"{did} already has the {role} role")
    if not commit:
        return
    st.roles[did] = role


def _candidate_check(st: DaoState, did: str) -> None:
    if st.is_member(did):
        raise NotAllowedError(f"{did} is already a member")
    if did in st.members:
        raise NotAllowedError(f"{did} was removed; only an admission vote can readmit them")
    if st.is_agent(did) or st.roles.get(did) in ("agent", "provider"):
        raise NotAllowedError(f"{did} is an agent or provider, not a person")


def vouched(st: DaoState, ev: Event, commit: bool) -> None:
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    did = p.did("member")
    p.finish()
    voucher = ev.author_did
    require_member(st, voucher)
    if not st.can_vouch(voucher, ev.time):
        raise NotAllowedError(
            f"{voucher} lost vouching rights until {st.vouch_suspended[voucher]} "
            "(vouched for a member removed as fake)"
        )
    if did == voucher:
        raise NotAllowedError("members cannot vouch for themselves")
    _candidate_check(st, did)
    cand = st.candidates.get(did)
    if cand is not None and voucher in cand.vouches:
        raise DuplicateVoteError(f"{voucher} already vouched for {did}")
    if not commit:
        return
    st.candidates.setdefault(did, Candidate()).vouches[voucher] = ev.time


def attested(st: DaoState, ev: Event, commit: bool) -> None:
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    did = p.did("member")
    kind = p.text("kind", max_len=100)
    p.finish()
    if ev.author_did not in st.constitution.membership.attesters:
        raise NotAllowedError(f"{ev.author_did} is not a trusted attester")
    if not kind:
        raise InvalidPayloadError("attestation kind is empty")
    cand = st.candidates.get(did)
    if cand is not None and kind in cand.attestations:
        raise DuplicateVoteError(f"{did} already holds a {kind!r} attestation")
    if not commit:
        return
    st.candidates.setdefault(did, Candidate()).attestations[kind] = ev.author_did


def valid_vouchers(st: DaoState, did: str) -> list[str]:
    cand = st.candidates.get(did)
    return sorted(v for v in (cand.vouches if cand else {}) if st.is_member(v))


def admitted(st: DaoState, ev: Event, commit: bool) -> None:
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    did = p.did("member")
    p.finish()
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
    cand = st.candidates.get(did)
    kinds = len(cand.attestations) if cand else 0
    if kinds < rules.attestations_required:
        raise NotAllowedError(
            f"{did} holds {kinds} attestation kinds; {rules.attestations_required} are required"
        )
    if not st.keys_for(did):
        raise NotAllowedError(f"{did} has no key: register the identity first")
    if not commit:
        return
    admit(st, did, ev.time, "vouches", tuple(vouchers))


def admit(st: DaoState, did: str, at_ms: int, via: str, vouchers: tuple[str, ...] = ()) -> None:
    st.members[did] = Member(did, at_ms, via, vouchers)
    st.roles.setdefault(did, "person")
    st.candidates.pop(did, None)


def remove(st: DaoState, did: str, at_ms: int, fake: bool) -> None:
    """Remove a member; as a fake, suspend their vouchers' vouching rights."""
    m = st.members[did]
    m.removed_ms, m.fake = at_ms, fake
    if fake:
        until = at_ms + st.constitution.membership.voucher_liability * 1000
        for v in m.vouchers:
            st.vouch_suspended[v] = max(st.vouch_suspended.get(v, 0), until)
    for prop in st.proposals.values():
        if did in prop.stakes and prop.status == "open":
            st.conviction_points[did] = st.conviction_points.get(did, 0) - prop.stakes.pop(did)
            prop.stake_history.append((at_ms, sum(prop.stakes.values())))


def _scope_key(st: DaoState, p: Payload, ev_time: int) -> tuple[Scope, str]:
    scope = p.choice("scope", SCOPES)
    key = p.text("key", max_len=100, default="")
    if scope == "global" and key:
        raise InvalidPayloadError("a global delegation has no key")
    if scope == "topic" and not key:
        raise InvalidPayloadError("a topic delegation names its topic in 'key'")
    # isascii: str.isdigit() also holds for digits int() refuses, such as "²"
    if scope == "proposal" and (
        not (key.isascii() and key.isdigit()) or int(key) not in st.proposals
    ):
        raise NotFoundInStateError(f"no proposal {key!r}")
    return scope, key


def delegation_set(st: DaoState, ev: Event, commit: bool) -> None:
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    delegate = p.did("delegate")
    scope, key = _scope_key(st, p, ev.time)
    expires = p.integer("expires", default=0)
    p.finish()
    require_member(st, ev.author_did)
    require_member(st, delegate)
    if delegate == ev.author_did:
        raise InvalidPayloadError("members cannot delegate to themselves")
    if expires and expires <= ev.time:
        raise InvalidPayloadError("the delegation would already have expired")
    if not commit:
        return
    st.delegations[(ev.author_did, scope, key)] = Delegation(
        ev.author_did, delegate, scope, key, expires
    )


def delegation_revoked(st: DaoState, ev: Event, commit: bool) -> None:
    require_genesis(st)
    p = Payload(ev.payload, ev.type)
    scope, key = _scope_key(st, p, ev.time)
    p.finish()
    if (ev.author_did, scope, key) not in st.delegations:
        raise NotFoundInStateError(f"{ev.author_did} has no {scope} delegation {key!r}")
    if not commit:
        return
    del st.delegations[(ev.author_did, scope, key)]


HANDLERS = {
    "dao.genesis.created": genesis,
    "dao.identity.registered": identity_registered,
    "dao.role.granted": role_granted,
    "dao.member.vouched": vouched,
    "dao.member.attested": attested,
    "dao.member.admitted": admitted,
    "dao.delegation.set": delegation_set,
    "dao.delegation.revoked": delegation_revoked,
}

"""The provider registry: who may bid, what they offer, and their standing.

Theory of operation. A provider joins by a ``registration`` document signed with the
key it binds to its DID (proof of possession): services, regions, capacity per
service, a price sheet, an endpoint for probers, and a bond that the market holds in
treasury escrow. The DID must list that key, which the registration proves as the DAO's
identity bindings do (:func:`plaza.ledger.identity.prove_binding`): a ``did:key``
provider signs with the key it names (no ``proof``); a ``did:plc`` provider carries
``proof``, the DID's active chain of signed PLC operations whose head lists the key
under ``#plaza`` or ``#atproto``. The proof sits inside the signed document, so it
cannot be moved to another registration; the document's ``signed_ms`` must be within
:data:`FRESH_MS` of the time it is recorded, and its nonce and digest are accepted once,
so a registration cannot be replayed later. It names the market it is for (``market``,
the DID of that market's operator, as every signed document does: see
:mod:`plaza.market.signed`), so it cannot be replayed at another market within its
freshness window either. Other DID methods cannot register.

The registration only *declares* the bond. It counts once it is paid: each payment is a
``market.bond.received`` receipt that the operator (under a DAO, with the DAO's escrow
deposit in the same run) records naming the payment's reference, which is accepted once.
Receipts add up to at most the declared bond, and only bond received can be pledged to
bids, so a provider whose bond has not arrived cannot bid where a bond is required.
Every provider starts on *probation*. Its status then moves only along
the edges of :data:`TRANSITIONS`, each move a ``market.provider.status`` event carrying
its reason:

====================  =====================================================
probation -> active     ``probation_epochs`` settled epochs without a failure
probation/active ->     ``suspend_after`` consecutive failed epochs (or a vote)
suspended
suspended -> active     reinstated (a vote, or a clean epoch after the cause)
any -> offboarded       ``offboard_after`` consecutive failed epochs, a vote, or
                        the provider leaving; terminal
====================  =====================================================

Suspended and offboarded providers cannot bid; offboarding ends their contracts and
raises a migration need (see :mod:`plaza.market.penalties`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, StringConstraints

from plaza.atproto.errors import PlcError
from plaza.ledger.clock import iso_ms
from plaza.ledger.identity import prove_binding
from plaza.market.errors import ClosedError, IdentityProofError, MarketInputError
from plaza.market.fields import Count, Counts, Model, Names, Token, only, parse
from plaza.market.params import CAPACITY_KEYS, SERVICES, UNIT_SET
from plaza.market.signed import body_of, check_doc

Status = Literal["probation", "active", "suspended", "offboarded"]
STATUSES: Final = ("probation", "active", "suspended", "offboarded")
TRANSITIONS: Final[Mapping[str, frozenset[str]]] = {
    "probation": frozenset({"active", "suspended", "offboarded"}),
    "active": frozenset({"suspended", "offboarded"}),
    "suspended": frozenset({"active", "offboarded"}),
    "offboarded": frozenset(),
}
BIDDABLE: Final = frozenset({"probation", "active"})
FRESH_MS: Final = 10 * 60 * 1000
"""How far a registration's ``signed_ms`` may be from the time the market records it."""


def _services(value: tuple[str, ...]) -> tuple[str, ...]:
    for s in value:
        if s not in SERVICES:
            raise ValueError(f"names {s!r}: services are {', '.join(SERVICES)}")
    return value


@dataclass(frozen=True, slots=True)
class StatusChange:
    """One move of a provider's status, with its reason."""

    time_ms: int
    old: str
    new: str
    reason: str


@dataclass(frozen=True, slots=True)
class Registration:
    """The validated content of a signed ``registration`` document."""

    did: str
    market: str
    key: str
    services: tuple[str, ...]
    regions: tuple[str, ...]
    capacity: Mapping[str, Mapping[str, int]]
    prices: Mapping[str, Mapping[str, int]]
    bond: int
    endpoint: str
    nonce: str
    signed_ms: int
    proof: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class Provider:
    """A registered provider and its standing (derived by replay, never edited)."""

    did: str
    key: str
    services: tuple[str, ...]
    regions: tuple[str, ...]
    capacity: Mapping[str, Mapping[str, int]]
    prices: Mapping[str, Mapping[str, int]]
    bond: int  # received and held in escrow (less what was returned or forfeited)
    endpoint: str
    registered_ms: int
    bond_declared: int = 0
    bond_received: int = 0
    status: str = "probation"
    history: tuple[StatusChange, ...] = field(default=())
    failed_streak: int = 0
    met_epochs: int = 0  # settled epochs in which it met every SLA

    @property
    def reason(self) -> str:
        """Why the provider has its current status."""
        return self.history[-1].reason if self.history else "registered"

    def to_json(self) -> dict[str, Any]:
        return {
            "did": self.did,
            "key": self.key,
            "services": list(self.services),
            "regions": list(self.regions),
            "capacity": {k: dict(v) for k, v in self.capacity.items()},
            "prices": {k: dict(v) for k, v in self.prices.items()},
            "bond": self.bond,
            "bondDeclared": self.bond_declared,
            "bondReceived": self.bond_received,
            "endpoint": self.endpoint,
            "registeredMs": self.registered_ms,
            "status": self.status,
            "reason": self.reason,
            "failedStreak": self.failed_streak,
            "metEpochs": self.met_epochs,
            "history": [
                {"timeMs": h.time_ms, "from": h.old, "to": h.new, "reason": h.reason}
                for h in self.history
            ],
        }


class RegistrationDoc(Model):
    """The body of a ``registration`` document."""

    key: Annotated[str, StringConstraints(max_length=256, pattern=r"^did:key:")]
    services: Annotated[Names, AfterValidator(_services)]
    regions: Names
    capacity: dict[Token, Counts]
    prices: dict[Token, Counts]
    endpoint: Annotated[str, StringConstraints(max_length=512, pattern=r"^https?://")]
    bond: Count
    signed_ms: Count
    proof: dict[str, Any] | None = None


def parse_registration(doc: Any) -> Registration:
    """Validate a ``registration`` document's fields (not its signature)."""
    did, nonce = check_doc(doc, "registration")
    body = parse(RegistrationDoc, body_of(doc), "registration")
    for s in sorted(body.capacity):
        if s not in body.services:
            raise MarketInputError(f"registration.capacity names {s!r}, not an offered service")
        only(body.capacity[s], CAPACITY_KEYS, f"registration.capacity.{s}")
    for s in sorted(body.prices):
        if s not in body.services:
            raise MarketInputError(f"registration.prices names {s!r}, not an offered service")
        only(body.prices[s], UNIT_SET, f"registration.prices.{s}")
    for s in body.services:
        if s != "prober" and s not in body.capacity:
            raise MarketInputError(f"registration.capacity must state the capacity for {s}")
    return Registration(
        did=did,
        market=doc["market"],  # a DID: check_doc checked it
        key=body.key,
        services=body.services,
        regions=body.regions,
        capacity={s: dict(sorted(body.capacity[s].items())) for s in sorted(body.capacity)},
        prices={s: dict(sorted(body.prices[s].items())) for s in sorted(body.prices)},
        bond=body.bond,
        endpoint=body.endpoint.rstrip("/"),
        nonce=nonce,
        signed_ms=body.signed_ms,
        proof=body.proof,
    )


def check_identity(reg: Registration, now_ms: int) -> None:
    """Raise :class:`IdentityProofError` unless the registration proves that its DID
    lists its key and was signed within :data:`FRESH_MS` of ``now_ms`` (the signature
    itself is checked by the caller)."""
    if abs(now_ms - reg.signed_ms) > FRESH_MS:
        raise IdentityProofError(
            f"the registration of {reg.did} was signed at {iso_ms(reg.signed_ms)}, more than "
            f"{FRESH_MS // 60_000} minutes from {iso_ms(now_ms)}: "
            "sign it again with the current time"
        )
    try:
        prove_binding(reg.did, reg.key, reg.proof)
    except PlcError as exc:
        raise IdentityProofError(f"registration of {reg.did}: {exc.message}") from exc


def check_transition(p: Provider, new: str) -> None:
    """Raise :class:`ClosedError` unless ``p`` may move to ``new``."""
    if new not in STATUSES:
        raise MarketInputError(f"unknown provider status {new!r}")
    if new not in TRANSITIONS[p.status]:
        raise ClosedError(f"provider {p.did} cannot go from {p.status} to {new}")


__all__ = [
    "BIDDABLE",
    "FRESH_MS",
    "SERVICES",
    "STATUSES",
    "TRANSITIONS",
    "Provider",
    "Registration",
    "StatusChange",
    "check_identity",
    "check_transition",
    "parse_registration",
]

"""DAO state, derived only by replaying ledger events.

Theory of operation. :class:`DaoState` is a projection (see
:mod:`plaza.ledger.replay`) over :class:`~plaza.dao.facts.DaoFacts`, the records and
queries. How each ``dao.*`` event changes it is one table, :data:`TABLE`: per event
type, the pydantic model its payload must parse as (:mod:`plaza.dao.payload`) and the
handler (in :mod:`plaza.dao.members`, :mod:`plaza.dao.proposals`,
:mod:`plaza.dao.agency`) that judges it. A handler reads the state, raises a
:class:`~plaza.dao.errors.RuleViolationError` if the event is not legal now, and
returns the mutation that applies it; ``check(event)`` runs the handler and drops the
mutation, ``apply(event)`` runs both. So a refused event changes nothing. A command
checks an event, appends it and then applies it: ``apply`` of the very event ``check``
just judged, with nothing applied in between, runs the mutation ``check`` got instead of
parsing and judging the event again. Events of
other packages (``market.*``) pass through untouched, so one ledger can carry every
plane's facts.

The state is also the ledger's key registry (:meth:`DaoState.keys_for`): ``did:key``
authors name their own key; a did:plc signs with the key bound to it at genesis or by a
``dao.identity.registered`` event, each carrying the DID's own proof that it lists that
key (:mod:`plaza.ledger.identity`), checked again on every replay. Replaying the same
events always gives the same state; :meth:`DaoState.fingerprint` is the SHA-256 of its
canonical DAG-CBOR form.
"""

from __future__ import annotations

from plaza.dao import agency, members, proposals
from plaza.dao.errors import InvalidPayloadError, UnknownEventError
from plaza.dao.facts import DaoFacts
from plaza.ledger.event import Event
from plaza.ledger.handlers import HandlerTable, Mutation

TABLE: HandlerTable[DaoFacts] = HandlerTable(
    "dao.",
    {**members.HANDLERS, **proposals.HANDLERS, **agency.HANDLERS},
    unknown=UnknownEventError,
    invalid=InvalidPayloadError,
)
"""Every ``dao.*`` event type: its payload model and its handler."""


class DaoState(DaoFacts):
    """The DAO's facts as a projection of the ledger (see the module docstring)."""

    def __init__(self) -> None:
        super().__init__()
        # The last event check() judged, the seq it was judged at, and its mutation.
        self._judged: tuple[Event, int, Mutation] | None = None

    def check(self, event: Event) -> None:
        """Raise a :class:`~plaza.dao.errors.RuleViolationError` if ``event`` is not legal
        now; change nothing."""
        self._judged = None
        self._judged = (event, self.seq, TABLE.prepare(self, event))

    def apply(self, event: Event) -> None:
        """Check ``event`` and apply it."""
        judged, self._judged = self._judged, None
        if judged is not None and judged[0] is event and judged[1] == self.seq:
            mutate = judged[2]
        else:
            mutate = TABLE.prepare(self, event)
        mutate()
        self.advance(event.seq, event.time)

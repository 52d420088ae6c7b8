"""The market's write path: the ledger's command core over the market's projection.

:class:`Recorder` runs a :class:`~plaza.ledger.command.Commands` core (sync, build at
the head, check, append, apply; atomic runs; the one retry policy) over
:class:`SharedProjection`: the market's :class:`~plaza.market.state.MarketState` and,
when a DAO shares the ledger, the DAO's projection reached through the
:class:`~plaza.market.dao_port.DaoPort`. Every event the market records is therefore
checked by both before it is appended and applied to both after — the market composes
with the DAO through the ledger's replay, and only asks the DAO questions.

A command that writes several events runs inside :meth:`Recorder.run`: they are applied
as they are built and appended at once; if the append loses the race for the ledger
head the states are rebuilt and the whole command runs again (deciding afresh), and if
the command raises after recording, the states are rebuilt and the error propagates,
so the states never hold what the ledger does not.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from plaza.atproto.crypto import PrivateKey
from plaza.ledger import Event, Ledger
from plaza.ledger.command import Batch, Commands
from plaza.ledger.handlers import Mutation
from plaza.ledger.keystore import Signer
from plaza.market.dao_port import DaoPort
from plaza.market.errors import MarketInputError
from plaza.market.state import MarketState

T = TypeVar("T")


class SharedProjection:
    """What the market replays from a ledger it may share with a DAO: its own state and
    the DAO's (through ``dao``). An event is checked by both before either changes."""

    def __init__(self, market: MarketState, dao: DaoPort | None) -> None:
        self.market = market
        self._dao = dao
        # The core checks an event, appends it, then applies it; the market's check
        # (signatures, invoices) is kept for that apply instead of being done twice.
        self._checked: tuple[Event, Mutation] | None = None

    def check(self, event: Event) -> None:
        mutation = self.market.prepare(event)
        if self._dao is not None:
            self._dao.check(event)
        self._checked = (event, mutation)

    def apply(self, event: Event) -> None:
        checked, self._checked = self._checked, None
        if checked is not None and checked[0] is event:
            mutation = checked[1]
        else:
            mutation = self.market.prepare(event)
        if self._dao is not None:
            self._dao.apply(event)  # checks first: raises with nothing changed
        mutation()

    def fingerprint(self) -> bytes:
        """The market state's fingerprint (the DAO's is the DAO's to give)."""
        return self.market.fingerprint()


class Recorder:
    """Records the operator's market events in ``ledger``; see the module docstring.
    ``dao``: the DAO sharing the ledger. Without ``operator_key`` the handle only
    reads."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        operator_did: str,
        operator_key: PrivateKey | None,
        dao: DaoPort | None,
    ) -> None:
        self.ledger = ledger
        self.operator_did = operator_did
        self._signer = Signer(operator_did, operator_key) if operator_key is not None else None
        self._dao = dao
        self._built = False
        self._batch: Batch | None = None
        self._commands = Commands(ledger, self._fresh, retry=ledger.retry)

    def _fresh(self) -> SharedProjection:
        # The core asks for a fresh projection when it starts and whenever it rebuilds
        # (after a failed run, which may have applied events to the DAO's projection
        # too): the DAO's is then rebuilt from the ledger as well.
        if self._built and self._dao is not None:
            self._dao.reload()
        self._built = True
        return SharedProjection(MarketState(), self._dao)

    @property
    def state(self) -> MarketState:
        """The market state (replaced when the core rebuilds: do not hold on to it)."""
        return self._commands.state.market

    def sync(self) -> None:
        """Apply the ledger's events the states have not seen yet (inside a run, the
        run's own events are already applied)."""
        if self._batch is None:
            if self._dao is not None:
                self._dao.sync()
            self._commands.sync()

    def reload(self) -> None:
        """Rebuild the states from the whole ledger."""
        self._commands.reload()

    def record(self, type_: str, payload: Mapping[str, Any], now_ms: int) -> Event:
        """Check, append and apply one event (joining the run in progress, if any);
        raises what the check raises, with nothing changed."""
        return self._commands.record(self._operator(), type_, payload, now_ms)

    def precheck(self, type_: str, payload: Mapping[str, Any], now_ms: int) -> None:
        """Check an event without writing it (a command vets a document before it
        records anything, so a rejected one costs no rebuild)."""
        self._commands.check(self._operator(), type_, payload, now_ms)

    def run(self, command: Callable[[], T]) -> T:
        """Run ``command`` as one atomic run of events (see the module docstring); a run
        started inside another joins it."""
        if self._batch is not None:
            return command()

        def body(batch: Batch) -> T:
            self._batch = batch
            try:
                return command()
            finally:
                self._batch = None

        return self._commands.run(body)

    @property
    def recorded(self) -> int:
        """How many events the run in progress has recorded so far."""
        return len(self._batch.events) if self._batch is not None else 0

    def _operator(self) -> Signer:
        if self._signer is None:
            raise MarketInputError("this market handle is read-only (no operator key)")
        return self._signer

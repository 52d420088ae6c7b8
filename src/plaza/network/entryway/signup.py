"""``createAccount`` at the entryway: check the sign-up, have the agents place it, keep
the member's credentials, and answer with the host's session.

Theory of operation. The member gives a handle, a password, optionally an email and
their own ``recoveryKey``; they never name a host. :meth:`SignUps.create`

1. checks the input (a handle under the network's domains that nobody holds, here or
   in the directory; a password of 8 to 256 characters; an email address; a did:key);
2. under one lock — sign-ups take turns, so each placement sees the accounts the one
   before it made and no host is booked twice — asks the agents to place it
   (:func:`plaza.agents.runner.place`: the placement reconciler, the mandate guard, a
   signed ``agent.action`` ledger record with the reason). The host creates the
   account with a random password and the DAO agent's key as ``recoveryKey``: the
   DID's rotation keys are then [DAO agent, host];
3. stores the account: the scrypt hash of the member's password and the random host
   password, sealed in the escrow;
4. when the member gave their own key, one PLC operation signed by the DAO agent's key
   puts it first: [member, DAO agent, host];
5. answers with the host's ``createAccount`` answer (its session and DID document), so
   clients continue at the host.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from plaza.agents.hosting import Hosting, HostingError
from plaza.agents.loop import LoopRecord
from plaza.agents.runner import Created, LiveAgent, SignUp, place
from plaza.atproto import syntax
from plaza.atproto.crypto import PrivateKey, parse_did_key
from plaza.atproto.errors import AtprotoError
from plaza.network.entryway.directory import Directory
from plaza.network.entryway.errors import (
    HandleNotAvailableError,
    InvalidHandleError,
    InvalidRequestError,
    NoCapacityError,
    UpstreamError,
)
from plaza.network.entryway.escrow import Escrow
from plaza.network.entryway.passwords import hash_password
from plaza.network.entryway.store import AccountRow, AccountStore

MIN_PASSWORD = 8
MAX_PASSWORD = 256


@dataclass(frozen=True)
class SignUpRequest:
    """A checked ``createAccount`` body."""

    handle: str
    password: str = field(repr=False)
    email: str | None = None
    recovery_key: str | None = None


def parse_request(body: dict[str, Any], user_domains: tuple[str, ...]) -> SignUpRequest:
    """The sign-up in ``body``, or an error naming what is wrong (nothing changes)."""
    for name in ("did", "plcOp"):
        if body.get(name) is not None:
            raise InvalidRequestError(
                f"{name} is for moving an existing account to a host; the entryway makes "
                "new accounts only"
            )
    handle, password = body.get("handle"), body.get("password")
    if not isinstance(handle, str) or not handle:
        raise InvalidRequestError("handle is required")
    if not isinstance(password, str):
        raise InvalidRequestError("password is required")
    try:
        handle = syntax.normalize_handle(handle)
    except AtprotoError as exc:
        raise InvalidHandleError(f"Invalid handle: {exc.message}") from exc
    if not any(handle.endswith(d) and len(handle) > len(d) for d in user_domains):
        raise InvalidHandleError(f"Handle must end with one of {', '.join(user_domains)}")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequestError(
            f"Password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long"
        )
    email = body.get("email")
    if email is not None:
        if not isinstance(email, str) or "@" not in email or len(email) > 254:
            raise InvalidRequestError("This email address is not valid")
        email = email.strip().lower()
    key = body.get("recoveryKey")
    if key is not None:
        if not isinstance(key, str):
            raise InvalidRequestError("recoveryKey must be a did:key")
        try:
            parse_did_key(key)
        except AtprotoError as exc:
            raise InvalidRequestError(f"recoveryKey is not a did:key: {exc.message}") from exc
    return SignUpRequest(handle, password, email, key)


def _refusal(records: list[LoopRecord]) -> Exception:
    """Why a placement made no account, from the loop's records."""
    for r in records:
        if r.outcome == "failed":
            if "HandleNotAvailable" in r.detail:
                return HandleNotAvailableError("Handle already taken")
            return UpstreamError(f"the host refused the account: {r.detail}")
    for r in records:
        if r.outcome in ("proposed", "denied"):
            return NoCapacityError(
                f"placing a new account needs the members' leave now ({r.verdict}: "
                f"{r.detail}); try again later"
            )
    return NoCapacityError("no contracted host has room for a new account now; try again later")


class SignUps:
    """Makes accounts (see the module docstring)."""

    def __init__(
        self,
        store: AccountStore,
        escrow: Escrow,
        agent: LiveAgent,
        dao_key: PrivateKey,
        directory: Directory,
        *,
        clock_ms: Callable[[], int],
    ) -> None:
        if agent.hosting is None:
            raise InvalidRequestError("the entryway's agent needs the live network")
        self.hosting: Hosting = agent.hosting
        self.store = store
        self.escrow = escrow
        self.agent = agent
        self.dao_key = dao_key
        self.directory = directory
        self.clock_ms = clock_ms
        self._turn = threading.Lock()

    def create(self, request: SignUpRequest) -> dict[str, Any]:
        """Make the account; returns the host's ``createAccount`` answer. Blocking."""
        password_hash = hash_password(request.password)
        with self._turn:
            if self.store.by_handle(request.handle) is not None:
                raise HandleNotAvailableError(f"Handle already taken: {request.handle}")
            if request.email is not None and self.store.by_email(request.email) is not None:
                raise InvalidRequestError("This email address is already in use")
            if self.directory.did_of(request.handle) is not None:
                raise HandleNotAvailableError(f"Handle already taken: {request.handle}")
            host_password = secrets.token_urlsafe(24)
            dao = self.dao_key.did_key()
            signup = SignUp(request.handle, request.email or "", host_password, recovery_key=dao)
            made: list[Created] = []
            records = place(self.agent, [signup], self.clock_ms(), made)
            if not made:
                raise _refusal(records)
            created = made[0]
            self.store.add(
                AccountRow(
                    did=created.did,
                    handle=request.handle,
                    email=request.email,
                    password_hash=password_hash,
                    host_password=self.escrow.seal(created.did, host_password),
                )
            )
        if request.recovery_key is not None:
            self._member_key_first(created.did, request.recovery_key)
        return created.answer

    def _member_key_first(self, did: str, member_key: str) -> None:
        """[member, DAO agent, host]: the member's key above the DAO agent's."""
        dao = self.dao_key.did_key()
        try:
            keys = list(self.hosting.did_data(did).get("rotationKeys", []))
            rest = [k for k in keys if k not in (member_key, dao)]
            self.hosting.set_rotation_keys(did, [member_key, dao, *rest], self.dao_key)
        except HostingError as exc:
            raise UpstreamError(
                f"the account {did} was made, but its recoveryKey could not be listed "
                f"({exc.message}); add it with 'plaza account add-recovery-key'"
            ) from exc
